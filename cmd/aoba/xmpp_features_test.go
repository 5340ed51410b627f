package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/internal/xmpptest"
)

// Tests of every XMPP feature against a real server, with the raw test
// client (internal/xmpptest) on one side and REST or the JSON socket on
// the other.

const (
	nsRosterT   = "jabber:iq:roster"
	nsStanzasT  = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsMUCUserT  = "http://jabber.org/protocol/muc#user"
	nsMAMT      = "urn:xmpp:mam:2"
	nsRSMT      = "http://jabber.org/protocol/rsm"
	nsCarbonsT  = "urn:xmpp:carbons:2"
	nsChatStatT = "http://jabber.org/protocol/chatstates"
	nsDelayT    = "urn:xmpp:delay"
	xfWait      = 10 * time.Second
)

// xfEnv is xmppEnv for any mode: the listener on a free port, domain
// localhost, and for the scaled-out mode the certificate it requires.
func xfEnv(t *testing.T, start func(env) *server, extra env) *server {
	t.Helper()
	e := env{"AOBA_XMPP_ADDR": "127.0.0.1:0", "AOBA_DOMAIN": "localhost"}
	for k, v := range extra {
		e[k] = v
	}
	return start(e)
}

// xfScaledStart returns forEachMode's start with the certificate files a
// scaled-out XMPP listener needs (the embedded mode generates its own).
func xfWithCert(t *testing.T, start func(env) *server) func(env) *server {
	return func(extra env) *server {
		e := env{}
		for k, v := range extra {
			e[k] = v
		}
		e["AOBA_TLS_CERT"], e["AOBA_TLS_KEY"] = xfCert(t)
		return xfEnv(t, start, e)
	}
}

// xfCert writes a self-signed certificate for localhost into a temporary
// directory and returns the certificate and key files.
func xfCert(t *testing.T) (string, string) {
	t.Helper()
	return testCert(t, t.TempDir())
}

// xfLogin opens a TCP stream of u (STARTTLS, PLAIN) bound to resource.
func xfLogin(t *testing.T, s *server, u *user, resource string) *xmpptest.Client {
	t.Helper()
	return xmpptest.Login(t, s.m.XMPPAddr(), "localhost", u.Name, u.Password, resource)
}

// xfIQ sends an iq with the given id (the format holds the whole stanza)
// and returns the answer with that id.
func xfIQ(t *testing.T, c *xmpptest.Client, id, format string, args ...any) *xmpptest.Node {
	t.Helper()
	c.Send(format, args...)
	return c.Expect(xfWait, "answer to iq "+id, func(n *xmpptest.Node) bool {
		return n.XMLName.Local == "iq" && n.Attr("id") == id && (n.Attr("type") == "result" || n.Attr("type") == "error")
	})
}

// xfCondition returns the defined condition of a stanza error ("" for
// none).
func xfCondition(n *xmpptest.Node) string {
	e := n.Find("", "error")
	if n.Attr("type") != "error" || e == nil {
		return ""
	}
	for _, k := range e.Nodes {
		if k.XMLName.Space == nsStanzasT && k.XMLName.Local != "text" {
			return k.XMLName.Local
		}
	}
	return ""
}

// xfUntil reads stanzas until one matches, within xfWait, and returns it
// with the stanzas read before it.
func xfUntil(t *testing.T, c *xmpptest.Client, what string, match func(*xmpptest.Node) bool) (*xmpptest.Node, []*xmpptest.Node) {
	t.Helper()
	var skipped []*xmpptest.Node
	deadline := time.Now().Add(xfWait)
	for {
		n, err := c.TryNext(time.Until(deadline))
		if err != nil {
			var raws []string
			for _, k := range skipped {
				raws = append(raws, k.Raw)
			}
			t.Fatalf("no %s: %v; got: %s", what, err, strings.Join(raws, " "))
		}
		if match(n) {
			return n, skipped
		}
		skipped = append(skipped, n)
	}
}

// xfPing sends a ping and waits for its answer: every stanza the server
// sent in answer to what the client sent before it was read.
func xfPing(t *testing.T, c *xmpptest.Client) []*xmpptest.Node {
	t.Helper()
	id := fmt.Sprintf("ping-%d", time.Now().UnixNano())
	c.Send(`<iq type="get" id="%s"><ping xmlns="urn:xmpp:ping"/></iq>`, id)
	_, skipped := xfUntil(t, c, "ping answer", func(n *xmpptest.Node) bool { return n.Attr("id") == id })
	return skipped
}

// isPresenceFrom matches a presence stanza from jid of type typ ("" for
// available).
func isPresenceFrom(jid, typ string) func(*xmpptest.Node) bool {
	return func(n *xmpptest.Node) bool {
		return n.XMLName.Local == "presence" && n.Attr("from") == jid && n.Attr("type") == typ
	}
}

// jsonSocket is one JSON WebSocket (/ws) of a user.
type jsonSocket struct {
	c *websocket.Conn
}

// openSocket opens u's JSON socket and reads its hello.
func openSocket(t *testing.T, s *server, u *user) *jsonSocket {
	t.Helper()
	c, _, err := s.dial(t, "?token="+u.Token, nil)
	if err != nil {
		t.Fatalf("dial /ws as %s: %v", u.Name, err)
	}
	js := &jsonSocket{c: c}
	js.wait(t, "hello", func(f aoba.Frame) bool { return f.Type == aoba.FrameHello })
	return js
}

// send writes a frame given as JSON.
func (js *jsonSocket) send(t *testing.T, frame string) {
	t.Helper()
	_ = js.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := js.c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatalf("write frame: %v", err)
	}
}

// wait reads frames until one matches, within xfWait.
func (js *jsonSocket) wait(t *testing.T, what string, match func(aoba.Frame) bool) aoba.Frame {
	t.Helper()
	return js.waitFor(t, xfWait, what, match)
}

// waitFor reads frames until one matches, within d.
func (js *jsonSocket) waitFor(t *testing.T, d time.Duration, what string, match func(aoba.Frame) bool) aoba.Frame {
	t.Helper()
	deadline := time.Now().Add(d)
	var seen []string
	for {
		_ = js.c.SetReadDeadline(deadline)
		_, data, err := js.c.ReadMessage()
		if err != nil {
			t.Fatalf("no %s frame: %v; got: %s", what, err, strings.Join(seen, " "))
		}
		var f aoba.Frame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %s: %v", data, err)
		}
		if match(f) {
			return f
		}
		seen = append(seen, string(data))
	}
}

// message waits for a `message` frame with content.
func (js *jsonSocket) message(t *testing.T, content string) aoba.MessageView {
	t.Helper()
	var m aoba.MessageView
	js.wait(t, "message "+content, func(f aoba.Frame) bool {
		m = aoba.MessageView{}
		return f.Type == aoba.FrameMessage && json.Unmarshal(f.Data, &m) == nil && m.Content == content
	})
	return m
}

// presence waits for a `presence` frame of userID with status. Going
// offline takes longer: a user stays online for a grace period after their
// last connection, and Redis's registry notices at its next sweep (up to
// 10 s in all).
func (js *jsonSocket) presence(t *testing.T, userID string, status aoba.PresenceStatus) {
	t.Helper()
	d := xfWait
	if status == aoba.StatusOffline {
		d = 3 * xfWait
	}
	js.waitFor(t, d, fmt.Sprintf("presence %s of %s", status, userID), func(f aoba.Frame) bool {
		var p aoba.UserPresence
		return f.Type == aoba.FramePresence && json.Unmarshal(f.Data, &p) == nil && p.UserID == userID && p.Status == status
	})
}

