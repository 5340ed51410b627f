package realtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/realtime"
)

func TestNode(t *testing.T) {
	e := newEnv(t, realtime.Config{RateStandard: 1000})
	ctx := context.Background()
	aliceTok, alice := e.user("alice")
	bobTok, _ := e.user("bob")
	carolTok, _ := e.user("carol")
	daveTok, _ := e.user("dave")
	g, err := e.svc.CreateGroup(ctx, alice, "team", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"bob", "carol"} {
		if _, err := e.svc.AddMember(ctx, alice, g.Group.ID, m, "member"); err != nil {
			t.Fatal(err)
		}
	}
	a1, a2 := e.dial(aliceTok), e.dial(aliceTok)
	b1, c1, d1 := e.dial(bobTok), e.dial(carolTok), e.dial(daveTok)

	t.Run("PingPong", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		a1.send(realtime.FramePing, "p1", nil)
		if f := a1.expect(aoba.FramePong); f.ID != "p1" {
			t.Fatalf("pong id %q, want p1", f.ID)
		}
	})

	t.Run("MessageSend", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		a1.send(realtime.FrameMessageSend, "m1", aoba.SendInput{To: "bob", Content: "hi bob"})
		ack := a1.expect(aoba.FrameAck)
		if ack.ID != "m1" {
			t.Fatalf("ack id %q, want m1", ack.ID)
		}
		sent := decodeData[aoba.MessageView](t, ack)
		if sent.ID == "" || sent.Content != "hi bob" || sent.From != "alice" || sent.To != "bob" || sent.Status != "sent" {
			t.Fatalf("ack data %+v", sent)
		}
		for name, c := range map[string]*client{"recipient": b1, "sender's other socket": a2} {
			got := decodeData[aoba.MessageView](t, c.expect(aoba.FrameMessage))
			if got.ID != sent.ID || got.Content != "hi bob" {
				t.Fatalf("%s got %+v, want message %s", name, got, sent.ID)
			}
		}
		a1.quiet() // the sending socket got the ack only
		c1.quiet()
	})

	t.Run("GroupMessage", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		b1.send(realtime.FrameMessageSend, "g1", aoba.SendInput{To: g.Group.ID, Content: "hello team", Type: aoba.MessageGroupChat})
		sent := decodeData[aoba.MessageView](t, b1.expect(aoba.FrameAck))
		for name, c := range map[string]*client{"alice 1": a1, "alice 2": a2, "carol": c1} {
			got := decodeData[aoba.MessageView](t, c.expect(aoba.FrameMessage))
			if got.ID != sent.ID || got.Type != aoba.MessageGroupChat || got.To != g.Group.ID {
				t.Fatalf("%s got %+v, want group message %s", name, got, sent.ID)
			}
		}
		b1.quiet()
		d1.quiet()
	})

	t.Run("NonMemberGroup", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		d1.send(realtime.FrameMessageSend, "x", aoba.SendInput{To: g.Group.ID, Content: "let me in", Type: aoba.MessageGroupChat})
		f := d1.expect(aoba.FrameError)
		if got := decodeData[errorData](t, f); f.ID != "x" || got.Error != "Not Found" || got.Message == "" {
			t.Fatalf("error frame %s %+v", f.ID, got)
		}
		a1.quiet()
	})

	t.Run("BadFrames", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		for name, raw := range map[string]string{
			"NotJSON":     `{"type": "ping"`,
			"UnknownType": `{"type": "dance", "id": "u"}`,
			"BadData":     `{"type": "message.send", "id": "b", "data": "nope"}`,
			"EmptyTo":     `{"type": "message.send", "id": "b", "data": {"content": "x"}}`,
		} {
			t.Run(name, func(t *testing.T) {
				use(t, d1)
				if err := d1.ws.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
					t.Fatal(err)
				}
				if got := decodeData[errorData](t, d1.expect(aoba.FrameError)); got.Error != "Bad Request" {
					t.Fatalf("error %+v, want Bad Request", got)
				}
			})
		}
		use(t, d1)
		d1.quiet() // still connected
	})

	t.Run("Typing", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		a1.send(realtime.FrameTyping, "", map[string]string{"to": "dave", "type": "chat", "state": "composing"})
		got := decodeData[aoba.TypingEvent](t, d1.expect(aoba.FrameTyping))
		if got.From != "alice" || got.To != "dave" || got.State != "composing" {
			t.Fatalf("typing %+v", got)
		}
		a1.quiet()
		a2.quiet() // typing does not echo to the typist's sockets
		msgs, _, err := e.svc.History(ctx, alice, aoba.HistoryQuery{With: "dave", Limit: 10})
		if err != nil {
			t.Fatal(err)
		} else if len(msgs) != 0 {
			t.Fatalf("typing stored %d messages", len(msgs))
		}
		a1.send(realtime.FrameTyping, "t2", map[string]string{"to": "dave", "state": "shouting"})
		if got := decodeData[errorData](t, a1.expect(aoba.FrameError)); got.Error != "Bad Request" {
			t.Fatalf("bad state: %+v", got)
		}
	})

	t.Run("Presence", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		_, erin := e.user("erin")
		b1.send(realtime.FramePresenceSub, "s", map[string]any{"usernames": []string{"ERIN", "carol", "nobody"}})
		seen := map[string]aoba.UserPresence{}
		for range 2 {
			p := decodeData[aoba.UserPresence](t, b1.expect(aoba.FramePresence))
			seen[p.Username] = p
		}
		if seen["erin"].Status != aoba.StatusOffline || seen["erin"].LastSeen != nil || seen["erin"].UserID != erin.UserID {
			t.Fatalf("erin presence %+v", seen["erin"])
		}
		if seen["carol"].Status != aoba.StatusOnline {
			t.Fatalf("carol presence %+v", seen["carol"])
		}
		// The ack follows the events and names what matched nobody.
		ack := b1.expect(aoba.FrameAck)
		var res struct {
			Unknown []string `json:"unknown"`
		}
		if err := json.Unmarshal(ack.Data, &res); err != nil || ack.ID != "s" || len(res.Unknown) != 1 || res.Unknown[0] != "nobody" {
			t.Fatalf("subscribe ack = %s %s, want unknown [nobody]", ack.ID, ack.Data)
		}
		erinTok, _ := e.login("erin")
		er := e.dial(erinTok)
		p := decodeData[aoba.UserPresence](t, b1.expect(aoba.FramePresence))
		if p.Username != "erin" || p.Status != aoba.StatusOnline {
			t.Fatalf("live presence %+v, want erin online", p)
		}
		_ = er.ws.Close()
		p = decodeData[aoba.UserPresence](t, b1.expect(aoba.FramePresence))
		if p.Username != "erin" || p.Status != aoba.StatusOffline || p.LastSeen == nil {
			t.Fatalf("live presence %+v, want erin offline with lastSeen", p)
		}
		b1.send(realtime.FramePresenceUnsub, "", map[string]any{"userIds": []string{erin.UserID}})
		b1.quiet()
		er = e.dial(erinTok)
		er.quiet()
		b1.quiet() // no event after unsubscribing
	})

	t.Run("CloseOrderMatchesSession", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		tok1, s1 := e.login("carol")
		tok2, _ := e.login("carol")
		k1, k2 := e.dial(tok1), e.dial(tok2)
		k1.quiet()
		k2.quiet()
		if err := e.svc.Logout(ctx, s1); err != nil {
			t.Fatal(err)
		}
		if code := k1.closeCode(5 * time.Second); code != aoba.CloseSessionRevoked {
			t.Fatalf("close code %d, want %d", code, aoba.CloseSessionRevoked)
		}
		k2.quiet()
		c1.quiet()
	})

	t.Run("RateLimited", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		e2 := newEnv(t, realtime.Config{RateStandard: 2})
		tok, _ := e2.user("frank")
		e2.user("gina")
		f := e2.dial(tok)
		for i := range 2 {
			f.send(realtime.FrameMessageSend, fmt.Sprint(i), aoba.SendInput{To: "gina", Content: "x"})
			f.expect(aoba.FrameAck)
		}
		f.send(realtime.FrameMessageSend, "3", aoba.SendInput{To: "gina", Content: "x"})
		ef := f.expect(aoba.FrameError)
		if got := decodeData[errorData](t, ef); ef.ID != "3" || got.Error != "Too Many Requests" {
			t.Fatalf("error frame %s %+v", ef.ID, got)
		}
	})
}

