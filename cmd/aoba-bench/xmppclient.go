package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// XNode is one parsed XMPP element: its name, attributes, children and
// text.
type XNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []XNode    `xml:",any"`
	Text    string     `xml:",chardata"`
}

// Attr returns the value of the attribute local.
func (n *XNode) Attr(local string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// Child returns the first child named local (any namespace), or nil.
func (n *XNode) Child(local string) *XNode {
	for i := range n.Nodes {
		if n.Nodes[i].XMLName.Local == local {
			return &n.Nodes[i]
		}
	}
	return nil
}

// condition returns the name of the first child of an error element
// (the stanza or SASL condition), or "".
func (n *XNode) condition() string {
	e := n
	if n.XMLName.Local != "failure" {
		if e = n.Child("error"); e == nil {
			return ""
		}
	}
	for _, c := range e.Nodes {
		if c.XMLName.Local != "text" {
			return c.XMLName.Local
		}
	}
	return ""
}

// XMPP mechanisms the tool authenticates with.
const (
	SASLOAuthBearer = "oauthbearer"
	SASLPlain       = "plain"
)

// XDialOptions says how to open one XMPP client stream.
type XDialOptions struct {
	Addr     string       // the server's XMPP listener, host:port (127.0.0.x)
	Domain   string       // the server's XMPP domain (AOBA_DOMAIN)
	Src      *net.TCPAddr // local source address (nil: any)
	Mech     string       // SASLOAuthBearer (Token) or SASLPlain (Username, Password)
	Username string
	Password string
	Token    string
	Resource string
	// Presence sends the initial <presence/> after binding, which makes
	// the session available (counted online, following its roster).
	Presence bool
	// BufSize is the size of the reader's buffer once negotiated (the
	// decoder reads through it): idle sessions read nothing but the
	// server's stanzas, so a small one keeps the tool's memory small.
	BufSize int
	// Timeout bounds the whole negotiation.
	Timeout time.Duration
}

// XConn is one authenticated, bound XMPP stream over TCP and TLS. A reader
// goroutine hands every top-level element to the onStanza of DialXMPP;
// Send may be called from any goroutine.
type XConn struct {
	raw     net.Conn
	conn    net.Conn
	br      *swapReader
	dec     *xml.Decoder
	wmu     sync.Mutex
	closed  bool
	done    chan struct{}
	readErr error
	// JID is the full JID the server bound.
	JID string
	// endCondition is the stream error's condition, when the server ended
	// the stream with one.
	endCondition string
}

// DialXMPP opens a TCP stream to o.Addr, negotiates STARTTLS (the
// server's certificate is not verified: the tool talks to 127.0.0.x only,
// and the embedded mode's certificate is self-signed), authenticates,
// binds a resource and, with o.Presence, sends the initial presence. It
// then starts the reader, which calls onStanza (when not nil) for each
// element until the stream ends. It returns the first error of the
// negotiation, naming its step.
func DialXMPP(ctx context.Context, o XDialOptions, onStanza func(*XNode)) (*XConn, error) {
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	raw, err := (&net.Dialer{Timeout: o.Timeout, LocalAddr: o.Src}).DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	c := &XConn{raw: raw, conn: raw, done: make(chan struct{})}
	if err := c.negotiate(ctx, o); err != nil {
		_ = raw.Close()
		return nil, err
	}
	_ = c.conn.SetDeadline(time.Time{})
	go c.read(onStanza)
	return c, nil
}

func (c *XConn) negotiate(ctx context.Context, o XDialOptions) error {
	_ = c.raw.SetDeadline(time.Now().Add(o.Timeout))
	if dl, ok := ctx.Deadline(); ok {
		_ = c.raw.SetDeadline(dl)
	}
	c.br = &swapReader{bufio.NewReaderSize(c.conn, 4096)}
	f, err := c.openStream(o.Domain)
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	if f.Child("starttls") == nil {
		return errors.New("stream: the server offers no STARTTLS")
	}
	if err := c.write(`<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>`); err != nil {
		return err
	}
	n, err := c.next()
	if err != nil {
		return fmt.Errorf("starttls: %w", err)
	}
	if n.XMLName.Local != "proceed" {
		return fmt.Errorf("starttls: got <%s>", n.XMLName.Local)
	}
	tc := tls.Client(c.raw, &tls.Config{InsecureSkipVerify: true, ServerName: o.Domain}) //nolint:gosec // 127.0.0.x only, self-signed certificate
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	c.conn = tc
	c.br = &swapReader{bufio.NewReaderSize(c.conn, 4096)}
	if _, err := c.openStream(o.Domain); err != nil {
		return fmt.Errorf("stream after TLS: %w", err)
	}
	var mech string
	var payload []byte
	switch o.Mech {
	case SASLOAuthBearer, "":
		mech, payload = "OAUTHBEARER", []byte("n,,\x01auth=Bearer "+o.Token+"\x01\x01")
	case SASLPlain:
		mech, payload = "PLAIN", []byte("\x00"+o.Username+"\x00"+o.Password)
	default:
		return fmt.Errorf("unknown SASL mechanism %q", o.Mech)
	}
	if err := c.write(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="` + mech + `">` +
		base64.StdEncoding.EncodeToString(payload) + `</auth>`); err != nil {
		return err
	}
	if n, err = c.next(); err != nil {
		return fmt.Errorf("SASL %s: %w", mech, err)
	}
	if n.XMLName.Local != "success" {
		return fmt.Errorf("SASL %s: <%s> %s", mech, n.XMLName.Local, n.condition())
	}
	if _, err := c.openStream(o.Domain); err != nil {
		return fmt.Errorf("stream after SASL: %w", err)
	}
	res := o.Resource
	if res == "" {
		res = "bench"
	}
	if err := c.write(`<iq type="set" id="bind1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>` +
		xmlText(res) + `</resource></bind></iq>`); err != nil {
		return err
	}
	for {
		n, err := c.next()
		if err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		if n.XMLName.Local != "iq" || n.Attr("id") != "bind1" {
			continue
		}
		b := n.Child("bind")
		if n.Attr("type") != "result" || b == nil || b.Child("jid") == nil {
			return fmt.Errorf("bind: %s %s", n.Attr("type"), n.condition())
		}
		c.JID = strings.TrimSpace(b.Child("jid").Text)
		break
	}
	if o.Presence {
		if err := c.write(`<presence/>`); err != nil {
			return err
		}
	}
	// The negotiation's reader buffer holds nothing past the bind result
	// (the server sends nothing unasked before the presence), so a
	// smaller one can take over under the same decoder.
	if o.BufSize > 0 && c.br.r.Buffered() == 0 {
		c.br.r = bufio.NewReaderSize(c.conn, o.BufSize)
	}
	return nil
}

// swapReader is the decoder's input: a buffered reader that can be
// replaced under a decoder (which keeps its namespace bindings), as an
// io.ByteReader so that the decoder adds no buffer of its own.
type swapReader struct{ r *bufio.Reader }

func (s *swapReader) Read(p []byte) (int, error) { return s.r.Read(p) }
func (s *swapReader) ReadByte() (byte, error)    { return s.r.ReadByte() }

// openStream sends a stream header, reads the server's and returns its
// features.
func (c *XConn) openStream(domain string) (*XNode, error) {
	c.dec = xml.NewDecoder(c.br)
	if err := c.write(`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="` +
		xmlText(domain) + `" version="1.0">`); err != nil {
		return nil, err
	}
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "stream" {
				return nil, fmt.Errorf("got <%s>, want the stream header", se.Name.Local)
			}
			break
		}
	}
	f, err := c.next()
	if err != nil {
		return nil, err
	}
	if f.XMLName.Local != "features" {
		return nil, fmt.Errorf("got <%s> %s, want the stream features", f.XMLName.Local, f.condition())
	}
	return f, nil
}

