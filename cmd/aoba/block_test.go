package main_test

import (
	"testing"

	"github.com/fasthttp/websocket"

	"github.com/aoba-chat/aoba"
)

// noPresenceBefore pings c and fails the test if a presence frame arrives
// before the pong: frames reach a socket in order, so whatever was queued
// on it before the ping is read first.
func noPresenceBefore(t *testing.T, c *websocket.Conn) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":"np"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		f := readAny(t, c)
		if f.Type == aoba.FramePresence {
			t.Fatalf("unexpected presence frame %s", f.Data)
		}
		if f.Type == aoba.FramePong && f.ID == "np" {
			return
		}
	}
}

// TestBlocks: the block routes and every effect of a block on the blocked
// user (REST and socket), and that unblocking restores them.
func TestBlocks(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice, bob, carol := s.register(t, "alice"), s.register(t, "bob"), s.register(t, "carol")
		blocks := func(t *testing.T, u *user) []string {
			t.Helper()
			var out struct {
				Blocks []struct {
					ID       string `json:"id"`
					Username string `json:"username"`
				} `json:"blocks"`
			}
			s.do(t, "GET", "/api/users/me/blocks", u.Token, nil).want(t, 200).decode(t, &out)
			names := []string{}
			for _, b := range out.Blocks {
				names = append(names, b.Username)
			}
			return names
		}

		t.Run("Routes", func(t *testing.T) {
			s.do(t, "PUT", "/api/users/me/blocks/"+carol.Name, carol.Token, nil).want(t, 400)
			s.do(t, "PUT", "/api/users/me/blocks/nobody_at_all", carol.Token, nil).want(t, 404)
			s.do(t, "DELETE", "/api/users/me/blocks/nobody_at_all", carol.Token, nil).want(t, 404)
			s.do(t, "DELETE", "/api/users/me/blocks/"+bob.Name, carol.Token, nil).want(t, 204)
			if got := blocks(t, carol); len(got) != 0 {
				t.Fatalf("blocks %v, want none", got)
			}
			s.do(t, "PUT", "/api/users/me/blocks/"+bob.Name, carol.Token, nil).want(t, 204)
			s.do(t, "PUT", "/api/users/me/blocks/"+bob.Name, carol.Token, nil).want(t, 204)
			if got := blocks(t, carol); len(got) != 1 || got[0] != bob.Name {
				t.Fatalf("blocks %v, want bob", got)
			}
			// The cookie needs a same-site origin, like every write.
			s.do(t, "PUT", "/api/users/me/blocks/"+alice.Name, "", nil, withCookie(carol.Token), withHeader("Origin", "https://evil.example")).want(t, 403)
			s.do(t, "DELETE", "/api/users/me/blocks/"+bob.Name, carol.Token, nil).want(t, 204)
			if got := blocks(t, carol); len(got) != 0 {
				t.Fatalf("blocks after unblocking %v, want none", got)
			}
		})

		// Bob and carol watch alice while she is offline.
		b, c := s.dialOK(t, bob.Token), s.dialOK(t, carol.Token)
		defer b.Close()
		defer c.Close()
		watch := func(t *testing.T, conn *websocket.Conn) {
			t.Helper()
			if typ, d := ask(t, conn, "w", `{"type":"presence.subscribe","id":"w","data":{"usernames":["`+alice.Name+`"]}}`); typ != aoba.FrameAck {
				t.Fatalf("subscribe: %s %v", typ, d)
			}
		}
		watch(t, b)
		watch(t, c)
		s.do(t, "PUT", "/api/users/me/blocks/"+bob.Name, alice.Token, nil).want(t, 204)
		// The block reached bob's watching socket as alice going offline.
		if f := readFrame(t, b, aoba.FramePresence); !contains(string(f.Data), `"status":"offline","lastSeen":null`) {
			t.Fatalf("presence at block %s", f.Data)
		}
		a := s.dialOK(t, alice.Token)
		defer a.Close()
		if f := readFrame(t, c, aoba.FramePresence); !contains(string(f.Data), `"status":"online"`) {
			t.Fatalf("carol got %s, want alice online", f.Data)
		}
		noPresenceBefore(t, b)

		t.Run("Messages", func(t *testing.T) {
			r := s.do(t, "POST", "/api/messages", bob.Token, map[string]string{"to": alice.Name, "content": "hi"}).want(t, 403)
			if msg := errorMessage(r); msg != "You cannot message this user." {
				t.Fatalf("message %q", msg)
			}
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": "hi"}).want(t, 403)
			s.do(t, "POST", "/api/messages", carol.Token, map[string]string{"to": alice.Name, "content": "hi"}).want(t, 201)
			typ, d := ask(t, b, "m", `{"type":"message.send","id":"m","data":{"to":"`+alice.Name+`","content":"hi"}}`)
			if typ != aoba.FrameError || d["code"] != "forbidden" || d["message"] != "You cannot message this user." {
				t.Fatalf("message.send: %s %v, want forbidden", typ, d)
			}
			typ, d = ask(t, b, "t", `{"type":"typing","id":"t","data":{"to":"`+alice.Name+`","state":"composing"}}`)
			if typ != aoba.FrameError || d["code"] != "forbidden" {
				t.Fatalf("typing: %s %v, want forbidden", typ, d)
			}
		})

		t.Run("Invitations", func(t *testing.T) {
			var g createdGroup
			s.do(t, "POST", "/api/groups", bob.Token, map[string]any{"name": "Bobs"}).want(t, 201).decode(t, &g)
			s.do(t, "POST", "/api/groups/"+g.Group.ID+"/invitations", bob.Token, map[string]string{"username": alice.Name}).want(t, 403)
			s.do(t, "POST", "/api/groups/"+g.Group.ID+"/invitations", bob.Token, map[string]string{"username": carol.Name}).want(t, 201)
		})

		t.Run("Presence", func(t *testing.T) {
			var one struct {
				Status   string  `json:"status"`
				LastSeen *string `json:"lastSeen"`
			}
			s.do(t, "GET", "/api/presence/"+alice.Name, bob.Token, nil).want(t, 200).decode(t, &one)
			if one.Status != "offline" || one.LastSeen != nil {
				t.Fatalf("bob sees alice %+v", one)
			}
			s.do(t, "GET", "/api/presence/id/"+alice.ID, bob.Token, nil).want(t, 200).decode(t, &one)
			if one.Status != "offline" || one.LastSeen != nil {
				t.Fatalf("bob sees alice by id %+v", one)
			}
			var batch struct {
				Presence map[string]struct {
					Status   string  `json:"status"`
					LastSeen *string `json:"lastSeen"`
				} `json:"presence"`
			}
			s.do(t, "POST", "/api/presence/batch", bob.Token, map[string][]string{"usernames": {alice.Name}}).want(t, 200).decode(t, &batch)
			if p := batch.Presence[alice.Name]; p.Status != "offline" || p.LastSeen != nil {
				t.Fatalf("bob's batch %+v", batch)
			}
			s.do(t, "POST", "/api/presence/id/batch", bob.Token, map[string][]string{"userIds": {alice.ID}}).want(t, 200).decode(t, &batch)
			if p := batch.Presence[alice.ID]; p.Status != "offline" || p.LastSeen != nil {
				t.Fatalf("bob's id batch %+v", batch)
			}
			s.do(t, "GET", "/api/presence/"+alice.Name, carol.Token, nil).want(t, 200).decode(t, &one)
			if one.Status != "online" {
				t.Fatalf("carol sees alice %+v", one)
			}
			// A new subscribe reports alice offline too.
			b2 := s.dialOK(t, bob.Token)
			defer b2.Close()
			if err := b2.WriteMessage(websocket.TextMessage, []byte(`{"type":"presence.subscribe","id":"w2","data":{"userIds":["`+alice.ID+`"]}}`)); err != nil {
				t.Fatal(err)
			}
			if f := readFrame(t, b2, aoba.FramePresence); !contains(string(f.Data), `"status":"offline","lastSeen":null`) {
				t.Fatalf("presence at subscribe %s", f.Data)
			}
		})

		t.Run("UnblockRestores", func(t *testing.T) {
			s.do(t, "DELETE", "/api/users/me/blocks/"+bob.Name, alice.Token, nil).want(t, 204)
			if f := readFrame(t, b, aoba.FramePresence); !contains(string(f.Data), `"status":"online"`) {
				t.Fatalf("presence at unblock %s", f.Data)
			}
			var one struct {
				Status string `json:"status"`
			}
			s.do(t, "GET", "/api/presence/"+alice.Name, bob.Token, nil).want(t, 200).decode(t, &one)
			if one.Status != "online" {
				t.Fatalf("bob sees alice %+v after unblock", one)
			}
			s.do(t, "POST", "/api/messages", bob.Token, map[string]string{"to": alice.Name, "content": "hi again"}).want(t, 201)
			if typ, d := ask(t, b, "t2", `{"type":"typing","id":"t2","data":{"to":"`+alice.Name+`","state":"composing"}}`); typ != aoba.FrameAck {
				t.Fatalf("typing after unblock: %s %v", typ, d)
			}
			var g createdGroup
			s.do(t, "POST", "/api/groups", bob.Token, map[string]any{"name": "Bobs2"}).want(t, 201).decode(t, &g)
			s.do(t, "POST", "/api/groups/"+g.Group.ID+"/invitations", bob.Token, map[string]string{"username": alice.Name}).want(t, 201)
		})

		t.Run("SyncEvents", func(t *testing.T) {
			// The blocker's devices learn both changes; the blocked user
			// learns nothing.
			var res struct {
				Events []struct {
					Type string         `json:"type"`
					Data map[string]any `json:"data"`
				} `json:"events"`
			}
			s.do(t, "GET", "/api/sync", alice.Token, nil).want(t, 200).decode(t, &res)
			var got []any
			for _, e := range res.Events {
				if e.Type == aoba.EventBlock && e.Data["user_id"] == bob.ID {
					got = append(got, e.Data["event"])
				}
			}
			if len(got) != 2 || got[0] != aoba.BlockBlocked || got[1] != aoba.BlockUnblocked {
				t.Fatalf("alice's block events %v, want blocked then unblocked", got)
			}
			res.Events = nil
			s.do(t, "GET", "/api/sync", bob.Token, nil).want(t, 200).decode(t, &res)
			for _, e := range res.Events {
				if e.Type == aoba.EventBlock {
					t.Fatalf("bob's sync holds %v", e)
				}
			}
		})
	})
}
