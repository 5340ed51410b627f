package hubtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// NewSessionCacheFunc returns a new, empty session cache.
type NewSessionCacheFunc func(t *testing.T) aoba.SessionCache

// NewTicketStoreFunc returns a new, empty ticket store.
type NewTicketStoreFunc func(t *testing.T) aoba.TicketStore

// RunSessionCacheTests runs the aoba.SessionCache contract against the
// caches that newCache returns.
func RunSessionCacheTests(t *testing.T, newCache NewSessionCacheFunc) {
	ctx := context.Background()
	now := aoba.Now()
	hour := now.Add(time.Hour)
	claims := func(user, session, token string, issued time.Time) aoba.Claims {
		return aoba.Claims{UserID: user, SessionID: session, TokenID: token, IssuedAt: issued, ExpiresAt: issued.Add(time.Hour)}
	}
	check := func(t *testing.T, c aoba.SessionCache, cl aoba.Claims, want aoba.SessionVerdict) {
		t.Helper()
		got, err := c.Check(ctx, cl)
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		if got != want {
			t.Errorf("Check(%s/%s token %s issued %v) = %s, want %s",
				cl.UserID, cl.SessionID, cl.TokenID, cl.IssuedAt, verdict(got), verdict(want))
		}
	}
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("UnknownSession", func(t *testing.T) {
		c := newCache(t)
		check(t, c, claims("alice", "s1", "t1", now), aoba.SessionUnknown)
	})

	t.Run("Remember", func(t *testing.T) {
		c := newCache(t)
		must(t, c.Remember(ctx, "s1", "t1", hour))
		check(t, c, claims("alice", "s1", "t1", now), aoba.SessionValid)
		check(t, c, claims("alice", "s1", "t0", now), aoba.SessionRevoked)
		check(t, c, claims("alice", "s2", "t1", now), aoba.SessionUnknown)
	})

	t.Run("RememberKeepsWhatIsCached", func(t *testing.T) {
		c := newCache(t)
		must(t, c.Remember(ctx, "s1", "t1", hour))
		must(t, c.Remember(ctx, "s1", "t2", hour))
		check(t, c, claims("alice", "s1", "t1", now), aoba.SessionValid)
		check(t, c, claims("alice", "s1", "t2", now), aoba.SessionRevoked)
	})

	t.Run("RememberDoesNotUndoRevocation", func(t *testing.T) {
		c := newCache(t)
		must(t, c.RevokeSession(ctx, "s1", hour))
		must(t, c.Remember(ctx, "s1", "t1", hour))
		check(t, c, claims("alice", "s1", "t1", now), aoba.SessionRevoked)
	})

	t.Run("RememberDoesNotUndoRotation", func(t *testing.T) {
		c := newCache(t)
		must(t, c.Rotate(ctx, "s1", "t2", hour))
		// A late fill with the token read before the rotation.
		must(t, c.Remember(ctx, "s1", "t1", hour))
		check(t, c, claims("alice", "s1", "t1", now), aoba.SessionRevoked)
		check(t, c, claims("alice", "s1", "t2", now), aoba.SessionValid)
	})

	t.Run("RotateReplaces", func(t *testing.T) {
		c := newCache(t)
		must(t, c.Remember(ctx, "s1", "t1", hour))
		must(t, c.Rotate(ctx, "s1", "t2", hour))
		check(t, c, claims("alice", "s1", "t1", now), aoba.SessionRevoked)
		check(t, c, claims("alice", "s1", "t2", now), aoba.SessionValid)
		must(t, c.Rotate(ctx, "s1", "t3", hour))
		check(t, c, claims("alice", "s1", "t2", now), aoba.SessionRevoked)
		check(t, c, claims("alice", "s1", "t3", now), aoba.SessionValid)
	})

	t.Run("RotateDoesNotUndoRevocation", func(t *testing.T) {
		// A refresh that lost a race with a logout.
		c := newCache(t)
		must(t, c.Remember(ctx, "s1", "t1", hour))
		must(t, c.RevokeSession(ctx, "s1", hour))
		must(t, c.Rotate(ctx, "s1", "t2", hour))
		check(t, c, claims("alice", "s1", "t1", now), aoba.SessionRevoked)
		check(t, c, claims("alice", "s1", "t2", now), aoba.SessionRevoked)
	})

	t.Run("RevokeSession", func(t *testing.T) {
		c := newCache(t)
		must(t, c.Remember(ctx, "s1", "t1", hour))
		must(t, c.Remember(ctx, "s2", "t2", hour))
		must(t, c.RevokeSession(ctx, "s1", hour))
		check(t, c, claims("alice", "s1", "t1", now), aoba.SessionRevoked)
		check(t, c, claims("alice", "s2", "t2", now), aoba.SessionValid)
		// Revoking a session nothing was cached for.
		must(t, c.RevokeSession(ctx, "s3", hour))
		check(t, c, claims("bob", "s3", "t3", now), aoba.SessionRevoked)
	})

	t.Run("EntriesExpire", func(t *testing.T) {
		c := newCache(t)
		soon := time.Now().Add(300 * time.Millisecond)
		must(t, c.Remember(ctx, "s1", "t1", soon))
		must(t, c.Rotate(ctx, "s2", "t2", soon))
		must(t, c.RevokeSession(ctx, "s3", soon))
		check(t, c, claims("alice", "s1", "t1", now), aoba.SessionValid)
		check(t, c, claims("alice", "s2", "t2", now), aoba.SessionValid)
		check(t, c, claims("alice", "s3", "t3", now), aoba.SessionRevoked)
		time.Sleep(time.Until(soon) + 100*time.Millisecond)
		check(t, c, claims("alice", "s1", "t1", now), aoba.SessionUnknown)
		check(t, c, claims("alice", "s2", "t2", now), aoba.SessionUnknown)
		check(t, c, claims("alice", "s3", "t3", now), aoba.SessionUnknown)
		// Once expired, the session can be remembered again.
		must(t, c.Remember(ctx, "s3", "t4", hour))
		check(t, c, claims("alice", "s3", "t4", now), aoba.SessionValid)
	})

	t.Run("PastUntil", func(t *testing.T) {
		c := newCache(t)
		past := time.Now().Add(-time.Second)
		// Nothing to cache for a token already expired.
		must(t, c.Remember(ctx, "s1", "t1", past))
		check(t, c, claims("alice", "s1", "t1", now), aoba.SessionUnknown)
		// A rotation or revocation already expired leaves no stale token.
		must(t, c.Remember(ctx, "s2", "t1", hour))
		must(t, c.Rotate(ctx, "s2", "t2", past))
		check(t, c, claims("alice", "s2", "t1", now), aoba.SessionUnknown)
		must(t, c.Remember(ctx, "s3", "t1", hour))
		must(t, c.RevokeSession(ctx, "s3", past))
		check(t, c, claims("alice", "s3", "t1", now), aoba.SessionUnknown)
	})

	t.Run("RevokeUserSessions", func(t *testing.T) {
		c := newCache(t)
		cut := now
		for _, s := range []string{"old", "same-ms", "keep", "new"} {
			must(t, c.Remember(ctx, s, "t-"+s, hour))
		}
		must(t, c.Remember(ctx, "bob-old", "t-bob", hour))
		must(t, c.RevokeUserSessions(ctx, "alice", cut, "keep", time.Hour))
		check(t, c, claims("alice", "old", "t-old", cut.Add(-time.Minute)), aoba.SessionRevoked)
		check(t, c, claims("alice", "same-ms", "t-same-ms", cut.Add(999*time.Microsecond)), aoba.SessionRevoked)
		check(t, c, claims("alice", "keep", "t-keep", cut.Add(-time.Minute)), aoba.SessionValid)
		check(t, c, claims("alice", "new", "t-new", cut.Add(time.Millisecond)), aoba.SessionValid)
		check(t, c, claims("bob", "bob-old", "t-bob", cut.Add(-time.Minute)), aoba.SessionValid)
		// A cutoff revokes sessions nothing is cached for, and leaves the
		// others unknown.
		check(t, c, claims("alice", "uncached", "t", cut), aoba.SessionRevoked)
		check(t, c, claims("alice", "uncached", "t", cut.Add(time.Millisecond)), aoba.SessionUnknown)
		check(t, c, claims("alice", "keep", "t-other", cut.Add(-time.Minute)), aoba.SessionRevoked)
	})

	t.Run("RevokeUserSessionsWithoutKeep", func(t *testing.T) {
		c := newCache(t)
		must(t, c.Remember(ctx, "s1", "t1", hour))
		must(t, c.RevokeUserSessions(ctx, "alice", now, "", time.Hour))
		check(t, c, claims("alice", "", "t0", now.Add(-time.Second)), aoba.SessionRevoked)
		check(t, c, claims("alice", "s1", "t1", now.Add(-time.Second)), aoba.SessionRevoked)
		check(t, c, claims("alice", "s1", "t1", now.Add(time.Millisecond)), aoba.SessionValid)
	})

	t.Run("LaterCutoffReplaces", func(t *testing.T) {
		c := newCache(t)
		must(t, c.RevokeUserSessions(ctx, "alice", now, "s1", time.Hour))
		later := now.Add(time.Second)
		must(t, c.RevokeUserSessions(ctx, "alice", later, "", time.Hour))
		check(t, c, claims("alice", "s1", "t1", now.Add(-time.Second)), aoba.SessionRevoked)
		check(t, c, claims("alice", "s2", "t2", later), aoba.SessionRevoked)
		check(t, c, claims("alice", "s3", "t3", later.Add(time.Millisecond)), aoba.SessionUnknown)
	})

	t.Run("CutoffExpires", func(t *testing.T) {
		c := newCache(t)
		must(t, c.RevokeUserSessions(ctx, "alice", now, "", 300*time.Millisecond))
		check(t, c, claims("alice", "s1", "t1", now.Add(-time.Second)), aoba.SessionRevoked)
		time.Sleep(400 * time.Millisecond)
		check(t, c, claims("alice", "s1", "t1", now.Add(-time.Second)), aoba.SessionUnknown)
		// A ttl that is not positive caches nothing.
		must(t, c.RevokeUserSessions(ctx, "bob", now, "", 0))
		check(t, c, claims("bob", "s2", "t2", now.Add(-time.Second)), aoba.SessionUnknown)
	})

	t.Run("ManyWrites", func(t *testing.T) {
		// Enough writes to trigger any sweep of expired entries, which must
		// keep the live ones.
		c := newCache(t)
		must(t, c.Remember(ctx, "live", "t", hour))
		must(t, c.RevokeUserSessions(ctx, "alice", now, "", time.Hour))
		soon := time.Now().Add(50 * time.Millisecond)
		for i := 0; i < 3000; i++ {
			must(t, c.Remember(ctx, fmt.Sprintf("s%d", i), "t", soon))
		}
		time.Sleep(time.Until(soon) + 20*time.Millisecond)
		for i := 0; i < 3000; i++ {
			must(t, c.RevokeSession(ctx, fmt.Sprintf("r%d", i), hour))
		}
		check(t, c, claims("bob", "live", "t", now), aoba.SessionValid)
		check(t, c, claims("alice", "x", "t", now), aoba.SessionRevoked)
		check(t, c, claims("bob", "s7", "t", now), aoba.SessionUnknown)
		check(t, c, claims("bob", "r7", "t", now), aoba.SessionRevoked)
	})
}

