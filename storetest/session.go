package storetest

import (
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// newSession returns a session of userID created at created, with every
// field set and times that carry milliseconds.
func newSession(userID string, created time.Time) *aoba.Session {
	return &aoba.Session{
		ID:         aoba.NewID(),
		UserID:     userID,
		TokenID:    aoba.NewID(),
		CreatedAt:  created,
		LastSeenAt: created.Add(1500 * time.Millisecond),
		ExpiresAt:  created.Add(time.Hour + 250*time.Millisecond),
		UserAgent:  "Mozilla/5.0 (X11; Linux x86_64) Aoba/1.0 «test»",
		IP:         "2001:db8::17",
	}
}

// mustCreateSession stores ss and returns it.
func mustCreateSession(t *testing.T, s aoba.Store, ss *aoba.Session) *aoba.Session {
	t.Helper()
	if err := s.CreateSession(ctx(t), ss); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return ss
}

// mustFindSession returns the stored session with that id.
func mustFindSession(t *testing.T, s aoba.Store, id string) *aoba.Session {
	t.Helper()
	got, err := s.FindSessionByID(ctx(t), id)
	if err != nil {
		t.Fatalf("FindSessionByID(%s): %v", id, err)
	}
	return got
}

// wantSession fails the test unless got has every field of want, times to
// the millisecond and in UTC.
func wantSession(t *testing.T, got, want *aoba.Session) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.TokenID != want.TokenID ||
		got.UserAgent != want.UserAgent || got.IP != want.IP {
		t.Fatalf("session = %+v, want %+v", got, want)
	}
	wantTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	wantTime(t, "LastSeenAt", got.LastSeenAt, want.LastSeenAt)
	wantTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	wantRevokedAt(t, got, want.RevokedAt)
}

// wantRevokedAt fails the test unless ss.RevokedAt is want (nil: not
// revoked).
func wantRevokedAt(t *testing.T, ss *aoba.Session, want *time.Time) {
	t.Helper()
	switch {
	case want == nil && ss.RevokedAt != nil:
		t.Fatalf("session %s: RevokedAt = %v, want nil", ss.ID, *ss.RevokedAt)
	case want != nil && ss.RevokedAt == nil:
		t.Fatalf("session %s: RevokedAt = nil, want %v", ss.ID, *want)
	case want != nil:
		wantTime(t, "RevokedAt", *ss.RevokedAt, *want)
	}
}

// sessionIDs returns the ids of sessions, in order.
func sessionIDs(sessions []*aoba.Session) []string {
	ids := make([]string, len(sessions))
	for i, ss := range sessions {
		ids[i] = ss.ID
	}
	return ids
}

