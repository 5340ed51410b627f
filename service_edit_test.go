package aoba_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aoba-chat/aoba"
)

// eventsOf returns the sync events of type typ in r.
func eventsOf(r *aoba.SyncResult, typ string) []*aoba.EventView {
	var out []*aoba.EventView
	for _, e := range r.Events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func TestService_EditMessage(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	alice := ts.MustRegister(t, "alice")
	bob := ts.MustRegister(t, "bob")
	carol := ts.MustRegister(t, "carol")
	g := ts.MustCreateGroup(t, alice, "trio", bob.As(aoba.RoleMember))
	ts.Subscribe(t, aoba.UserTopic(alice.ID), aoba.UserTopic(bob.ID), aoba.UserTopic(carol.ID), aoba.GroupTopic(g.ID))
	sent, err := ts.SendMessage(ctx, alice.Claims, aoba.SendInput{To: "bob", Content: "helo"}, "")
	if err != nil {
		t.Fatal(err)
	}
	gsent, err := ts.SendMessage(ctx, bob.Claims, aoba.SendInput{To: g.ID, Content: "hi group", Type: aoba.MessageGroupChat}, "")
	if err != nil {
		t.Fatal(err)
	}
	ts.Forget(t)

	t.Run("OK", func(t *testing.T) {
		v, err := ts.EditMessage(ctx, alice.Claims, sent.ID, aoba.EditInput{Content: "hello"})
		if err != nil {
			t.Fatal(err)
		}
		if v.ID != sent.ID || v.Content != "hello" || v.EditedAt == nil || v.Deleted || v.From != "alice" || v.To != "bob" {
			t.Fatalf("edited %+v", v)
		}
		// Both participants get message.updated on their user topics.
		for _, a := range []Account{alice, bob} {
			envs := framesOf(t, ts.Published(t, aoba.UserTopic(a.ID)), aoba.FrameMessageUpdated)
			if len(envs) != 1 {
				t.Fatalf("%s: %d message.updated frames, want 1", a.Username, len(envs))
			}
			if got := dataOf[aoba.MessageView](t, envs[0], aoba.FrameMessageUpdated); got.ID != v.ID || got.Content != "hello" || got.EditedAt == nil {
				t.Fatalf("%s got %+v", a.Username, got)
			}
		}
		if envs := ts.Published(t, aoba.UserTopic(carol.ID)); len(envs) != 0 {
			t.Fatalf("a third user got %s", describe(envs))
		}
		// History shows the edit.
		h, _, err := ts.History(ctx, bob.Claims, aoba.HistoryQuery{With: "alice", Limit: 10})
		if err != nil || len(h) != 1 || h[0].Content != "hello" || h[0].EditedAt == nil {
			t.Fatalf("history = %+v, %v", h, err)
		}
		// Sync returns it as an event, even though the message is older
		// than the cursor.
		r := ts.mustSync(t, bob.Claims, sent.ID, aoba.SyncMaxLimit)
		evs := eventsOf(r, aoba.EventMessageUpdated)
		if len(evs) != 1 || !strings.Contains(string(evs[0].Data), `"content":"hello"`) {
			t.Fatalf("sync events %+v", r.Events)
		}
	})
	t.Run("Group", func(t *testing.T) {
		if _, err := ts.EditMessage(ctx, bob.Claims, gsent.ID, aoba.EditInput{Content: "hi everyone"}); err != nil {
			t.Fatal(err)
		}
		for _, a := range []Account{alice, bob} {
			if envs := framesOf(t, ts.Published(t, aoba.UserTopic(a.ID)), aoba.FrameMessageUpdated); len(envs) != 1 {
				t.Fatalf("%s: %d message.updated frames, want 1", a.Username, len(envs))
			}
		}
		if envs := ts.Published(t, aoba.UserTopic(carol.ID)); len(envs) != 0 {
			t.Fatalf("a non-member got %s", describe(envs))
		}
		r := ts.mustSync(t, alice.Claims, gsent.ID, aoba.SyncMaxLimit)
		var n int
		for _, e := range eventsOf(r, aoba.EventMessageUpdated) {
			if strings.Contains(string(e.Data), gsent.ID) && strings.Contains(string(e.Data), "hi everyone") {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("sync events %+v: %d updates of the group message, want 1", r.Events, n)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			c       aoba.Claims
			id      string
			content string
			code    string
		}{
			{"BadID", alice.Claims, "nope", "x", aoba.EINVALID},
			{"Empty", alice.Claims, sent.ID, "  ", aoba.EINVALID},
			{"TooLong", alice.Claims, sent.ID, strings.Repeat("x", aoba.MessageMaxLen+1), aoba.EINVALID},
			{"Unknown", alice.Claims, aoba.NewID(), "x", aoba.ENOTFOUND},
			{"NotVisible", carol.Claims, sent.ID, "x", aoba.ENOTFOUND},
			{"NotVisibleGroup", carol.Claims, gsent.ID, "x", aoba.ENOTFOUND},
			{"NotSender", bob.Claims, sent.ID, "x", aoba.EFORBIDDEN},
			{"NotSenderOwner", alice.Claims, gsent.ID, "x", aoba.EFORBIDDEN},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := ts.EditMessage(ctx, tt.c, tt.id, aoba.EditInput{Content: tt.content})
				wantCode(t, err, tt.code)
			})
		}
		if _, err := ts.EditMessage(ctx, alice.Claims, sent.ID, aoba.EditInput{Content: strings.Repeat("é", aoba.MessageMaxLen)}); err != nil {
			t.Fatalf("edit to the longest content: %v", err)
		}
	})
}

