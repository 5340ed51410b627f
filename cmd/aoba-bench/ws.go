package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
)

// Sources hands out local source addresses 127.0.0.1..127.0.0.n in turn, so
// that many sockets to one server do not exhaust one address's ephemeral
// ports: a socket bound to a source address takes one of that address's
// ports for its lifetime.
type Sources struct {
	n    int
	next int
	mu   sync.Mutex
}

// portsUsable is the share of an address's ephemeral ports NewSources
// counts on: the rest is left to other connections from 127.0.0.1 and to
// ports still in TIME_WAIT.
const portsUsable = 0.9

// NewSources returns the source addresses for sockets sockets, each
// address having ports ephemeral ports (see EphemeralPorts). With want 0 it
// picks the fewest addresses that hold them all; otherwise it uses want
// addresses. It returns an error when want addresses are too few, or when
// more than MaxSources would be needed.
func NewSources(sockets, want, ports int) (*Sources, error) {
	per := int(float64(ports) * portsUsable)
	if per < 1 {
		per = 1
	}
	need := max((sockets+per-1)/per, 1)
	if need > MaxSources {
		return nil, fmt.Errorf("%d sockets need %d source addresses of %d usable ephemeral ports each, more than the cap of %d",
			sockets, need, per, MaxSources)
	}
	if want == 0 {
		want = need
	}
	if want < need {
		return nil, fmt.Errorf("%d sockets need at least %d source addresses (%d usable ephemeral ports each), -sources is %d: raise it or leave it out",
			sockets, need, per, want)
	}
	return &Sources{n: min(want, MaxSources)}, nil
}

// Len returns the number of source addresses.
func (s *Sources) Len() int { return s.n }

// Next returns the next local source address.
func (s *Sources) Next() *net.TCPAddr {
	s.mu.Lock()
	i := s.next
	s.next++
	s.mu.Unlock()
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%s.n))}
}

// EphemeralPorts returns the number of local ports the kernel hands out per
// source address (net.ipv4.ip_local_port_range), or the Linux default range's
// 28,232 where it cannot be read.
func EphemeralPorts() int {
	const def = 60999 - 32768 + 1
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return def
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return def
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || hi < lo {
		return def
	}
	return hi - lo + 1
}

// WSURL returns the WebSocket URL of base's /ws with the token as query
// parameter.
func WSURL(base *url.URL, token string) string {
	u := *base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path += "/ws"
	if token != "" {
		u.RawQuery = "token=" + url.QueryEscape(token)
	} else {
		u.RawQuery = ""
	}
	return u.String()
}

// Conn is one client socket: a reader goroutine hands every text frame to
// OnFrame and answers the server's pings; Send may be called from any
// goroutine.
type Conn struct {
	ws      *websocket.Conn
	wmu     sync.Mutex
	done    chan struct{}
	closed  bool
	readErr error
	pings   atomic.Int64
}

// DefaultBufSize is the read and write buffer size of a socket that
// exchanges messages. Idle sockets use far smaller ones (see runIdle), so
// that the tool's own memory stays small next to the server's.
const DefaultBufSize = 4096

// Dial opens a socket to rawURL from the local address src with read and
// write buffers of bufSize bytes and starts its reader, which calls
// onFrame for each frame and answers pings until the socket closes. It
// returns the dial or handshake error (with the HTTP status, if any).
func Dial(ctx context.Context, rawURL string, src *net.TCPAddr, bufSize int, onFrame func([]byte)) (*Conn, error) {
	d := websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   bufSize,
		WriteBufferSize:  bufSize,
		NetDialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			LocalAddr: src,
		}).DialContext,
	}
	ws, resp, err := d.DialContext(ctx, rawURL, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket handshake: HTTP %d", resp.StatusCode)
		}
		return nil, err
	}
	c := &Conn{ws: ws, done: make(chan struct{})}
	ws.SetPingHandler(func(data string) error {
		c.pings.Add(1)
		// The library's default answer: a pong; a socket already closing
		// or failed ends through its reader, not here.
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) {
			return nil
		}
		return err
	})
	go func() {
		defer close(c.done)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				c.readErr = err
				return
			}
			if onFrame != nil {
				onFrame(msg)
			}
		}
	}()
	return c, nil
}

