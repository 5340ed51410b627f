package aoba_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// syncNames returns what a sync page holds, oldest first by id:
// "msg:<content>" and "<type>:<event or group name>".
func syncNames(t testing.TB, r *aoba.SyncResult) []string {
	t.Helper()
	type item struct{ id, name string }
	var items []item
	for _, m := range r.Messages {
		items = append(items, item{m.ID, "msg:" + m.Content})
	}
	for _, e := range r.Events {
		var d struct {
			Event     string `json:"event"`
			GroupName string `json:"group_name"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		n := d.Event
		if e.Type == aoba.EventInvitation {
			n = d.GroupName
		}
		items = append(items, item{e.ID, e.Type + ":" + n})
	}
	for i := range items {
		for j := i + 1; j < len(items); j++ {
			if items[j].id < items[i].id {
				items[i], items[j] = items[j], items[i]
			}
		}
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.name
	}
	return out
}

// mustSync calls Sync and fails the test on error.
func (ts *TestService) mustSync(t testing.TB, c aoba.Claims, since string, limit int) *aoba.SyncResult {
	t.Helper()
	r, err := ts.Sync(context.Background(), c, since, limit)
	if err != nil {
		t.Fatalf("Sync(%s, %d): %v", since, limit, err)
	}
	return r
}

func wantNames(t testing.TB, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func TestService_Sync(t *testing.T) {
	ctx := context.Background()

	t.Run("WhatIsAddressedToTheCaller", func(t *testing.T) {
		ts := newService(t)
		alice, bob, carol := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob"), ts.MustRegister(t, "carol")
		since := aoba.SyncCursorAt(time.Now())
		g := ts.MustCreateGroup(t, alice, "tea", carol.As(aoba.RoleMember))
		other := ts.MustCreateGroup(t, carol, "coffee")
		send := func(from Account, to, content string, typ aoba.MessageType) {
			t.Helper()
			if _, err := ts.SendMessage(ctx, from.Claims, aoba.SendInput{To: to, Content: content, Type: typ}, ""); err != nil {
				t.Fatal(err)
			}
		}
		send(alice, "bob", "hi bob", aoba.MessageChat)
		send(carol, "alice", "not for bob", aoba.MessageChat)
		send(carol, other.ID, "not for bob either", aoba.MessageGroupChat)
		inv, err := ts.Invite(ctx, alice.Claims, g.ID, "bob")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.AcceptInvitation(ctx, bob.Claims, inv.ID); err != nil {
			t.Fatal(err)
		}
		send(carol, g.ID, "hello group", aoba.MessageGroupChat)
		send(bob, "carol", "bob to carol", aoba.MessageChat)

		r := ts.mustSync(t, bob.Claims, since, 100)
		wantNames(t, "bob's sync", syncNames(t, r),
			[]string{"msg:hi bob", "invitation:tea", "group:member_added", "msg:hello group", "msg:bob to carol"})
		if r.More {
			t.Fatal("more = true on a short page")
		}
		// The stored event is the live frame's data.
		var v aoba.InvitationView
		if err := json.Unmarshal(r.Events[0].Data, &v); err != nil || v.ID != inv.ID || v.InviterUsername != "alice" {
			t.Fatalf("invitation event = %s, %v; want the invitation", r.Events[0].Data, err)
		}

		// A member who left gets the group's messages no more, but does
		// get the event of their leaving.
		if err := ts.LeaveGroup(ctx, bob.Claims, g.ID); err != nil {
			t.Fatal(err)
		}
		send(carol, g.ID, "after bob", aoba.MessageGroupChat)
		got := syncNames(t, ts.mustSync(t, bob.Claims, since, 100))
		wantNames(t, "bob's sync after leaving", got[len(got)-1:], []string{"group:member_left"})
		for _, n := range got {
			if n == "msg:hello group" {
				t.Fatal("a group left still shows its messages") // history goes with membership
			}
		}
	})

	t.Run("EventStoredBeforeFrame", func(t *testing.T) {
		ts := newService(t)
		alice, bob := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob")
		g := ts.MustCreateGroup(t, alice, "tea")
		ts.Subscribe(t, aoba.UserTopic(bob.ID))
		ts.Forget(t)
		if _, err := ts.Invite(ctx, alice.Claims, g.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		frames := framesOf(t, ts.Published(t, aoba.UserTopic(bob.ID)), aoba.FrameInvitation)
		if len(frames) != 1 {
			t.Fatalf("bob got %d invitation frames, want 1", len(frames))
		}
		evs, err := ts.Store.FindEvents(ctx, bob.ID, "", 0)
		if err != nil || len(evs) != 1 {
			t.Fatalf("bob's events = %d, %v; want 1", len(evs), err)
		}
		if f := frameOf(t, frames[0]); string(f.Data) != string(evs[0].Data) {
			t.Fatalf("event data %s, frame data %s: want the same", evs[0].Data, f.Data)
		}
	})

	t.Run("PagingInsideTheLagWindow", func(t *testing.T) {
		// Every item is younger than SyncLag: a page of one still moves
		// on, each item comes once per pass, and the pass ends with a
		// cursor that reads the window again.
		ts := newService(t)
		alice, bob := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob")
		since := aoba.SyncCursorAt(time.Now())
		var want []string
		for i := range 5 {
			c := fmt.Sprint(i)
			if _, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "bob", Content: c}, ""); err != nil {
				t.Fatal(err)
			}
			want = append(want, "msg:"+c)
		}
		var got []string
		cursor := since
		for range 10 {
			r := ts.mustSync(t, bob.Claims, cursor, 1)
			got = append(got, syncNames(t, r)...)
			cursor = r.Next
			if !r.More {
				break
			}
		}
		wantNames(t, "one pass", got, want)
		again := ts.mustSync(t, bob.Claims, cursor, 100)
		wantNames(t, "the window read again", syncNames(t, again), want)
	})

	t.Run("LateCommitNotSkipped", func(t *testing.T) {
		// An id made before a message that is already synced, stored
		// after that sync (another pod's slow write), is still returned.
		ts := newService(t)
		alice, bob := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob")
		since := aoba.SyncCursorAt(time.Now())
		lateID := aoba.NewID()
		time.Sleep(2 * time.Millisecond)
		if _, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "bob", Content: "early"}, ""); err != nil {
			t.Fatal(err)
		}
		r := ts.mustSync(t, bob.Claims, since, 100)
		wantNames(t, "first sync", syncNames(t, r), []string{"msg:early"})
		late := &aoba.Message{ID: lateID, Conversation: aoba.DirectConversation(alice.ID, bob.ID), FromID: alice.ID,
			ToID: bob.ID, FromName: "alice", ToName: "bob", Content: "late", Type: aoba.MessageChat, Timestamp: aoba.Now()}
		if err := ts.Store.CreateMessage(ctx, late); err != nil {
			t.Fatal(err)
		}
		wantNames(t, "next sync", syncNames(t, ts.mustSync(t, bob.Claims, r.Next, 100)), []string{"msg:late", "msg:early"})
	})

	t.Run("OldItemsPageWithoutRepeats", func(t *testing.T) {
		// Items older than SyncLag are returned once: the cursor moves
		// past them for good.
		ts := newService(t)
		alice, bob := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob")
		old := time.Now().Add(-time.Hour)
		for i := range 3 {
			id := aoba.IDAt(old.Add(time.Duration(i) * time.Second))
			m := &aoba.Message{ID: id, Conversation: aoba.DirectConversation(alice.ID, bob.ID), FromID: alice.ID,
				ToID: bob.ID, FromName: "alice", ToName: "bob", Content: fmt.Sprint(i), Type: aoba.MessageChat, Timestamp: aoba.Now()}
			if err := ts.Store.CreateMessage(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		r := ts.mustSync(t, bob.Claims, aoba.IDAt(old.Add(-time.Minute)), 2)
		wantNames(t, "first page", syncNames(t, r), []string{"msg:0", "msg:1"})
		if !r.More {
			t.Fatal("more = false with an item left")
		}
		r = ts.mustSync(t, bob.Claims, r.Next, 2)
		wantNames(t, "second page", syncNames(t, r), []string{"msg:2"})
		if r.More {
			t.Fatal("more = true at the end")
		}
		wantNames(t, "after the end", syncNames(t, ts.mustSync(t, bob.Claims, r.Next, 2)), []string{})
	})

	t.Run("Retention", func(t *testing.T) {
		ts := newService(t)
		alice, bob := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob")
		ancient := time.Now().Add(-aoba.EventRetention - time.Hour)
		m := &aoba.Message{ID: aoba.IDAt(ancient), Conversation: aoba.DirectConversation(alice.ID, bob.ID), FromID: alice.ID,
			ToID: bob.ID, FromName: "alice", ToName: "bob", Content: "ancient", Type: aoba.MessageChat, Timestamp: ancient}
		if err := ts.Store.CreateMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "bob", Content: "recent"}, ""); err != nil {
			t.Fatal(err)
		}
		for _, since := range []string{"", aoba.IDAt(ancient.Add(-time.Hour))} {
			wantNames(t, "sync from "+since, syncNames(t, ts.mustSync(t, bob.Claims, since, 10)), []string{"msg:recent"})
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		ts := newService(t)
		bob := ts.MustRegister(t, "bob")
		now := aoba.SyncCursorAt(time.Now())
		for _, tc := range []struct {
			since string
			limit int
		}{{"", 0}, {"", aoba.SyncMaxLimit + 1}, {"nope", 10}, {now + "." + aoba.IDAt(time.Now().Add(-time.Hour)), 10}} {
			_, err := ts.Sync(ctx, bob.Claims, tc.since, tc.limit)
			wantCode(t, err, aoba.EINVALID)
		}
	})
}
