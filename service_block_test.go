package aoba_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
)

func TestService_Blocks(t *testing.T) {
	t.Parallel()
	ts := newService(t, withPresence(hub.PresenceOptions{Grace: grace}))
	ctx := context.Background()
	alice := ts.MustRegister(t, "alice") // the blocker
	bob := ts.MustRegister(t, "bob")     // the blocked user
	carol := ts.MustRegister(t, "carol")
	dave := ts.MustRegister(t, "Dave")

	names := func(t *testing.T, a Account) []string {
		t.Helper()
		us, err := ts.ListBlocks(ctx, a.Claims)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, u := range us {
			out = append(out, u.Username)
		}
		return out
	}
	blockEvents := func(t *testing.T, a Account) []aoba.BlockEvent {
		t.Helper()
		var out []aoba.BlockEvent
		for _, env := range framesOf(t, ts.Published(t, aoba.UserTopic(a.ID)), aoba.FrameBlock) {
			out = append(out, dataOf[aoba.BlockEvent](t, env, aoba.FrameBlock))
		}
		return out
	}

	t.Run("Rules", func(t *testing.T) {
		wantCode(t, ts.BlockUser(ctx, alice.Claims, "ALICE"), aoba.EINVALID)
		wantCode(t, ts.UnblockUser(ctx, alice.Claims, "alice"), aoba.EINVALID)
		wantCode(t, ts.BlockUser(ctx, alice.Claims, "nobody"), aoba.ENOTFOUND)
		wantCode(t, ts.BlockUser(ctx, alice.Claims, "no one"), aoba.ENOTFOUND)
		wantCode(t, ts.UnblockUser(ctx, alice.Claims, "nobody"), aoba.ENOTFOUND)
		// Unblocking someone not blocked changes nothing and succeeds.
		wantCode(t, ts.UnblockUser(ctx, alice.Claims, "carol"), "")

		ts.Subscribe(t, aoba.UserTopic(carol.ID), aoba.UserTopic(dave.ID))
		ts.Forget(t)
		wantCode(t, ts.BlockUser(ctx, carol.Claims, "dave"), "")
		wantCode(t, ts.BlockUser(ctx, carol.Claims, "DAVE"), "") // twice: no second event
		wantCode(t, ts.BlockUser(ctx, carol.Claims, "bob"), "")
		if got := names(t, carol); !slices.Equal(got, []string{"bob", "Dave"}) {
			t.Fatalf("carol's blocks %v, want [bob Dave]", got)
		}
		if got := blockEvents(t, carol); len(got) != 2 || got[0] != (aoba.BlockEvent{Event: aoba.BlockBlocked, UserID: dave.ID, Username: "Dave"}) {
			t.Fatalf("carol's block events %+v, want Dave then bob blocked", got)
		}
		if envs := ts.Published(t, aoba.UserTopic(dave.ID)); len(envs) != 0 {
			t.Fatalf("the blocked user got %s", describe(envs))
		}
		// The events are stored for carol's other devices (GET /api/sync).
		res, err := ts.Sync(ctx, carol.Claims, "", aoba.SyncMaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		var stored int
		for _, e := range res.Events {
			if e.Type == aoba.EventBlock {
				stored++
			}
		}
		if stored != 2 {
			t.Fatalf("%d block events in carol's sync, want 2", stored)
		}
		if res, _ := ts.Sync(ctx, dave.Claims, "", aoba.SyncMaxLimit); len(res.Events) != 0 {
			t.Fatalf("dave's sync holds %d events, want none", len(res.Events))
		}

		wantCode(t, ts.UnblockUser(ctx, carol.Claims, "dave"), "")
		wantCode(t, ts.UnblockUser(ctx, carol.Claims, "dave"), "")
		wantCode(t, ts.UnblockUser(ctx, carol.Claims, "bob"), "")
		if got := names(t, carol); len(got) != 0 {
			t.Fatalf("carol's blocks after unblocking %v, want none", got)
		}
		if got := blockEvents(t, carol); len(got) != 2 || got[0].Event != aoba.BlockUnblocked || got[0].UserID != dave.ID {
			t.Fatalf("carol's unblock events %+v, want dave then bob unblocked", got)
		}
	})

	g := ts.MustCreateGroup(t, carol, "club", alice.As(aoba.RoleMember), bob.As(aoba.RoleMember))
	ts.Subscribe(t, aoba.PresenceTopic(alice.ID))
	if err := ts.Presence.Connect(ctx, alice.ID, "a1"); err != nil {
		t.Fatal(err)
	}
	// Wait for alice's online event, which the registry reports on its own
	// goroutine.
	for deadline := time.Now().Add(5 * time.Second); len(framesOf(t, ts.Published(t, aoba.PresenceTopic(alice.ID)), aoba.FramePresence)) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no presence event for alice's connection")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ts.Forget(t)
	wantCode(t, ts.BlockUser(ctx, alice.Claims, "bob"), "")

	t.Run("Messages", func(t *testing.T) {
		_, err := ts.SendMessage(ctx, bob.Claims, aoba.SendInput{To: "alice", Content: "hi"}, "")
		wantCode(t, err, aoba.EFORBIDDEN)
		if msg := aoba.ErrorMessage(err); msg != "You cannot message this user." {
			t.Fatalf("message %q", msg)
		}
		_, err = ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "bob", Content: "hi"}, "")
		wantCode(t, err, aoba.EFORBIDDEN)
		wantCode(t, ts.Typing(ctx, bob.Claims, "alice", "", aoba.TypingComposing), aoba.EFORBIDDEN)
		wantCode(t, ts.Typing(ctx, alice.Claims, "bob", "", aoba.TypingComposing), aoba.EFORBIDDEN)
		// Others and groups are unaffected.
		if _, err := ts.SendMessage(ctx, carol.Claims, aoba.SendInput{To: "alice", Content: "hi"}, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.SendMessage(ctx, bob.Claims, aoba.SendInput{To: g.ID, Type: aoba.MessageGroupChat, Content: "hi all"}, ""); err != nil {
			t.Fatal(err)
		}
		wantCode(t, ts.Typing(ctx, bob.Claims, g.ID, aoba.MessageGroupChat, aoba.TypingComposing), "")
	})

	t.Run("Invitations", func(t *testing.T) {
		bobs := ts.MustCreateGroup(t, bob, "bobs")
		_, err := ts.Invite(ctx, bob.Claims, bobs.ID, "alice")
		wantCode(t, err, aoba.EFORBIDDEN)
		// The blocker may invite the blocked user.
		alices := ts.MustCreateGroup(t, alice, "alices")
		if _, err := ts.Invite(ctx, alice.Claims, alices.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		// Initial members who block the creator are left out silently.
		res, err := ts.CreateGroup(ctx, bob.Claims, "more", []string{"alice", "carol"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Invitations) != 1 || res.Invitations[0].InviteeUsername != "carol" || len(res.UnknownUsers) != 0 {
			t.Fatalf("CreateGroup = %+v, want carol invited alone", res)
		}
	})

	t.Run("Presence", func(t *testing.T) {
		wantOffline := func(t *testing.T, ps ...*aoba.UserPresence) {
			t.Helper()
			for _, p := range ps {
				if p.UserID != alice.ID || p.Status != aoba.StatusOffline || p.LastSeen != nil {
					t.Fatalf("bob sees %+v, want alice offline with no last seen", p)
				}
			}
		}
		p1, err := ts.PresenceByUsername(ctx, bob.Claims, "alice")
		if err != nil {
			t.Fatal(err)
		}
		p2, err := ts.PresenceByID(ctx, bob.Claims, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		p3, err := ts.PresenceByUsernames(ctx, bob.Claims, []string{"alice"})
		if err != nil || len(p3) != 1 {
			t.Fatal(p3, err)
		}
		p4, err := ts.PresenceByIDs(ctx, bob.Claims, []string{alice.ID, carol.ID})
		if err != nil || len(p4) != 2 {
			t.Fatal(p4, err)
		}
		wantOffline(t, p1, p2, p3[0])
		for _, p := range p4 {
			if p.UserID == alice.ID {
				wantOffline(t, p)
			}
		}
		if p, err := ts.PresenceByUsername(ctx, carol.Claims, "alice"); err != nil || p.Status != aoba.StatusOnline {
			t.Fatalf("carol sees %+v, %v; want alice online", p, err)
		}
		// In a group's member list too.
		ms, err := ts.ListMembers(ctx, bob.Claims, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.UserID == alice.ID && m.Status != aoba.StatusOffline {
				t.Fatalf("bob sees member alice %s, want offline", m.Status)
			}
		}
		ms, _ = ts.ListMembers(ctx, carol.Claims, g.ID)
		for _, m := range ms {
			if m.UserID == alice.ID && m.Status != aoba.StatusOnline {
				t.Fatalf("carol sees member alice %s, want online", m.Status)
			}
		}
		// The blocker still sees the blocked user.
		if err := ts.Presence.Connect(ctx, bob.ID, "b1"); err != nil {
			t.Fatal(err)
		}
		if p, err := ts.PresenceByUsername(ctx, alice.Claims, "bob"); err != nil || p.Status != aoba.StatusOnline {
			t.Fatalf("alice sees %+v, %v; want bob online", p, err)
		}
	})

	t.Run("LiveEvents", func(t *testing.T) {
		// The block itself sent bob's sockets that watch alice an offline
		// presence, to them alone.
		envs := framesOf(t, ts.Published(t, aoba.PresenceTopic(alice.ID)), aoba.FramePresence)
		if len(envs) != 1 || envs[0].OnlyUser != bob.ID {
			t.Fatalf("presence envelopes %s, want one offline for bob alone", describe(envs))
		}
		if p := dataOf[aoba.UserPresence](t, envs[0], aoba.FramePresence); p.Status != aoba.StatusOffline || p.LastSeen != nil {
			t.Fatalf("presence at block %+v", p)
		}
		// Alice's changes skip bob's sockets.
		ts.PresenceChanged(aoba.Presence{UserID: alice.ID, Status: aoba.StatusOnline})
		envs = framesOf(t, ts.Published(t, aoba.PresenceTopic(alice.ID)), aoba.FramePresence)
		if len(envs) != 1 || !slices.Equal(envs[0].ExceptUsers, []string{bob.ID}) || envs[0].OnlyUser != "" {
			t.Fatalf("presence envelopes %s, want one excepting bob", describe(envs))
		}
	})

	t.Run("UnblockRestores", func(t *testing.T) {
		wantCode(t, ts.UnblockUser(ctx, alice.Claims, "bob"), "")
		envs := framesOf(t, ts.Published(t, aoba.PresenceTopic(alice.ID)), aoba.FramePresence)
		if len(envs) != 1 || envs[0].OnlyUser != bob.ID {
			t.Fatalf("presence envelopes %s, want one for bob alone", describe(envs))
		}
		if p := dataOf[aoba.UserPresence](t, envs[0], aoba.FramePresence); p.Status != aoba.StatusOnline {
			t.Fatalf("presence at unblock %+v, want online", p)
		}
		if p, err := ts.PresenceByUsername(ctx, bob.Claims, "alice"); err != nil || p.Status != aoba.StatusOnline {
			t.Fatalf("bob sees %+v, %v; want alice online", p, err)
		}
		if _, err := ts.SendMessage(ctx, bob.Claims, aoba.SendInput{To: "alice", Content: "hi again"}, ""); err != nil {
			t.Fatal(err)
		}
		wantCode(t, ts.Typing(ctx, alice.Claims, "bob", "", aoba.TypingComposing), "")
		bobs := ts.MustCreateGroup(t, bob, "bobs2")
		if _, err := ts.Invite(ctx, bob.Claims, bobs.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		ts.PresenceChanged(aoba.Presence{UserID: alice.ID, Status: aoba.StatusOnline})
		envs = framesOf(t, ts.Published(t, aoba.PresenceTopic(alice.ID)), aoba.FramePresence)
		if len(envs) != 1 || len(envs[0].ExceptUsers) != 0 {
			t.Fatalf("presence envelopes %s, want one for everyone", describe(envs))
		}
	})
}