// restSend sends a message over REST and returns its id.
func (s *server) restSend(t *testing.T, token, to, content string, group bool) string {
	t.Helper()
	body := map[string]any{"to": to, "content": content}
	if group {
		body["type"] = "groupchat"
	}
	var m aoba.MessageView
	s.do(t, "POST", "/api/messages", token, body).want(t, 201).decode(t, &m)
	return m.ID
}

func TestXMPPRoster(t *testing.T) {
	s := startMain(t, xmppEnv(t))
	alice, bob, carol := s.register(t, "alice"), s.register(t, "bob"), s.register(t, "carol")
	// Bob is a conversation partner of Alice's.
	s.restSend(t, bob.Token, alice.Name, "hi Alice", false)
	a := xfLogin(t, s, alice, "desk")
	a2 := xfLogin(t, s, alice, "phone")

	items := func(t *testing.T) map[string]*xmpptest.Node {
		t.Helper()
		n := xfIQ(t, a, "get1", `<iq type="get" id="get1"><query xmlns="jabber:iq:roster"/></iq>`)
		q := n.Find(nsRosterT, "query")
		if n.Attr("type") != "result" || q == nil {
			t.Fatalf("roster get: %s", n.Raw)
		}
		out := map[string]*xmpptest.Node{}
		for _, it := range q.FindAll("", "item") {
			out[it.Attr("jid")] = it
		}
		return out
	}
	bobJID, carolJID := bob.ID+"@localhost", carol.ID+"@localhost"

	t.Run("ConversationPartner", func(t *testing.T) {
		got := items(t)
		it := got[bobJID]
		if len(got) != 1 || it == nil || it.Attr("name") != bob.Name || it.Attr("subscription") != "both" {
			t.Fatalf("roster %v, want only %s named %s with subscription both", got, bobJID, bob.Name)
		}
	})
	// pushOf waits for a roster push on c and returns its one item.
	pushOf := func(t *testing.T, c *xmpptest.Client) *xmpptest.Node {
		t.Helper()
		n := c.Expect(xfWait, "roster push", func(n *xmpptest.Node) bool {
			return n.XMLName.Local == "iq" && n.Attr("type") == "set" && n.Find(nsRosterT, "query") != nil
		})
		if n.Attr("from") != "" && n.Attr("from") != strings.SplitN(c.JID, "/", 2)[0] {
			t.Fatalf("roster push from %q: %s", n.Attr("from"), n.Raw)
		}
		// RFC 6121 2.1.6: a push carries exactly one item.
		list := n.Find(nsRosterT, "query").FindAll("", "item")
		if len(list) != 1 {
			t.Fatalf("roster push with %d items, want 1: %s", len(list), n.Raw)
		}
		list[0].Raw = n.Raw // for the failure messages
		return list[0]
	}
	t.Run("AddByUsername", func(t *testing.T) {
		n := xfIQ(t, a, "set1", `<iq type="set" id="set1"><query xmlns="jabber:iq:roster"><item jid="%s@localhost" name="Caro"/></query></iq>`, carol.Name)
		if n.Attr("type") != "result" {
			t.Fatalf("roster set: %s", n.Raw)
		}
		for _, c := range []*xmpptest.Client{a, a2} {
			it := pushOf(t, c)
			if it.Attr("jid") != carolJID || it.Attr("name") != "Caro" || it.Attr("subscription") != "both" {
				t.Fatalf("push to %s: %s", c.JID, it.Raw)
			}
		}
		got := items(t)
		if it := got[carolJID]; it == nil || it.Attr("name") != "Caro" || it.Attr("subscription") != "both" || got[bobJID] == nil {
			t.Fatalf("roster after the add: %v", got)
		}
	})
	t.Run("Remove", func(t *testing.T) {
		n := xfIQ(t, a, "rm1", `<iq type="set" id="rm1"><query xmlns="jabber:iq:roster"><item jid="%s" subscription="remove"/></query></iq>`, carolJID)
		if n.Attr("type") != "result" {
			t.Fatalf("roster remove: %s", n.Raw)
		}
		for _, c := range []*xmpptest.Client{a, a2} {
			if it := pushOf(t, c); it.Attr("jid") != carolJID || it.Attr("subscription") != "remove" {
				t.Fatalf("push to %s after the remove: %s", c.JID, it.Raw)
			}
		}
		if got := items(t); got[carolJID] != nil || got[bobJID] == nil {
			t.Fatalf("roster after the remove: %v", got)
		}
		// Removing what is not there is item-not-found.
		n = xfIQ(t, a, "rm2", `<iq type="set" id="rm2"><query xmlns="jabber:iq:roster"><item jid="%s" subscription="remove"/></query></iq>`, carolJID)
		if c := xfCondition(n); c != "item-not-found" {
			t.Fatalf("removing a removed item: %s", n.Raw)
		}
	})
	t.Run("RemovePartner", func(t *testing.T) {
		// A conversation partner added under a name and removed again
		// stays on the roster under the username; the push says so.
		n := xfIQ(t, a, "pb1", `<iq type="set" id="pb1"><query xmlns="jabber:iq:roster"><item jid="%s" name="Bobby"/></query></iq>`, bobJID)
		if n.Attr("type") != "result" {
			t.Fatalf("roster set: %s", n.Raw)
		}
		if it := pushOf(t, a2); it.Attr("name") != "Bobby" || it.Attr("subscription") != "both" {
			t.Fatalf("push after the rename: %s", it.Raw)
		}
		n = xfIQ(t, a, "pb2", `<iq type="set" id="pb2"><query xmlns="jabber:iq:roster"><item jid="%s" subscription="remove"/></query></iq>`, bobJID)
		if n.Attr("type") != "result" {
			t.Fatalf("roster remove: %s", n.Raw)
		}
		if it := pushOf(t, a2); it.Attr("jid") != bobJID || it.Attr("name") != bob.Name || it.Attr("subscription") != "both" {
			t.Fatalf("push after removing a conversation partner: %s", it.Raw)
		}
		if it := items(t)[bobJID]; it == nil || it.Attr("name") != bob.Name {
			t.Fatalf("roster after removing a conversation partner: %v", items(t))
		}
	})
	t.Run("SubscriptionRequest", func(t *testing.T) {
		// A subscription request is approved at once and adds the contact.
		a.Send(`<presence type="subscribe" to="%s" id="sub1"/>`, carolJID)
		a.Expect(xfWait, "subscribed", func(n *xmpptest.Node) bool {
			return n.XMLName.Local == "presence" && n.Attr("type") == "subscribed" && n.Attr("from") == carolJID
		})
		if it := pushOf(t, a2); it.Attr("jid") != carolJID || it.Attr("subscription") != "both" || it.Attr("name") != carol.Name {
			t.Fatalf("push after the subscription: %s", it.Raw)
		}
		if got := items(t); got[carolJID] == nil {
			t.Fatalf("roster after the subscription: %v", got)
		}
		n := xfIQ(t, a, "rm3", `<iq type="set" id="rm3"><query xmlns="jabber:iq:roster"><item jid="%s" subscription="remove"/></query></iq>`, carolJID)
		if n.Attr("type") != "result" {
			t.Fatalf("roster remove: %s", n.Raw)
		}
		pushOf(t, a2)
	})
	t.Run("Errors", func(t *testing.T) {
		for i, tc := range []struct{ jid, want string }{
			{"", "jid-malformed"},
			{"a@@localhost", "jid-malformed"},
			{"localhost", "jid-malformed"},
			{bob.Name + "@example.org", "jid-malformed"},
			{bobJID + "/phone", "jid-malformed"},
			{"nobody_" + fmt.Sprint(time.Now().UnixNano()) + "@localhost", "item-not-found"},
			{aoba.NewID() + "@localhost", "item-not-found"},
			{alice.Name + "@localhost", "bad-request"},
			{alice.ID + "@localhost", "bad-request"},
		} {
			id := fmt.Sprintf("bad%d", i)
			n := xfIQ(t, a, id, `<iq type="set" id="%s"><query xmlns="jabber:iq:roster"><item jid="%s"/></query></iq>`, id, tc.jid)
			if got := xfCondition(n); got != tc.want {
				t.Errorf("roster set of %q: %s, want %s", tc.jid, n.Raw, tc.want)
			}
		}
		if got := items(t); len(got) != 1 || got[bobJID] == nil {
			t.Fatalf("roster after the errors: %v", got)
		}
	})
}

