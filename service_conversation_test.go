package aoba_test

import (
	"context"
	"strings"
	"testing"
	"time"

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

// TestConversationsWithoutMessages: a group the caller created or joined is
// listed before its first message, by the time they joined it, with no
// last message; paging goes through it by its id; leaving it or deleting
// it removes it from the list.
func TestConversationsWithoutMessages(t *testing.T) {
	ts := newService(t)
	ctx := context.Background()
	alice, bob, carol := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob"), ts.MustRegister(t, "carol")
	quiet := ts.MustCreateGroup(t, alice, "quiet")
	time.Sleep(2 * time.Millisecond)
	m1, err := ts.SendMessage(ctx, bob.Claims, aoba.SendInput{To: "alice", Content: "hi", Type: aoba.MessageChat}, "")
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	time.Sleep(2 * time.Millisecond)
	late := ts.MustCreateGroup(t, carol, "late", alice.As(aoba.RoleMember))
	list := func(a Account, limit int, before string) *aoba.ConversationPage {
		t.Helper()
		p, err := ts.ListConversations(ctx, a.Claims, limit, before)
		if err != nil {
			t.Fatalf("ListConversations: %v", err)
		}
		return p
	}
	ids := func(p *aoba.ConversationPage) []string {
		out := []string{}
		for _, c := range p.Conversations {
			out = append(out, c.ID)
		}
		return out
	}
	want := func(what string, p *aoba.ConversationPage, more bool, wantIDs ...string) {
		t.Helper()
		if got := ids(p); strings.Join(got, ",") != strings.Join(wantIDs, ",") || p.More != more {
			t.Fatalf("%s = %v (more %v), want %v (more %v)", what, got, p.More, wantIDs, more)
		}
	}

	all := list(alice, 10, "")
	want("alice's conversations", all, false, late.ID, bob.User.ID, quiet.ID)
	for _, c := range []*aoba.ConversationView{all.Conversations[0], all.Conversations[2]} {
		if c.Type != aoba.MessageGroupChat || c.LastMessage != nil || c.Unread != 0 || c.ReadUpTo != nil {
			t.Errorf("group without messages = %+v, want no last message, nothing unread", c)
		}
	}
	if c := all.Conversations[2]; !c.UpdatedAt.Equal(quiet.CreatedAt) || c.Group.Name != "quiet" {
		t.Errorf("quiet = %+v, want updated_at %v (created)", c, quiet.CreatedAt)
	}
	if c := all.Conversations[0]; !c.UpdatedAt.After(m1.Timestamp) {
		t.Errorf("late's updated_at = %v, want alice's joining, after %v", c.UpdatedAt, m1.Timestamp)
	}
	want("carol's conversations", list(carol, 10, ""), false, late.ID)

	p := list(alice, 1, "")
	want("page 1", p, true, late.ID)
	p = list(alice, 1, late.ID)
	want("page 2", p, true, bob.User.ID)
	p = list(alice, 1, p.Conversations[0].LastMessage.ID)
	want("page 3", p, false, quiet.ID)
	want("page 4", list(alice, 1, quiet.ID), false)
	want("page after the middle", list(alice, 2, late.ID), false, bob.User.ID, quiet.ID)

	// The first message moves a group to the top with it.
	g1, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: quiet.ID, Content: "first", Type: aoba.MessageGroupChat}, "")
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	all = list(alice, 10, "")
	want("after the first group message", all, false, quiet.ID, late.ID, bob.User.ID)
	if c := all.Conversations[0]; c.LastMessage == nil || c.LastMessage.ID != g1.ID {
		t.Errorf("quiet = %+v, want its message %s", c, g1.ID)
	}

	if err := ts.LeaveGroup(ctx, alice.Claims, late.ID); err != nil {
		t.Fatalf("LeaveGroup: %v", err)
	}
	want("after leaving late", list(alice, 10, ""), false, quiet.ID, bob.User.ID)
	if err := ts.DeleteGroup(ctx, alice.Claims, quiet.ID); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	want("after deleting quiet", list(alice, 10, ""), false, bob.User.ID)
	if err := ts.DeleteGroup(ctx, carol.Claims, late.ID); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	want("carol's after deleting late", list(carol, 10, ""), false)
}
