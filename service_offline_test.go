package aoba_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/aoba-chat/aoba"
)

// offlineRecorder is an OfflineNotifier that records the messages it is
// given.
type offlineRecorder struct {
	mu   sync.Mutex
	msgs []*aoba.MessageView
}

func (r *offlineRecorder) NotifyOffline(m *aoba.MessageView) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *offlineRecorder) take() []*aoba.MessageView {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.msgs
	r.msgs = nil
	return out
}

func TestService_OfflineRecipients(t *testing.T) {
	t.Parallel()
	rec := &offlineRecorder{}
	ts := newService(t, withOffline(rec))
	ctx := context.Background()
	alice := ts.MustRegister(t, "alice")
	bob := ts.MustRegister(t, "bob")
	carol := ts.MustRegister(t, "carol")
	dave := ts.MustRegister(t, "dave")
	g := ts.MustCreateGroup(t, alice, "quad", bob.As(aoba.RoleMember), carol.As(aoba.RoleMember), dave.As(aoba.RoleMember))
	// bob is online; alice (the sender) is online; carol and dave are not.
	for _, a := range []Account{alice, bob} {
		if err := ts.Presence.Connect(ctx, a.ID, "conn-"+a.Username); err != nil {
			t.Fatal(err)
		}
	}
	rec.take()
	offline := func(t *testing.T, v *aoba.MessageView) []string {
		t.Helper()
		got := rec.take()
		if len(got) != 1 || got[0].ID != v.ID {
			t.Fatalf("notifier got %d messages, want exactly %s", len(got), v.ID)
		}
		users, err := ts.OfflineRecipients(ctx, got[0])
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, u := range users {
			names = append(names, u.Username)
		}
		slices.Sort(names)
		return names
	}

	t.Run("ChatOnline", func(t *testing.T) {
		v, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "bob", Content: "hi"}, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := offline(t, v); len(got) != 0 {
			t.Fatalf("offline %v, want none", got)
		}
	})
	t.Run("ChatOffline", func(t *testing.T) {
		v, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "carol", Content: "hi", ClientID: aoba.ClientID("c1")}, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := offline(t, v); !slices.Equal(got, []string{"carol"}) {
			t.Fatalf("offline %v, want [carol]", got)
		}
		// A retry stores nothing and notifies nobody a second time.
		if _, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "carol", Content: "hi", ClientID: aoba.ClientID("c1")}, ""); err != nil {
			t.Fatal(err)
		}
		if got := rec.take(); len(got) != 0 {
			t.Fatalf("a retry notified %d messages", len(got))
		}
	})
	t.Run("ChatToSelf", func(t *testing.T) {
		if err := ts.Presence.Disconnect(ctx, alice.ID, "conn-alice"); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = ts.Presence.Connect(ctx, alice.ID, "conn-alice") }()
		v, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "alice", Content: "note"}, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := offline(t, v); len(got) != 0 {
			t.Fatalf("offline %v, want none for a note to oneself", got)
		}
	})
	t.Run("Group", func(t *testing.T) {
		v, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: g.ID, Content: "hi all", Type: aoba.MessageGroupChat}, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := offline(t, v); !slices.Equal(got, []string{"carol", "dave"}) {
			t.Fatalf("offline %v, want [carol dave]", got)
		}
	})
	t.Run("InvalidNotNotified", func(t *testing.T) {
		if _, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "nobody", Content: "hi"}, ""); err == nil {
			t.Fatal("sent to an unknown user")
		}
		if got := rec.take(); len(got) != 0 {
			t.Fatalf("a refused send notified %d messages", len(got))
		}
	})
}
