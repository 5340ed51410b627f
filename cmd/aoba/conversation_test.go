package main_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/fasthttp/websocket"
)

// conversationPage is one response of GET /api/conversations.
type conversationPage struct {
	Conversations []aoba.ConversationView `json:"conversations"`
	More          bool                    `json:"more"`
}

// TestConversations: two users message each other; the conversation list
// counts unread messages the same on every device, pages by last activity,
// and a read marker never moves backwards; a read on one socket of a user
// gives a receipt on the user's other socket and on the peer's.
func TestConversations(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice, bob, carol := s.register(t, "alice"), s.register(t, "bob"), s.register(t, "carol")
		send := func(from *user, to string) aoba.MessageView {
			t.Helper()
			var m aoba.MessageView
			s.do(t, "POST", "/api/messages", from.Token, map[string]string{"to": to, "content": "hi " + to}).want(t, 201).decode(t, &m)
			return m
		}
		list := func(u *user, query string) conversationPage {
			t.Helper()
			var p conversationPage
			s.do(t, "GET", "/api/conversations"+query, u.Token, nil).want(t, 200).decode(t, &p)
			return p
		}
		m1 := send(alice, bob.Name)
		m2 := send(bob, alice.Name)
		m3 := send(bob, alice.Name)
		send(carol, alice.Name)

		p := list(alice, "")
		if len(p.Conversations) != 2 || p.More {
			t.Fatalf("alice's conversations = %+v", p)
		}
		if c := p.Conversations[0]; c.ID != carol.ID || c.Type != aoba.MessageChat || c.Peer.Username != carol.Name || c.Unread != 1 || c.ReadUpTo != nil {
			t.Errorf("first conversation = %+v, want carol's, 1 unread", c)
		}
		if c := p.Conversations[1]; c.ID != bob.ID || c.Unread != 2 || c.LastMessage.ID != m3.ID || *c.ReadUpTo != m1.ID {
			t.Errorf("second conversation = %+v, want bob's, 2 unread", c)
		}
		first := list(alice, "?limit=1")
		if len(first.Conversations) != 1 || !first.More || first.Conversations[0].ID != carol.ID {
			t.Fatalf("first page = %+v", first)
		}
		second := list(alice, "?limit=1&before="+first.Conversations[0].LastMessage.ID)
		if len(second.Conversations) != 1 || second.More || second.Conversations[0].ID != bob.ID {
			t.Fatalf("second page = %+v", second)
		}
		if bp := list(bob, ""); len(bp.Conversations) != 1 || bp.Conversations[0].Unread != 0 {
			t.Errorf("bob's conversations = %+v, want one, nothing unread (his own messages)", bp)
		}

		// Alice has two sockets; she reads on one.
		a1, a2, b := s.dialOK(t, alice.Token), s.dialOK(t, alice.Token), s.dialOK(t, bob.Token)
		read := `{"type":"read","id":"r1","data":{"conversation":"` + bob.ID + `","up_to":"` + m2.ID + `"}}`
		if err := a1.WriteMessage(websocket.TextMessage, []byte(read)); err != nil {
			t.Fatal(err)
		}
		var ack aoba.ConversationView
		if f := readFrame(t, a1, aoba.FrameAck); f.ID != "r1" || json.Unmarshal(f.Data, &ack) != nil || ack.Unread != 1 || *ack.ReadUpTo != m2.ID {
			t.Fatalf("read ack = %s", f.Data)
		}
		receipt := func(c *websocket.Conn, conversation string) {
			t.Helper()
			var r aoba.ReceiptEvent
			if f := readFrame(t, c, aoba.FrameReceipt); json.Unmarshal(f.Data, &r) != nil ||
				r.Conversation != conversation || r.UserID != alice.ID || r.Username != alice.Name || r.ReadUpTo != m2.ID {
				t.Errorf("receipt = %s, want alice's up to %s in %s", f.Data, m2.ID, conversation)
			}
		}
		receipt(a2, bob.ID)
		receipt(b, alice.ID)

		// The count is the server's: another device sees it; the marker
		// never moves backwards.
		var back aoba.ConversationView
		s.do(t, "PUT", "/api/conversations/"+bob.ID+"/read", alice.Token, map[string]string{"up_to": m1.ID}).want(t, 200).decode(t, &back)
		if back.Unread != 1 || *back.ReadUpTo != m2.ID {
			t.Errorf("read backwards = %+v, want the marker at %s", back, m2.ID)
		}
		if c := list(alice, "").Conversations[1]; c.Unread != 1 {
			t.Errorf("unread after read = %d, want 1", c.Unread)
		}
		s.do(t, "PUT", "/api/conversations/"+bob.ID+"/read", alice.Token, map[string]string{"up_to": m3.ID}).want(t, 200)
		if c := list(alice, "").Conversations[1]; c.Unread != 0 {
			t.Errorf("unread after reading all = %d, want 0", c.Unread)
		}
		s.do(t, "PUT", "/api/conversations/"+carol.ID+"/read", alice.Token, map[string]string{"up_to": m3.ID}).want(t, 404)
		s.do(t, "PUT", "/api/conversations/"+alice.ID+"/read", carol.Token, map[string]string{"up_to": m3.ID}).want(t, 404)

		var rs struct {
			Receipts []aoba.Receipt `json:"receipts"`
		}
		s.do(t, "GET", "/api/conversations/"+alice.ID+"/receipts", bob.Token, nil).want(t, 200).decode(t, &rs)
		if len(rs.Receipts) != 2 {
			t.Errorf("receipts = %+v, want alice's and bob's", rs.Receipts)
		}
		for _, r := range rs.Receipts {
			if r.UserID == alice.ID && r.ReadUpTo != m3.ID {
				t.Errorf("alice's receipt = %+v, want up to %s", r, m3.ID)
			}
		}
	})
}

