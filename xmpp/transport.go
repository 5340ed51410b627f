package xmpp

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// transport is one client stream's connection: the TCP stream of RFC 6120
// or the WebSocket framing of RFC 7395. The session reads it from one
// goroutine and writes it under its own lock.
type transport interface {
	// readHeader reads the client's stream header (<stream:stream> or
	// <open/>) and returns its attributes.
	readHeader(idle time.Duration) (*Element, error)
	// writeHeader answers a header with the server's own, stream id id,
	// followed by features.
	writeHeader(from, id string, features *Element) error
	// next reads the next top-level element. It returns io.EOF when the
	// client closed the stream.
	next(idle time.Duration) (*Element, error)
	// write writes one top-level element.
	write(e *Element) error
	// startTLS upgrades the connection (TCP only) and restarts the
	// stream's parser.
	startTLS() error
	// restart starts a new stream on the same connection after SASL.
	restart()
	// close ends the stream: the stream error, when err is one, then the
	// stream's end, then the connection.
	close(err error)
	remoteAddr() net.Addr
	// canTLS says whether STARTTLS is offered; secure whether the stream
	// is encrypted or rides on a transport the server cannot see into
	// (WebSocket behind HTTPS).
	canTLS() bool
	secure() bool
	websocket() bool
}

// budgetReader lets the decoder read at most limit bytes in all; the
// session raises the limit by MaxStanzaBytes at each stanza it starts, so
// that no stanza (or one character-data token in it) can make the decoder
// buffer more than that.
type budgetReader struct {
	r     io.Reader
	n     int64
	limit int64
	// conn, when set, gets a read deadline idle ahead of every read.
	conn interface{ SetReadDeadline(time.Time) error }
	idle time.Duration
}

var errTooLarge = errStream("policy-violation", fmt.Sprintf("stanza larger than %d bytes", MaxStanzaBytes))

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.n >= b.limit {
		return 0, errTooLarge
	}
	if rest := b.limit - b.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	if b.conn != nil && b.idle > 0 {
		// Whatever arrives, whitespace keepalives included, holds the
		// stream open for another idle period: the decoder returns no
		// token for whitespace until the next element starts.
		_ = b.conn.SetReadDeadline(time.Now().Add(b.idle))
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	return n, err
}

// tcpTransport is a TCP stream, optionally upgraded with STARTTLS.
type tcpTransport struct {
	conn    net.Conn
	tlsCfg  *tls.Config
	tlsDone bool
	br      *budgetReader
	dec     *xml.Decoder
	wmu     sync.Mutex
	closed  bool
	// headerSent says whether the server's header of the current stream
	// went out: a stream error needs one before it.
	headerSent bool
}

func newTCPTransport(c net.Conn, cfg *tls.Config) *tcpTransport {
	t := &tcpTransport{conn: c, tlsCfg: cfg}
	t.restart()
	return t
}

func (t *tcpTransport) restart() {
	t.headerSent = false
	t.br = &budgetReader{r: t.conn, conn: t.conn, limit: MaxStanzaBytes}
	t.dec = xml.NewDecoder(bufio.NewReaderSize(t.br, readBufferSize))
	t.dec.Strict = true
}

// readBufferSize is the size of a TCP stream's read buffer, which the
// decoder reads through and every idle session keeps: 1 KiB holds a
// typical stanza, where the decoder's default would keep 4 KiB per
// session (a larger stanza takes more reads, no more memory).
const readBufferSize = 1024

// grant allows the decoder MaxStanzaBytes more than it has consumed.
func (t *tcpTransport) grant() {
	t.br.limit = t.dec.InputOffset() + MaxStanzaBytes + 4096
}

// token returns the decoder's next token that is not whitespace between
// elements (keepalives), with idle for each read; other text is
// not-well-formed (where says where it stood).
func (t *tcpTransport) token(idle time.Duration, where string) (xml.Token, error) {
	t.grant()
	t.br.idle = idle
	for {
		tok, err := t.dec.Token()
		if err != nil {
			return nil, xmlError(err)
		}
		text, ok := tok.(xml.CharData)
		if !ok {
			return tok, nil
		}
		if len(bytes.TrimSpace(text)) > 0 {
			return nil, errStream("not-well-formed", "text "+where)
		}
		t.grant()
	}
}

