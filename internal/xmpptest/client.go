// Package xmpptest is a minimal XMPP client for tests: it speaks raw XML
// over TCP (with STARTTLS) or WebSocket (RFC 7395), authenticates, binds a
// resource and reads stanzas as generic elements, so that a test states
// exactly what it sends and checks what it gets.
package xmpptest

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// Node is a parsed element: its name, attributes, children and text.
type Node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []Node     `xml:",any"`
	Text    string     `xml:",chardata"`
	Raw     string     `xml:"-"`
}

// Attr returns the attribute local's value.
func (n *Node) Attr(local string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// Find returns the first descendant (depth first, n included) named local
// in namespace space (any when ""), or nil.
func (n *Node) Find(space, local string) *Node {
	if n.XMLName.Local == local && (space == "" || n.XMLName.Space == space) {
		return n
	}
	for i := range n.Nodes {
		if f := n.Nodes[i].Find(space, local); f != nil {
			return f
		}
	}
	return nil
}

// FindAll returns every descendant named local in space (any when "").
func (n *Node) FindAll(space, local string) []*Node {
	var out []*Node
	if n.XMLName.Local == local && (space == "" || n.XMLName.Space == space) {
		out = append(out, n)
	}
	for i := range n.Nodes {
		out = append(out, n.Nodes[i].FindAll(space, local)...)
	}
	return out
}

// Client is one test stream.
type Client struct {
	tb     testing.TB
	conn   net.Conn
	ws     *websocket.Conn
	dec    *xml.Decoder
	Domain string
	JID    string // the bound full JID
	Header *Node  // the server's last stream header (or <open/>)
	// Features are the stream features of the last header.
	Features *Node
}

// DialTCP opens a TCP stream to addr for domain and reads the first
// features.
func DialTCP(tb testing.TB, addr, domain string) *Client {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	cl := &Client{tb: tb, conn: c, Domain: domain}
	tb.Cleanup(func() { _ = c.Close() })
	cl.OpenStream()
	return cl
}

// DialWS opens an RFC 7395 stream to url (ws://host/xmpp-websocket).
func DialWS(tb testing.TB, url, domain string) *Client {
	tb.Helper()
	d := websocket.Dialer{Subprotocols: []string{"xmpp"}, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		tb.Fatalf("dial %s: %v", url, err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != "xmpp" {
		tb.Fatalf("subprotocol %q, want xmpp", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	cl := &Client{tb: tb, ws: ws, Domain: domain}
	tb.Cleanup(func() { _ = ws.Close() })
	cl.OpenStream()
	return cl
}

// SendRaw writes s as is (one WebSocket message over WebSocket).
func (c *Client) SendRaw(s string) {
	c.tb.Helper()
	if err := c.TrySendRaw(s); err != nil {
		c.tb.Fatalf("send: %v", err)
	}
}

// TrySendRaw writes s and returns the error.
func (c *Client) TrySendRaw(s string) error {
	if c.ws != nil {
		_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		return c.ws.WriteMessage(websocket.TextMessage, []byte(s))
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(c.conn, s)
	return err
}

// Send writes a stanza given as a format string (stanzas over WebSocket
// get xmlns='jabber:client' added to their top element when missing).
func (c *Client) Send(format string, args ...any) {
	c.tb.Helper()
	s := fmt.Sprintf(format, args...)
	if c.ws != nil && !strings.Contains(strings.SplitN(s, ">", 2)[0], "xmlns=") {
		if i := strings.IndexAny(s, " />"); i > 0 {
			s = s[:i] + ` xmlns="jabber:client"` + s[i:]
		}
	}
	c.SendRaw(s)
}

// OpenStream sends a stream header and reads the server's header and
// features.
func (c *Client) OpenStream() {
	c.tb.Helper()
	if c.ws != nil {
		c.SendRaw(fmt.Sprintf(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="%s" version="1.0"/>`, c.Domain))
		c.Header = c.Next(5 * time.Second)
		c.Features = c.Next(5 * time.Second)
		return
	}
	c.dec = xml.NewDecoder(c.conn)
	c.SendRaw(fmt.Sprintf(`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="%s" version="1.0">`, c.Domain))
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			c.tb.Fatalf("read stream header: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			c.Header = &Node{XMLName: se.Name, Attrs: se.Attr}
			break
		}
	}
	c.Features = c.Next(5 * time.Second)
}

// Next reads the next element within d, failing the test on error.
func (c *Client) Next(d time.Duration) *Node {
	c.tb.Helper()
	n, err := c.TryNext(d)
	if err != nil {
		c.tb.Fatalf("read: %v", err)
	}
	return n
}

// TryNext reads the next element within d. It returns io.EOF when the
// server ended the stream.
func (c *Client) TryNext(d time.Duration) (*Node, error) {
	if c.ws != nil {
		_ = c.ws.SetReadDeadline(time.Now().Add(d))
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		var n Node
		if err := xml.Unmarshal(data, &n); err != nil {
			return nil, fmt.Errorf("parse %q: %w", data, err)
		}
		n.Raw = string(data)
		if n.XMLName.Local == "close" {
			return &n, io.EOF
		}
		return &n, nil
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		start := c.dec.InputOffset()
		tok, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			var n Node
			if err := c.dec.DecodeElement(&n, &t); err != nil {
				return nil, err
			}
			_ = start
			b, _ := xml.Marshal(n)
			n.Raw = string(b)
			return &n, nil
		case xml.EndElement:
			return nil, io.EOF
		}
	}
}

// Expect reads elements until one for which match returns true, within
// d in all, and returns it; the elements skipped are returned too.
func (c *Client) Expect(d time.Duration, what string, match func(*Node) bool) *Node {
	c.tb.Helper()
	deadline := time.Now().Add(d)
	var seen []string
	for {
		left := time.Until(deadline)
		if left <= 0 {
			c.tb.Fatalf("no %s within %v; got: %s", what, d, strings.Join(seen, " "))
		}
		n, err := c.TryNext(left)
		if err != nil {
			c.tb.Fatalf("no %s: %v; got: %s", what, err, strings.Join(seen, " "))
		}
		if match(n) {
			return n
		}
		seen = append(seen, n.Raw)
	}
}

// StartTLS negotiates TLS (the certificate is not verified) and restarts
// the stream.
func (c *Client) StartTLS() {
	c.tb.Helper()
	c.StartTLSWith(&tls.Config{InsecureSkipVerify: true, ServerName: c.Domain}) //nolint:gosec // tests use a self-signed certificate
}

// StartTLSWith negotiates TLS with cfg (e.g. RootCAs holding the server's
// certificate, to verify it for the domain) and restarts the stream.
func (c *Client) StartTLSWith(cfg *tls.Config) {
	c.tb.Helper()
	c.SendRaw(`<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>`)
	if n := c.Next(5 * time.Second); n.XMLName.Local != "proceed" {
		c.tb.Fatalf("starttls: got %s", n.Raw)
	}
	tc := tls.Client(c.conn, cfg)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.tb.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.OpenStream()
}

// Auth runs one SASL exchange with mechanism and payload and returns the
// server's answer (success or failure).
func (c *Client) Auth(mechanism string, payload []byte) *Node {
	c.tb.Helper()
	c.SendRaw(fmt.Sprintf(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="%s">%s</auth>`, mechanism, base64.StdEncoding.EncodeToString(payload)))
	return c.Next(10 * time.Second)
}

// Plain authenticates with SASL PLAIN; it fails the test unless it
// succeeds.
func (c *Client) Plain(user, password string) {
	c.tb.Helper()
	if n := c.Auth("PLAIN", []byte("\x00"+user+"\x00"+password)); n.XMLName.Local != "success" {
		c.tb.Fatalf("PLAIN as %s: %s", user, n.Raw)
	}
}

// Bearer authenticates with SASL OAUTHBEARER and an Aoba session token.
func (c *Client) Bearer(token string) {
	c.tb.Helper()
	if n := c.Auth("OAUTHBEARER", []byte("n,,\x01auth=Bearer "+token+"\x01\x01")); n.XMLName.Local != "success" {
		c.tb.Fatalf("OAUTHBEARER: %s", n.Raw)
	}
}

// Bind restarts the stream after SASL and binds resource.
func (c *Client) Bind(resource string) string {
	c.tb.Helper()
	c.OpenStream()
	c.Send(`<iq type="set" id="bind1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>%s</resource></bind></iq>`, resource)
	n := c.Expect(5*time.Second, "bind result", func(n *Node) bool { return n.Attr("id") == "bind1" })
	j := n.Find("", "jid")
	if n.Attr("type") != "result" || j == nil {
		c.tb.Fatalf("bind: %s", n.Raw)
	}
	c.JID = j.Text
	return c.JID
}

// Login opens a TCP stream to addr, negotiates TLS, authenticates with
// PLAIN and binds resource.
func Login(tb testing.TB, addr, domain, user, password, resource string) *Client {
	tb.Helper()
	c := DialTCP(tb, addr, domain)
	c.StartTLS()
	c.Plain(user, password)
	c.Bind(resource)
	return c
}

// Close ends the stream.
func (c *Client) Close() {
	if c.ws != nil {
		_ = c.ws.WriteMessage(websocket.TextMessage, []byte(`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`))
		_ = c.ws.Close()
		return
	}
	_, _ = io.WriteString(c.conn, "</stream:stream>")
	_ = c.conn.Close()
}

// StreamError reads until the stream ends and returns the condition of
// the stream error before it ("" when there was none).
func (c *Client) StreamError(d time.Duration) string {
	c.tb.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		n, err := c.TryNext(time.Until(deadline))
		if n != nil && n.XMLName.Local == "error" && (n.XMLName.Space == "http://etherx.jabber.org/streams" || n.XMLName.Space == "") {
			for _, k := range n.Nodes {
				if k.XMLName.Space == "urn:ietf:params:xml:ns:xmpp-streams" && k.XMLName.Local != "text" {
					return k.XMLName.Local
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || isClosed(err) {
				return ""
			}
			c.tb.Fatalf("waiting for the stream's end: %v", err)
		}
	}
	c.tb.Fatalf("stream not ended within %v", d)
	return ""
}

func isClosed(err error) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset")
}

var _ = bytes.MinRead
