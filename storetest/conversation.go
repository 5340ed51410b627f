package storetest

import (
	"sort"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// conversationKeys returns the keys of cs, in order.
func conversationKeys(cs []*aoba.ConversationState) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Key
	}
	return out
}

func runConversationTests(t *testing.T, open OpenFunc) {
	s := open(t)
	a, b, c, g := aoba.NewID(), aoba.NewID(), aoba.NewID(), aoba.NewID()
	ab, ac, gk := aoba.DirectConversation(a, b), aoba.DirectConversation(a, c), aoba.GroupConversation(g)
	base := aoba.Now()
	var n int
	send := func(from, to string, typ aoba.MessageType) *aoba.Message {
		conv := aoba.DirectConversation(from, to)
		if typ == aoba.MessageGroupChat {
			conv = aoba.GroupConversation(to)
		}
		n++
		m := &aoba.Message{ID: aoba.NewID(), Conversation: conv, FromID: from, ToID: to, FromName: "f", ToName: "t",
			Content: "hi", Type: typ, Timestamp: base.Add(time.Duration(n) * time.Millisecond)}
		if err := s.CreateMessage(ctx(t), m); err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}
		return m
	}
	ab1 := send(a, b, aoba.MessageChat)
	ab2 := send(b, a, aoba.MessageChat)
	ab3 := send(b, a, aoba.MessageChat)
	send(a, c, aoba.MessageChat)
	g1 := send(c, g, aoba.MessageGroupChat)

	t.Run("List", func(t *testing.T) {
		got, err := s.FindConversations(ctx(t), a, []string{gk}, "", 0)
		if err != nil {
			t.Fatalf("FindConversations: %v", err)
		}
		wantStrings(t, "conversations", conversationKeys(got), []string{gk, ac, ab})
		if got[2].Seq != 3 || got[2].LastMessage.ID != ab3.ID || !got[2].UpdatedAt.Equal(ab3.Timestamp) {
			t.Errorf("ab = seq %d last %s, want 3 %s", got[2].Seq, got[2].LastMessage.ID, ab3.ID)
		}
		page, err := s.FindConversations(ctx(t), a, []string{gk}, got[0].LastMessage.ID, 1)
		if err != nil {
			t.Fatalf("FindConversations: %v", err)
		}
		wantStrings(t, "page", conversationKeys(page), []string{ac})
		none, err := s.FindConversations(ctx(t), b, nil, "", 0)
		if err != nil {
			t.Fatalf("FindConversations: %v", err)
		}
		wantStrings(t, "b's conversations", conversationKeys(none), []string{ab})
		if _, err := s.FindConversation(ctx(t), aoba.GroupConversation(aoba.NewID())); aoba.ErrorCode(err) != aoba.ENOTFOUND {
			t.Errorf("FindConversation(unknown) = %v, want not_found", err)
		}
		if one, err := s.FindConversation(ctx(t), gk); err != nil || one.Seq != 1 || one.LastMessage.ID != g1.ID {
			t.Errorf("FindConversation(group) = %+v, %v", one, err)
		}
	})
	t.Run("Keys", func(t *testing.T) {
		empty := aoba.GroupConversation(aoba.NewID())
		got, err := s.FindConversationKeys(ctx(t), []string{empty, gk, ab, aoba.DirectConversation(b, c)})
		if err != nil {
			t.Fatalf("FindConversationKeys: %v", err)
		}
		sort.Strings(got)
		want := []string{gk, ab}
		sort.Strings(want)
		wantStrings(t, "keys with a message", got, want)
		if none, err := s.FindConversationKeys(ctx(t), nil); err != nil || len(none) != 0 {
			t.Errorf("FindConversationKeys(nil) = %v, %v; want none", none, err)
		}
	})
	t.Run("SenderReads", func(t *testing.T) {
		rs, err := s.FindReadStates(ctx(t), b, []string{ab, gk})
		if err != nil || len(rs) != 1 {
			t.Fatalf("FindReadStates = %v, %v; want b's marker in ab", rs, err)
		}
		if rs[0].ReadUpTo != ab3.ID || rs[0].ReadCount != 3 {
			t.Errorf("b's marker = %s/%d, want %s/3", rs[0].ReadUpTo, rs[0].ReadCount, ab3.ID)
		}
	})
	t.Run("MarkRead", func(t *testing.T) {
		at := aoba.Now()
		r, err := s.MarkRead(ctx(t), a, ab, ab2.ID, at)
		if err != nil {
			t.Fatalf("MarkRead: %v", err)
		}
		if r.ReadUpTo != ab2.ID || r.ReadCount != 2 || !r.ReadAt.Equal(at) {
			t.Errorf("MarkRead = %+v, want up to %s count 2", r, ab2.ID)
		}
		conv, _ := s.FindConversation(ctx(t), ab)
		if u := aoba.Unread(conv, r); u != 1 {
			t.Errorf("unread = %d, want 1", u)
		}
		back, err := s.MarkRead(ctx(t), a, ab, ab1.ID, at.Add(time.Second))
		if err != nil || back.ReadUpTo != ab2.ID || back.ReadCount != 2 {
			t.Errorf("MarkRead backwards = %+v, %v; want it unmoved", back, err)
		}
		if _, err := s.MarkRead(ctx(t), a, ac, ab3.ID, at); aoba.ErrorCode(err) != aoba.ENOTFOUND {
			t.Errorf("MarkRead(other conversation's message) = %v, want not_found", err)
		}
		all, err := s.FindConversationReadStates(ctx(t), ab)
		if err != nil || len(all) != 2 {
			t.Errorf("FindConversationReadStates = %v, %v; want 2", all, err)
		}
	})
	t.Run("ConcurrentSends", func(t *testing.T) {
		x, y := aoba.NewID(), aoba.NewID()
		key := aoba.DirectConversation(x, y)
		const n = Concurrency
		msgs := make([]*aoba.Message, n)
		for i := range msgs {
			from, to := x, y
			if i%2 == 1 {
				from, to = y, x
			}
			msgs[i] = &aoba.Message{ID: aoba.NewID(), Conversation: key, FromID: from, ToID: to, FromName: "f", ToName: "t",
				Content: "hi", Type: aoba.MessageChat, Timestamp: aoba.Now()}
		}
		for _, err := range race(func(i int) error { return s.CreateMessage(ctx(t), msgs[i%n]) }) {
			if err != nil {
				t.Fatalf("CreateMessage: %v", err)
			}
		}
		conv, err := s.FindConversation(ctx(t), key)
		if err != nil {
			t.Fatalf("FindConversation: %v", err)
		}
		if conv.Seq != n || conv.LastMessage.ID != msgs[n-1].ID {
			t.Fatalf("FindConversation = seq %d, last %s; want %d messages, the last one %s", conv.Seq, conv.LastMessage.ID, n, msgs[n-1].ID)
		}
		for _, u := range []string{x, y} {
			rs, err := s.FindReadStates(ctx(t), u, []string{key})
			if err != nil || len(rs) != 1 {
				t.Fatalf("FindReadStates = %v, %v", rs, err)
			}
			want := msgs[n-1].ID
			if u == x {
				want = msgs[n-2].ID
			}
			if rs[0].ReadUpTo != want || rs[0].ReadCount < 1 || rs[0].ReadCount > n {
				t.Errorf("marker of a sender = %s/%d, want their last message %s", rs[0].ReadUpTo, rs[0].ReadCount, want)
			}
		}
	})
	// Concurrent sends to a 1:1 conversation and to a group are each
	// counted once: the recipient's unread count is exactly the number of
	// messages after their marker, and a sole sender has nothing unread.
	t.Run("ConcurrentUnread", func(t *testing.T) {
		x, y, z, grp := aoba.NewID(), aoba.NewID(), aoba.NewID(), aoba.NewID()
		direct, group := aoba.DirectConversation(x, y), aoba.GroupConversation(grp)
		const n = Concurrency
		message := func(key, from, to string, typ aoba.MessageType) *aoba.Message {
			return &aoba.Message{ID: aoba.NewID(), Conversation: key, FromID: from, ToID: to, FromName: "f", ToName: "t",
				Content: "hi", Type: typ, Timestamp: aoba.Now()}
		}
		first := message(direct, y, x, aoba.MessageChat)
		if err := s.CreateMessage(ctx(t), first); err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}
		if _, err := s.MarkRead(ctx(t), x, direct, first.ID, aoba.Now()); err != nil {
			t.Fatalf("MarkRead: %v", err)
		}
		msgs := make([]*aoba.Message, 2*n)
		for i := range n {
			msgs[i] = message(direct, y, x, aoba.MessageChat)
			from := y
			if i%2 == 1 {
				from = z
			}
			msgs[n+i] = message(group, from, grp, aoba.MessageGroupChat)
		}
		// Each goroutine sends one message to each conversation, so that
		// both see all Concurrency writers at once.
		for _, err := range race(func(i int) error {
			if err := s.CreateMessage(ctx(t), msgs[i]); err != nil {
				return err
			}
			return s.CreateMessage(ctx(t), msgs[n+i])
		}) {
			if err != nil {
				t.Fatalf("CreateMessage: %v", err)
			}
		}
		greatest := func(ms []*aoba.Message) string {
			var id string
			for _, m := range ms {
				id = max(id, m.ID)
			}
			return id
		}
		unread := func(key, user string, wantSeq int64, wantLast string) int64 {
			t.Helper()
			conv, err := s.FindConversation(ctx(t), key)
			if err != nil {
				t.Fatalf("FindConversation: %v", err)
			}
			if conv.Seq != wantSeq || conv.LastMessage.ID != wantLast {
				t.Errorf("%s: seq %d, last %s; want %d, %s", key, conv.Seq, conv.LastMessage.ID, wantSeq, wantLast)
			}
			rs, err := s.FindReadStates(ctx(t), user, []string{key})
			if err != nil {
				t.Fatalf("FindReadStates: %v", err)
			}
			var r *aoba.ReadState
			if len(rs) > 0 {
				r = rs[0]
			}
			return aoba.Unread(conv, r)
		}
		if got := unread(direct, x, n+1, greatest(msgs[:n])); got != n {
			t.Errorf("recipient's unread in the 1:1 conversation = %d, want %d", got, n)
		}
		if got := unread(direct, y, n+1, greatest(msgs[:n])); got != 0 {
			t.Errorf("sender's unread in the 1:1 conversation = %d, want 0", got)
		}
		if got := unread(group, x, n, greatest(msgs[n:])); got != n {
			t.Errorf("member's unread in the group = %d, want %d", got, n)
		}
		for _, u := range []string{y, z} {
			rs, err := s.FindReadStates(ctx(t), u, []string{group})
			if err != nil || len(rs) != 1 {
				t.Fatalf("FindReadStates = %v, %v", rs, err)
			}
			var own []*aoba.Message
			for _, m := range msgs[n:] {
				if m.FromID == u {
					own = append(own, m)
				}
			}
			if rs[0].ReadUpTo != greatest(own) || rs[0].ReadCount < int64(len(own)) || rs[0].ReadCount > n {
				t.Errorf("group sender's marker = %s/%d, want at their last message %s", rs[0].ReadUpTo, rs[0].ReadCount, greatest(own))
			}
		}
	})
}
