package aoba_test

import (
	"context"
	"testing"

	"github.com/aoba-chat/aoba"
)

func TestConversations(t *testing.T) {
	ts := newService(t)
	ctx := context.Background()
	alice, bob, carol := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob"), ts.MustRegister(t, "carol")
	g := ts.MustCreateGroup(t, alice, "team", carol.As(aoba.RoleMember))
	send := func(from Account, to string, typ aoba.MessageType) *aoba.MessageView {
		t.Helper()
		m, err := ts.SendMessage(ctx, from.Claims, aoba.SendInput{To: to, Content: "hi", Type: typ}, "")
		if err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		return m
	}
	m1 := send(alice, "bob", aoba.MessageChat)
	m2 := send(bob, "alice", aoba.MessageChat)
	m3 := send(bob, "alice", aoba.MessageChat)
	send(carol, g.ID, aoba.MessageGroupChat)

	page, err := ts.ListConversations(ctx, alice.Claims, 10, "")
	if err != nil {
		t.Fatalf("ListConversations: %v", err)
	}
	if len(page.Conversations) != 2 || page.More {
		t.Fatalf("ListConversations = %d conversations, more %v; want 2", len(page.Conversations), page.More)
	}
	grp, chat := page.Conversations[0], page.Conversations[1]
	if grp.ID != g.ID || grp.Type != aoba.MessageGroupChat || grp.Group.Name != "team" || grp.Unread != 1 {
		t.Errorf("group conversation = %+v", grp)
	}
	if chat.ID != bob.User.ID || chat.Peer.Username != "bob" || chat.Unread != 2 || chat.LastMessage.ID != m3.ID || *chat.ReadUpTo != m1.ID {
		t.Errorf("chat conversation = %+v", chat)
	}
	one, err := ts.ListConversations(ctx, alice.Claims, 1, "")
	if err != nil || len(one.Conversations) != 1 || !one.More {
		t.Fatalf("ListConversations(limit 1) = %+v, %v", one, err)
	}
	next, err := ts.ListConversations(ctx, alice.Claims, 1, one.Conversations[0].LastMessage.ID)
	if err != nil || len(next.Conversations) != 1 || next.More || next.Conversations[0].ID != bob.User.ID {
		t.Fatalf("ListConversations(second page) = %+v, %v", next, err)
	}

	ts.Subscribe(t, aoba.UserTopic(bob.User.ID), aoba.UserTopic(alice.User.ID))
	ts.Forget(t)
	v, err := ts.MarkRead(ctx, alice.Claims, bob.User.ID, m2.ID)
	if err != nil || v.Unread != 1 || *v.ReadUpTo != m2.ID {
		t.Fatalf("MarkRead = %+v, %v; want 1 unread", v, err)
	}
	rec := dataOf[aoba.ReceiptEvent](t, framesOf(t, ts.Published(t, aoba.UserTopic(bob.User.ID)), aoba.FrameReceipt)[0], aoba.FrameReceipt)
	if rec.Conversation != alice.User.ID || rec.Username != "alice" || rec.ReadUpTo != m2.ID {
		t.Errorf("bob's receipt = %+v", rec)
	}
	if mine := framesOf(t, ts.Published(t, aoba.UserTopic(alice.User.ID)), aoba.FrameReceipt); len(mine) != 1 {
		t.Errorf("alice got %d receipts, want 1", len(mine))
	}
	back, err := ts.MarkRead(ctx, alice.Claims, bob.User.ID, m1.ID)
	if err != nil || *back.ReadUpTo != m2.ID || back.Unread != 1 {
		t.Errorf("MarkRead backwards = %+v, %v; want it unmoved", back, err)
	}
	if got := framesOf(t, ts.Published(t, aoba.UserTopic(bob.User.ID)), aoba.FrameReceipt); len(got) != 0 {
		t.Errorf("an unmoved marker sent %d receipts", len(got))
	}
	_, err = ts.MarkRead(ctx, bob.Claims, g.ID, m2.ID)
	wantCode(t, err, aoba.ENOTFOUND)
	_, err = ts.MarkRead(ctx, carol.Claims, alice.User.ID, m2.ID)
	wantCode(t, err, aoba.ENOTFOUND)

	hist, _, err := ts.History(ctx, bob.Claims, aoba.HistoryQuery{With: "alice", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, m := range hist {
		status[m.ID] = m.Status
	}
	if status[m1.ID] != "read" || status[m2.ID] != "read" || status[m3.ID] != "sent" {
		t.Errorf("statuses m1 %s m2 %s m3 %s, want read (bob replied after it), read, sent", status[m1.ID], status[m2.ID], status[m3.ID])
	}
	rs, err := ts.Receipts(ctx, bob.Claims, alice.User.ID)
	if err != nil || len(rs) != 2 {
		t.Fatalf("Receipts = %v, %v; want 2", rs, err)
	}
	sync, err := ts.Sync(ctx, bob.Claims, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var receipts int
	for _, e := range sync.Events {
		if e.Type == aoba.EventReceipt {
			receipts++
		}
	}
	if receipts != 1 {
		t.Errorf("bob's sync has %d receipts, want 1", receipts)
	}
}
