package hub_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

func TestFileRevoker(t *testing.T) {
	dir := t.TempDir()
	n := 0
	hubtest.RunRevokerTests(t, func(t *testing.T) aoba.SessionRevoker {
		n++
		r, err := hub.OpenFileRevoker(filepath.Join(dir, fmt.Sprintf("revoked-%d.json", n)))
		if err != nil {
			t.Fatal(err)
		}
		return r
	})

	ctx := context.Background()
	t.Run("SurvivesReopen", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "revoked.json")
		r, err := hub.OpenFileRevoker(path)
		if err != nil {
			t.Fatal(err)
		}
		now := aoba.Now()
		if err := r.RevokeSession(ctx, "s1", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := r.RevokeUserSessions(ctx, "bob", now, "keep", time.Hour); err != nil {
			t.Fatal(err)
		}
		reopened, err := hub.OpenFileRevoker(path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		for _, tc := range []struct {
			c    aoba.Claims
			want bool
		}{
			{aoba.Claims{UserID: "alice", SessionID: "s1", IssuedAt: now}, true},
			{aoba.Claims{UserID: "bob", SessionID: "s2", IssuedAt: now.Add(-time.Second)}, true},
			{aoba.Claims{UserID: "bob", SessionID: "keep", IssuedAt: now.Add(-time.Second)}, false},
			{aoba.Claims{UserID: "bob", SessionID: "s3", IssuedAt: now.Add(time.Second)}, false},
		} {
			got, err := reopened.IsRevoked(ctx, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("after reopen, IsRevoked(%+v) = %v, want %v", tc.c, got, tc.want)
			}
		}
	})

	t.Run("CorruptFile", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "revoked.json")
		if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := hub.OpenFileRevoker(path); aoba.ErrorCode(err) != aoba.EINTERNAL {
			t.Fatalf("open of a corrupt file: %v, want %s", err, aoba.EINTERNAL)
		}
	})

	t.Run("UnwritableDir", func(t *testing.T) {
		r, err := hub.OpenFileRevoker(filepath.Join(t.TempDir(), "missing-dir", "revoked.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.RevokeSession(ctx, "s1", time.Now().Add(time.Hour)); aoba.ErrorCode(err) != aoba.EINTERNAL {
			t.Fatalf("revoke without a writable directory: %v, want %s", err, aoba.EINTERNAL)
		}
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
