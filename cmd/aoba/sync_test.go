package main_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aoba-chat/aoba"
)

// syncPage is one response of GET /api/sync.
type syncPage struct {
	Messages []aoba.MessageView `json:"messages"`
	Events   []aoba.EventView   `json:"events"`
	Next     string             `json:"next"`
	More     bool               `json:"more"`
}

// syncItem is a message or an event of a sync page, named for assertions:
// "msg:<content>", "invitation:<group name>" or "group:<event>".
type syncItem struct {
	id, name string
}

// syncAll calls GET /api/sync from since with limit until more is false and
// returns the items in the order received and the last next. It fails the
// test when a page is out of id order or when one pass returns an item
// twice.
func (s *server) syncAll(t *testing.T, token, since string, limit int) ([]syncItem, string) {
	t.Helper()
	var items []syncItem
	seen := map[string]bool{}
	cursor := since
	for range 100 {
		var p syncPage
		s.do(t, "GET", fmt.Sprintf("/api/sync?since=%s&limit=%d", cursor, limit), token, nil).want(t, 200).decode(t, &p)
		if n := len(p.Messages) + len(p.Events); n > limit {
			t.Fatalf("page of %d items, limit %d", n, limit)
		}
		var page []syncItem
		for _, m := range p.Messages {
			page = append(page, syncItem{m.ID, "msg:" + m.Content})
		}
		for _, e := range p.Events {
			var d struct {
				Event     string `json:"event"`
				GroupName string `json:"group_name"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatalf("event data %s: %v", e.Data, err)
			}
			name := e.Type + ":" + d.Event
			if e.Type == aoba.FrameInvitation {
				name = e.Type + ":" + d.GroupName
			}
			page = append(page, syncItem{e.ID, name})
		}
		// Merge the two lists of the page by id, as a client would.
		for i := range page {
			for j := i + 1; j < len(page); j++ {
				if page[j].id < page[i].id {
					page[i], page[j] = page[j], page[i]
				}
			}
		}
		for _, it := range page {
			if seen[it.id] {
				t.Fatalf("item %s returned twice in one pass", it.name)
			}
			seen[it.id] = true
			items = append(items, it)
		}
		cursor = p.Next
		if !p.More {
			return items, cursor
		}
	}
	t.Fatal("sync never reached more=false")
	return nil, ""
}

func names(items []syncItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.name
	}
	return out
}

func TestSync(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice, bob := s.register(t, "alice"), s.register(t, "bob")

		// Bob connects once: hello comes first and gives his cursor.
		c, _, err := s.dial(t, "?token="+bob.Token, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var f aoba.Frame
		var hello aoba.Hello
		if err := json.Unmarshal(data, &f); err != nil || f.Type != aoba.FrameHello {
			t.Fatalf("first frame = %s, want hello", data)
		}
		if err := json.Unmarshal(f.Data, &hello); err != nil || hello.Sync == "" || hello.SessionID == "" || hello.Heartbeat <= 0 {
			t.Fatalf("hello = %s, want session_id, sync and heartbeat", f.Data)
		}
		c.Close() // Bob is away from here on.

		send := func(to, content, typ string) {
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": to, "content": content, "type": typ}).want(t, 201)
		}
		send(bob.Name, "one", "chat")
		gid := s.newGroup(t, alice.Token, "tea")
		send(gid, "before bob", "groupchat")
		var inv aoba.InvitationView
		s.do(t, "POST", "/api/groups/"+gid+"/invitations", alice.Token, map[string]string{"username": bob.Name}).want(t, 201).decode(t, &inv)
		s.do(t, "POST", "/api/invitations/"+inv.ID+"/accept", bob.Token, nil).want(t, 200)
		send(gid, "g1", "groupchat")
		send(bob.Name, "two", "chat")
		s.do(t, "PUT", "/api/groups/"+gid+"/members/"+bob.Name+"/role", alice.Token, map[string]string{"role": "admin"}).want(t, 200)
		send(gid, "g2", "groupchat")

		want := []string{"msg:one", "msg:before bob", "invitation:tea", "group:member_added", "msg:g1", "msg:two",
			"group:role_changed", "msg:g2"}
		items, next := s.syncAll(t, bob.Token, hello.Sync, 2)
		if fmt.Sprint(names(items)) != fmt.Sprint(want) {
			t.Fatalf("bob's sync = %v, want %v", names(items), want)
		}

		t.Run("AgainFromNextBringsNothingNew", func(t *testing.T) {
			// Items of the last 2 s may come again; nothing else may.
			again, _ := s.syncAll(t, bob.Token, next, 100)
			known := map[string]bool{}
			for _, it := range items {
				known[it.id] = true
			}
			for _, it := range again {
				if !known[it.id] {
					t.Fatalf("new item %s after the end", it.name)
				}
			}
		})

		t.Run("LeftMemberGetsNoMoreGroupMessages", func(t *testing.T) {
			s.do(t, "POST", "/api/groups/"+gid+"/leave", bob.Token, nil).want(t, 200)
			send(gid, "after bob", "groupchat")
			send(bob.Name, "three", "chat")
			got, _ := s.syncAll(t, bob.Token, next, 100)
			var fresh []string
			known := map[string]bool{}
			for _, it := range items {
				known[it.id] = true
			}
			for _, it := range got {
				if !known[it.id] {
					fresh = append(fresh, it.name)
				}
			}
			if w := []string{"group:member_left", "msg:three"}; fmt.Sprint(fresh) != fmt.Sprint(w) {
				t.Fatalf("after leaving, bob's sync brings %v, want %v", fresh, w)
			}
		})

		t.Run("BadInput", func(t *testing.T) {
			s.do(t, "GET", "/api/sync?since=nope", bob.Token, nil).want(t, 400)
			s.do(t, "GET", "/api/sync?limit=501", bob.Token, nil).want(t, 400)
			s.do(t, "GET", "/api/sync", "", nil).want(t, 401)
			var p syncPage
			s.do(t, "GET", "/api/sync", alice.Token, nil).want(t, 200).decode(t, &p)
			if len(p.Messages) == 0 || len(p.Events) == 0 {
				t.Fatalf("sync without since = %d messages, %d events; want the retention window's", len(p.Messages), len(p.Events))
			}
		})
	})
}