// TestXMPPPresenceWithJSONSocket runs in both modes: scaled out, presence
// is Redis's registry and topics.
func TestXMPPPresenceWithJSONSocket(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := xfWithCert(t, start)(nil)
		// Each case has its own users: a user stays online for a grace period
		// after their last connection ends.
		t.Run("JSONToXMPP", func(t *testing.T) {
			alice, bob := s.register(t, "alice"), s.register(t, "bob")
			bobJID := bob.ID + "@localhost"
			a := xfLogin(t, s, alice, "desk")
			if n := xfIQ(t, a, "add", `<iq type="set" id="add"><query xmlns="jabber:iq:roster"><item jid="%s"/></query></iq>`, bobJID); n.Attr("type") != "result" {
				t.Fatalf("roster set: %s", n.Raw)
			}
			a.Send(`<presence/>`)
			// Bob is offline: the initial presence says so.
			a.Expect(xfWait, "Bob offline", isPresenceFrom(bobJID, "unavailable"))
			b := openSocket(t, s, bob)
			a.Expect(xfWait, "Bob online", isPresenceFrom(bobJID, ""))
			_ = b.c.Close()
			a.Expect(3*xfWait, "Bob offline again", isPresenceFrom(bobJID, "unavailable"))
			a.Close()
		})
		t.Run("XMPPToJSON", func(t *testing.T) {
			alice, bob := s.register(t, "alice"), s.register(t, "bob")
			b := openSocket(t, s, bob)
			a := xfLogin(t, s, alice, "laptop")
			b.send(t, `{"type":"presence.subscribe","id":"s1","data":{"userIds":["`+alice.ID+`"]}}`)
			// Bound, but without an initial presence: offline.
			f := b.wait(t, "Alice's presence", func(f aoba.Frame) bool { return f.Type == aoba.FramePresence })
			var p aoba.UserPresence
			if json.Unmarshal(f.Data, &p) != nil || p.UserID != alice.ID || p.Status != aoba.StatusOffline {
				t.Fatalf("presence of a bound stream without an initial presence: %s, want offline", f.Data)
			}
			b.wait(t, "ack", func(f aoba.Frame) bool { return f.ID == "s1" && f.Type == aoba.FrameAck })
			a.Send(`<presence/>`)
			b.presence(t, alice.ID, aoba.StatusOnline)
			a.Send(`<presence type="unavailable"/>`)
			b.presence(t, alice.ID, aoba.StatusOffline)
			a.Send(`<presence/>`)
			b.presence(t, alice.ID, aoba.StatusOnline)
			// The end of the stream is offline too.
			a.Close()
			b.presence(t, alice.ID, aoba.StatusOffline)
		})
	})
}

// TestXMPPChatWithJSONSocket: chat and chat states between an XMPP
// stream and a JSON socket, in both modes (the scaled-out one through the
// Redis broker).
func TestXMPPChatWithJSONSocket(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := xfWithCert(t, start)(nil)
		alice, bob := s.register(t, "alice"), s.register(t, "bob")
		aliceJID, bobJID := alice.ID+"@localhost", bob.ID+"@localhost"
		a := xfLogin(t, s, alice, "desk")
		a.Send(`<presence/>`)
		b := openSocket(t, s, bob)

		// XMPP → JSON socket.
		a.Send(`<message type="chat" to="%s" id="x-1"><body>from XMPP</body></message>`, bobJID)
		m := b.message(t, "from XMPP")
		if m.FromID != alice.ID || m.From != alice.Name || m.ToID != bob.ID || m.Type != aoba.MessageChat || m.ClientID != "x-1" {
			t.Fatalf("message frame from XMPP: %+v", m)
		}

		// JSON socket → XMPP.
		b.send(t, `{"type":"message.send","id":"s1","data":{"to":"`+alice.Name+`","content":"from JSON","client_id":"j-1"}}`)
		n := a.Expect(xfWait, "Bob's message", isMessageWithBody("from JSON"))
		if n.Attr("from") != bobJID || n.Attr("type") != "chat" || n.Attr("id") != "j-1" || n.Attr("to") != a.JID {
			t.Fatalf("message from the JSON socket: %s", n.Raw)
		}
		if sid := n.Find("urn:xmpp:sid:0", "stanza-id"); sid == nil || !aoba.IsValidID(sid.Attr("id")) || sid.Attr("by") != aliceJID {
			t.Fatalf("stanza-id: %s", n.Raw)
		}

		// Chat states both ways: composing, then (a second later: typing
		// notices are relayed once a second) paused.
		isTyping := func(from, state string) func(aoba.Frame) bool {
			return func(f aoba.Frame) bool {
				var ev aoba.TypingEvent
				return f.Type == aoba.FrameTyping && json.Unmarshal(f.Data, &ev) == nil &&
					ev.From == from && ev.To == bob.Name && ev.Type == aoba.MessageChat && ev.State == state
			}
		}
		isState := func(state string) func(*xmpptest.Node) bool {
			return func(n *xmpptest.Node) bool {
				return n.XMLName.Local == "message" && n.Attr("from") == bobJID && n.Find(nsChatStatT, state) != nil
			}
		}
		// XEP-0085's other states (active, inactive, gone) are stopped
		// typing, as paused is.
		for i, state := range []string{"composing", "paused"} {
			sent := state
			if i > 0 {
				time.Sleep(1100 * time.Millisecond)
				sent = "inactive"
			}
			a.Send(`<message type="chat" to="%s"><%s xmlns="http://jabber.org/protocol/chatstates"/></message>`, bobJID, sent)
			b.wait(t, "typing "+state, isTyping(alice.Name, state))
			b.send(t, `{"type":"typing","id":"t`+state+`","data":{"to":"`+alice.Name+`","state":"`+state+`"}}`)
			n := a.Expect(xfWait, "Bob "+state, isState(state))
			if n.Find("", "body") != nil || n.Attr("type") != "chat" {
				t.Fatalf("chat state: %s", n.Raw)
			}
		}
		// No federation: another domain is remote-server-not-found.
		a.Send(`<message type="chat" to="%s@example.org" id="far"><body>far away</body></message>`, bob.Name)
		if n := a.Expect(xfWait, "bounce", func(n *xmpptest.Node) bool { return n.Attr("id") == "far" }); xfCondition(n) != "remote-server-not-found" {
			t.Fatalf("message to another domain: %s", n.Raw)
		}
		// A chat state is not a message: nothing of it was stored.
		if got := s.historyWith(t, bob.Token, alice.Name); strings.Join(got, "|") != "from XMPP|from JSON" {
			t.Fatalf("history %q", got)
		}
	})
}