func TestService_DeleteMessage(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	owner := ts.MustRegister(t, "owner")
	admin := ts.MustRegister(t, "admin")
	member := ts.MustRegister(t, "member")
	other := ts.MustRegister(t, "other")
	outsider := ts.MustRegister(t, "outsider")
	g := ts.MustCreateGroup(t, owner, "crew", admin.As(aoba.RoleAdmin), member.As(aoba.RoleMember), other.As(aoba.RoleMember))
	ts.Subscribe(t, aoba.UserTopic(owner.ID), aoba.UserTopic(admin.ID), aoba.UserTopic(member.ID), aoba.UserTopic(other.ID))
	send := func(t *testing.T, from Account, to string, typ aoba.MessageType) *aoba.MessageView {
		t.Helper()
		v, err := ts.SendMessage(ctx, from.Claims, aoba.SendInput{To: to, Content: "to delete", Type: typ}, "")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	t.Run("Sender", func(t *testing.T) {
		v := send(t, member, "other", aoba.MessageChat)
		ts.Forget(t)
		if err := ts.DeleteMessage(ctx, member.Claims, v.ID); err != nil {
			t.Fatal(err)
		}
		for _, a := range []Account{member, other} {
			envs := framesOf(t, ts.Published(t, aoba.UserTopic(a.ID)), aoba.FrameMessageDeleted)
			if len(envs) != 1 {
				t.Fatalf("%s: %d message.deleted frames, want 1", a.Username, len(envs))
			}
			if got := dataOf[aoba.MessageView](t, envs[0], aoba.FrameMessageDeleted); got.ID != v.ID || got.Content != "" || !got.Deleted {
				t.Fatalf("%s got %+v", a.Username, got)
			}
		}
		h, _, err := ts.History(ctx, other.Claims, aoba.HistoryQuery{With: "member", Limit: 10})
		if err != nil || len(h) != 1 || h[0].Content != "" || !h[0].Deleted {
			t.Fatalf("history = %+v, %v", h, err)
		}
		// Idempotent: a second delete succeeds and announces nothing.
		if err := ts.DeleteMessage(ctx, member.Claims, v.ID); err != nil {
			t.Fatalf("second delete: %v", err)
		}
		if envs := ts.Published(t, aoba.UserTopic(other.ID)); len(envs) != 0 {
			t.Fatalf("second delete published %s", describe(envs))
		}
		// A deleted message cannot be edited.
		_, err = ts.EditMessage(ctx, member.Claims, v.ID, aoba.EditInput{Content: "back"})
		wantCode(t, err, aoba.ECONFLICT)
		// Sync returns the deletion as an event.
		r := ts.mustSync(t, other.Claims, v.ID, aoba.SyncMaxLimit)
		if evs := eventsOf(r, aoba.EventMessageDeleted); len(evs) != 1 {
			t.Fatalf("sync events %+v", r.Events)
		}
	})
	t.Run("GroupAdminAndOwner", func(t *testing.T) {
		for _, by := range []Account{admin, owner} {
			v := send(t, member, g.ID, aoba.MessageGroupChat)
			ts.Forget(t)
			if err := ts.DeleteMessage(ctx, by.Claims, v.ID); err != nil {
				t.Fatalf("%s: %v", by.Username, err)
			}
			for _, a := range []Account{owner, admin, member, other} {
				if envs := framesOf(t, ts.Published(t, aoba.UserTopic(a.ID)), aoba.FrameMessageDeleted); len(envs) != 1 {
					t.Fatalf("%s: %d message.deleted frames, want 1", a.Username, len(envs))
				}
			}
		}
	})
	t.Run("Errors", func(t *testing.T) {
		gm := send(t, admin, g.ID, aoba.MessageGroupChat)
		dm := send(t, member, "other", aoba.MessageChat)
		for _, tt := range []struct {
			name string
			c    aoba.Claims
			id   string
			code string
		}{
			{"BadID", member.Claims, "nope", aoba.EINVALID},
			{"Unknown", member.Claims, aoba.NewID(), aoba.ENOTFOUND},
			{"NotVisible", outsider.Claims, gm.ID, aoba.ENOTFOUND},
			{"NotVisibleChat", admin.Claims, dm.ID, aoba.ENOTFOUND},
			{"MemberDeletesAnother", member.Claims, gm.ID, aoba.EFORBIDDEN},
			{"RecipientOfChat", other.Claims, dm.ID, aoba.EFORBIDDEN},
		} {
			t.Run(tt.name, func(t *testing.T) {
				wantCode(t, ts.DeleteMessage(ctx, tt.c, tt.id), tt.code)
			})
		}
	})
}
