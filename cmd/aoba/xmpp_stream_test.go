package main_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba/internal/xmpptest"
)

// xmppEnv enables the XMPP listener of an embedded server for domain
// localhost.
func xmppEnv(t testing.TB) env {
	e := embeddedEnv(t)
	e["AOBA_XMPP_ADDR"] = "127.0.0.1:0"
	e["AOBA_DOMAIN"] = "localhost"
	return e
}

func wsURL(s *server) string { return "ws://" + s.m.Addr() + "/xmpp-websocket" }

// history returns the contents of the caller's 1:1 history with peer,
// oldest first.
func (s *server) historyWith(tb testing.TB, token, peer string) []string {
	tb.Helper()
	var out struct {
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	s.do(tb, "GET", "/api/messages?with="+url.QueryEscape(peer)+"&limit=100", token, nil).want(tb, 200).decode(tb, &out)
	var contents []string
	for i := len(out.Messages) - 1; i >= 0; i-- {
		contents = append(contents, out.Messages[i].Content)
	}
	return contents
}

func isMessageWithBody(body string) func(*xmpptest.Node) bool {
	return func(n *xmpptest.Node) bool {
		b := n.Find("", "body")
		return n.XMLName.Local == "message" && b != nil && b.Text == body
	}
}

func TestXMPPStreamNegotiation(t *testing.T) {
	s := startMain(t, xmppEnv(t))
	addr := s.m.XMPPAddr()
	if addr == "" {
		t.Fatal("XMPPAddr is empty with AOBA_XMPP_ADDR set")
	}
	alice := s.register(t, "alice")

	t.Run("TLSRequiredFirst", func(t *testing.T) {
		c := xmpptest.DialTCP(t, addr, "localhost")
		if c.Features.Find("urn:ietf:params:xml:ns:xmpp-tls", "starttls") == nil || c.Features.Find("", "required") == nil {
			t.Fatalf("features before TLS: %s", c.Features.Raw)
		}
		if c.Features.Find("", "mechanisms") != nil {
			t.Fatalf("SASL offered before TLS: %s", c.Features.Raw)
		}
		c.SendRaw(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">AGEAYg==</auth>`)
		if got := c.StreamError(5 * time.Second); got != "not-authorized" {
			t.Fatalf("auth before TLS: stream error %q, want not-authorized", got)
		}
	})
	t.Run("UnknownHost", func(t *testing.T) {
		c := xmpptest.DialTCP(t, addr, "example.org")
		if c.Features.Find("", "host-unknown") == nil {
			t.Fatalf("foreign domain: %s", c.Features.Raw)
		}
	})
	t.Run("PlainAfterTLS", func(t *testing.T) {
		c := xmpptest.DialTCP(t, addr, "localhost")
		c.StartTLS()
		var mechs []string
		for _, m := range c.Features.FindAll("", "mechanism") {
			mechs = append(mechs, m.Text)
		}
		if strings.Join(mechs, ",") != "PLAIN,OAUTHBEARER,X-OAUTH2" {
			t.Fatalf("mechanisms %v", mechs)
		}
		if n := c.Auth("PLAIN", []byte("\x00"+alice.Name+"\x00wrong password")); n.Find("", "not-authorized") == nil {
			t.Fatalf("wrong password: %s", n.Raw)
		}
		c.Plain(alice.Name, alice.Password)
		jid := c.Bind("laptop")
		if jid != alice.ID+"@localhost/laptop" {
			t.Fatalf("bound %q, want %s@localhost/laptop", jid, alice.ID)
		}
	})
	t.Run("PlainByUserID", func(t *testing.T) {
		c := xmpptest.DialTCP(t, addr, "localhost")
		c.StartTLS()
		c.Plain(alice.ID+"@localhost", alice.Password)
		c.Bind("phone")
	})
	t.Run("TokenOverWebSocket", func(t *testing.T) {
		c := xmpptest.DialWS(t, wsURL(s), "localhost")
		if c.Header.XMLName.Local != "open" {
			t.Fatalf("header %s", c.Header.Raw)
		}
		if n := c.Auth("OAUTHBEARER", []byte("n,,\x01auth=Bearer not-a-token\x01\x01")); n.Find("", "not-authorized") == nil {
			t.Fatalf("bad token: %s", n.Raw)
		}
		c.Bearer(alice.Token)
		if jid := c.Bind("browser"); !strings.HasPrefix(jid, alice.ID+"@localhost/") {
			t.Fatalf("bound %q", jid)
		}
		c.Send(`<iq type="get" id="p1"><ping xmlns="urn:xmpp:ping"/></iq>`)
		c.Expect(5*time.Second, "ping result", func(n *xmpptest.Node) bool { return n.Attr("id") == "p1" && n.Attr("type") == "result" })
	})
	t.Run("UnknownQuery", func(t *testing.T) {
		c := xmpptest.Login(t, addr, "localhost", alice.Name, alice.Password, "q")
		c.Send(`<iq type="get" id="v1"><query xmlns="jabber:iq:version"/></iq>`)
		n := c.Expect(5*time.Second, "answer", func(n *xmpptest.Node) bool { return n.Attr("id") == "v1" })
		if n.Attr("type") != "error" || n.Find("", "service-unavailable") == nil {
			t.Fatalf("unknown query: %s", n.Raw)
		}
	})
}

func TestXMPPChatBothWays(t *testing.T) {
	s := startMain(t, xmppEnv(t))
	addr := s.m.XMPPAddr()
	alice, bob := s.register(t, "alice"), s.register(t, "bob")
	a := xmpptest.Login(t, addr, "localhost", alice.Name, alice.Password, "desk")
	a.Send(`<presence/>`)

	// REST → XMPP.
	s.do(t, "POST", "/api/messages", bob.Token, map[string]any{"to": alice.Name, "content": "hello over REST"}).want(t, 201)
	n := a.Expect(10*time.Second, "Bob's message", isMessageWithBody("hello over REST"))
	if n.Attr("from") != bob.ID+"@localhost" || n.Attr("type") != "chat" {
		t.Fatalf("message from REST: %s", n.Raw)
	}
	if sid := n.Find("urn:xmpp:sid:0", "stanza-id"); sid == nil || sid.Attr("id") == "" {
		t.Fatalf("no stanza-id: %s", n.Raw)
	}

	// XMPP → REST history, addressed by id and by the username alias.
	a.Send(`<message type="chat" to="%s@localhost" id="m-1"><body>by id</body></message>`, bob.ID)
	a.Send(`<message type="chat" to="%s@localhost" id="m-2"><body>by name</body></message>`, bob.Name)
	// A retry with the same id is stored once.
	a.Send(`<message type="chat" to="%s@localhost" id="m-2"><body>by name</body></message>`, bob.Name)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := s.historyWith(t, bob.Token, alice.Name)
		if strings.Join(got, "|") == "hello over REST|by id|by name" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Bob's history %q", got)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Errors come back as message errors, and nothing is stored.
	a.Send(`<message type="chat" to="nobody_%d@localhost" id="e1"><body>lost</body></message>`, time.Now().UnixNano())
	e := a.Expect(5*time.Second, "error", func(n *xmpptest.Node) bool { return n.Attr("id") == "e1" })
	if e.Attr("type") != "error" || e.Find("", "item-not-found") == nil {
		t.Fatalf("message to an unknown user: %s", e.Raw)
	}
	a.Send(`<message type="chat" to="%s@localhost" id="e2"><body></body></message>`, bob.ID)
	e = a.Expect(5*time.Second, "error", func(n *xmpptest.Node) bool { return n.Attr("id") == "e2" })
	if e.Find("", "bad-request") == nil {
		t.Fatalf("empty body: %s", e.Raw)
	}
	if got := s.historyWith(t, bob.Token, alice.Name); len(got) != 3 {
		t.Fatalf("history after errors: %q", got)
	}
}

func TestXMPPBadInput(t *testing.T) {
	s := startMain(t, xmppEnv(t))
	addr := s.m.XMPPAddr()
	alice, bob := s.register(t, "alice"), s.register(t, "bob")

	cases := []struct {
		name, send, want string
		authed           bool
	}{
		{"Malformed", `<message><body>unclosed</message>`, "not-well-formed", true},
		{"BillionLaughs", `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><message><body>&lol2;</body></message>`, "", true},
		{"UndefinedEntity", `<message to="x@localhost"><body>&lol;</body></message>`, "not-well-formed", true},
		{"Comment", `<!-- hi --><presence/>`, "restricted-xml", true},
		{"ProcInst", `<?evil x?><presence/>`, "restricted-xml", true},
		{"TooDeep", `<message>` + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + `</message>`, "policy-violation", true},
		{"Huge", `<message to="` + "x@localhost" + `"><body>` + strings.Repeat("a", 70<<10) + `</body></message>`, "policy-violation", true},
		{"NotAStanza", `<foo xmlns="jabber:client"/>`, "unsupported-stanza-type", true},
		{"BeforeAuth", `<message to="x@localhost"><body>hi</body></message>`, "not-authorized", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c *xmpptest.Client
			if tc.authed {
				c = xmpptest.Login(t, addr, "localhost", alice.Name, alice.Password, "bad")
			} else {
				c = xmpptest.DialTCP(t, addr, "localhost")
				c.StartTLS()
			}
			c.SendRaw(tc.send)
			got := c.StreamError(10 * time.Second)
			if tc.want != "" && got != tc.want {
				t.Fatalf("stream error %q, want %q", got, tc.want)
			}
			if tc.want == "" && got != "restricted-xml" && got != "not-well-formed" {
				t.Fatalf("DTD: stream error %q, want restricted-xml or not-well-formed", got)
			}
		})
	}
	t.Run("Flood", func(t *testing.T) {
		c := xmpptest.Login(t, addr, "localhost", alice.Name, alice.Password, "flood")
		var b strings.Builder
		for i := 0; i < 600; i++ {
			fmt.Fprintf(&b, `<iq type="get" id="f%d"><ping xmlns="urn:xmpp:ping"/></iq>`, i)
		}
		go func() { _ = c.TrySendRaw(b.String()) }()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			n, err := c.TryNext(time.Until(deadline))
			if err != nil {
				t.Fatalf("stream ended without policy-violation: %v", err)
			}
			if n.XMLName.Local == "error" && n.Find("", "policy-violation") != nil {
				return
			}
		}
		t.Fatal("no policy-violation for 600 stanzas at once")
	})
	t.Run("WebSocketTwoElements", func(t *testing.T) {
		c := xmpptest.DialWS(t, wsURL(s), "localhost")
		c.SendRaw(`<presence xmlns="jabber:client"/><presence xmlns="jabber:client"/>`)
		if got := c.StreamError(5 * time.Second); got != "not-authorized" && got != "not-well-formed" {
			t.Fatalf("stream error %q", got)
		}
	})
	// Nothing of the above was stored.
	if got := s.historyWith(t, bob.Token, alice.Name); len(got) != 0 {
		t.Fatalf("history after bad input: %q", got)
	}
	// The server still serves.
	c := xmpptest.Login(t, addr, "localhost", alice.Name, alice.Password, "after")
	c.Send(`<message type="chat" to="%s@localhost" id="ok1"><body>still fine</body></message>`, bob.Name)
	deadline := time.Now().Add(10 * time.Second)
	for len(s.historyWith(t, bob.Token, alice.Name)) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("message after bad input not stored")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestXMPPBlocking(t *testing.T) {
	s := startMain(t, xmppEnv(t))
	addr := s.m.XMPPAddr()
	alice, bob := s.register(t, "alice"), s.register(t, "bob")
	a1 := xmpptest.Login(t, addr, "localhost", alice.Name, alice.Password, "one")
	a2 := xmpptest.Login(t, addr, "localhost", alice.Name, alice.Password, "two")

	a1.Send(`<iq type="set" id="b1"><block xmlns="urn:xmpp:blocking"><item jid="%s@localhost"/></block></iq>`, bob.Name)
	if n := a1.Expect(5*time.Second, "block result", func(n *xmpptest.Node) bool { return n.Attr("id") == "b1" }); n.Attr("type") != "result" {
		t.Fatalf("block: %s", n.Raw)
	}
	// The other resource gets the push, with the canonical JID.
	push := a2.Expect(5*time.Second, "block push", func(n *xmpptest.Node) bool { return n.Find("urn:xmpp:blocking", "block") != nil })
	if it := push.Find("", "item"); it == nil || it.Attr("jid") != bob.ID+"@localhost" {
		t.Fatalf("push: %s", push.Raw)
	}
	// It is an Aoba block: Bob can no longer message Alice.
	s.do(t, "POST", "/api/messages", bob.Token, map[string]any{"to": alice.Name, "content": "hi"}).want(t, 403)
	a2.Send(`<iq type="get" id="l1"><blocklist xmlns="urn:xmpp:blocking"/></iq>`)
	list := a2.Expect(5*time.Second, "blocklist", func(n *xmpptest.Node) bool { return n.Attr("id") == "l1" })
	if items := list.FindAll("", "item"); len(items) != 1 || items[0].Attr("jid") != bob.ID+"@localhost" {
		t.Fatalf("blocklist: %s", list.Raw)
	}
	// An empty unblock unblocks everyone.
	a2.Send(`<iq type="set" id="u1"><unblock xmlns="urn:xmpp:blocking"/></iq>`)
	if n := a2.Expect(5*time.Second, "unblock result", func(n *xmpptest.Node) bool { return n.Attr("id") == "u1" }); n.Attr("type") != "result" {
		t.Fatalf("unblock: %s", n.Raw)
	}
	s.do(t, "POST", "/api/messages", bob.Token, map[string]any{"to": alice.Name, "content": "hi again"}).want(t, 201)
	a1.Send(`<iq type="set" id="b2"><block xmlns="urn:xmpp:blocking"><item jid="nobody@elsewhere.example"/></block></iq>`)
	if n := a1.Expect(5*time.Second, "error", func(n *xmpptest.Node) bool { return n.Attr("id") == "b2" }); n.Find("", "jid-malformed") == nil {
		t.Fatalf("foreign JID: %s", n.Raw)
	}
}

func TestXMPPConnectionLimit(t *testing.T) {
	e := xmppEnv(t)
	e["AOBA_MAX_SOCKETS_PER_USER"] = "2"
	s := startMain(t, e)
	addr := s.m.XMPPAddr()
	alice := s.register(t, "alice")
	first := xmpptest.Login(t, addr, "localhost", alice.Name, alice.Password, "one")
	_ = xmpptest.Login(t, addr, "localhost", alice.Name, alice.Password, "two")
	// The third connection, an XMPP stream or a JSON socket alike, closes
	// the oldest: the first stream ends with conflict.
	third := xmpptest.DialWS(t, wsURL(s), "localhost")
	third.Bearer(alice.Token)
	third.Bind("three")
	if got := first.StreamError(10 * time.Second); got != "conflict" {
		t.Fatalf("oldest stream: stream error %q, want conflict", got)
	}
}

func TestXMPPEditsAndDeletions(t *testing.T) {
	s := startMain(t, xmppEnv(t))
	addr := s.m.XMPPAddr()
	alice, bob := s.register(t, "alice"), s.register(t, "bob")
	a := xmpptest.Login(t, addr, "localhost", alice.Name, alice.Password, "desk")

	var sent struct {
		ID string `json:"id"`
	}
	s.do(t, "POST", "/api/messages", bob.Token, map[string]any{"to": alice.Name, "content": "helo", "client_id": "bob-1"}).want(t, 201).decode(t, &sent)
	if n := a.Expect(10*time.Second, "message", isMessageWithBody("helo")); n.Attr("id") != "bob-1" {
		t.Fatalf("the message's stanza id is not its client id: %s", n.Raw)
	}
	s.do(t, "PATCH", "/api/messages/"+sent.ID, bob.Token, map[string]any{"content": "hello"}).want(t, 200)
	n := a.Expect(10*time.Second, "correction", isMessageWithBody("hello"))
	if r := n.Find("urn:xmpp:message-correct:0", "replace"); r == nil || r.Attr("id") != "bob-1" || n.Attr("from") != bob.ID+"@localhost" {
		t.Fatalf("correction: %s", n.Raw)
	}
	s.do(t, "DELETE", "/api/messages/"+sent.ID, bob.Token, nil).want(t, 204)
	n = a.Expect(10*time.Second, "retraction", func(n *xmpptest.Node) bool { return n.Find("urn:xmpp:message-retract:1", "retract") != nil })
	if n.Find("urn:xmpp:message-retract:1", "retract").Attr("id") != "bob-1" {
		t.Fatalf("retraction: %s", n.Raw)
	}
	// A retraction from an XMPP client is refused, and stores nothing.
	a.Send(`<message type="chat" to="%s@localhost" id="r1"><retract xmlns="urn:xmpp:message-retract:1" id="x"/><body>fallback</body></message>`, bob.Name)
	if e := a.Expect(5*time.Second, "error", func(n *xmpptest.Node) bool { return n.Attr("id") == "r1" }); e.Find("", "feature-not-implemented") == nil {
		t.Fatalf("retraction from XMPP: %s", e.Raw)
	}
	if got := s.historyWith(t, alice.Token, bob.Name); len(got) != 1 || got[0] != "" {
		t.Fatalf("history %q, want the one deleted message", got)
	}
}

func TestXMPPRoomOccupantsFollowPresence(t *testing.T) {
	s := startMain(t, xmppEnv(t))
	addr := s.m.XMPPAddr()
	alice, carol := s.register(t, "alice"), s.register(t, "carol")
	gid := s.newGroup(t, alice.Token, "Occupants")
	s.do(t, "POST", "/api/groups/"+gid+"/members", alice.Token, map[string]string{"username": carol.Name}).want(t, 201)
	room := gid + "@conference.localhost"
	a := xmpptest.Login(t, addr, "localhost", alice.Name, alice.Password, "desk")
	a.Send(`<presence/>`)
	a.Send(`<presence to="%s/%s"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>`, room, alice.Name)
	a.Expect(10*time.Second, "subject", func(n *xmpptest.Node) bool { return n.Find("", "subject") != nil })

	// Carol comes online on the JSON socket: she enters the room.
	js := openSocket(t, s, carol)
	n := a.Expect(10*time.Second, "Carol's occupant presence", func(n *xmpptest.Node) bool {
		return n.XMLName.Local == "presence" && n.Attr("from") == room+"/"+carol.Name
	})
	item := n.Find("http://jabber.org/protocol/muc#user", "item")
	if n.Attr("type") != "" || item == nil || item.Attr("role") != "participant" || item.Attr("affiliation") != "member" || item.Attr("jid") != carol.ID+"@localhost" {
		t.Fatalf("occupant presence: %s", n.Raw)
	}
	// She goes offline: she leaves the room (after the presence grace period).
	_ = js.c.Close()
	n = a.Expect(20*time.Second, "Carol's unavailable presence", func(n *xmpptest.Node) bool {
		return n.XMLName.Local == "presence" && n.Attr("from") == room+"/"+carol.Name && n.Attr("type") == "unavailable"
	})
	if item := n.Find("http://jabber.org/protocol/muc#user", "item"); item == nil || item.Attr("role") != "none" {
		t.Fatalf("leaving occupant: %s", n.Raw)
	}
	// Alice's roster does not hold Carol: no roster presence came for her.
}

func TestXMPPIdleTimeout(t *testing.T) {
	e := xmppEnv(t)
	e["AOBA_XMPP_IDLE_TIMEOUT"] = "1s"
	s := startMain(t, e)
	alice := s.register(t, "alice")
	c := xmpptest.Login(t, s.m.XMPPAddr(), "localhost", alice.Name, alice.Password, "idle")
	// Whitespace keepalives hold the stream open past the timeout.
	for i := 0; i < 8; i++ {
		c.SendRaw(" ")
		time.Sleep(300 * time.Millisecond)
	}
	c.Send(`<iq type="get" id="p1"><ping xmlns="urn:xmpp:ping"/></iq>`)
	c.Expect(5*time.Second, "ping result", func(n *xmpptest.Node) bool { return n.Attr("id") == "p1" })
	// Silence ends it with connection-timeout.
	if got := c.StreamError(10 * time.Second); got != "connection-timeout" {
		t.Fatalf("silent stream: stream error %q, want connection-timeout", got)
	}
	// Over WebSocket too.
	w := xmpptest.DialWS(t, wsURL(s), "localhost")
	if got := w.StreamError(10 * time.Second); got != "connection-timeout" {
		t.Fatalf("silent WebSocket stream: stream error %q, want connection-timeout", got)
	}
}