func TestXMPPCarbons(t *testing.T) {
	s := startMain(t, xmppEnv(t))
	alice, bob := s.register(t, "alice"), s.register(t, "bob")
	aliceJID, bobJID := alice.ID+"@localhost", bob.ID+"@localhost"
	r1, r2 := xfLogin(t, s, alice, "one"), xfLogin(t, s, alice, "two")
	b := openSocket(t, s, bob)

	// sendFromTwo sends body to Bob from resource two and waits until Bob
	// has it: then its copy to Alice's topic was published too.
	sendFromTwo := func(t *testing.T, id, body string) {
		t.Helper()
		r2.Send(`<message type="chat" to="%s" id="%s"><body>%s</body></message>`, bobJID, id, body)
		b.message(t, body)
	}
	// marker has Bob send body to Alice over REST and returns what each
	// resource received before it (in publication order on Alice's topic,
	// so a copy of what was sent before is among it), checking that each
	// gets Bob's message once.
	seq := 0
	marker := func(t *testing.T) (before1, before2 []*xmpptest.Node) {
		t.Helper()
		seq++
		body := fmt.Sprintf("marker %d", seq)
		s.restSend(t, bob.Token, alice.Name, body, false)
		_, before1 = xfUntil(t, r1, "resource one's "+body, isMessageWithBody(body))
		_, before2 = xfUntil(t, r2, "resource two's "+body, isMessageWithBody(body))
		return before1, before2
	}
	nothing := func(t *testing.T, c *xmpptest.Client, nodes []*xmpptest.Node) {
		t.Helper()
		for _, n := range nodes {
			t.Fatalf("%s received %s", c.JID, n.Raw)
		}
	}

	t.Run("Off", func(t *testing.T) {
		sendFromTwo(t, "c-0", "no carbon")
		one, two := marker(t)
		nothing(t, r1, one)
		nothing(t, r2, two)
	})
	t.Run("On", func(t *testing.T) {
		if n := xfIQ(t, r1, "cb1", `<iq type="set" id="cb1"><enable xmlns="urn:xmpp:carbons:2"/></iq>`); n.Attr("type") != "result" {
			t.Fatalf("enable carbons: %s", n.Raw)
		}
		sendFromTwo(t, "c-1", "with carbon")
		one, two := marker(t)
		// The resource that sent it gets no copy of its own message.
		nothing(t, r2, two)
		if len(one) != 1 {
			t.Fatalf("resource one received %d stanzas, want the carbon", len(one))
		}
		n := one[0]
		fwd := n.Find("urn:xmpp:forward:0", "forwarded")
		sent := n.Find(nsCarbonsT, "sent")
		if n.Attr("from") != aliceJID || n.Attr("to") != r1.JID || sent == nil || fwd == nil {
			t.Fatalf("carbon: %s", n.Raw)
		}
		inner := fwd.Find("jabber:client", "message")
		if inner == nil {
			t.Fatalf("carbon without a message: %s", n.Raw)
		}
		if body := inner.Find("", "body"); body == nil || body.Text != "with carbon" || inner.Attr("to") != bobJID ||
			inner.Attr("id") != "c-1" || !strings.HasPrefix(inner.Attr("from"), aliceJID) || inner.Attr("type") != "chat" {
			t.Fatalf("carbon's message: %s", n.Raw)
		}
	})
	t.Run("Disabled", func(t *testing.T) {
		if n := xfIQ(t, r1, "cb2", `<iq type="set" id="cb2"><disable xmlns="urn:xmpp:carbons:2"/></iq>`); n.Attr("type") != "result" {
			t.Fatalf("disable carbons: %s", n.Raw)
		}
		sendFromTwo(t, "c-2", "carbons off again")
		one, two := marker(t)
		nothing(t, r1, one)
		nothing(t, r2, two)
	})
}

