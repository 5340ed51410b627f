package main_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/internal/redistest"
	"github.com/fasthttp/websocket"
)

// xmppDomain is the AOBA_DOMAIN of the XMPP tests.
const xmppDomain = "localhost"

// withXMPP returns e with the XMPP listener on a free loopback port and the
// domain set, and that address.
func withXMPP(t *testing.T, e env) (env, string) {
	t.Helper()
	out := env{}
	for k, v := range e {
		out[k] = v
	}
	addr := freeAddr(t)
	out["AOBA_XMPP_ADDR"] = addr
	out["AOBA_DOMAIN"] = xmppDomain
	return out, addr
}

// xmppCertPool returns a pool holding the self-signed certificate embedded
// mode generated into dataDir, so that the raw client verifies the STARTTLS
// certificate (for the domain) instead of skipping verification.
func xmppCertPool(t *testing.T, dataDir string) *x509.CertPool {
	t.Helper()
	for _, name := range []string{"xmpp-cert.pem", "xmpp-key.pem"} {
		if _, err := os.Stat(filepath.Join(dataDir, name)); err != nil {
			t.Fatalf("embedded mode without AOBA_TLS_CERT generates %s into the data directory: %v", name, err)
		}
	}
	pem, err := os.ReadFile(filepath.Join(dataDir, "xmpp-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("xmpp-cert.pem holds no PEM certificate")
	}
	return pool
}

// xmppStanza is one top-level element of an XMPP stream.
type xmppStanza struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Body    string     `xml:"body"`
	Inner   string     `xml:",innerxml"`
}

func (s xmppStanza) attr(name string) string {
	for _, a := range s.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (s xmppStanza) String() string {
	var b strings.Builder
	b.WriteString("<" + s.XMLName.Local)
	for _, a := range s.Attrs {
		fmt.Fprintf(&b, " %s=%q", a.Name.Local, a.Value)
	}
	b.WriteString(">" + s.Inner + "</" + s.XMLName.Local + ">")
	return b.String()
}

// xmppClient is a minimal XMPP client over TCP: STARTTLS, SASL PLAIN,
// resource binding, then stanzas in and out. It keeps a transcript for
// failure messages. Every read is bounded by a deadline.
type xmppClient struct {
	t          *testing.T
	conn       net.Conn
	dec        *xml.Decoder
	jid        string
	transcript []string
}

// dialXMPP logs username in at addr and binds resource; roots verifies the
// server's certificate for xmppDomain.
func dialXMPP(t *testing.T, addr, username, password, resource string, roots *x509.CertPool) *xmppClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial XMPP %s: %v", addr, err)
	}
	c := &xmppClient{t: t, conn: conn}
	t.Cleanup(func() {
		_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.conn.Write([]byte("</stream:stream>"))
		_ = c.conn.Close()
	})
	features := c.open()
	if !strings.Contains(features.Inner, "urn:ietf:params:xml:ns:xmpp-tls") {
		c.fatalf("no STARTTLS in the features %s", features)
	}
	c.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if p := c.next(); p.XMLName.Local != "proceed" {
		c.fatalf("STARTTLS answered with %s", p)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: xmppDomain, RootCAs: roots, MinVersion: tls.VersionTLS12})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.fatalf("TLS handshake (certificate verified for %s): %v", xmppDomain, err)
	}
	c.conn = tc
	features = c.open()
	if !strings.Contains(features.Inner, ">PLAIN<") {
		c.fatalf("no SASL PLAIN after TLS in %s", features)
	}
	c.write(fmt.Sprintf("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>",
		base64.StdEncoding.EncodeToString([]byte("\x00"+username+"\x00"+password))))
	if r := c.next(); r.XMLName.Local != "success" {
		c.fatalf("SASL PLAIN answered with %s", r)
	}
	features = c.open()
	if !strings.Contains(features.Inner, "urn:ietf:params:xml:ns:xmpp-bind") {
		c.fatalf("no resource binding offered in %s", features)
	}
	c.write(fmt.Sprintf("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>", resource))
	res := c.next()
	if res.XMLName.Local != "iq" || res.attr("type") != "result" || res.attr("id") != "bind1" {
		c.fatalf("bind answered with %s", res)
	}
	var bound struct {
		JID string `xml:"bind>jid"`
	}
	if err := xml.Unmarshal([]byte("<iq>"+res.Inner+"</iq>"), &bound); err != nil || bound.JID == "" {
		c.fatalf("no JID in the bind result %s: %v", res, err)
	}
	c.jid = bound.JID
	return c
}