// RunTicketTests runs the aoba.TicketStore contract against the stores that
// newStore returns.
func RunTicketTests(t *testing.T, newStore NewTicketStoreFunc) {
	ctx := context.Background()
	now := aoba.Now()
	c := aoba.Claims{UserID: "alice", SessionID: "s1", TokenID: "t1", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	wantUnauthorized := func(t *testing.T, s aoba.TicketStore, ticket, what string) {
		t.Helper()
		if _, err := s.RedeemTicket(ctx, ticket); aoba.ErrorCode(err) != aoba.EUNAUTHORIZED {
			t.Fatalf("redeem of %s: %v, want %s", what, err, aoba.EUNAUTHORIZED)
		}
	}

	t.Run("RedeemOnce", func(t *testing.T) {
		s := newStore(t)
		if err := s.IssueTicket(ctx, "tk1", c, time.Minute); err != nil {
			t.Fatalf("issue: %v", err)
		}
		got, err := s.RedeemTicket(ctx, "tk1")
		if err != nil {
			t.Fatalf("redeem: %v", err)
		}
		if got.UserID != c.UserID || got.SessionID != c.SessionID || got.TokenID != c.TokenID ||
			!got.IssuedAt.Equal(c.IssuedAt) || !got.ExpiresAt.Equal(c.ExpiresAt) {
			t.Fatalf("redeemed claims %+v, want %+v", got, c)
		}
		wantUnauthorized(t, s, "tk1", "a used ticket")
	})

	t.Run("MillisecondClaims", func(t *testing.T) {
		s := newStore(t)
		precise := c
		precise.IssuedAt = now.Add(123456 * time.Nanosecond)
		if err := s.IssueTicket(ctx, "tk1", precise, time.Minute); err != nil {
			t.Fatal(err)
		}
		got, err := s.RedeemTicket(ctx, "tk1")
		if err != nil {
			t.Fatal(err)
		}
		if got.IssuedAt.UnixMilli() != precise.IssuedAt.UnixMilli() {
			t.Fatalf("IssuedAt %v after the round trip, want %v to the millisecond", got.IssuedAt, precise.IssuedAt)
		}
	})

	t.Run("Unknown", func(t *testing.T) {
		s := newStore(t)
		wantUnauthorized(t, s, "never-issued", "an unknown ticket")
	})

	t.Run("TicketsAreSeparate", func(t *testing.T) {
		s := newStore(t)
		other := c
		other.SessionID, other.TokenID = "s2", "t2"
		if err := s.IssueTicket(ctx, "tk1", c, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.IssueTicket(ctx, "tk2", other, time.Minute); err != nil {
			t.Fatal(err)
		}
		got, err := s.RedeemTicket(ctx, "tk2")
		if err != nil || got.SessionID != "s2" {
			t.Fatalf("redeem tk2 = %+v, %v, want session s2", got, err)
		}
		got, err = s.RedeemTicket(ctx, "tk1")
		if err != nil || got.SessionID != "s1" {
			t.Fatalf("redeem tk1 = %+v, %v, want session s1", got, err)
		}
	})

	t.Run("Expired", func(t *testing.T) {
		s := newStore(t)
		if err := s.IssueTicket(ctx, "tk1", c, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		wantUnauthorized(t, s, "tk1", "an expired ticket")
	})

	t.Run("OneOfConcurrentRedeemsWins", func(t *testing.T) {
		s := newStore(t)
		if err := s.IssueTicket(ctx, "tk1", c, time.Minute); err != nil {
			t.Fatal(err)
		}
		const n = 20
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, refused := 0, 0
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got, err := s.RedeemTicket(ctx, "tk1")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && got.SessionID == c.SessionID:
					wins++
				case aoba.ErrorCode(err) == aoba.EUNAUTHORIZED:
					refused++
				default:
					t.Errorf("concurrent redeem: %+v, %v", got, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 || refused != n-1 {
			t.Fatalf("%d of %d concurrent redeems won and %d were refused, want 1 and %d", wins, n, refused, n-1)
		}
	})
}

// verdict names v for messages.
func verdict(v aoba.SessionVerdict) string {
	switch v {
	case aoba.SessionUnknown:
		return "SessionUnknown"
	case aoba.SessionValid:
		return "SessionValid"
	case aoba.SessionRevoked:
		return "SessionRevoked"
	}
	return fmt.Sprintf("SessionVerdict(%d)", int(v))
}