// next reads the next top-level element; io.EOF means the server ended
// the stream (after a stream error, recorded in endCondition).
func (c *XConn) next() (*XNode, error) {
	for {
		tok, err := c.dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			var n XNode
			if err := c.dec.DecodeElement(&n, &t); err != nil {
				return nil, err
			}
			if n.XMLName.Local == "error" && n.XMLName.Space == "http://etherx.jabber.org/streams" {
				for _, k := range n.Nodes {
					if k.XMLName.Local != "text" {
						c.endCondition = k.XMLName.Local
						break
					}
				}
				return nil, fmt.Errorf("stream error %s", c.endCondition)
			}
			return &n, nil
		case xml.EndElement:
			return nil, io.EOF
		}
	}
}

func (c *XConn) read(onStanza func(*XNode)) {
	defer close(c.done)
	for {
		n, err := c.next()
		if err != nil {
			c.readErr = err
			return
		}
		if onStanza != nil {
			onStanza(n)
		}
	}
}

func (c *XConn) write(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := io.WriteString(c.conn, s)
	return err
}

// Send writes b (one or more stanzas, or whitespace) as is.
func (c *XConn) Send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(b)
	return err
}

// Alive reports whether the reader is still running.
func (c *XConn) Alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// CloseCode returns the condition of the stream error that ended the
// stream, once the reader has stopped, or "none".
func (c *XConn) CloseCode() string {
	<-c.done
	if c.endCondition != "" {
		return "xmpp-" + c.endCondition
	}
	return "none"
}

// Close ends the stream, closes the connection and waits briefly for the
// reader to stop. It returns nil; close errors are irrelevant here.
func (c *XConn) Close() error {
	c.wmu.Lock()
	if !c.closed {
		c.closed = true
		_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c.conn, "</stream:stream>")
	}
	c.wmu.Unlock()
	_ = c.conn.Close()
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	}
	return nil
}

// xmlText escapes s for character data or an attribute value.
func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// ChatStanza returns a chat message stanza to the bare JID to, with the
// stanza id id (which the server takes as the message's client id) and
// the body.
func ChatStanza(to, id, body string) []byte {
	return []byte(`<message type="chat" to="` + xmlText(to) + `" id="` + xmlText(id) + `"><body>` + xmlText(body) + `</body></message>`)
}