// open sends a stream header, reads the server's and returns its features.
func (c *xmppClient) open() xmppStanza {
	c.t.Helper()
	c.write(fmt.Sprintf("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>", xmppDomain))
	c.dec = xml.NewDecoder(c.conn)
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			c.fatalf("reading the stream header: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "stream" {
				c.fatalf("got <%s> instead of the stream header", se.Name.Local)
			}
			break
		}
	}
	f := c.next()
	if f.XMLName.Local != "features" {
		c.fatalf("got %s instead of stream features", f)
	}
	return f
}

func (c *xmppClient) write(s string) {
	c.t.Helper()
	c.transcript = append(c.transcript, "C: "+s)
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.fatalf("write: %v", err)
	}
}

// next reads the next top-level element, waiting at most 15 s.
func (c *xmppClient) next() xmppStanza {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			c.fatalf("read: %v", err)
		}
		switch se := tok.(type) {
		case xml.StartElement:
			var s xmppStanza
			if err := c.dec.DecodeElement(&s, &se); err != nil {
				c.fatalf("decode <%s>: %v", se.Name.Local, err)
			}
			c.transcript = append(c.transcript, "S: "+s.String())
			return s
		case xml.EndElement:
			c.fatalf("the server closed the stream")
		}
	}
}

// waitMessage reads stanzas until a <message> with body arrives.
func (c *xmppClient) waitMessage(body string) xmppStanza {
	c.t.Helper()
	for {
		if s := c.next(); s.XMLName.Local == "message" && s.Body == body {
			return s
		}
	}
}

func (c *xmppClient) fatalf(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf(format+"\ntranscript of %s:\n  %s", append(args, c.jid, strings.Join(c.transcript, "\n  "))...)
}

// readContent reads frames of c until a `message` with content arrives.
func readContent(t *testing.T, c *websocket.Conn, content string) aoba.MessageView {
	t.Helper()
	for {
		f := readFrame(t, c, aoba.FrameMessage)
		var m aoba.MessageView
		if err := json.Unmarshal(f.Data, &m); err != nil {
			t.Fatalf("message data %s: %v", f.Data, err)
		}
		if m.Content == content {
			return m
		}
	}
}

// xmppSender is a command-line XMPP sender from Debian: go-sendxmpp
// (github.com/mattn/go-xmpp underneath), or the older Perl sendxmpp
// (Net::XMPP) where go-sendxmpp is not packaged. Both use STARTTLS without
// verifying the certificate (the server's is self-signed).
type xmppSender struct {
	bin  string
	perl bool
}

// findSender returns the installed sender; it skips the test without one.
func findSender(t *testing.T) xmppSender {
	t.Helper()
	if bin, err := exec.LookPath("go-sendxmpp"); err == nil {
		return xmppSender{bin: bin}
	}
	if bin, err := exec.LookPath("sendxmpp"); err == nil {
		return xmppSender{bin: bin, perl: true}
	}
	t.Skip("neither go-sendxmpp nor sendxmpp is installed; scripts/test.sh installs Debian's go-sendxmpp")
	return xmppSender{}
}

