package aoba_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

func TestLoginNeverHashesAnOverlongPassword(t *testing.T) {
	ts := newService(t, withLoginFailures(3))
	svc, h := ts.Service, ts.Hasher
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
	svc := newService(t, withLoginFailures(3))
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

func TestService_EndSessions(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	alice := ts.MustRegister(t, "alice")
	bob := ts.MustRegister(t, "bob")
	ts.Subscribe(t, aoba.UserTopic(alice.ID))

	t.Run("Sessions", func(t *testing.T) {
		other := ts.MustLogin(t, "alice")
		views, err := ts.Sessions(ctx, alice.Claims)
		if err != nil {
			t.Fatal(err)
		}
		current := map[string]bool{}
		for _, v := range views {
			current[v.ID] = v.Current
		}
		if len(views) != 2 || !current[alice.SessionID] || current[other.SessionID] {
			t.Fatalf("sessions %+v, want two, the caller's marked current", views)
		}
		if err := ts.Logout(ctx, other.Claims); err != nil {
			t.Fatal(err)
		}
		if views, err := ts.Sessions(ctx, alice.Claims); err != nil || len(views) != 1 {
			t.Fatalf("sessions after a logout: %+v, %v; want one", views, err)
		}
	})
	t.Run("Logout", func(t *testing.T) {
		a := ts.MustLogin(t, "alice")
		ticket, _, err := ts.IssueTicket(ctx, a.Claims)
		if err != nil {
			t.Fatal(err)
		}
		ts.Forget(t)
		if err := ts.Logout(ctx, a.Claims); err != nil {
			t.Fatal(err)
		}
		_, err = ts.Authenticate(ctx, a.Token)
		wantCode(t, err, aoba.EUNAUTHORIZED)
		_, err = ts.RedeemTicket(ctx, ticket)
		wantCode(t, err, aoba.EUNAUTHORIZED)
		if _, err := ts.Authenticate(ctx, alice.Token); err != nil {
			t.Fatalf("another session after a logout: %v", err)
		}
		envs := ts.Published(t, aoba.UserTopic(alice.ID))
		if len(envs) != 1 || envs[0].Close == nil || envs[0].Close.Code != 4001 || envs[0].Close.Session != a.SessionID {
			t.Fatalf("published %s, want one close order 4001 for session %s", describe(envs), a.SessionID)
		}
	})
	t.Run("EndSession", func(t *testing.T) {
		a := ts.MustLogin(t, "alice")
		if err := ts.EndSession(ctx, alice.Claims, a.SessionID); err != nil {
			t.Fatal(err)
		}
		_, err := ts.Authenticate(ctx, a.Token)
		wantCode(t, err, aoba.EUNAUTHORIZED)
		wantCode(t, ts.EndSession(ctx, alice.Claims, a.SessionID), aoba.ENOTFOUND)
	})
	t.Run("EndSessionErrNotFound", func(t *testing.T) {
		// Someone else's session is no session at all.
		wantCode(t, ts.EndSession(ctx, alice.Claims, bob.SessionID), aoba.ENOTFOUND)
		wantCode(t, ts.EndSession(ctx, alice.Claims, aoba.NewID()), aoba.ENOTFOUND)
		if _, err := ts.Authenticate(ctx, bob.Token); err != nil {
			t.Fatalf("bob's session after alice tried to end it: %v", err)
		}
	})
	t.Run("EndSessionErrIDInvalid", func(t *testing.T) {
		wantCode(t, ts.EndSession(ctx, alice.Claims, "current"), aoba.EINVALID)
	})
	t.Run("LoginAfterPasswordChange", func(t *testing.T) {
		const next = "another fine passphrase"
		if err := ts.ChangePassword(ctx, bob.Claims, testPassword, next); err != nil {
			t.Fatal(err)
		}
		// User-wide revocations cut at the millisecond: a login in a later
		// one opens a session that works.
		time.Sleep(2 * time.Millisecond)
		tok, _, _, err := ts.Login(ctx, "bob", next, aoba.Device{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Authenticate(ctx, tok); err != nil {
			t.Fatalf("a session opened after the change: %v", err)
		}
	})
}

// downCache is a SessionCache that cannot be reached, as the Redis one
// while Redis is down.
type downCache struct{}

func errDown() error {
	return aoba.Errorf(aoba.EUNAVAILABLE, "The session service is temporarily unavailable.")
}

func (downCache) Check(context.Context, aoba.Claims) (aoba.SessionVerdict, error) {
	return aoba.SessionUnknown, errDown()
}
func (downCache) Remember(context.Context, string, string, time.Time) error { return errDown() }
func (downCache) Rotate(context.Context, string, string, time.Time) error   { return errDown() }
func (downCache) RevokeSession(context.Context, string, time.Time) error    { return errDown() }
func (downCache) RevokeUserSessions(context.Context, string, time.Time, string, time.Duration) error {
	return errDown()
}

// TestAuthenticateWithoutSessionCache: with the session cache unreachable,
// authentication reads the store, which still refuses a revoked session
// and an unknown one.
func TestAuthenticateWithoutSessionCache(t *testing.T) {
	ts := newService(t, withSessions(downCache{}))
	ctx := context.Background()
	alice := ts.MustRegister(t, "alice")
	if _, err := ts.Authenticate(ctx, alice.Token); err != nil {
		t.Fatalf("authenticate with the cache down: %v", err)
	}
	other := ts.MustLogin(t, "alice")
	if err := ts.Store.RevokeSession(ctx, other.SessionID, aoba.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Authenticate(ctx, other.Token); aoba.ErrorCode(err) != aoba.EUNAUTHORIZED {
		t.Fatalf("authenticate a revoked session with the cache down: %v, want %s", err, aoba.EUNAUTHORIZED)
	}
	if _, err := ts.Authenticate(ctx, alice.Token); err != nil {
		t.Fatalf("the other session still authenticates: %v", err)
	}
}