func (t *tcpTransport) readHeader(idle time.Duration) (*Element, error) {
	for {
		tok, err := t.token(idle, "before the stream header")
		if err != nil {
			return nil, err
		}
		switch v := tok.(type) {
		case xml.ProcInst:
			if v.Target != "xml" || t.dec.InputOffset() > int64(len(v.Inst))+8 {
				return nil, restricted(v)
			}
		case xml.StartElement:
			if v.Name.Space != nsStream || v.Name.Local != "stream" {
				return nil, errStream("invalid-namespace", "expected a stream:stream header")
			}
			return newElement(v)
		default:
			return nil, restricted(tok)
		}
	}
}

func (t *tcpTransport) writeHeader(from, id string, features *Element) error {
	var b bytes.Buffer
	b.WriteString(`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" version="1.0" xml:lang="en" from="`)
	escapeAttr(&b, from)
	b.WriteString(`" id="`)
	escapeAttr(&b, id)
	b.WriteString(`">`)
	if features != nil {
		// The prefix the header declared, as every client expects.
		b.WriteString("<stream:features>")
		for _, c := range features.elements() {
			c.encode(&b, nsClient)
		}
		b.WriteString("</stream:features>")
	}
	t.headerSent = true
	return t.writeBytes(b.Bytes())
}

func (t *tcpTransport) next(idle time.Duration) (*Element, error) {
	tok, err := t.token(idle, "between stanzas")
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case xml.StartElement:
		return readElement(t.dec, v)
	case xml.EndElement:
		return nil, io.EOF
	}
	return nil, restricted(tok)
}

func (t *tcpTransport) write(e *Element) error {
	var b bytes.Buffer
	e.encode(&b, nsClient)
	return t.writeBytes(b.Bytes())
}

func (t *tcpTransport) writeBytes(p []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closed {
		return net.ErrClosed
	}
	_ = t.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := t.conn.Write(p)
	return err
}

func (t *tcpTransport) startTLS() error {
	if t.tlsCfg == nil || t.tlsDone {
		return errors.New("xmpp: STARTTLS not available")
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	tc := tls.Server(t.conn, t.tlsCfg)
	_ = tc.SetDeadline(time.Now().Add(writeTimeout))
	if err := tc.Handshake(); err != nil {
		return err
	}
	_ = tc.SetDeadline(time.Time{})
	t.conn = tc
	t.tlsDone = true
	t.restart()
	return nil
}

func (t *tcpTransport) close(err error) {
	var b bytes.Buffer
	var se *streamError
	if errors.As(err, &se) {
		if !t.headerSent {
			b.WriteString(`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" version="1.0" id="` + streamID() + `">`)
		}
		writeStreamError(&b, se, "stream:error")
	}
	b.WriteString("</stream:stream>")
	_ = t.writeBytes(b.Bytes())
	t.wmu.Lock()
	t.closed = true
	t.wmu.Unlock()
	lingerClose(t.conn)
}

// lingerClose closes c gracefully: it ends the sending side, then reads
// and drops what the client still sends, for a second at most, before
// closing. Closing a socket with unread data resets the connection, and
// the reset can destroy the stream error the client has not read yet.
func lingerClose(c net.Conn) {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		_ = c.Close()
		return
	}
	go func() {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20))
	}()
}

func writeStreamError(b *bytes.Buffer, se *streamError, name string) {
	b.WriteString("<" + name)
	if name == "error" {
		b.WriteString(` xmlns="` + nsStream + `"`)
	}
	b.WriteString("><")
	b.WriteString(se.condition)
	b.WriteString(` xmlns="` + nsStreams + `"/>`)
	if se.text != "" {
		b.WriteString(`<text xmlns="` + nsStreams + `">`)
		escapeText(b, se.text)
		b.WriteString("</text>")
	}
	b.WriteString("</" + name + ">")
}

func (t *tcpTransport) remoteAddr() net.Addr { return t.conn.RemoteAddr() }
func (t *tcpTransport) canTLS() bool         { return t.tlsCfg != nil && !t.tlsDone }
func (t *tcpTransport) secure() bool         { return t.tlsDone }
func (t *tcpTransport) websocket() bool      { return false }

// wsTransport is an RFC 7395 stream: each WebSocket text message holds one
// complete element; <open/> and <close/> of the framing namespace stand
// for the stream's header and end.
type wsTransport struct {
	ws         *websocket.Conn
	addr       net.Addr
	wmu        sync.Mutex
	closed     bool
	headerSent bool
}

func newWSTransport(ws *websocket.Conn, addr net.Addr) *wsTransport {
	ws.SetReadLimit(MaxStanzaBytes)
	return &wsTransport{ws: ws, addr: addr}
}

