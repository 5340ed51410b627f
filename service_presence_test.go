package aoba_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
)

// grace is the presence grace period of these tests: short, so that going
// offline takes milliseconds.
const grace = 20 * time.Millisecond

func TestService_Presence(t *testing.T) {
	t.Parallel()
	ts := newService(t, withPresence(hub.PresenceOptions{Grace: grace}))
	ctx := context.Background()
	alice := ts.MustRegister(t, "Alice")
	bob := ts.MustRegister(t, "bob")

	t.Run("PresenceByUsername", func(t *testing.T) {
		p, err := ts.PresenceByUsername(ctx, bob.Claims, "ALICE")
		if err != nil {
			t.Fatal(err)
		}
		if p.UserID != alice.ID || p.Username != "Alice" || p.Status != aoba.StatusOffline || p.LastSeen != nil {
			t.Fatalf("presence of a user never connected: %+v", p)
		}
		for _, name := range []string{"nobody", "no one", ""} {
			_, err := ts.PresenceByUsername(ctx, bob.Claims, name)
			wantCode(t, err, aoba.ENOTFOUND)
		}
	})
	t.Run("PresenceByID", func(t *testing.T) {
		p, err := ts.PresenceByID(ctx, bob.Claims, bob.ID)
		if err != nil || p.Username != "bob" || p.Status != aoba.StatusOffline {
			t.Fatalf("PresenceByID = %+v, %v", p, err)
		}
		_, err = ts.PresenceByID(ctx, bob.Claims, "bob")
		wantCode(t, err, aoba.EINVALID)
		_, err = ts.PresenceByID(ctx, bob.Claims, aoba.NewID())
		wantCode(t, err, aoba.ENOTFOUND)
	})
	t.Run("PresenceByUsernames", func(t *testing.T) {
		// Unknown and malformed names are left out; a name asked twice
		// (in any case) is answered once.
		ps, err := ts.PresenceByUsernames(ctx, bob.Claims, []string{"bob", "nobody", "no one", "alice", "BOB"})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, p := range ps {
			got[p.Username]++
		}
		if len(ps) != 2 || got["Alice"] != 1 || got["bob"] != 1 {
			t.Fatalf("PresenceByUsernames = %v, want Alice and bob once each", got)
		}
		if ps, err := ts.PresenceByUsernames(ctx, bob.Claims, make([]string, 100)); err != nil || len(ps) != 0 {
			t.Fatalf("PresenceByUsernames(100 empty names) = %d, %v", len(ps), err)
		}
		for _, names := range [][]string{nil, {}, make([]string, 101)} {
			_, err := ts.PresenceByUsernames(ctx, bob.Claims, names)
			wantCode(t, err, aoba.EINVALID)
		}
	})
	t.Run("PresenceByIDs", func(t *testing.T) {
		ps, err := ts.PresenceByIDs(ctx, bob.Claims, append(uuids(98), bob.ID, bob.ID))
		if err != nil || len(ps) != 1 || ps[0].UserID != bob.ID {
			t.Fatalf("PresenceByIDs = %+v, %v; want bob once", ps, err)
		}
		for _, ids := range [][]string{nil, {}, uuids(101), {bob.ID, "bob"}} {
			_, err := ts.PresenceByIDs(ctx, bob.Claims, ids)
			wantCode(t, err, aoba.EINVALID)
		}
	})

	t.Run("OnlineThenOffline", func(t *testing.T) {
		ts.Subscribe(t, aoba.PresenceTopic(alice.ID))
		status := func(t *testing.T) *aoba.UserPresence {
			t.Helper()
			p, err := ts.PresenceByUsername(ctx, bob.Claims, "alice")
			if err != nil {
				t.Fatal(err)
			}
			return p
		}

		for _, conn := range []string{"c1", "c2"} {
			if err := ts.Presence.Connect(ctx, alice.ID, conn); err != nil {
				t.Fatal(err)
			}
		}
		if p := status(t); p.Status != aoba.StatusOnline {
			t.Fatalf("after Connect: %+v, want online", p)
		}
		ps, err := ts.PresenceByIDs(ctx, bob.Claims, []string{alice.ID, bob.ID})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if want := map[string]aoba.PresenceStatus{alice.ID: aoba.StatusOnline, bob.ID: aoba.StatusOffline}[p.UserID]; p.Status != want {
				t.Fatalf("PresenceByIDs: %s is %s, want %s", p.Username, p.Status, want)
			}
		}

		// One connection closing leaves the user online; the last one
		// closing leaves them online for the grace period only.
		if err := ts.Presence.Disconnect(ctx, alice.ID, "c1"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * grace)
		if p := status(t); p.Status != aoba.StatusOnline {
			t.Fatalf("with a connection still open: %+v, want online", p)
		}
		closed := time.Now()
		if err := ts.Presence.Disconnect(ctx, alice.ID, "c2"); err != nil {
			t.Fatal(err)
		}
		var p *aoba.UserPresence
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if p = status(t); p.Status == aoba.StatusOffline {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("still %s 2 s after the last connection closed", p.Status)
			}
		}
		if time.Since(closed) < grace {
			t.Fatalf("offline after %v, before the grace period of %v ended", time.Since(closed), grace)
		}
		if p.LastSeen == nil || p.LastSeen.Before(closed.Add(-time.Second)) || p.LastSeen.After(time.Now()) {
			t.Fatalf("last seen %v, want about %v", p.LastSeen, closed)
		}

		// The Service published each change once on the user's presence
		// topic: online, then offline.
		var seen []string
		for deadline := time.Now().Add(2 * time.Second); len(seen) < 2 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			for _, env := range ts.Published(t, aoba.PresenceTopic(alice.ID)) {
				v := dataOf[aoba.UserPresence](t, env, aoba.FramePresence)
				if v.UserID != alice.ID || v.Username != "Alice" {
					t.Fatalf("presence frame %+v", v)
				}
				seen = append(seen, string(v.Status))
			}
		}
		if strings.Join(seen, ",") != "online,offline" {
			t.Fatalf("presence frames %v, want online then offline", seen)
		}
	})
	t.Run("ListMembersShowsPresence", func(t *testing.T) {
		g := ts.MustCreateGroup(t, alice, "lobby", bob.As(aoba.RoleMember))
		if err := ts.Presence.Connect(ctx, bob.ID, "b1"); err != nil {
			t.Fatal(err)
		}
		ms, err := ts.ListMembers(ctx, alice.Claims, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]aoba.PresenceStatus{}
		for _, m := range ms {
			got[m.Username] = m.Status
		}
		if got["bob"] != aoba.StatusOnline || got["Alice"] != aoba.StatusOffline {
			t.Fatalf("member statuses %v, want bob online and Alice offline", got)
		}
	})
	t.Run("ErrUnavailable", func(t *testing.T) {
		// Last: it closes the registry.
		if err := ts.Presence.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := ts.PresenceByUsername(ctx, bob.Claims, "alice")
		wantCode(t, err, aoba.EUNAVAILABLE)
		_, err = ts.PresenceByIDs(ctx, bob.Claims, []string{alice.ID})
		wantCode(t, err, aoba.EUNAVAILABLE)
	})
}