// TestXMPPMUC runs in both modes: scaled out, the room's group topic is
// shared by the XMPP server and the JSON socket through Redis.
func TestXMPPMUC(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := xfWithCert(t, start)(nil)
		alice, carol, dave := s.register(t, "alice"), s.register(t, "carol"), s.register(t, "dave")
		name := "Room " + newName("g")
		gid := s.newGroup(t, alice.Token, name)
		s.do(t, "POST", "/api/groups/"+gid+"/members", alice.Token, map[string]string{"username": carol.Name}).want(t, 201)
		room := gid + "@conference.localhost"
		for _, body := range []string{"h1", "h2", "h3"} {
			s.restSend(t, carol.Token, gid, body, true)
		}
		a := xfLogin(t, s, alice, "desk")
		a.Send(`<presence/>`)

		t.Run("Join", func(t *testing.T) {
			a.Send(`<presence to="%s/someone-else"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="2"/></x></presence>`, room)
			subject, before := xfUntil(t, a, "subject", func(n *xmpptest.Node) bool {
				return n.XMLName.Local == "message" && n.Find("", "subject") != nil
			})
			if subject.Attr("from") != room || subject.Attr("type") != "groupchat" || subject.Find("", "subject").Text != name || subject.Find("", "body") != nil {
				t.Fatalf("subject: %s", subject.Raw)
			}
			var self *xmpptest.Node
			var history []string
			for _, n := range before {
				switch {
				case n.XMLName.Local == "presence" && n.Attr("from") == room+"/"+alice.Name:
					if self != nil || len(history) > 0 {
						t.Fatalf("self-presence twice or after history: %s", n.Raw)
					}
					self = n
				case n.XMLName.Local == "presence":
					// Occupants (Carol is offline: none expected).
					t.Fatalf("unexpected presence: %s", n.Raw)
				case n.XMLName.Local == "message":
					if self == nil {
						t.Fatalf("history before the self-presence: %s", n.Raw)
					}
					d := n.Find(nsDelayT, "delay")
					if n.Attr("type") != "groupchat" || n.Attr("from") != room+"/"+carol.Name || d == nil || d.Attr("stamp") == "" {
						t.Fatalf("history message: %s", n.Raw)
					}
					history = append(history, n.Find("", "body").Text)
				default:
					t.Fatalf("unexpected: %s", n.Raw)
				}
			}
			if self == nil {
				t.Fatal("no self-presence")
			}
			var codes []string
			for _, st := range self.FindAll(nsMUCUserT, "status") {
				codes = append(codes, st.Attr("code"))
			}
			item := self.Find(nsMUCUserT, "item")
			if !strings.Contains(","+strings.Join(codes, ",")+",", ",110,") || !strings.Contains(","+strings.Join(codes, ",")+",", ",210,") ||
				item == nil || item.Attr("affiliation") != "owner" || item.Attr("role") != "moderator" {
				t.Fatalf("self-presence: %s (codes %v)", self.Raw, codes)
			}
			if strings.Join(history, ",") != "h2,h3" {
				t.Fatalf("history %v, want the last two: h2,h3", history)
			}
		})
		t.Run("FromREST", func(t *testing.T) {
			s.restSend(t, carol.Token, gid, "from REST", true)
			n := a.Expect(xfWait, "Carol's message", isMessageWithBody("from REST"))
			if n.Attr("from") != room+"/"+carol.Name || n.Attr("type") != "groupchat" || n.Find(nsDelayT, "delay") != nil {
				t.Fatalf("groupchat from REST: %s", n.Raw)
			}
			if sid := n.Find("urn:xmpp:sid:0", "stanza-id"); sid == nil || sid.Attr("by") != room || !aoba.IsValidID(sid.Attr("id")) {
				t.Fatalf("stanza-id: %s", n.Raw)
			}
		})
		t.Run("ToRoom", func(t *testing.T) {
			c := openSocket(t, s, carol)
			a.Send(`<message type="groupchat" to="%s" id="gc-1"><body>from XMPP</body></message>`, room)
			echo := a.Expect(xfWait, "echo", isMessageWithBody("from XMPP"))
			if echo.Attr("id") != "gc-1" || echo.Attr("from") != room+"/"+alice.Name || echo.Attr("type") != "groupchat" {
				t.Fatalf("echo: %s", echo.Raw)
			}
			m := c.message(t, "from XMPP")
			if m.FromID != alice.ID || m.ToID != gid || m.Type != aoba.MessageGroupChat {
				t.Fatalf("message frame: %+v", m)
			}
			var hist struct {
				Messages []aoba.MessageView `json:"messages"`
			}
			s.do(t, "GET", "/api/messages?with="+gid+"&limit=1", carol.Token, nil).want(t, 200).decode(t, &hist)
			if len(hist.Messages) != 1 || hist.Messages[0].Content != "from XMPP" || hist.Messages[0].ID != m.ID {
				t.Fatalf("REST history: %+v", hist.Messages)
			}
			// The echo has the id the client sent even when that id cannot be
			// an Aoba client id (too long here, as profanity's are), or when an
			// origin-id (XEP-0359) is the message's client id.
			long := "p" + strings.Repeat("0123456789", 7) + "+/="
			a.Send(`<message type="groupchat" to="%s" id="%s"><body>long id</body></message>`, room, long)
			if echo := a.Expect(xfWait, "echo", isMessageWithBody("long id")); echo.Attr("id") != long {
				t.Fatalf("echo of a message with a long id: %s", echo.Raw)
			}
			a.Send(`<message type="groupchat" to="%s" id="stanza-1"><body>origin id</body><origin-id xmlns="urn:xmpp:sid:0" id="origin-1"/></message>`, room)
			if echo := a.Expect(xfWait, "echo", isMessageWithBody("origin id")); echo.Attr("id") != "stanza-1" {
				t.Fatalf("echo of a message with an origin-id: %s", echo.Raw)
			}
			// A private message to an occupant and a subject change are refused.
			a.Send(`<message type="chat" to="%s/%s" id="pm"><body>psst</body></message>`, room, carol.Name)
			if n := a.Expect(xfWait, "error", func(n *xmpptest.Node) bool { return n.Attr("id") == "pm" }); xfCondition(n) != "not-acceptable" {
				t.Fatalf("private message: %s", n.Raw)
			}
			a.Send(`<message type="groupchat" to="%s" id="subj"><subject>new</subject></message>`, room)
			if n := a.Expect(xfWait, "error", func(n *xmpptest.Node) bool { return n.Attr("id") == "subj" }); xfCondition(n) != "forbidden" {
				t.Fatalf("subject change: %s", n.Raw)
			}
		})
		t.Run("NonMember", func(t *testing.T) {
			d := xfLogin(t, s, dave, "desk")
			d.Send(`<presence to="%s/%s" id="j1"><x xmlns="http://jabber.org/protocol/muc"/></presence>`, room, dave.Name)
			n := d.Expect(xfWait, "join error", func(n *xmpptest.Node) bool {
				return n.XMLName.Local == "presence" && n.Attr("from") == room+"/"+dave.Name
			})
			if xfCondition(n) != "registration-required" {
				t.Fatalf("non-member join: %s", n.Raw)
			}
			d.Send(`<message type="groupchat" to="%s" id="m1"><body>let me in</body></message>`, room)
			if n := d.Expect(xfWait, "error", func(n *xmpptest.Node) bool { return n.Attr("id") == "m1" }); xfCondition(n) == "" {
				t.Fatalf("non-member message: %s", n.Raw)
			}
			n = xfIQ(t, d, "di1", `<iq type="get" id="di1" to="conference.localhost"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
			if n.Attr("type") != "result" || strings.Contains(n.Raw, gid) {
				t.Fatalf("a non-member's disco#items: %s", n.Raw)
			}
		})
		t.Run("DiscoItems", func(t *testing.T) {
			other := s.newGroup(t, alice.Token, "Other "+newName("g"))
			n := xfIQ(t, a, "di2", `<iq type="get" id="di2" to="conference.localhost"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
			got := map[string]string{}
			for _, it := range n.FindAll("", "item") {
				got[it.Attr("jid")] = it.Attr("name")
			}
			if len(got) != 2 || got[room] != name || got[other+"@conference.localhost"] == "" {
				t.Fatalf("disco#items: %s", n.Raw)
			}
		})
		t.Run("Removed", func(t *testing.T) {
			c := xfLogin(t, s, carol, "desk")
			c.Send(`<presence/>`)
			c.Send(`<presence to="%s/%s"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>`, room, carol.Name)
			_, before := xfUntil(t, c, "subject", func(n *xmpptest.Node) bool { return n.Find("", "subject") != nil })
			var occupant *xmpptest.Node
			for _, n := range before {
				if n.XMLName.Local == "message" {
					t.Fatalf("history with maxstanzas 0: %s", n.Raw)
				}
				if n.Attr("from") == room+"/"+alice.Name {
					occupant = n
				}
			}
			// Alice, online, is listed as an occupant, with her real JID (the
			// room is non-anonymous).
			if occupant == nil {
				t.Fatalf("no occupant presence of Alice at join: %v", before)
			}
			if it := occupant.Find(nsMUCUserT, "item"); occupant.Attr("type") != "" || it == nil ||
				it.Attr("affiliation") != "owner" || it.Attr("role") != "moderator" || it.Attr("jid") != alice.ID+"@localhost" {
				t.Fatalf("occupants at join: %v", before)
			}
			// XEP-0410 self-ping: answered while in the room.
			if n := xfIQ(t, c, "sp1", `<iq type="get" id="sp1" to="%s/%s"><ping xmlns="urn:xmpp:ping"/></iq>`, room, carol.Name); n.Attr("type") != "result" {
				t.Fatalf("self-ping in the room: %s", n.Raw)
			}
			s.do(t, "DELETE", "/api/groups/"+gid+"/members/"+carol.Name, alice.Token, nil).want(t, 204)
			n := c.Expect(xfWait, "removal", isPresenceFrom(room+"/"+carol.Name, "unavailable"))
			var codes []string
			for _, st := range n.FindAll(nsMUCUserT, "status") {
				codes = append(codes, st.Attr("code"))
			}
			if strings.Join(codes, ",") != "110,321" {
				t.Fatalf("removal presence: %s", n.Raw)
			}
			if n := xfIQ(t, c, "sp2", `<iq type="get" id="sp2" to="%s/%s"><ping xmlns="urn:xmpp:ping"/></iq>`, room, carol.Name); xfCondition(n) != "not-acceptable" {
				t.Fatalf("self-ping after the removal: %s", n.Raw)
			}
			// Out of the room: no more of its messages.
			s.restSend(t, alice.Token, gid, "after the removal", true)
			a.Expect(xfWait, "Alice's echo", isMessageWithBody("after the removal"))
			for _, n := range xfPing(t, c) {
				if n.Find("", "body") != nil {
					t.Fatalf("removed member received %s", n.Raw)
				}
			}
		})
		t.Run("Leave", func(t *testing.T) {
			a.Send(`<presence type="unavailable" to="%s/%s"/>`, room, alice.Name)
			n := a.Expect(xfWait, "exit presence", isPresenceFrom(room+"/"+alice.Name, "unavailable"))
			it := n.Find(nsMUCUserT, "item")
			if it == nil || it.Attr("affiliation") != "owner" || it.Attr("role") != "none" || n.Find(nsMUCUserT, "status").Attr("code") != "110" {
				t.Fatalf("exit presence: %s", n.Raw)
			}
			// Out of the room: no more of its messages, not even its own
			// (Bob's REST message after Alice's proves the order).
			bob := s.register(t, "bob")
			s.restSend(t, alice.Token, gid, "after leaving", true)
			s.restSend(t, bob.Token, alice.Name, "marker", false)
			_, before := xfUntil(t, a, "Bob's marker", isMessageWithBody("marker"))
			for _, n := range before {
				if n.Find("", "body") != nil {
					t.Fatalf("received after leaving: %s", n.Raw)
				}
			}
		})
	})
}