// readOne reads one message and parses its single element.
func (t *wsTransport) readOne(idle time.Duration) (*Element, error) {
	for {
		_ = t.ws.SetReadDeadline(time.Now().Add(idle))
		typ, data, err := t.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				return nil, errTooLarge
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, errStream("connection-timeout", "nothing read within the idle timeout")
			}
			if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
				return nil, io.EOF
			}
			return nil, err
		}
		if typ != websocket.TextMessage {
			return nil, errStream("not-well-formed", "binary WebSocket messages are not XMPP")
		}
		if len(bytes.TrimSpace(data)) == 0 {
			continue // a keepalive
		}
		dec := xml.NewDecoder(bytes.NewReader(data))
		dec.Strict = true
		var root *Element
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			} else if err != nil {
				return nil, xmlError(err)
			}
			switch v := tok.(type) {
			case xml.ProcInst:
				if v.Target != "xml" || root != nil {
					return nil, restricted(v)
				}
			case xml.CharData:
				if len(bytes.TrimSpace(v)) > 0 {
					return nil, errStream("not-well-formed", "text outside the element")
				}
			case xml.StartElement:
				if root != nil {
					return nil, errStream("not-well-formed", "one element per WebSocket message")
				}
				if root, err = readElement(dec, v); err != nil {
					return nil, err
				}
			default:
				return nil, restricted(tok)
			}
		}
		if root == nil {
			return nil, errStream("not-well-formed", "no element in the message")
		}
		return root, nil
	}
}

func (t *wsTransport) readHeader(idle time.Duration) (*Element, error) {
	e, err := t.readOne(idle)
	if err != nil {
		return nil, err
	}
	if !e.is(nsFraming, "open") {
		return nil, errStream("invalid-namespace", "expected <open/> of urn:ietf:params:xml:ns:xmpp-framing")
	}
	return e, nil
}

func (t *wsTransport) writeHeader(from, id string, features *Element) error {
	open := el(nsFraming, "open", "from", from, "id", id, "version", "1.0")
	open.Attr = append(open.Attr, xml.Attr{Name: xml.Name{Space: "xml", Local: "lang"}, Value: "en"})
	if err := t.writeBytes(open.bytes("")); err != nil {
		return err
	}
	t.headerSent = true
	if features == nil {
		return nil
	}
	var b bytes.Buffer
	b.WriteString(`<stream:features xmlns:stream="` + nsStream + `">`)
	for _, c := range features.elements() {
		c.encode(&b, "")
	}
	b.WriteString(`</stream:features>`)
	return t.writeBytes(b.Bytes())
}

func (t *wsTransport) next(idle time.Duration) (*Element, error) {
	e, err := t.readOne(idle)
	if err != nil {
		return nil, err
	}
	if e.is(nsFraming, "close") {
		return nil, io.EOF
	}
	if e.is(nsFraming, "open") {
		return nil, errStream("invalid-xml", "unexpected <open/>")
	}
	return e, nil
}

func (t *wsTransport) write(e *Element) error { return t.writeBytes(e.bytes("")) }

func (t *wsTransport) writeBytes(p []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closed {
		return net.ErrClosed
	}
	_ = t.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return t.ws.WriteMessage(websocket.TextMessage, p)
}

func (t *wsTransport) startTLS() error { return errors.New("xmpp: no STARTTLS over WebSocket") }
func (t *wsTransport) restart()        {}

func (t *wsTransport) close(err error) {
	var se *streamError
	if errors.As(err, &se) {
		if !t.headerSent {
			_ = t.writeBytes([]byte(`<open xmlns="` + nsFraming + `" version="1.0" id="` + streamID() + `"/>`))
		}
		var b bytes.Buffer
		writeStreamError(&b, se, "stream:error")
		// RFC 7395 3.6: the error element carries the streams namespace
		// prefix declaration itself.
		msg := bytes.Replace(b.Bytes(), []byte("<stream:error>"), []byte(`<stream:error xmlns:stream="`+nsStream+`">`), 1)
		_ = t.writeBytes(msg)
	}
	_ = t.writeBytes([]byte(`<close xmlns="` + nsFraming + `"/>`))
	t.wmu.Lock()
	if !t.closed {
		t.closed = true
		_ = t.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	}
	t.wmu.Unlock()
	_ = t.ws.Close()
}

func (t *wsTransport) remoteAddr() net.Addr { return t.addr }
func (t *wsTransport) canTLS() bool         { return false }
func (t *wsTransport) secure() bool         { return true }
func (t *wsTransport) websocket() bool      { return true }