// TestConversationsWithoutMessages: a group shows in its members' lists
// from its creation or their joining, with last_message null, sorted by
// that time; paging passes it by its id; leaving or deleting it removes it.
func TestConversationsWithoutMessages(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice, bob, carol := s.register(t, "alice"), s.register(t, "bob"), s.register(t, "carol")
		list := func(u *user, query string) conversationPage {
			t.Helper()
			var p conversationPage
			s.do(t, "GET", "/api/conversations"+query, u.Token, nil).want(t, 200).decode(t, &p)
			return p
		}
		want := func(what string, p conversationPage, more bool, ids ...string) {
			t.Helper()
			var got []string
			for _, c := range p.Conversations {
				got = append(got, c.ID)
			}
			if strings.Join(got, ",") != strings.Join(ids, ",") || p.More != more {
				t.Fatalf("%s = %v (more %v), want %v (more %v)", what, got, p.More, ids, more)
			}
		}
		quiet := s.newGroup(t, alice.Token, "quiet")
		time.Sleep(5 * time.Millisecond)
		var m1 aoba.MessageView
		s.do(t, "POST", "/api/messages", bob.Token, map[string]string{"to": alice.Name, "content": "hi"}).want(t, 201).decode(t, &m1)
		time.Sleep(5 * time.Millisecond)
		late := s.newGroup(t, carol.Token, "late")
		s.do(t, "POST", "/api/groups/"+late+"/members", carol.Token, map[string]string{"username": alice.Name, "role": "member"}).want(t, 201)

		r := s.do(t, "GET", "/api/conversations", alice.Token, nil).want(t, 200)
		var raw struct {
			Conversations []map[string]json.RawMessage `json:"conversations"`
		}
		r.decode(t, &raw)
		if len(raw.Conversations) != 3 || string(raw.Conversations[0]["last_message"]) != "null" || string(raw.Conversations[0]["unread"]) != "0" {
			t.Fatalf("alice's conversations = %s, want late first with last_message null", r.Body)
		}
		want("alice's conversations", list(alice, ""), false, late, bob.ID, quiet)
		want("carol's conversations", list(carol, ""), false, late)
		p := list(alice, "?limit=1")
		want("page 1", p, true, late)
		p = list(alice, "?limit=1&before="+late)
		want("page 2", p, true, bob.ID)
		want("page 3", list(alice, "?limit=1&before="+p.Conversations[0].LastMessage.ID), false, quiet)
		want("page 4", list(alice, "?limit=1&before="+quiet), false)

		var g1 aoba.MessageView
		s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": quiet, "type": "groupchat", "content": "first"}).want(t, 201).decode(t, &g1)
		p = list(alice, "")
		want("after the first group message", p, false, quiet, late, bob.ID)
		if c := p.Conversations[0]; c.LastMessage == nil || c.LastMessage.ID != g1.ID {
			t.Errorf("quiet = %+v, want its message", c)
		}
		s.do(t, "POST", "/api/groups/"+late+"/leave", alice.Token, nil).want(t, 200)
		want("after leaving late", list(alice, ""), false, quiet, bob.ID)
		s.do(t, "DELETE", "/api/groups/"+quiet, alice.Token, nil).want(t, 204)
		want("after deleting quiet", list(alice, ""), false, bob.ID)
	})
}