// TestPresenceFanoutNarrowing: on a presence topic, ExceptUsers skips the
// sockets of those users and OnlyUser reaches that user's sockets alone
// (how a block hides the blocker's presence from the blocked user).
func TestPresenceFanoutNarrowing(t *testing.T) {
	e := newEnv(t, realtime.Config{RateStandard: 1000, RateBatch: 1000})
	_, alice := e.user("alice")
	bobTok, bob := e.user("bob")
	carolTok, _ := e.user("carol")
	b1, c1 := e.dial(bobTok), e.dial(carolTok)
	for _, c := range []*client{b1, c1} {
		c.send(realtime.FramePresenceSub, "s", map[string]any{"usernames": []string{"alice"}})
		c.expect(aoba.FramePresence)
		c.expect(aoba.FrameAck)
	}
	frame := []byte(`{"type":"presence","data":{"userId":"` + alice.UserID + `","status":"online"}}`)
	topic := aoba.PresenceTopic(alice.UserID)

	e.node.Deliver(topic, aoba.Envelope{Frame: frame, ExceptUsers: []string{"someone", bob.UserID}})
	c1.expect(aoba.FramePresence)
	b1.quiet()

	e.node.Deliver(topic, aoba.Envelope{Frame: frame, OnlyUser: bob.UserID})
	b1.expect(aoba.FramePresence)
	c1.quiet()
}
