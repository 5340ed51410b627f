package main_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/api"
	"github.com/aoba-chat/aoba/internal/asyncapitest"
	"github.com/fasthttp/websocket"
)

// tap is one test socket whose every frame, both ways, is validated against
// the AsyncAPI document (strictly: no undocumented field) and recorded.
type tap struct {
	t    *testing.T
	name string
	c    *websocket.Conn
	doc  *asyncapitest.Doc
	seen map[asyncapitest.Direction]map[string]bool
}

// send validates a client frame, then writes it.
func (x *tap) send(frame string) {
	x.t.Helper()
	if err := x.doc.Validate(asyncapitest.Receive, []byte(frame)); err != nil {
		x.t.Fatalf("%s sends %s: %v", x.name, frame, err)
	}
	var f aoba.Frame
	_ = json.Unmarshal([]byte(frame), &f)
	x.seen[asyncapitest.Receive][f.Type] = true
	x.write(frame)
}

// sendInvalid writes a client frame the document must refuse.
func (x *tap) sendInvalid(frame string) {
	x.t.Helper()
	if err := x.doc.Validate(asyncapitest.Receive, []byte(frame)); err == nil {
		x.t.Fatalf("the AsyncAPI document accepts the bad frame %s", frame)
	}
	x.write(frame)
}

func (x *tap) write(frame string) {
	x.t.Helper()
	if err := x.c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		x.t.Fatalf("%s write: %v", x.name, err)
	}
}

// next reads, validates and records the next server frame.
func (x *tap) next() aoba.Frame {
	x.t.Helper()
	_ = x.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := x.c.ReadMessage()
	if err != nil {
		x.t.Fatalf("%s read: %v", x.name, err)
	}
	if err := x.doc.Validate(asyncapitest.Send, data); err != nil {
		x.t.Errorf("%s received %s: %v", x.name, data, err)
	}
	var f aoba.Frame
	if err := json.Unmarshal(data, &f); err != nil {
		x.t.Fatalf("frame %s: %v", data, err)
	}
	x.seen[asyncapitest.Send][f.Type] = true
	return f
}

// until reads frames until one of type typ for which ok (when set) holds.
func (x *tap) until(typ string, ok func(map[string]any) bool) map[string]any {
	x.t.Helper()
	for {
		f := x.next()
		if f.Type != typ {
			continue
		}
		var d map[string]any
		_ = json.Unmarshal(f.Data, &d)
		if ok == nil || ok(d) {
			return d
		}
	}
}

// reply reads frames until the reply with id, which must be of type typ.
func (x *tap) reply(id, typ string) map[string]any {
	x.t.Helper()
	for {
		f := x.next()
		if f.ID != id {
			continue
		}
		var d map[string]any
		_ = json.Unmarshal(f.Data, &d)
		if f.Type != typ {
			x.t.Fatalf("%s: reply to %q is %s %v, want %s", x.name, id, f.Type, d, typ)
		}
		return d
	}
}