func runSessionTests(t *testing.T, open OpenFunc, cfg config) {
	base := aoba.Now().Add(-time.Hour).Truncate(time.Second).Add(123 * time.Millisecond)

	t.Run("CreateSession/RoundTrip", func(t *testing.T) {
		s := open(t)
		ss := mustCreateSession(t, s, newSession(aoba.NewID(), base))
		wantSession(t, mustFindSession(t, s, ss.ID), ss)

		revoked := newSession(ss.UserID, base.Add(time.Second))
		at := base.Add(time.Minute + 7*time.Millisecond)
		revoked.RevokedAt = &at
		revoked.UserAgent, revoked.IP = "", ""
		mustCreateSession(t, s, revoked)
		wantSession(t, mustFindSession(t, s, revoked.ID), revoked)
	})
	t.Run("CreateSession/ErrConflict", func(t *testing.T) {
		s := open(t)
		ss := mustCreateSession(t, s, newSession(aoba.NewID(), base))
		dup := newSession(aoba.NewID(), base.Add(time.Minute))
		dup.ID = ss.ID
		wantCode(t, s.CreateSession(ctx(t), dup), aoba.ECONFLICT)
		wantSession(t, mustFindSession(t, s, ss.ID), ss)
	})
	t.Run("FindSessionByID/ErrNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.FindSessionByID(ctx(t), aoba.NewID())
		wantCode(t, err, aoba.ENOTFOUND)
	})
	t.Run("FindSessionsByUser/OrderAndIsolation", func(t *testing.T) {
		s := open(t)
		alice, bob := aoba.NewID(), aoba.NewID()
		third := mustCreateSession(t, s, newSession(alice, base.Add(2*time.Second)))
		first := mustCreateSession(t, s, newSession(alice, base))
		// Two sessions created in the same millisecond: ordered by id.
		tieA, tieB := newSession(alice, base.Add(time.Second)), newSession(alice, base.Add(time.Second))
		tieA.ID, tieB.ID = "tie-a-"+aoba.NewID(), "tie-b-"+aoba.NewID()
		mustCreateSession(t, s, tieB)
		mustCreateSession(t, s, tieA)
		revoked := newSession(alice, base.Add(3*time.Second))
		revoked.RevokedAt = &base
		revoked.ExpiresAt = base.Add(-time.Hour)
		mustCreateSession(t, s, revoked)
		bobs := mustCreateSession(t, s, newSession(bob, base.Add(time.Second)))

		got, err := s.FindSessionsByUser(ctx(t), alice)
		if err != nil {
			t.Fatalf("FindSessionsByUser(alice): %v", err)
		}
		wantStrings(t, "alice's sessions", sessionIDs(got), []string{first.ID, tieA.ID, tieB.ID, third.ID, revoked.ID})
		wantSession(t, got[0], first)
		wantSession(t, got[4], revoked)

		got, err = s.FindSessionsByUser(ctx(t), bob)
		if err != nil {
			t.Fatalf("FindSessionsByUser(bob): %v", err)
		}
		wantStrings(t, "bob's sessions", sessionIDs(got), []string{bobs.ID})

		got, err = s.FindSessionsByUser(ctx(t), aoba.NewID())
		if err != nil || len(got) != 0 {
			t.Fatalf("FindSessionsByUser(unknown) = %v, %v; want none", sessionIDs(got), err)
		}
	})
	t.Run("RotateSession/OK", func(t *testing.T) {
		s := open(t)
		ss := mustCreateSession(t, s, newSession(aoba.NewID(), base))
		to, exp := aoba.NewID(), base.Add(2*time.Hour+999*time.Millisecond)
		if err := s.RotateSession(ctx(t), ss.ID, ss.TokenID, to, exp); err != nil {
			t.Fatalf("RotateSession: %v", err)
		}
		want := *ss
		want.TokenID, want.ExpiresAt = to, exp
		wantSession(t, mustFindSession(t, s, ss.ID), &want)
		// The replaced token cannot rotate again; the new one can.
		wantCode(t, s.RotateSession(ctx(t), ss.ID, ss.TokenID, aoba.NewID(), exp), aoba.ECONFLICT)
		if err := s.RotateSession(ctx(t), ss.ID, to, aoba.NewID(), exp); err != nil {
			t.Fatalf("RotateSession from the new token: %v", err)
		}
	})
	t.Run("RotateSession/ErrConflictWrongToken", func(t *testing.T) {
		s := open(t)
		ss := mustCreateSession(t, s, newSession(aoba.NewID(), base))
		wantCode(t, s.RotateSession(ctx(t), ss.ID, aoba.NewID(), aoba.NewID(), base.Add(2*time.Hour)), aoba.ECONFLICT)
		wantSession(t, mustFindSession(t, s, ss.ID), ss)
	})
	t.Run("RotateSession/ErrConflictRevoked", func(t *testing.T) {
		s := open(t)
		ss := mustCreateSession(t, s, newSession(aoba.NewID(), base))
		at := base.Add(time.Minute)
		if err := s.RevokeSession(ctx(t), ss.ID, at); err != nil {
			t.Fatalf("RevokeSession: %v", err)
		}
		wantCode(t, s.RotateSession(ctx(t), ss.ID, ss.TokenID, aoba.NewID(), base.Add(2*time.Hour)), aoba.ECONFLICT)
		want := *ss
		want.RevokedAt = &at
		wantSession(t, mustFindSession(t, s, ss.ID), &want)
	})
	t.Run("RotateSession/ErrNotFound", func(t *testing.T) {
		s := open(t)
		wantCode(t, s.RotateSession(ctx(t), aoba.NewID(), aoba.NewID(), aoba.NewID(), base), aoba.ENOTFOUND)
	})
	t.Run("RotateSession/Concurrent", func(t *testing.T) {
		s := open(t)
		c := ctx(t)
		ss := mustCreateSession(t, s, newSession(aoba.NewID(), base))
		to := make([]string, Concurrency)
		for i := range to {
			to[i] = aoba.NewID()
		}
		errs := race(func(i int) error {
			return s.RotateSession(c, ss.ID, ss.TokenID, to[i], base.Add(2*time.Hour))
		})
		won := map[string]bool{}
		for i, err := range errs {
			switch code := aoba.ErrorCode(err); code {
			case "":
				won[to[i]] = true
			case aoba.ECONFLICT:
			default:
				t.Fatalf("RotateSession %d: error code %q, want conflict (err: %v)", i, code, err)
			}
		}
		if len(won) == 0 {
			t.Fatalf("no rotation succeeded")
		}
		t.Logf("%d of %d concurrent rotations succeeded", len(won), Concurrency)
		if cfg.atomicRotate && len(won) != 1 {
			t.Fatalf("%d rotations from the same token succeeded, want exactly one", len(won))
		}
		if got := mustFindSession(t, s, ss.ID); !won[got.TokenID] {
			t.Fatalf("stored token %s is none of the %d successful rotations' tokens", got.TokenID, len(won))
		}
	})
	t.Run("TouchSession", func(t *testing.T) {
		s := open(t)
		ss := mustCreateSession(t, s, newSession(aoba.NewID(), base))
		at := base.Add(17*time.Minute + 42*time.Millisecond)
		if err := s.TouchSession(ctx(t), ss.ID, at); err != nil {
			t.Fatalf("TouchSession: %v", err)
		}
		want := *ss
		want.LastSeenAt = at
		wantSession(t, mustFindSession(t, s, ss.ID), &want)
		if err := s.TouchSession(ctx(t), aoba.NewID(), at); err != nil {
			t.Fatalf("TouchSession(unknown) = %v, want nil", err)
		}
	})
	t.Run("RevokeSession/OK", func(t *testing.T) {
		s := open(t)
		ss := mustCreateSession(t, s, newSession(aoba.NewID(), base))
		other := mustCreateSession(t, s, newSession(ss.UserID, base))
		at := base.Add(5*time.Minute + 5*time.Millisecond)
		if err := s.RevokeSession(ctx(t), ss.ID, at); err != nil {
			t.Fatalf("RevokeSession: %v", err)
		}
		got := mustFindSession(t, s, ss.ID)
		want := *ss
		want.RevokedAt = &at
		wantSession(t, got, &want)
		if got.Active(base) {
			t.Fatalf("revoked session is active")
		}
		wantSession(t, mustFindSession(t, s, other.ID), other)
	})
	t.Run("RevokeSession/Idempotent", func(t *testing.T) {
		s := open(t)
		ss := mustCreateSession(t, s, newSession(aoba.NewID(), base))
		first := base.Add(time.Minute)
		if err := s.RevokeSession(ctx(t), ss.ID, first); err != nil {
			t.Fatalf("RevokeSession: %v", err)
		}
		if err := s.RevokeSession(ctx(t), ss.ID, first.Add(time.Minute)); err != nil {
			t.Fatalf("RevokeSession again: %v", err)
		}
		wantRevokedAt(t, mustFindSession(t, s, ss.ID), &first)
	})
	t.Run("RevokeSession/ErrNotFound", func(t *testing.T) {
		s := open(t)
		wantCode(t, s.RevokeSession(ctx(t), aoba.NewID(), base), aoba.ENOTFOUND)
	})
	t.Run("RevokeUserSessions/WithKeep", func(t *testing.T) {
		s := open(t)
		alice, bob := aoba.NewID(), aoba.NewID()
		a1 := mustCreateSession(t, s, newSession(alice, base))
		keep := mustCreateSession(t, s, newSession(alice, base.Add(time.Second)))
		earlier := base.Add(time.Minute)
		a3 := newSession(alice, base.Add(2*time.Second))
		a3.RevokedAt = &earlier
		mustCreateSession(t, s, a3)
		b1 := mustCreateSession(t, s, newSession(bob, base))
		at := base.Add(10 * time.Minute)
		if err := s.RevokeUserSessions(ctx(t), alice, keep.ID, at); err != nil {
			t.Fatalf("RevokeUserSessions: %v", err)
		}
		wantRevokedAt(t, mustFindSession(t, s, a1.ID), &at)
		wantRevokedAt(t, mustFindSession(t, s, keep.ID), nil)
		wantRevokedAt(t, mustFindSession(t, s, a3.ID), &earlier)
		wantRevokedAt(t, mustFindSession(t, s, b1.ID), nil)
	})
	t.Run("RevokeUserSessions/WithoutKeep", func(t *testing.T) {
		s := open(t)
		alice, bob := aoba.NewID(), aoba.NewID()
		a1 := mustCreateSession(t, s, newSession(alice, base))
		a2 := mustCreateSession(t, s, newSession(alice, base.Add(time.Second)))
		b1 := mustCreateSession(t, s, newSession(bob, base))
		at := base.Add(10 * time.Minute)
		if err := s.RevokeUserSessions(ctx(t), alice, "", at); err != nil {
			t.Fatalf("RevokeUserSessions: %v", err)
		}
		wantRevokedAt(t, mustFindSession(t, s, a1.ID), &at)
		wantRevokedAt(t, mustFindSession(t, s, a2.ID), &at)
		wantRevokedAt(t, mustFindSession(t, s, b1.ID), nil)
		// A user without sessions is not an error.
		if err := s.RevokeUserSessions(ctx(t), aoba.NewID(), "", at); err != nil {
			t.Fatalf("RevokeUserSessions(unknown user) = %v, want nil", err)
		}
	})
	t.Run("DeleteExpiredSessions", func(t *testing.T) {
		s := open(t)
		user := aoba.NewID()
		before := base.Add(time.Hour)
		expiring := func(exp time.Time) *aoba.Session {
			ss := newSession(user, base)
			ss.ExpiresAt = exp
			return mustCreateSession(t, s, ss)
		}
		long := expiring(before.Add(-time.Hour))
		just := expiring(before.Add(-time.Millisecond))
		atCut := expiring(before)
		live := expiring(before.Add(time.Hour))
		revokedLive := expiring(before.Add(time.Hour))
		if err := s.RevokeSession(ctx(t), revokedLive.ID, base); err != nil {
			t.Fatalf("RevokeSession: %v", err)
		}
		n, err := s.DeleteExpiredSessions(ctx(t), before)
		if err != nil {
			t.Fatalf("DeleteExpiredSessions: %v", err)
		}
		if n != 2 {
			t.Fatalf("DeleteExpiredSessions = %d, want 2", n)
		}
		for _, gone := range []*aoba.Session{long, just} {
			_, err := s.FindSessionByID(ctx(t), gone.ID)
			wantCode(t, err, aoba.ENOTFOUND)
		}
		got, err := s.FindSessionsByUser(ctx(t), user)
		if err != nil || len(got) != 3 {
			t.Fatalf("sessions left = %v, %v; want %s, %s and %s", sessionIDs(got), err, atCut.ID, live.ID, revokedLive.ID)
		}
		if n, err := s.DeleteExpiredSessions(ctx(t), before); err != nil || n != 0 {
			t.Fatalf("DeleteExpiredSessions again = %d, %v; want 0", n, err)
		}
	})
}
