package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// newEvents returns one event per user of users, all with the same new id,
// of type group with data n.
func newEvents(at time.Time, n int, users ...string) []*aoba.Event {
	id := aoba.NewID()
	data := json.RawMessage(fmt.Sprintf(`{"event":"member_added","n":%d}`, n))
	out := make([]*aoba.Event, len(users))
	for i, u := range users {
		out[i] = &aoba.Event{ID: id, UserID: u, Type: aoba.EventGroup, Data: data, CreatedAt: at}
	}
	return out
}

// eventIDs returns the ids of evs, in order.
func eventIDs(evs []*aoba.Event) []string {
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

// wantIDs fails the test unless got lists exactly want, in order.
func wantIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func runEventTests(t *testing.T, open OpenFunc) {
	t.Run("AppendAndFindAfterCursor", func(t *testing.T) {
		s := open(t)
		alice, bob := aoba.NewID(), aoba.NewID()
		at := aoba.Now()
		var want []string
		for i := range 5 {
			evs := newEvents(at, i, alice, bob)
			if err := s.AppendEvents(ctx(t), evs); err != nil {
				t.Fatalf("AppendEvents: %v", err)
			}
			want = append(want, evs[0].ID)
		}
		got, err := s.FindEvents(ctx(t), alice, "", 0)
		if err != nil {
			t.Fatalf("FindEvents: %v", err)
		}
		wantIDs(t, "alice's events", eventIDs(got), want)
		e := got[0]
		if e.UserID != alice || e.Type != aoba.EventGroup {
			t.Fatalf("event = %+v, want alice's group event", e)
		}
		var data map[string]any
		if err := json.Unmarshal(e.Data, &data); err != nil || data["n"] != float64(0) {
			t.Fatalf("data = %s (%v), want n 0", e.Data, err)
		}
		wantTime(t, "created at", e.CreatedAt, at)

		after, err := s.FindEvents(ctx(t), alice, want[1], 0)
		if err != nil {
			t.Fatalf("FindEvents after: %v", err)
		}
		wantIDs(t, "events after the second", eventIDs(after), want[2:])
		page, err := s.FindEvents(ctx(t), bob, want[0], 2)
		if err != nil {
			t.Fatalf("FindEvents limit: %v", err)
		}
		wantIDs(t, "a page of two", eventIDs(page), want[1:3])
		none, err := s.FindEvents(ctx(t), bob, want[4], 10)
		if err != nil || len(none) != 0 {
			t.Fatalf("FindEvents after the last = %d events, %v; want none", len(none), err)
		}
	})

	t.Run("PerUser", func(t *testing.T) {
		s := open(t)
		alice, bob, carol := aoba.NewID(), aoba.NewID(), aoba.NewID()
		if err := s.AppendEvents(ctx(t), newEvents(aoba.Now(), 1, alice)); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendEvents(ctx(t), newEvents(aoba.Now(), 2, bob, carol)); err != nil {
			t.Fatal(err)
		}
		for user, n := range map[string]int{alice: 1, bob: 1, carol: 1, aoba.NewID(): 0} {
			evs, err := s.FindEvents(ctx(t), user, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != n {
				t.Fatalf("user has %d events, want %d", len(evs), n)
			}
			for _, e := range evs {
				if e.UserID != user {
					t.Fatalf("FindEvents of %s returned an event of %s", user, e.UserID)
				}
			}
		}
	})

	t.Run("AppendTwiceKeepsOne", func(t *testing.T) {
		s := open(t)
		alice, bob := aoba.NewID(), aoba.NewID()
		evs := newEvents(aoba.Now(), 1, alice)
		if err := s.AppendEvents(ctx(t), evs); err != nil {
			t.Fatal(err)
		}
		// A retry that also carries a new recipient stores that one.
		again := append(newEvents(aoba.Now(), 9, alice), &aoba.Event{ID: evs[0].ID, UserID: bob, Type: aoba.EventGroup,
			Data: evs[0].Data, CreatedAt: evs[0].CreatedAt})
		again[0].ID = evs[0].ID
		if err := s.AppendEvents(ctx(t), again); err != nil {
			t.Fatalf("AppendEvents retried: %v", err)
		}
		got, err := s.FindEvents(ctx(t), alice, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || string(got[0].Data) != string(evs[0].Data) {
			t.Fatalf("alice's events after a retry = %d, first data %s; want the one first stored", len(got), got[0].Data)
		}
		if got, _ := s.FindEvents(ctx(t), bob, "", 0); len(got) != 1 {
			t.Fatalf("bob's events = %d, want 1", len(got))
		}
		if err := s.AppendEvents(ctx(t), nil); err != nil {
			t.Fatalf("AppendEvents(nil): %v", err)
		}
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		s := open(t)
		users := []string{aoba.NewID(), aoba.NewID(), aoba.NewID()}
		var wg sync.WaitGroup
		errs := make(chan error, Concurrency)
		for i := range Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.AppendEvents(ctx(t), newEvents(aoba.Now(), i, users...))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent AppendEvents: %v", err)
			}
		}
		for _, u := range users {
			evs, err := s.FindEvents(ctx(t), u, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != Concurrency {
				t.Fatalf("user has %d events, want %d", len(evs), Concurrency)
			}
			for i := 1; i < len(evs); i++ {
				if evs[i-1].ID >= evs[i].ID {
					t.Fatalf("events not in id order: %s then %s", evs[i-1].ID, evs[i].ID)
				}
			}
		}
	})

	t.Run("DeleteBefore", func(t *testing.T) {
		s := open(t)
		alice := aoba.NewID()
		old, recent := aoba.Now().Add(-48*time.Hour), aoba.Now()
		if err := s.AppendEvents(ctx(t), newEvents(old, 1, alice)); err != nil {
			t.Fatal(err)
		}
		keep := newEvents(recent, 2, alice)
		if err := s.AppendEvents(ctx(t), keep); err != nil {
			t.Fatal(err)
		}
		n, err := s.DeleteEventsBefore(ctx(t), recent.Add(-time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("DeleteEventsBefore = %d, %v; want 1, nil", n, err)
		}
		evs, err := s.FindEvents(ctx(t), alice, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		wantIDs(t, "events kept", eventIDs(evs), eventIDs(keep))
	})
}
