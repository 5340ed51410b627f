package hubtest

import (
	"context"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// NewRevokerFunc returns a new, empty session revoker.
type NewRevokerFunc func(t *testing.T) aoba.SessionRevoker

// RunRevokerTests runs the aoba.SessionRevoker contract against the
// revokers that newRevoker returns.
func RunRevokerTests(t *testing.T, newRevoker NewRevokerFunc) {
	ctx := context.Background()
	now := aoba.Now()
	claims := func(user, session string, issued time.Time) aoba.Claims {
		return aoba.Claims{UserID: user, SessionID: session, IssuedAt: issued, ExpiresAt: issued.Add(time.Hour)}
	}
	check := func(t *testing.T, r aoba.SessionRevoker, c aoba.Claims, want bool) {
		t.Helper()
		got, err := r.IsRevoked(ctx, c)
		if err != nil {
			t.Fatalf("is revoked: %v", err)
		}
		if got != want {
			t.Errorf("IsRevoked(%s/%s issued %v) = %v, want %v", c.UserID, c.SessionID, c.IssuedAt, got, want)
		}
	}

	t.Run("NothingRevoked", func(t *testing.T) {
		r := newRevoker(t)
		check(t, r, claims("alice", "s1", now), false)
	})

	t.Run("RevokeSession", func(t *testing.T) {
		r := newRevoker(t)
		if err := r.RevokeSession(ctx, "s1", now.Add(time.Hour)); err != nil {
			t.Fatalf("revoke session: %v", err)
		}
		check(t, r, claims("alice", "s1", now), true)
		check(t, r, claims("alice", "s2", now), false)
		check(t, r, claims("bob", "s3", now), false)
	})

	t.Run("RevokedSessionExpires", func(t *testing.T) {
		r := newRevoker(t)
		if err := r.RevokeSession(ctx, "s1", time.Now().Add(300*time.Millisecond)); err != nil {
			t.Fatalf("revoke session: %v", err)
		}
		check(t, r, claims("alice", "s1", now), true)
		time.Sleep(400 * time.Millisecond)
		check(t, r, claims("alice", "s1", now), false)
		// A session already expired needs no entry.
		if err := r.RevokeSession(ctx, "s2", time.Now().Add(-time.Second)); err != nil {
			t.Fatalf("revoke expired session: %v", err)
		}
	})

	t.Run("RevokeUserSessions", func(t *testing.T) {
		r := newRevoker(t)
		cut := now
		if err := r.RevokeUserSessions(ctx, "alice", cut, "keep", time.Hour); err != nil {
			t.Fatalf("revoke user sessions: %v", err)
		}
		check(t, r, claims("alice", "old", cut.Add(-time.Minute)), true)
		check(t, r, claims("alice", "same-ms", cut), true)
		check(t, r, claims("alice", "keep", cut.Add(-time.Minute)), false)
		check(t, r, claims("alice", "new", cut.Add(time.Millisecond)), false)
		check(t, r, claims("bob", "old", cut.Add(-time.Minute)), false)
	})

	t.Run("RevokeUserSessionsWithoutKeep", func(t *testing.T) {
		r := newRevoker(t)
		if err := r.RevokeUserSessions(ctx, "alice", now, "", time.Hour); err != nil {
			t.Fatalf("revoke user sessions: %v", err)
		}
		check(t, r, claims("alice", "", now.Add(-time.Second)), true)
		check(t, r, claims("alice", "s1", now.Add(-time.Second)), true)
	})

	t.Run("LaterOrderReplaces", func(t *testing.T) {
		r := newRevoker(t)
		if err := r.RevokeUserSessions(ctx, "alice", now, "s1", time.Hour); err != nil {
			t.Fatal(err)
		}
		later := now.Add(time.Second)
		if err := r.RevokeUserSessions(ctx, "alice", later, "", time.Hour); err != nil {
			t.Fatal(err)
		}
		check(t, r, claims("alice", "s1", now.Add(-time.Second)), true)
		check(t, r, claims("alice", "s2", later), true)
		check(t, r, claims("alice", "s3", later.Add(time.Millisecond)), false)
	})

	t.Run("UserOrderExpires", func(t *testing.T) {
		r := newRevoker(t)
		if err := r.RevokeUserSessions(ctx, "alice", now, "", 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		check(t, r, claims("alice", "s1", now.Add(-time.Second)), true)
		time.Sleep(400 * time.Millisecond)
		check(t, r, claims("alice", "s1", now.Add(-time.Second)), false)
	})
}
