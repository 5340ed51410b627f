package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/hubtest"
	"github.com/aoba-chat/aoba/internal/redistest"
)

func TestMemoryRevoker(t *testing.T) {
	hubtest.RunRevokerTests(t, func(t *testing.T) aoba.SessionRevoker {
		return hub.NewMemoryRevoker()
	})
}

func TestRedisRevoker(t *testing.T) {
	srv := redistest.Shared(t)
	client := newClient(t, srv)
	hubtest.RunRevokerTests(t, func(t *testing.T) aoba.SessionRevoker {
		return hub.NewRedisRevoker(client, redistest.Prefix(t))
	})

	ctx := context.Background()
	t.Run("PodsShareTheList", func(t *testing.T) {
		prefix := redistest.Prefix(t)
		a := hub.NewRedisRevoker(client, prefix)
		b := hub.NewRedisRevoker(newClient(t, srv), prefix)
		now := aoba.Now()
		s1 := aoba.Claims{UserID: "alice", SessionID: "s1", IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
		s2 := aoba.Claims{UserID: "bob", SessionID: "s2", IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}
		if err := a.RevokeSession(ctx, s1.SessionID, s1.ExpiresAt); err != nil {
			t.Fatal(err)
		}
		if err := a.RevokeUserSessions(ctx, "bob", now, "", time.Hour); err != nil {
			t.Fatal(err)
		}
		for _, c := range []aoba.Claims{s1, s2} {
			revoked, err := b.IsRevoked(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if !revoked {
				t.Errorf("pod B does not see the revocation of %s made on pod A", c.SessionID)
			}
		}
		// The session key lives until the token expires, not longer.
		ttl, err := client.PTTL(ctx, prefix+"revoked:s:s1").Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 59*time.Minute || ttl > time.Hour+time.Second {
			t.Fatalf("revoked session key TTL = %v, want about an hour", ttl)
		}
	})

	t.Run("Unavailable", func(t *testing.T) {
		own := redistest.Start(t)
		r := hub.NewRedisRevoker(newClient(t, own), "")
		own.Stop()
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := r.IsRevoked(cctx, aoba.Claims{UserID: "a", SessionID: "s", IssuedAt: aoba.Now()})
		if aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
			t.Fatalf("is revoked with Redis down: %v, want %s", err, aoba.EUNAVAILABLE)
		}
	})
}