// send logs in as user (a username or user id) with password at addr and
// sends stdin to recipient, a user JID or, with room, a room JID under the
// nick alias. It returns the combined output and the error of the run,
// bounded at 30 s.
func (x xmppSender) send(t *testing.T, addr, user, password, recipient string, room bool, alias, stdin string) (string, error) {
	t.Helper()
	var args []string
	if x.perl {
		args = []string{"-j", addr, "-o", xmppDomain, "-t", "-n", "-u", user, "-p", password}
		if room {
			args = append(args, "-c", "-r", alias)
		} else {
			args = append(args, "--message-type", "chat")
		}
	} else {
		args = []string{"-j", addr, "-n", "--timeout", "10", "-u", user + "@" + xmppDomain, "-p", password}
		if room {
			args = append(args, "-c", "-a", alias)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, x.bin, append(args, recipient)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user configuration file
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return fmt.Sprintf("%s %s: %s", x.bin, strings.Join(args, " "), out.String()), err
}

// mustSend is send that fails the test when the sender fails.
func (x xmppSender) mustSend(t *testing.T, addr, user, password, recipient string, room bool, alias, stdin string) {
	t.Helper()
	if out, err := x.send(t, addr, user, password, recipient, room, alias, stdin); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestXMPPGoSendxmpp: Debian's go-sendxmpp (another XMPP implementation)
// logs in with a password over STARTTLS and sends a 1:1 message, which the
// recipient gets on the JSON socket and in history, and a message to a
// group's room, which a member gets; a wrong password stores nothing.
func TestXMPPGoSendxmpp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go-sendxmpp against the server")
	}
	x := findSender(t)
	e, addr := withXMPP(t, embeddedEnv(t))
	s := startMain(t, e)
	alice, bob := s.register(t, "alice"), s.register(t, "bob")
	b := dialUser(t, s, bob.Token)

	t.Run("Chat", func(t *testing.T) {
		x.mustSend(t, addr, alice.Name, alice.Password, bob.ID+"@"+xmppDomain, false, "", "Hello Bob, from sendxmpp\n")
		m := readContent(t, b, "Hello Bob, from sendxmpp")
		if m.From != alice.Name || m.To != bob.Name {
			t.Fatalf("message from %s to %s, want %s to %s", m.From, m.To, alice.Name, bob.Name)
		}
		findMessage(t, historyWith(t, s, bob.Token, alice.Name), m.ID)
	})

	t.Run("Room", func(t *testing.T) {
		gid := s.newGroup(t, alice.Token, newName("room"))
		s.do(t, "POST", "/api/groups/"+gid+"/members", alice.Token, map[string]string{"username": bob.Name}).want(t, 201)
		// By user id this time: PLAIN takes the username or the user id.
		x.mustSend(t, addr, alice.ID, alice.Password, gid+"@conference."+xmppDomain, true, alice.Name, "Hello room, from sendxmpp\n")
		m := readContent(t, b, "Hello room, from sendxmpp")
		if m.From != alice.Name || m.ToID != gid || m.Type != "groupchat" {
			t.Fatalf("got %+v, want a groupchat from %s to %s", m, alice.Name, gid)
		}
		findMessage(t, historyWith(t, s, bob.Token, gid), m.ID)
	})

	t.Run("WrongPasswordRefused", func(t *testing.T) {
		if out, err := x.send(t, addr, alice.Name, "not the password", bob.ID+"@"+xmppDomain, false, "", "must not arrive\n"); err == nil {
			t.Fatalf("a wrong password succeeded: %s", out)
		}
		for _, m := range historyWith(t, s, bob.Token, alice.Name) {
			if m.Content == "must not arrive" {
				t.Fatalf("a message sent with a wrong password was stored: %+v", m)
			}
		}
	})
}

// TestXMPPAcrossPods: two pods share Redis and one SQLite file, each with its
// own XMPP listener. An XMPP session on pod A receives what is sent through
// pod B's REST API, and what it sends reaches a JSON socket on pod B.
func TestXMPPAcrossPods(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	base := cheap(env{"AOBA_DATA_DIR": t.TempDir(), "AOBA_REDIS_URL": redistest.Shared(t).URL(),
		"AOBA_REDIS_PREFIX": redistest.Prefix(t), "AOBA_JWT_SECRET": testSecret})
	ea, addrA := withXMPP(t, base)
	eb, _ := withXMPP(t, base)
	a, b := startMain(t, ea), startMain(t, eb)
	alice, bob := a.register(t, "alice"), b.register(t, "bob")
	roots := xmppCertPool(t, base["AOBA_DATA_DIR"])

	x := dialXMPP(t, addrA, alice.Name, alice.Password, "podA", roots)
	if want := alice.ID + "@" + xmppDomain + "/podA"; x.jid != want {
		t.Fatalf("bound %s, want %s", x.jid, want)
	}
	x.write("<presence/>")

	var sent aoba.MessageView
	b.do(t, "POST", "/api/messages", bob.Token, map[string]string{"to": alice.Name, "content": "through pod B"}).want(t, 201).decode(t, &sent)
	got := x.waitMessage("through pod B")
	if got.attr("type") != "chat" || strings.Split(got.attr("from"), "/")[0] != bob.ID+"@"+xmppDomain {
		x.fatalf("got %s, want a chat message from %s@%s", got, bob.ID, xmppDomain)
	}
	if !strings.Contains(got.Inner, sent.ID) {
		x.fatalf("the stanza-id %s is not in %s", sent.ID, got)
	}

	sock := dialUser(t, b, bob.Token)
	x.write(fmt.Sprintf("<message type='chat' to='%s@%s' id='pods-1'><body>from pod A over XMPP</body></message>", bob.ID, xmppDomain))
	m := readContent(t, sock, "from pod A over XMPP")
	if m.From != alice.Name {
		t.Fatalf("from %s, want %s", m.From, alice.Name)
	}
	findMessage(t, historyWith(t, b, bob.Token, alice.Name), m.ID)
}
