package main_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
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
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames:  []string{"localhost", "conference.localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
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
	deadline := time.Now().Add(xfWait)
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

// presence waits for a `presence` frame of userID with status.
func (js *jsonSocket) presence(t *testing.T, userID string, status aoba.PresenceStatus) {
	t.Helper()
	js.wait(t, fmt.Sprintf("presence %s of %s", status, userID), func(f aoba.Frame) bool {
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

func TestXMPPPresenceWithJSONSocket(t *testing.T) {
	s := startMain(t, xmppEnv(t))
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
}