// mamPage is the answer to one archive query.
type mamPage struct {
	ids, bodies []string
	results     []*xmpptest.Node
	fin         *xmpptest.Node
	answer      *xmpptest.Node
}

// xfArchive sends a XEP-0313 query to to ("" for the own archive) with a
// data form of fields (var, value pairs; FORM_TYPE added) and an RSM set
// (raw XML, "" for none), and reads its results and answer.
func xfArchive(t *testing.T, c *xmpptest.Client, to, rsm string, fields ...string) mamPage {
	t.Helper()
	id := fmt.Sprintf("mam-%d", time.Now().UnixNano())
	form := ""
	if len(fields) > 0 {
		form = `<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>urn:xmpp:mam:2</value></field>`
		for i := 0; i+1 < len(fields); i += 2 {
			form += fmt.Sprintf(`<field var="%s"><value>%s</value></field>`, fields[i], fields[i+1])
		}
		form += `</x>`
	}
	if rsm != "" {
		rsm = `<set xmlns="http://jabber.org/protocol/rsm">` + rsm + `</set>`
	}
	toAttr := ""
	if to != "" {
		toAttr = fmt.Sprintf(` to="%s"`, to)
	}
	c.Send(`<iq type="set" id="%s"%s><query xmlns="urn:xmpp:mam:2" queryid="q-%s">%s%s</query></iq>`, id, toAttr, id, form, rsm)
	var p mamPage
	deadline := time.Now().Add(xfWait)
	for {
		n, err := c.TryNext(time.Until(deadline))
		if err != nil {
			t.Fatalf("archive query: %v", err)
		}
		if n.XMLName.Local == "iq" && n.Attr("id") == id {
			p.answer = n
			p.fin = n.Find(nsMAMT, "fin")
			return p
		}
		r := n.Find(nsMAMT, "result")
		if n.XMLName.Local != "message" || r == nil {
			continue
		}
		if r.Attr("queryid") != "q-"+id {
			t.Fatalf("result of another query: %s", n.Raw)
		}
		p.results = append(p.results, n)
		p.ids = append(p.ids, r.Attr("id"))
		body := ""
		if b := r.Find("", "body"); b != nil {
			body = b.Text
		}
		p.bodies = append(p.bodies, body)
	}
}

// rsmText returns the text of the fin's RSM element local.
func (p mamPage) rsmText(local string) string {
	if p.fin == nil {
		return ""
	}
	if n := p.fin.Find(nsRSMT, local); n != nil {
		return n.Text
	}
	return ""
}

func TestXMPPArchive(t *testing.T) {
	s := startMain(t, xmppEnv(t))
	alice, bob, carol := s.register(t, "alice"), s.register(t, "bob"), s.register(t, "carol")
	aliceJID, bobJID := alice.ID+"@localhost", bob.ID+"@localhost"
	var ids, bodies []string
	var mid time.Time
	for i := 0; i < 5; i++ {
		from, to := alice, bob
		if i%2 == 1 {
			from, to = bob, alice
		}
		body := fmt.Sprintf("m%d", i)
		ids = append(ids, s.restSend(t, from.Token, to.Name, body, false))
		bodies = append(bodies, body)
		time.Sleep(5 * time.Millisecond)
		if i == 2 {
			mid = time.Now()
			time.Sleep(5 * time.Millisecond)
		}
	}
	fromCarol := s.restSend(t, carol.Token, alice.Name, "from carol", false)
	gid := s.newGroup(t, alice.Token, "Archive "+newName("g"))
	inGroup := s.restSend(t, alice.Token, gid, "in the group", true)
	a := xfLogin(t, s, alice, "desk")

	wantPage := func(t *testing.T, p mamPage, ids []string, complete bool) {
		t.Helper()
		if p.answer.Attr("type") != "result" || p.fin == nil {
			t.Fatalf("answer: %s", p.answer.Raw)
		}
		if strings.Join(p.ids, ",") != strings.Join(ids, ",") {
			t.Fatalf("result ids %v (%v), want %v", p.ids, p.bodies, ids)
		}
		if got := p.fin.Attr("complete") == "true"; got != complete {
			t.Fatalf("complete=%q, want %v: %s", p.fin.Attr("complete"), complete, p.answer.Raw)
		}
		if len(ids) > 0 && (p.rsmText("first") != ids[0] || p.rsmText("last") != ids[len(ids)-1]) {
			t.Fatalf("first/last: %s", p.answer.Raw)
		}
	}

	t.Run("Paging", func(t *testing.T) {
		p := xfArchive(t, a, "", "<max>2</max>", "with", bobJID)
		wantPage(t, p, ids[:2], false)
		if p.rsmText("count") != "5" {
			t.Fatalf("count: %s", p.answer.Raw)
		}
		// The forwarded messages as they were sent, with their time.
		for i, n := range p.results {
			fwd := n.Find("urn:xmpp:forward:0", "forwarded")
			m := fwd.Find("jabber:client", "message")
			from, to := aliceJID, bobJID
			if i == 1 {
				from, to = bobJID, aliceJID
			}
			if fwd.Find(nsDelayT, "delay") == nil || m == nil || m.Attr("from") != from || m.Attr("to") != to ||
				m.Attr("type") != "chat" || m.Find("", "body").Text != bodies[i] {
				t.Fatalf("result %d: %s", i, n.Raw)
			}
		}
		p = xfArchive(t, a, "", "<max>2</max><after>"+p.rsmText("last")+"</after>", "with", bobJID)
		wantPage(t, p, ids[2:4], false)
		p = xfArchive(t, a, "", "<max>2</max><after>"+p.rsmText("last")+"</after>", "with", bobJID)
		wantPage(t, p, ids[4:], true)
		// A page that ends exactly at the last message is complete.
		wantPage(t, xfArchive(t, a, "", "<max>5</max>", "with", bobJID), ids, true)
		wantPage(t, xfArchive(t, a, "", "<max>3</max><after>"+ids[1]+"</after>", "with", bobJID), ids[2:], true)
	})
	t.Run("Backward", func(t *testing.T) {
		p := xfArchive(t, a, "", "<max>2</max><before/>", "with", bobJID)
		wantPage(t, p, ids[3:], false)
		p = xfArchive(t, a, "", "<max>2</max><before>"+p.rsmText("first")+"</before>", "with", bobJID)
		wantPage(t, p, ids[1:3], false)
		p = xfArchive(t, a, "", "<max>2</max><before>"+p.rsmText("first")+"</before>", "with", bobJID)
		wantPage(t, p, ids[:1], true)
	})
	t.Run("Filters", func(t *testing.T) {
		// The whole archive: every 1:1 and group message.
		p := xfArchive(t, a, "", "")
		wantPage(t, p, append(append(append([]string{}, ids...), fromCarol), inGroup), true)
		// with by the username alias.
		wantPage(t, xfArchive(t, a, "", "", "with", bob.Name+"@localhost"), ids, true)
		wantPage(t, xfArchive(t, a, "", "", "with", carol.ID+"@localhost"), []string{fromCarol}, true)
		// start and end.
		stamp := mid.UTC().Format("2006-01-02T15:04:05.000Z")
		wantPage(t, xfArchive(t, a, "", "", "with", bobJID, "start", stamp), ids[3:], true)
		wantPage(t, xfArchive(t, a, "", "", "with", bobJID, "end", stamp), ids[:3], true)
	})
	t.Run("Deleted", func(t *testing.T) {
		id := s.restSend(t, carol.Token, alice.Name, "regretted", false)
		s.do(t, "DELETE", "/api/messages/"+id, carol.Token, nil).want(t, 204)
		p := xfArchive(t, a, "", "", "with", carol.ID+"@localhost")
		wantPage(t, p, []string{fromCarol, id}, true)
		if b := p.results[1].Find("", "body"); b == nil || b.Text != "" || p.bodies[0] != "from carol" {
			t.Fatalf("a deleted message in the archive: %s", p.results[1].Raw)
		}
	})
	t.Run("Room", func(t *testing.T) {
		room := gid + "@conference.localhost"
		p := xfArchive(t, a, room, "")
		wantPage(t, p, []string{inGroup}, true)
		// The results come from the room (clients ignore others, XEP-0313
		// 4.2), and forward the message from Alice's nick.
		r := p.results[0]
		if m := r.Find("urn:xmpp:forward:0", "forwarded").Find("jabber:client", "message"); r.Attr("from") != room || m == nil ||
			m.Attr("from") != room+"/"+alice.Name || m.Attr("type") != "groupchat" {
			t.Fatalf("room result: %s", p.results[0].Raw)
		}
		// Not a member: no archive.
		c := xfLogin(t, s, carol, "desk")
		if p := xfArchive(t, c, room, ""); len(p.ids) != 0 || xfCondition(p.answer) == "" {
			t.Fatalf("a non-member's room query: %s", p.answer.Raw)
		}
	})
	t.Run("BadQueries", func(t *testing.T) {
		for _, tc := range []struct{ name, rsm, want string }{
			{"MalformedAfter", "<after>not-an-id</after>", "item-not-found"},
			{"MalformedBefore", "<before>nope</before>", "item-not-found"},
			{"BadMax", "<max>many</max>", "bad-request"},
		} {
			p := xfArchive(t, a, "", tc.rsm, "with", bobJID)
			if got := xfCondition(p.answer); got != tc.want {
				t.Errorf("%s: %s, want %s", tc.name, p.answer.Raw, tc.want)
			}
		}
		for _, tc := range []struct{ name, value, want string }{
			{"UnknownWith", "nobody_at_all@localhost", "item-not-found"},
			{"MalformedWith", "a@@b", "jid-malformed"},
			{"BadStart", "yesterday", "bad-request"},
		} {
			field := "with"
			if tc.name == "BadStart" {
				field = "start"
			}
			p := xfArchive(t, a, "", "", field, tc.value)
			if got := xfCondition(p.answer); got != tc.want {
				t.Errorf("%s: %s, want %s", tc.name, p.answer.Raw, tc.want)
			}
		}
		// An id that is no message of the archive: an error or an empty
		// page, never the end of the stream.
		p := xfArchive(t, a, "", "<after>"+aoba.NewID()+"</after>", "with", bobJID)
		if p.answer.Attr("type") == "result" && len(p.ids) != 0 {
			t.Fatalf("after an unknown id: %v", p.bodies)
		}
		xfPing(t, a)
	})
}