// TestFramesMatchAsyncAPI drives a realistic two-user session over real
// sockets, through every frame type both ways, and validates every frame
// sent and received against the AsyncAPI document served at
// GET /api/asyncapi.json.
func TestFramesMatchAsyncAPI(t *testing.T) {
	doc, err := asyncapitest.Load(api.AsyncAPI, true)
	if err != nil {
		t.Fatal(err)
	}
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		if r := s.do(t, "GET", "/api/asyncapi.json", "", nil).want(t, 200); !bytes.Equal(r.Body, api.AsyncAPI) {
			t.Fatal("GET /api/asyncapi.json does not serve the embedded document")
		}
		alice := s.register(t, "alice")
		bob := s.register(t, "bob")
		seen := map[asyncapitest.Direction]map[string]bool{asyncapitest.Send: {}, asyncapitest.Receive: {}}
		open := func(name, query string, h http.Header) *tap {
			c, _, err := s.dial(t, query, h)
			if err != nil {
				t.Fatalf("%s dial: %v", name, err)
			}
			x := &tap{t: t, name: name, c: c, doc: doc, seen: seen}
			if f := x.next(); f.Type != aoba.FrameHello {
				t.Fatalf("%s: first frame %s, want hello", name, f.Type)
			}
			return x
		}
		ok := func(r *response) {
			t.Helper()
			if r.Status < 200 || r.Status > 299 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
		}

		b := open("bob", "", http.Header{"Authorization": {"Bearer " + bob.Token}})
		b.send(`{"type":"ping","id":"p1"}`)
		b.reply("p1", aoba.FramePong)
		b.send(`{"type":"presence.subscribe","id":"s1","data":{"usernames":["` + alice.Name + `","nobody_at_all"]}}`)
		b.until(aoba.FramePresence, func(d map[string]any) bool { return d["username"] == alice.Name && d["status"] == "offline" })
		if d := b.reply("s1", aoba.FrameAck); !slices.Equal(toStrings(d["unknown"]), []string{"nobody_at_all"}) {
			t.Fatalf("subscribe ack %v", d)
		}

		var ticket struct {
			Ticket string `json:"ticket"`
		}
		s.do(t, "POST", "/api/auth/ws-ticket", alice.Token, nil).want(t, 200).decode(t, &ticket)
		a := open("alice", "?ticket="+ticket.Ticket, nil)
		b.until(aoba.FramePresence, func(d map[string]any) bool { return d["username"] == alice.Name && d["status"] == "online" })

		a.send(`{"type":"typing","id":"t1","data":{"to":"` + bob.Name + `","state":"composing"}}`)
		if d := a.reply("t1", aoba.FrameAck); len(d) != 0 {
			t.Fatalf("typing ack %v, want {}", d)
		}
		b.until(aoba.FrameTyping, func(d map[string]any) bool { return d["from"] == alice.Name && d["state"] == "composing" })

		a.send(`{"type":"message.send","id":"m1","data":{"to":"` + bob.Name + `","content":"hello over the socket","client_id":"c-1"}}`)
		if d := a.reply("m1", aoba.FrameAck); d["client_id"] != "c-1" {
			t.Fatalf("send ack %v", d)
		}
		m1 := b.until(aoba.FrameMessage, func(d map[string]any) bool { return d["client_id"] == "c-1" })

		b.send(`{"type":"read","id":"r1","data":{"conversation":"` + alice.ID + `","up_to":"` + m1["id"].(string) + `"}}`)
		if d := b.reply("r1", aoba.FrameAck); d["unread"] != float64(0) || d["read_up_to"] != m1["id"] {
			t.Fatalf("read ack %v", d)
		}
		a.until(aoba.FrameReceipt, func(d map[string]any) bool { return d["conversation"] == bob.ID && d["read_up_to"] == m1["id"] })

		a.sendInvalid(`{"type":"typing","id":"bad","data":{"to":"` + bob.Name + `","state":"shouting"}}`)
		if d := a.reply("bad", aoba.FrameError); d["code"] != "invalid" {
			t.Fatalf("error %v, want code invalid", d)
		}
		a.sendInvalid(`{"type":"teleport"}`)
		a.until(aoba.FrameError, func(d map[string]any) bool { return d["code"] == "invalid" })

		b.send(`{"type":"presence.unsubscribe","id":"u1","data":{"usernames":["` + alice.Name + `"]}}`)
		b.reply("u1", aoba.FrameAck)

		var g createdGroup
		s.do(t, "POST", "/api/groups", alice.Token, map[string]any{"name": "Frames", "initial_members": []string{bob.Name}}).want(t, 201).decode(t, &g)
		gid := g.Group.ID
		inv := b.until(aoba.FrameInvitation, func(d map[string]any) bool { return d["group_id"] == gid })
		ok(s.do(t, "POST", "/api/invitations/"+inv["id"].(string)+"/accept", bob.Token, nil))
		a.until(aoba.FrameGroup, func(d map[string]any) bool { return d["event"] == aoba.GroupMemberAdded })

		b.send(`{"type":"message.send","id":"g1","data":{"to":"` + gid + `","type":"groupchat","content":"hi all"}}`)
		gm := b.reply("g1", aoba.FrameAck)
		a.until(aoba.FrameMessage, func(d map[string]any) bool { return d["type"] == "groupchat" })
		gmID, _ := gm["id"].(string)
		ok(s.do(t, "PATCH", "/api/messages/"+gmID, bob.Token, map[string]string{"content": "hi all, edited"}))
		a.until(aoba.FrameMessageUpdated, func(d map[string]any) bool { return d["id"] == gmID && d["edited_at"] != nil })
		ok(s.do(t, "DELETE", "/api/messages/"+gmID, bob.Token, nil))
		a.until(aoba.FrameMessageDeleted, func(d map[string]any) bool { return d["id"] == gmID && d["deleted"] == true })
		b.send(`{"type":"typing","data":{"to":"` + gid + `","type":"groupchat","state":"paused"}}`)
		a.until(aoba.FrameTyping, func(d map[string]any) bool { return d["type"] == "groupchat" })

		ok(s.do(t, "PUT", "/api/groups/"+gid+"/members/"+bob.Name+"/role", alice.Token, map[string]string{"role": "admin"}))
		b.until(aoba.FrameGroup, func(d map[string]any) bool { return d["event"] == aoba.GroupRoleChanged })
		ok(s.do(t, "POST", "/api/groups/"+gid+"/transfer", alice.Token, map[string]string{"newOwner": bob.Name}))
		b.until(aoba.FrameGroup, func(d map[string]any) bool { return d["event"] == aoba.GroupOwnerTransferred })
		ok(s.do(t, "POST", "/api/groups/"+gid+"/leave", alice.Token, nil))
		b.until(aoba.FrameGroup, func(d map[string]any) bool { return d["event"] == aoba.GroupMemberLeft })
		ok(s.do(t, "DELETE", "/api/groups/"+gid, bob.Token, nil))
		b.until(aoba.FrameGroup, func(d map[string]any) bool { return d["event"] == aoba.GroupDeleted })

		s.do(t, "PUT", "/api/users/me/blocks/"+alice.Name, bob.Token, nil).want(t, 204)
		b.until(aoba.FrameBlock, func(d map[string]any) bool { return d["event"] == aoba.BlockBlocked && d["user_id"] == alice.ID })

		for _, dir := range []asyncapitest.Direction{asyncapitest.Send, asyncapitest.Receive} {
			for _, typ := range doc.Types(dir) {
				if !seen[dir][typ] {
					t.Errorf("the session never exercised the %s frame %q", dir, typ)
				}
			}
		}
	})
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}
