package hubtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// PresenceGrace is the grace period the registries under test must use.
// Redis registries should also use a TTL of about 1 s and a sweep interval
// of about 100 ms, so that changes show within PresenceTimeout.
const PresenceGrace = 200 * time.Millisecond

// PresenceTimeout bounds every wait for a presence change.
const PresenceTimeout = 5 * time.Second

// NewPresenceFunc returns a new, empty presence registry with a grace
// period of PresenceGrace and no change handler registered (the suite
// registers one). It closes the registry in t.Cleanup, ignoring the error
// of a second Close.
type NewPresenceFunc func(t *testing.T) aoba.PresenceRegistry

// PresenceRecorder records presence changes; its OnChange method is an
// aoba.PresenceChangeFunc.
type PresenceRecorder struct {
	mu  sync.Mutex
	got []aoba.Presence
}

// OnChange records one change.
func (r *PresenceRecorder) OnChange(p aoba.Presence) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, p)
}

// Events returns the changes recorded for userID, in order.
func (r *PresenceRecorder) Events(userID string) []aoba.Presence {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []aoba.Presence
	for _, p := range r.got {
		if p.UserID == userID {
			out = append(out, p)
		}
	}
	return out
}

// Statuses returns the statuses of Events(userID).
func (r *PresenceRecorder) Statuses(userID string) []aoba.PresenceStatus {
	var out []aoba.PresenceStatus
	for _, p := range r.Events(userID) {
		out = append(out, p.Status)
	}
	return out
}

