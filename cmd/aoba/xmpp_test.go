package main_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/internal/redistest"
	"github.com/aoba-chat/aoba/internal/xmpptest"
	"github.com/aoba-chat/aoba/xmpp"
	"github.com/fasthttp/websocket"
)

// xmppDomain is the AOBA_DOMAIN of the XMPP tests (xmppEnv's).
const xmppDomain = "localhost"

// testCert writes a self-signed certificate for xmppDomain (the one the
// embedded mode generates, xmpp.WriteSelfSigned) and its key into dir, as
// AOBA_TLS_CERT and AOBA_TLS_KEY need them, and returns their paths.
func testCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := xmpp.WriteSelfSigned(xmppDomain, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// verifiedLogin logs user in over TCP at addr like xmpptest.Login, but
// verifies the STARTTLS certificate for xmppDomain against the PEM file
// certFile instead of skipping verification.
func verifiedLogin(t *testing.T, addr, certFile, user, password, resource string) *xmpptest.Client {
	t.Helper()
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(data) {
		t.Fatalf("%s holds no PEM certificate", certFile)
	}
	c := xmpptest.DialTCP(t, addr, xmppDomain)
	c.StartTLSWith(&tls.Config{ServerName: xmppDomain, RootCAs: roots, MinVersion: tls.VersionTLS12})
	c.Plain(user, password)
	c.Bind(resource)
	return c
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
// group's room, which a member gets; a wrong password stores nothing. The
// self-signed certificate the embedded mode generated into the data
// directory verifies for the domain.
func TestXMPPGoSendxmpp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go-sendxmpp against the server")
	}
	x := findSender(t)
	e := xmppEnv(t)
	s := startMain(t, e)
	addr := s.m.XMPPAddr()
	alice, bob := s.register(t, "alice"), s.register(t, "bob")
	b := dialUser(t, s, bob.Token)

	t.Run("SelfSignedCertificate", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(e["AOBA_DATA_DIR"], "xmpp-key.pem")); err != nil {
			t.Fatalf("the generated key: %v", err)
		}
		c := verifiedLogin(t, addr, filepath.Join(e["AOBA_DATA_DIR"], "xmpp-cert.pem"), alice.Name, alice.Password, "verified")
		if want := alice.ID + "@" + xmppDomain + "/verified"; c.JID != want {
			t.Fatalf("bound %s, want %s", c.JID, want)
		}
		c.Close()
	})

	t.Run("Chat", func(t *testing.T) {
		x.mustSend(t, addr, alice.Name, alice.Password, bob.ID+"@"+xmppDomain, false, "", "Hello Bob, from sendxmpp")
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
		x.mustSend(t, addr, alice.ID, alice.Password, gid+"@conference."+xmppDomain, true, alice.Name, "Hello room, from sendxmpp")
		m := readContent(t, b, "Hello room, from sendxmpp")
		if m.From != alice.Name || m.ToID != gid || m.Type != "groupchat" {
			t.Fatalf("got %+v, want a groupchat from %s to %s", m, alice.Name, gid)
		}
		findMessage(t, historyWith(t, s, bob.Token, gid), m.ID)
	})

	t.Run("WrongPasswordRefused", func(t *testing.T) {
		if out, err := x.send(t, addr, alice.Name, "not the password", bob.ID+"@"+xmppDomain, false, "", "must not arrive"); err == nil {
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
// own XMPP listener and the same certificate (AOBA_TLS_CERT/KEY, required
// once scaled out). An XMPP session on pod A receives what is sent through
// pod B's REST API, and what it sends reaches a JSON socket on pod B.
func TestXMPPAcrossPods(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	certFile, keyFile := testCert(t, t.TempDir())
	e := cheap(env{"AOBA_DATA_DIR": t.TempDir(), "AOBA_REDIS_URL": redistest.Shared(t).URL(),
		"AOBA_REDIS_PREFIX": redistest.Prefix(t), "AOBA_JWT_SECRET": testSecret,
		"AOBA_XMPP_ADDR": "127.0.0.1:0", "AOBA_DOMAIN": xmppDomain, "AOBA_TLS_CERT": certFile, "AOBA_TLS_KEY": keyFile})
	a, b := startMain(t, e), startMain(t, e)
	alice, bob := a.register(t, "alice"), b.register(t, "bob")

	x := verifiedLogin(t, a.m.XMPPAddr(), certFile, alice.Name, alice.Password, "podA")
	if want := alice.ID + "@" + xmppDomain + "/podA"; x.JID != want {
		t.Fatalf("bound %s, want %s", x.JID, want)
	}
	x.Send("<presence/>")

	var sent aoba.MessageView
	b.do(t, "POST", "/api/messages", bob.Token, map[string]string{"to": alice.Name, "content": "through pod B"}).want(t, 201).decode(t, &sent)
	got := x.Expect(15*time.Second, "the message sent through pod B", isMessageWithBody("through pod B"))
	if got.Attr("type") != "chat" || strings.Split(got.Attr("from"), "/")[0] != bob.ID+"@"+xmppDomain {
		t.Fatalf("got %s, want a chat message from %s@%s", got.Raw, bob.ID, xmppDomain)
	}
	if sid := got.Find("urn:xmpp:sid:0", "stanza-id"); sid == nil || sid.Attr("id") != sent.ID {
		t.Fatalf("no stanza-id %s in %s", sent.ID, got.Raw)
	}

	sock := dialUser(t, b, bob.Token)
	x.Send("<message type='chat' to='%s@%s' id='pods-1'><body>from pod A over XMPP</body></message>", bob.ID, xmppDomain)
	m := readContent(t, sock, "from pod A over XMPP")
	if m.From != alice.Name {
		t.Fatalf("from %s, want %s", m.From, alice.Name)
	}
	findMessage(t, historyWith(t, b, bob.Token, alice.Name), m.ID)
}