// Pings returns the number of pings the server sent on this socket.
func (c *Conn) Pings() int64 { return c.pings.Load() }

// Send writes one text frame. It returns the write error, if any.
func (c *Conn) Send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// CloseCode returns the close code the server sent, once the reader has
// stopped, or "none" when it stopped otherwise.
func (c *Conn) CloseCode() string {
	<-c.done
	var ce *websocket.CloseError
	if errors.As(c.readErr, &ce) {
		return strconv.Itoa(ce.Code)
	}
	return "none"
}

// Alive reports whether the reader is still running.
func (c *Conn) Alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// Close sends a normal close frame, closes the socket and waits briefly for
// the reader to stop. It returns nil; close errors are irrelevant here.
func (c *Conn) Close() error {
	c.wmu.Lock()
	if !c.closed {
		c.closed = true
		_ = c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	}
	c.wmu.Unlock()
	_ = c.ws.Close()
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	}
	return nil
}

// Marker is what the benchmark embeds in each message content: publisher
// index, sequence number and send time.
type Marker struct {
	Pub  int
	Seq  int64
	Sent time.Time
}

var markerTag = []byte("~B~")

// Content returns the message content carrying m, padded with 'x' to at
// least size bytes.
func (m Marker) Content(size int) string {
	s := "~B~" + strconv.Itoa(m.Pub) + "~" + strconv.FormatInt(m.Seq, 10) + "~" + strconv.FormatInt(m.Sent.UnixNano(), 10) + "~"
	if len(s) < size {
		s += string(bytes.Repeat([]byte("x"), size-len(s)))
	}
	return s
}

// ParseMarker finds the first marker in b (a raw frame or a content) and
// returns it; ok is false when b holds no well-formed marker.
func ParseMarker(b []byte) (m Marker, ok bool) {
	i := bytes.Index(b, markerTag)
	if i < 0 {
		return m, false
	}
	b = b[i+len(markerTag):]
	var nums [3]int64
	for k := 0; k < 3; k++ {
		j := bytes.IndexByte(b, '~')
		if j <= 0 {
			return m, false
		}
		v, err := strconv.ParseInt(string(b[:j]), 10, 64)
		if err != nil || v < 0 {
			return m, false
		}
		nums[k] = v
		b = b[j+1:]
	}
	return Marker{Pub: int(nums[0]), Seq: nums[1], Sent: time.Unix(0, nums[2])}, true
}

// FrameKind classifies a server frame cheaply, without decoding it.
type FrameKind int

// Frame kinds the benchmark cares about.
const (
	FrameOther FrameKind = iota
	FrameMessage
	FrameAck
	FrameError
)

var (
	tagAck     = []byte(`"type":"ack"`)
	tagError   = []byte(`"type":"error"`)
	tagMessage = []byte(`"type":"message`)
)

// Classify returns the kind of a raw server frame. A message's own "type"
// (chat, groupchat) never collides with the frame types looked for.
func Classify(b []byte) FrameKind {
	switch {
	case bytes.Contains(b, tagAck):
		return FrameAck
	case bytes.Contains(b, tagError):
		return FrameError
	case bytes.Contains(b, tagMessage):
		return FrameMessage
	}
	return FrameOther
}

// frameID returns the top-level "id" of a frame, or "" when absent.
func frameID(b []byte) string {
	var f struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(b, &f)
	return f.ID
}

// SendFrame returns a message.send frame with client id seq.
func SendFrame(seq int64, to, typ, content string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type": "message.send",
		"id":   strconv.FormatInt(seq, 10),
		"data": map[string]string{"to": to, "content": content, "type": typ},
	})
	return b
}