// WaitStatuses waits until the statuses recorded for userID are want, and
// fails the test after PresenceTimeout.
func (r *PresenceRecorder) WaitStatuses(t testing.TB, userID string, want ...aoba.PresenceStatus) {
	t.Helper()
	deadline := time.Now().Add(PresenceTimeout)
	for {
		got := r.Statuses(userID)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if len(got) > len(want) || time.Now().After(deadline) {
			t.Fatalf("events of %s = %v, want %v", userID, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle waits long enough for any change still due to happen.
func settle() { time.Sleep(4 * PresenceGrace) }

// RunPresenceTests runs the aoba.PresenceRegistry contract against the
// registries that newPresence returns.
func RunPresenceTests(t *testing.T, newPresence NewPresenceFunc) {
	ctx := context.Background()
	const on, off = aoba.StatusOnline, aoba.StatusOffline
	setup := func(t *testing.T) (aoba.PresenceRegistry, *PresenceRecorder) {
		rec := &PresenceRecorder{}
		p := newPresence(t)
		p.RegisterChangeHandler(rec.OnChange)
		return p, rec
	}
	find := func(t *testing.T, p aoba.PresenceRegistry, id string) aoba.Presence {
		t.Helper()
		m, err := p.FindPresence(ctx, []string{id})
		if err != nil {
			t.Fatalf("find presence: %v", err)
		}
		return m[id]
	}
	mustConnect := func(t *testing.T, p aoba.PresenceRegistry, user, conn string) {
		t.Helper()
		if err := p.Connect(ctx, user, conn); err != nil {
			t.Fatalf("connect %s/%s: %v", user, conn, err)
		}
	}
	mustDisconnect := func(t *testing.T, p aoba.PresenceRegistry, user, conn string) {
		t.Helper()
		if err := p.Disconnect(ctx, user, conn); err != nil {
			t.Fatalf("disconnect %s/%s: %v", user, conn, err)
		}
	}

	t.Run("RegisterTwicePanics", func(t *testing.T) {
		p, _ := setup(t)
		defer func() {
			if recover() == nil {
				t.Error("a second RegisterChangeHandler did not panic")
			}
		}()
		p.RegisterChangeHandler(func(aoba.Presence) {})
	})

	t.Run("OnlineThenOffline", func(t *testing.T) {
		p, rec := setup(t)
		if got := find(t, p, "alice"); got.Status != off || got.LastSeen != nil {
			t.Fatalf("before connecting: %+v, want offline with nil LastSeen", got)
		}
		mustConnect(t, p, "alice", "c1")
		rec.WaitStatuses(t, "alice", on)
		if got := find(t, p, "alice"); got.Status != on {
			t.Fatalf("after connecting: %+v, want online", got)
		}
		before := time.Now().Add(-time.Millisecond)
		mustDisconnect(t, p, "alice", "c1")
		after := time.Now()
		if got := find(t, p, "alice"); got.Status != on {
			t.Fatalf("within the grace period: %+v, want online", got)
		}
		rec.WaitStatuses(t, "alice", on, off)
		ev := rec.Events("alice")[1]
		if ev.LastSeen == nil || ev.LastSeen.Before(before) || ev.LastSeen.After(after) {
			t.Fatalf("offline event LastSeen = %v, want the disconnect time in [%v, %v]", ev.LastSeen, before, after)
		}
		got := find(t, p, "alice")
		if got.Status != off || got.LastSeen == nil || !got.LastSeen.Equal(*ev.LastSeen) {
			t.Fatalf("after the grace period: %+v, want offline with LastSeen %v", got, ev.LastSeen)
		}
		settle()
		rec.WaitStatuses(t, "alice", on, off)
	})

	t.Run("SeveralConnections", func(t *testing.T) {
		p, rec := setup(t)
		mustConnect(t, p, "bob", "c1")
		mustConnect(t, p, "bob", "c2")
		mustDisconnect(t, p, "bob", "c1")
		settle()
		rec.WaitStatuses(t, "bob", on)
		if got := find(t, p, "bob"); got.Status != on {
			t.Fatalf("with one connection left: %+v, want online", got)
		}
		mustDisconnect(t, p, "bob", "c2")
		rec.WaitStatuses(t, "bob", on, off)
	})

	t.Run("ReconnectWithinGrace", func(t *testing.T) {
		p, rec := setup(t)
		mustConnect(t, p, "carol", "c1")
		rec.WaitStatuses(t, "carol", on)
		mustDisconnect(t, p, "carol", "c1")
		mustConnect(t, p, "carol", "c2") // a page reload
		settle()
		rec.WaitStatuses(t, "carol", on)
		if got := find(t, p, "carol"); got.Status != on {
			t.Fatalf("after the reload: %+v, want online", got)
		}
		mustDisconnect(t, p, "carol", "c2")
		rec.WaitStatuses(t, "carol", on, off)
		mustConnect(t, p, "carol", "c3") // back after going offline
		rec.WaitStatuses(t, "carol", on, off, on)
		if got := find(t, p, "carol"); got.Status != on || got.LastSeen == nil {
			t.Fatalf("back online: %+v, want online with the last LastSeen kept", got)
		}
	})

	t.Run("UnknownConnection", func(t *testing.T) {
		p, rec := setup(t)
		mustDisconnect(t, p, "dave", "never-connected")
		mustConnect(t, p, "erin", "c1")
		mustDisconnect(t, p, "erin", "other")
		settle()
		rec.WaitStatuses(t, "dave")
		rec.WaitStatuses(t, "erin", on)
	})

	t.Run("FindMany", func(t *testing.T) {
		p, _ := setup(t)
		var ids []string
		for i := 0; i < 100; i++ {
			ids = append(ids, fmt.Sprintf("user-%03d", i))
		}
		for i := 0; i < len(ids); i += 3 {
			mustConnect(t, p, ids[i], "c-"+ids[i])
		}
		m, err := p.FindPresence(ctx, ids)
		if err != nil {
			t.Fatalf("find presence: %v", err)
		}
		if len(m) != len(ids) {
			t.Fatalf("got %d entries, want %d", len(m), len(ids))
		}
		for i, id := range ids {
			want := off
			if i%3 == 0 {
				want = on
			}
			if m[id].UserID != id || m[id].Status != want {
				t.Errorf("%s: %+v, want %s", id, m[id], want)
			}
		}
		if m, err := p.FindPresence(ctx, nil); err != nil || len(m) != 0 {
			t.Fatalf("find of no ids = %v, %v; want an empty map", m, err)
		}
	})

	t.Run("Close", func(t *testing.T) {
		p, _ := setup(t)
		if err := p.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if err := p.Connect(ctx, "frank", "c1"); err == nil {
			t.Fatal("connect after close succeeded")
		}
	})
}