// docFeatures parses the table of docs/xmpp.md and returns the features
// of its "Advertised by service discovery" column, and those said to be
// advertised on the account and rooms.
func docFeatures(t *testing.T) (all, accountAndRooms []string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "xmpp.md"))
	if err != nil {
		t.Fatal(err)
	}
	col := -1
	code := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "|") {
			if col >= 0 {
				break // the end of the table
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if col < 0 {
			for i, c := range cells {
				if strings.TrimSpace(c) == "Advertised by service discovery" {
					col = i
				}
			}
			continue
		}
		if col >= len(cells) {
			t.Fatalf("docs/xmpp.md: row without the discovery column: %s", line)
		}
		cell := cells[col]
		for _, m := range code.FindAllStringSubmatch(cell, -1) {
			all = append(all, m[1])
			if strings.Contains(cell, "(account and rooms)") {
				accountAndRooms = append(accountAndRooms, m[1])
			}
		}
	}
	if col < 0 || len(all) == 0 {
		t.Fatal("docs/xmpp.md has no table with an \"Advertised by service discovery\" column")
	}
	return all, accountAndRooms
}

func TestXMPPDiscoMatchesDocs(t *testing.T) {
	s := startMain(t, xmppEnv(t))
	alice, bob := s.register(t, "alice"), s.register(t, "bob")
	gid := s.newGroup(t, alice.Token, "Disco room")
	a := xfLogin(t, s, alice, "desk")

	info := func(t *testing.T, to, category, typ string) []string {
		t.Helper()
		id := "info-" + to
		n := xfIQ(t, a, id, `<iq type="get" id="%s" to="%s"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, id, to)
		q := n.Find("http://jabber.org/protocol/disco#info", "query")
		if n.Attr("type") != "result" || q == nil {
			t.Fatalf("disco#info of %s: %s", to, n.Raw)
		}
		if id := q.Find("", "identity"); id == nil || id.Attr("category") != category || id.Attr("type") != typ {
			t.Fatalf("identity of %s: %s, want %s/%s", to, n.Raw, category, typ)
		}
		var out []string
		for _, f := range q.FindAll("", "feature") {
			if slices.Contains(out, f.Attr("var")) {
				t.Fatalf("%s advertises %s twice", to, f.Attr("var"))
			}
			out = append(out, f.Attr("var"))
		}
		return out
	}
	server := info(t, "localhost", "server", "im")
	account := info(t, alice.ID+"@localhost", "account", "registered")
	conference := info(t, "conference.localhost", "conference", "text")
	room := info(t, gid+"@conference.localhost", "conference", "text")

	var got []string
	for _, list := range [][]string{server, account, conference, room} {
		for _, f := range list {
			if !slices.Contains(got, f) {
				got = append(got, f)
			}
		}
	}
	want, both := docFeatures(t)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("service discovery advertises %v;\ndocs/xmpp.md lists %v", got, want)
	}
	for _, f := range both {
		if !slices.Contains(account, f) || !slices.Contains(room, f) {
			t.Errorf("docs/xmpp.md says %s is advertised on the account and rooms; account %v, room %v", f, account, room)
		}
	}
	// Nothing is advertised for another user's account, nor for a room of
	// which the user is not a member.
	n := xfIQ(t, a, "other", `<iq type="get" id="other" to="%s@localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, bob.ID)
	if xfCondition(n) != "service-unavailable" {
		t.Fatalf("disco#info of another account: %s", n.Raw)
	}
	foreign := s.newGroup(t, bob.Token, "Not Alice's")
	n = xfIQ(t, a, "foreign", `<iq type="get" id="foreign" to="%s@conference.localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, foreign)
	if xfCondition(n) != "item-not-found" {
		t.Fatalf("disco#info of another group's room: %s", n.Raw)
	}
	// The server lists its conference service.
	n = xfIQ(t, a, "items", `<iq type="get" id="items" to="localhost"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	if it := n.Find("", "item"); it == nil || it.Attr("jid") != "conference.localhost" {
		t.Fatalf("disco#items of the server: %s", n.Raw)
	}
}

// xfSessions returns the open Aoba sessions of the holder of token.
func (s *server) xfSessions(t *testing.T, token string) []aoba.SessionView {
	t.Helper()
	var out struct {
		Sessions []aoba.SessionView `json:"sessions"`
	}
	s.do(t, "GET", "/api/users/me/sessions", token, nil).want(t, 200).decode(t, &out)
	return out.Sessions
}

func TestXMPPSessionLifecycle(t *testing.T) {
	s := startMain(t, xmppEnv(t))
	alice := s.register(t, "alice")
	addr := s.m.XMPPAddr()

	t.Run("TokenStreamEndsAtLogout", func(t *testing.T) {
		token := s.login(t, alice.Name, alice.Password)
		c := xmpptest.DialTCP(t, addr, "localhost")
		c.StartTLS()
		c.Bearer(token)
		c.Bind("app")
		c.Send(`<presence/>`)
		xfPing(t, c)
		// A stream on another session is not concerned.
		other := xmpptest.DialWS(t, wsURL(s), "localhost")
		other.Bearer(alice.Token)
		other.Bind("browser")
		s.do(t, "POST", "/api/auth/logout", token, nil).want(t, 200)
		if got := c.StreamError(xfWait); got != "not-authorized" {
			t.Fatalf("stream error %q after the logout, want not-authorized", got)
		}
		xfPing(t, other)
		// The token is no longer good for a new stream.
		again := xmpptest.DialTCP(t, addr, "localhost")
		again.StartTLS()
		if n := again.Auth("OAUTHBEARER", []byte("n,,\x01auth=Bearer "+token+"\x01\x01")); n.Find("", "not-authorized") == nil {
			t.Fatalf("OAUTHBEARER with a logged-out token: %s", n.Raw)
		}
	})
	t.Run("TokenStreamEndsWhenEndedElsewhere", func(t *testing.T) {
		token := s.login(t, alice.Name, alice.Password)
		var id string
		for _, v := range s.xfSessions(t, token) {
			if v.Current {
				id = v.ID
			}
		}
		c := xmpptest.DialTCP(t, addr, "localhost")
		c.StartTLS()
		if n := c.Auth("X-OAUTH2", []byte("\x00"+alice.Name+"\x00"+token)); n.XMLName.Local != "success" {
			t.Fatalf("X-OAUTH2: %s", n.Raw)
		}
		c.Bind("app2")
		xfPing(t, c)
		s.do(t, "DELETE", "/api/users/me/sessions/"+id, alice.Token, nil).want(t, 204)
		if got := c.StreamError(xfWait); got != "not-authorized" {
			t.Fatalf("stream error %q after the session was ended, want not-authorized", got)
		}
	})
	t.Run("PasswordStreamHasItsSession", func(t *testing.T) {
		xmppSessions := func() []aoba.SessionView {
			var out []aoba.SessionView
			for _, v := range s.xfSessions(t, alice.Token) {
				if v.UserAgent == "XMPP client" {
					out = append(out, v)
				}
			}
			return out
		}
		before := len(xmppSessions())
		c := xfLogin(t, s, alice, "desk")
		xfPing(t, c)
		now := xmppSessions()
		if len(now) != before+1 || now[len(now)-1].IP != "127.0.0.1" {
			t.Fatalf("sessions named XMPP client with the stream open: %+v (before: %d)", now, before)
		}
		c.Close()
		deadline := time.Now().Add(xfWait)
		for len(xmppSessions()) != before {
			if time.Now().After(deadline) {
				t.Fatalf("the stream's session outlived it: %+v", xmppSessions())
			}
			time.Sleep(300 * time.Millisecond)
		}
		// Ended over REST, the session ends its stream.
		c = xfLogin(t, s, alice, "desk")
		xfPing(t, c)
		now = xmppSessions()
		if len(now) != before+1 {
			t.Fatalf("sessions named XMPP client: %+v", now)
		}
		s.do(t, "DELETE", "/api/users/me/sessions/"+now[len(now)-1].ID, alice.Token, nil).want(t, 204)
		if got := c.StreamError(xfWait); got != "not-authorized" {
			t.Fatalf("stream error %q after its session was ended, want not-authorized", got)
		}
	})
}

// TestXMPPRateLimit: messages spend the user's standard budget. With a
// budget of 5, the IP's budget is spent by Alice's registration and login
// (2), Bob's registration (3), the SASL exchange (4) and Bob's login (5).
func TestXMPPRateLimit(t *testing.T) {
	e := xmppEnv(t)
	e["AOBA_RATE_STANDARD"] = "5"
	s := startMain(t, e)
	alice := s.register(t, "alice")
	bob := &user{Name: newName("bob"), Password: "correct horse battery"}
	s.do(t, "POST", "/api/auth/register", "", map[string]string{"username": bob.Name, "password": bob.Password}).want(t, 201)
	a := xfLogin(t, s, alice, "desk")
	for i := 1; i <= 6; i++ {
		a.Send(`<message type="chat" to="%s@localhost" id="r-%d"><body>n%d</body></message>`, bob.Name, i, i)
	}
	n, before := xfUntil(t, a, "the bounce", func(n *xmpptest.Node) bool { return n.Attr("type") == "error" })
	if n.XMLName.Local != "message" || n.Attr("id") != "r-6" || xfCondition(n) != "resource-constraint" || n.Find("", "error").Attr("type") != "wait" {
		t.Fatalf("bounce: %s", n.Raw)
	}
	if len(before) != 0 {
		t.Fatalf("before the bounce: %v", before[0].Raw)
	}
	bob.Token = s.login(t, bob.Name, bob.Password)
	if got := s.historyWith(t, bob.Token, alice.Name); strings.Join(got, ",") != "n1,n2,n3,n4,n5" {
		t.Fatalf("stored %v, want the first five", got)
	}
}

// TestXMPPLargeRosterPresence: the initial presence brings the presence
// of every roster contact, also past the 100 ids of one presence lookup.
func TestXMPPLargeRosterPresence(t *testing.T) {
	e := xmppEnv(t)
	e["AOBA_RATE_STANDARD"] = "100000"
	s := startMain(t, e)
	alice := s.register(t, "alice")
	const n = aoba.MaxBatchIDs + 5
	want := map[string]bool{}
	var roster strings.Builder
	for i := 0; i < n; i++ {
		var out struct {
			ID string `json:"id"`
		}
		s.do(t, "POST", "/api/auth/register", "", map[string]string{"username": newName("c"), "password": "correct horse battery"}).want(t, 201).decode(t, &out)
		want[out.ID+"@localhost"] = true
		fmt.Fprintf(&roster, `<iq type="set" id="r%d"><query xmlns="jabber:iq:roster"><item jid="%s@localhost"/></query></iq>`, i, out.ID)
	}
	a := xfLogin(t, s, alice, "desk")
	a.SendRaw(roster.String())
	last := fmt.Sprintf("r%d", n-1)
	xfUntil(t, a, "the last roster result", func(st *xmpptest.Node) bool { return st.Attr("id") == last })
	a.Send(`<presence/>`)
	deadline := time.Now().Add(xfWait)
	for len(want) > 0 {
		st, err := a.TryNext(time.Until(deadline))
		if err != nil {
			t.Fatalf("%d contacts' presence missing: %v", len(want), err)
		}
		if st.XMLName.Local == "presence" && st.Attr("type") == "unavailable" {
			delete(want, st.Attr("from"))
		}
	}
}
