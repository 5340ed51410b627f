package hub_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/hubtest"
	"github.com/aoba-chat/aoba/internal/redistest"
)

func TestMemorySessions(t *testing.T) {
	hubtest.RunSessionCacheTests(t, func(t *testing.T) aoba.SessionCache {
		return hub.NewMemorySessions()
	})
	hubtest.RunTicketTests(t, func(t *testing.T) aoba.TicketStore {
		return hub.NewMemorySessions()
	})
}

func TestRedisSessions(t *testing.T) {
	srv := redistest.Shared(t)
	client := newClient(t, srv)
	hubtest.RunSessionCacheTests(t, func(t *testing.T) aoba.SessionCache {
		return hub.NewRedisSessions(client, redistest.Prefix(t))
	})
	hubtest.RunTicketTests(t, func(t *testing.T) aoba.TicketStore {
		return hub.NewRedisSessions(client, redistest.Prefix(t))
	})

	ctx := context.Background()
	now := aoba.Now()
	claims := func(user, session, token string) aoba.Claims {
		return aoba.Claims{UserID: user, SessionID: session, TokenID: token, IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
	}
	verdict := func(t *testing.T, s *hub.RedisSessions, c aoba.Claims) aoba.SessionVerdict {
		t.Helper()
		v, err := s.Check(ctx, c)
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		return v
	}

	t.Run("PodsShareTheCache", func(t *testing.T) {
		prefix := redistest.Prefix(t)
		a := hub.NewRedisSessions(client, prefix)
		b := hub.NewRedisSessions(newClient(t, srv), prefix)
		if err := a.Rotate(ctx, "s1", "t1", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := a.RevokeSession(ctx, "s2", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := a.RevokeUserSessions(ctx, "bob", now, "", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := a.IssueTicket(ctx, "tk", claims("alice", "s1", "t1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			c    aoba.Claims
			want aoba.SessionVerdict
		}{
			{claims("alice", "s1", "t1"), aoba.SessionValid},
			{claims("alice", "s2", "t2"), aoba.SessionRevoked},
			{claims("bob", "s3", "t3"), aoba.SessionRevoked},
		} {
			if got := verdict(t, b, tc.c); got != tc.want {
				t.Errorf("pod B: Check(%s) = %d, want %d", tc.c.SessionID, got, tc.want)
			}
		}
		if c, err := b.RedeemTicket(ctx, "tk"); err != nil || c.SessionID != "s1" {
			t.Errorf("pod B redeems a ticket issued on pod A: %+v, %v", c, err)
		}
		// The session key lives until the given time, not longer.
		ttl, err := client.PTTL(ctx, prefix+"sess:s2").Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 59*time.Minute || ttl > time.Hour+time.Second {
			t.Fatalf("revoked session key TTL = %v, want about an hour", ttl)
		}
	})

	t.Run("CheckIsOneRoundTrip", func(t *testing.T) {
		own := newClient(t, srv)
		var cmds atomic.Int64
		own.AddHook(countHook{&cmds})
		s := hub.NewRedisSessions(own, redistest.Prefix(t))
		if err := s.Remember(ctx, "s1", "t1", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		cmds.Store(0)
		if got := verdict(t, s, claims("alice", "s1", "t1")); got != aoba.SessionValid {
			t.Fatalf("Check = %d, want SessionValid", got)
		}
		if n := cmds.Load(); n != 1 {
			t.Fatalf("Check sent %d commands, want 1", n)
		}
	})

	// The cache is only a cache: once Redis has lost it, Check knows
	// nothing (rather than answering Valid, or failing), so that the
	// Service reads the store again.
	t.Run("LostCacheIsUnknown", func(t *testing.T) {
		own := redistest.Start(t)
		s := hub.NewRedisSessions(newClient(t, own), "")
		if err := s.Remember(ctx, "s1", "t1", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeSession(ctx, "s2", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeUserSessions(ctx, "bob", now, "", time.Hour); err != nil {
			t.Fatal(err)
		}
		if got := verdict(t, s, claims("alice", "s1", "t1")); got != aoba.SessionValid {
			t.Fatalf("before the restart: Check = %d, want SessionValid", got)
		}
		own.Restart()
		// The client reconnects on its own; allow it a few tries.
		var v aoba.SessionVerdict
		var err error
		deadline := time.Now().Add(5 * time.Second)
		for {
			v, err = s.Check(ctx, claims("alice", "s1", "t1"))
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("check after a Redis restart: %v", err)
		}
		for _, c := range []aoba.Claims{claims("alice", "s1", "t1"), claims("alice", "s2", "t2"), claims("bob", "s3", "t3")} {
			if v = verdict(t, s, c); v != aoba.SessionUnknown {
				t.Errorf("after a Redis restart: Check(%s/%s) = %d, want SessionUnknown", c.UserID, c.SessionID, v)
			}
		}
	})

	t.Run("Unavailable", func(t *testing.T) {
		own := redistest.Start(t)
		s := hub.NewRedisSessions(newClient(t, own), "")
		own.Stop()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c := claims("alice", "s1", "t1")
		for name, err := range map[string]error{
			"check":       func() error { _, err := s.Check(cctx, c); return err }(),
			"remember":    s.Remember(cctx, "s1", "t1", now.Add(time.Hour)),
			"rotate":      s.Rotate(cctx, "s1", "t2", now.Add(time.Hour)),
			"revoke":      s.RevokeSession(cctx, "s1", now.Add(time.Hour)),
			"revoke user": s.RevokeUserSessions(cctx, "alice", now, "", time.Hour),
			"issue":       s.IssueTicket(cctx, "tk", c, time.Minute),
			"redeem":      func() error { _, err := s.RedeemTicket(cctx, "tk"); return err }(),
		} {
			if aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
				t.Errorf("%s with Redis down: %v, want %s", name, err, aoba.EUNAVAILABLE)
			}
		}
	})
}

// countHook counts the commands a client sends, pipelined ones included.
type countHook struct{ n *atomic.Int64 }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}
