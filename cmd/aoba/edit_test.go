package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aoba-chat/aoba"
	"github.com/fasthttp/websocket"
)

// dialUser opens a socket for token and reads its hello.
func dialUser(t *testing.T, s *server, token string) *websocket.Conn {
	t.Helper()
	c, _, err := s.dial(t, "", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	readFrame(t, c, aoba.FrameHello)
	return c
}

// readMessageFrame reads frames until one of type typ about message id and
// returns its message.
func readMessageFrame(t *testing.T, c *websocket.Conn, typ, id string) aoba.MessageView {
	t.Helper()
	for {
		f := readFrame(t, c, typ)
		var m aoba.MessageView
		if err := json.Unmarshal(f.Data, &m); err != nil {
			t.Fatalf("%s data %s: %v", typ, f.Data, err)
		}
		if m.ID == id {
			return m
		}
	}
}

// historyWith returns the caller's history with a username or group id.
func historyWith(t *testing.T, s *server, token, with string) []aoba.MessageView {
	t.Helper()
	var h struct {
		Messages []aoba.MessageView `json:"messages"`
	}
	s.do(t, "GET", "/api/messages?limit=100&with="+with, token, nil).want(t, 200).decode(t, &h)
	return h.Messages
}

// findMessage returns the message id of ms; it fails the test without it.
func findMessage(t *testing.T, ms []aoba.MessageView, id string) aoba.MessageView {
	t.Helper()
	for _, m := range ms {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("message %s not in %+v", id, ms)
	return aoba.MessageView{}
}

func TestEditAndDeleteMessages(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice := s.register(t, "alice")
		bob := s.register(t, "bob")
		carol := s.register(t, "carol")

		t.Run("Chat", func(t *testing.T) {
			bc := dialUser(t, s, bob.Token)
			var sent aoba.MessageView
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": "helo"}).want(t, 201).decode(t, &sent)
			readMessageFrame(t, bc, aoba.FrameMessage, sent.ID)

			var edited aoba.MessageView
			s.do(t, "PATCH", "/api/messages/"+sent.ID, alice.Token, map[string]string{"content": "hello"}).want(t, 200).decode(t, &edited)
			if edited.Content != "hello" || edited.EditedAt == nil || edited.Deleted {
				t.Fatalf("edited %+v", edited)
			}
			if live := readMessageFrame(t, bc, aoba.FrameMessageUpdated, sent.ID); live.Content != "hello" || live.EditedAt == nil {
				t.Fatalf("message.updated %+v", live)
			}
			if h := findMessage(t, historyWith(t, s, bob.Token, alice.Name), sent.ID); h.Content != "hello" || h.EditedAt == nil {
				t.Fatalf("history after edit %+v", h)
			}
			// Sync from after the message returns the edit as an event.
			var p syncPage
			s.do(t, "GET", "/api/sync?limit=500&since="+sent.ID, bob.Token, nil).want(t, 200).decode(t, &p)
			var updates int
			for _, e := range p.Events {
				if e.Type == aoba.EventMessageUpdated && strings.Contains(string(e.Data), sent.ID) && strings.Contains(string(e.Data), `"hello"`) {
					updates++
				}
			}
			if updates != 1 {
				t.Fatalf("sync events %+v, want one message.updated", p.Events)
			}

			s.do(t, "PATCH", "/api/messages/"+sent.ID, bob.Token, map[string]string{"content": "mine now"}).want(t, 403)
			s.do(t, "PATCH", "/api/messages/"+sent.ID, carol.Token, map[string]string{"content": "x"}).want(t, 404)
			s.do(t, "PATCH", "/api/messages/"+sent.ID, alice.Token, map[string]string{"content": ""}).want(t, 400)
			s.do(t, "PATCH", "/api/messages/"+aoba.NewID(), alice.Token, map[string]string{"content": "x"}).want(t, 404)
			s.do(t, "PATCH", "/api/messages/not-an-id", alice.Token, map[string]string{"content": "x"}).want(t, 400)
			s.do(t, "DELETE", "/api/messages/"+sent.ID, bob.Token, nil).want(t, 403)
			s.do(t, "DELETE", "/api/messages/"+sent.ID, carol.Token, nil).want(t, 404)

			s.do(t, "DELETE", "/api/messages/"+sent.ID, alice.Token, nil).want(t, 204)
			if live := readMessageFrame(t, bc, aoba.FrameMessageDeleted, sent.ID); !live.Deleted || live.Content != "" {
				t.Fatalf("message.deleted %+v", live)
			}
			if h := findMessage(t, historyWith(t, s, bob.Token, alice.Name), sent.ID); !h.Deleted || h.Content != "" {
				t.Fatalf("history after delete %+v", h)
			}
			s.do(t, "DELETE", "/api/messages/"+sent.ID, alice.Token, nil).want(t, 204)
			s.do(t, "PATCH", "/api/messages/"+sent.ID, alice.Token, map[string]string{"content": "back"}).want(t, 409)
		})

		t.Run("Group", func(t *testing.T) {
			admin := s.register(t, "admin")
			member := s.register(t, "member")
			var g createdGroup
			s.do(t, "POST", "/api/groups", alice.Token, map[string]any{"name": "Edits"}).want(t, 201).decode(t, &g)
			gid := g.Group.ID
			s.do(t, "POST", "/api/groups/"+gid+"/members", alice.Token, map[string]string{"username": admin.Name, "role": "admin"}).want(t, 201)
			s.do(t, "POST", "/api/groups/"+gid+"/members", alice.Token, map[string]string{"username": member.Name, "role": "member"}).want(t, 201)
			s.do(t, "POST", "/api/groups/"+gid+"/members", alice.Token, map[string]string{"username": carol.Name, "role": "member"}).want(t, 201)
			cc := dialUser(t, s, carol.Token)

			send := func(from *user, content string) aoba.MessageView {
				t.Helper()
				var m aoba.MessageView
				s.do(t, "POST", "/api/messages", from.Token, map[string]string{"to": gid, "type": "groupchat", "content": content}).want(t, 201).decode(t, &m)
				return m
			}
			m1 := send(member, "by a member")
			s.do(t, "DELETE", "/api/messages/"+m1.ID, carol.Token, nil).want(t, 403)
			s.do(t, "PATCH", "/api/messages/"+m1.ID, admin.Token, map[string]string{"content": "x"}).want(t, 403)
			s.do(t, "DELETE", "/api/messages/"+m1.ID, admin.Token, nil).want(t, 204)
			if live := readMessageFrame(t, cc, aoba.FrameMessageDeleted, m1.ID); !live.Deleted || live.Content != "" {
				t.Fatalf("message.deleted %+v", live)
			}
			if h := findMessage(t, historyWith(t, s, member.Token, gid), m1.ID); !h.Deleted || h.Content != "" {
				t.Fatalf("history after delete %+v", h)
			}
			m2 := send(admin, "by the admin")
			s.do(t, "DELETE", "/api/messages/"+m2.ID, alice.Token, nil).want(t, 204)
			readMessageFrame(t, cc, aoba.FrameMessageDeleted, m2.ID)
			m3 := send(carol, "by carol")
			s.do(t, "PATCH", "/api/messages/"+m3.ID, carol.Token, map[string]string{"content": fmt.Sprintf("edited by %s", carol.Name)}).want(t, 200)
			if live := readMessageFrame(t, cc, aoba.FrameMessageUpdated, m3.ID); live.EditedAt == nil {
				t.Fatalf("message.updated %+v", live)
			}
			s.do(t, "DELETE", "/api/messages/"+m3.ID, bob.Token, nil).want(t, 404)
		})
	})
}
