package aoba_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/auth"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/sqlitestore"
)

// recordingHasher is a cheap argon2id that records the length of every
// password it is given.
type recordingHasher struct {
	*auth.Argon2id
	mu      sync.Mutex
	longest int
	dummies int
}

func (h *recordingHasher) saw(pw string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.longest = max(h.longest, len(pw))
}

func (h *recordingHasher) Hash(pw string) (string, error) { h.saw(pw); return h.Argon2id.Hash(pw) }

func (h *recordingHasher) Verify(hash, pw string) (bool, error) {
	h.saw(pw)
	return h.Argon2id.Verify(hash, pw)
}

func (h *recordingHasher) Dummy() {
	h.mu.Lock()
	h.dummies++
	h.mu.Unlock()
	h.Argon2id.Dummy()
}

// newSessionService returns a Service on a fresh embedded store and the
// in-process hub, with a recording hasher.
func newSessionService(t *testing.T) (*aoba.Service, *recordingHasher) {
	t.Helper()
	store, err := sqlitestore.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	tokens, err := auth.NewTokens([]byte(strings.Repeat("k", 32)), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	argon, err := auth.NewArgon2id(auth.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := &recordingHasher{Argon2id: argon}
	sessions := hub.NewMemorySessions()
	broker := hub.NewMemoryBroker()
	t.Cleanup(func() { _ = broker.Close() })
	presence := hub.NewMemoryPresence(hub.PresenceOptions{})
	t.Cleanup(func() { _ = presence.Close() })
	svc := aoba.NewService(aoba.ServiceConfig{
		Store: store, Broker: broker, Presence: presence, Sessions: sessions, Tickets: sessions,
		Limiter: hub.NewMemoryRateLimiter(), LoginFailures: 3, Tokens: tokens, Hasher: h,
	})
	// No sockets here: envelopes and presence changes go nowhere.
	broker.RegisterDeliver(func(string, aoba.Envelope) {})
	presence.RegisterChangeHandler(func(aoba.Presence) {})
	return svc, h
}

func TestLoginNeverHashesAnOverlongPassword(t *testing.T) {
	svc, h := newSessionService(t)
	ctx := context.Background()
	if _, err := svc.Register(ctx, "alice", "a fine passphrase"); err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("x", 1<<20)
	for _, name := range []string{"alice", "nobody"} {
		if _, _, _, err := svc.Login(ctx, name, huge, aoba.Device{}); aoba.ErrorCode(err) != aoba.EUNAUTHORIZED {
			t.Fatalf("Login(%s, 1 MiB) = %v, want EUNAUTHORIZED", name, err)
		}
	}
	if h.longest > aoba.PasswordMaxLen*4 {
		t.Fatalf("the hasher was given a %d-byte password", h.longest)
	}
	if h.dummies != 2 {
		t.Fatalf("dummy verifications = %d, want 2 (one per refused login, so timing says nothing)", h.dummies)
	}
}

func TestSessionRules(t *testing.T) {
	svc, _ := newSessionService(t)
	ctx := context.Background()
	if _, err := svc.Register(ctx, "alice", "a fine passphrase"); err != nil {
		t.Fatal(err)
	}
	login := func(t *testing.T) (string, aoba.Claims) {
		t.Helper()
		tok, c, _, err := svc.Login(ctx, "alice", "a fine passphrase", aoba.Device{UserAgent: strings.Repeat("u", 1000), IP: "192.0.2.1"})
		if err != nil {
			t.Fatal(err)
		}
		return tok, c
	}
	t.Run("UserAgentBounded", func(t *testing.T) {
		_, c := login(t)
		views, err := svc.Sessions(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range views {
			if len(v.UserAgent) > 256 {
				t.Fatalf("user agent of %d bytes kept", len(v.UserAgent))
			}
		}
	})
	t.Run("RefreshRotates", func(t *testing.T) {
		tok, c := login(t)
		next, nc, _, err := svc.Refresh(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if nc.SessionID != c.SessionID || nc.TokenID == c.TokenID {
			t.Fatalf("refresh claims %+v from %+v", nc, c)
		}
		if _, err := svc.Authenticate(ctx, tok); aoba.ErrorCode(err) != aoba.EUNAUTHORIZED {
			t.Fatalf("old token: %v", err)
		}
		if _, err := svc.Authenticate(ctx, next); err != nil {
			t.Fatalf("new token: %v", err)
		}
		if _, _, _, err := svc.Refresh(ctx, c); aoba.ErrorCode(err) != aoba.EUNAUTHORIZED {
			t.Fatalf("second refresh of the old token: %v", err)
		}
	})
	t.Run("TicketSingleUse", func(t *testing.T) {
		_, c := login(t)
		ticket, exp, err := svc.IssueTicket(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Until(exp); d <= 0 || d > aoba.TicketTTL {
			t.Fatalf("ticket expires in %v", d)
		}
		got, err := svc.RedeemTicket(ctx, ticket)
		if err != nil || got.SessionID != c.SessionID || got.UserID != c.UserID {
			t.Fatalf("RedeemTicket = %+v, %v", got, err)
		}
		if _, err := svc.RedeemTicket(ctx, ticket); aoba.ErrorCode(err) != aoba.EUNAUTHORIZED {
			t.Fatalf("second redeem: %v", err)
		}
	})
	t.Run("FailedLoginBudget", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			if _, _, _, err := svc.Login(ctx, "ALICE", "wrong password!", aoba.Device{}); aoba.ErrorCode(err) != aoba.EUNAUTHORIZED {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		_, _, _, err := svc.Login(ctx, "alice", "a fine passphrase", aoba.Device{})
		if d, ok := aoba.RetryAfter(err); aoba.ErrorCode(err) != aoba.ERATELIMIT || !ok || d <= 0 {
			t.Fatalf("login over the budget = %v (retry %v)", err, d)
		}
	})
}
