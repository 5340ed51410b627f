package realtime

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"

	"github.com/aoba-chat/aoba"
)

// closeGrace is how long a socket waits for the client's close frame after
// sending its own.
const closeGrace = 2 * time.Second

// controlTimeout bounds the pong and the close frame the reader writes in
// answer to the client's ping or close, as the library's own handlers do.
const controlTimeout = time.Second

// item is one frame to write and when it reached this pod. Deliver makes
// one item per envelope and queues the same pointer on every socket, so a
// queue slot costs one word and fan-out allocates nothing per recipient.
type item struct {
	frame []byte
	at    time.Time
}

// pingItem, queued, makes the writer send a ping control frame.
var pingItem = &item{}

// pingFrame is a ping control frame without payload, as the pinger writes
// it itself (see conn.ping).
var pingFrame = [2]byte{0x80 | websocket.PingMessage, 0}

// conn is one socket. The handler's goroutine reads. Writes (data frames,
// pings, the close frame) are made by a writer that exists only while the
// socket has something to write: enqueue and closeWith start one unless one
// runs (the writing flag), and it ends when nothing is left, so an idle
// socket costs one goroutine. At most one writer runs at any time. The
// writer frames the data frames and pings itself and writes every frame
// waiting in the queue with one write to the connection (flush); the
// library keeps the handshake, the reading, and the control frames that
// answer the client (under wmu) or close the socket. A protocol error the
// library answers itself while reading (a close frame it writes on its own)
// is the one write not serialized with the writer's; each is a single write
// to the connection, so frames never interleave.
type conn struct {
	n      *Node
	id     string
	claims aoba.Claims
	ws     *websocket.Conn
	queue  chan *item
	// writing is set while a writer owns the socket; once the writer has
	// closed the socket it stays set, so no writer ever starts again.
	writing atomic.Bool

	closeOnce   sync.Once
	closeReq    chan struct{} // closed by closeWith
	closeCode   int
	closeReason string
	closeDrain  bool          // write the queued frames before the close frame
	writerDone  chan struct{} // closed by the writer that handled closeReq

	// wmu serializes the writer's writes with the pongs and the close
	// frame the reader writes in answer to the client (answerPing,
	// answerClose): a pong waits for the batch being written, as the
	// library's would wait for its own write lock. closeSent, under wmu,
	// is set once a close frame went out: nothing is written after it.
	wmu       sync.Mutex
	closeSent bool
	// deadline, under wmu, is the write deadline flush last set on the
	// connection; zero once a control frame set another.
	deadline time.Time

	// lastRead is when the reader last read a frame or a pong, in
	// nanoseconds since the node's epoch: the pinger closes the socket
	// once it is older than IdleTimeout (see Node.pinger).
	lastRead atomic.Int64
	// raw is the connection's file descriptor for the pinger's own
	// non-blocking writes (see writePing); resolved at the first ping,
	// nil when the connection has none. Owned by the pinger.
	raw     syscall.RawConn
	rawDone bool

	// Owned by the reading goroutine.
	ctx     context.Context
	watched map[string]string // watched user id → username; nil until the first presence.subscribe
}

func newConn(n *Node, ws *websocket.Conn, claims aoba.Claims) *conn {
	c := &conn{
		n: n, id: aoba.NewID(), claims: claims, ws: ws,
		queue:      make(chan *item, n.cfg.SendQueue),
		closeReq:   make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	c.lastRead.Store(int64(time.Since(n.epoch)))
	return c
}

// enqueue hands a frame to the writer without blocking, starting one
// unless one runs; a full queue closes the socket with aoba.CloseTooSlow.
func (c *conn) enqueue(it *item) {
	select {
	case c.queue <- it:
		c.kick()
	default:
		if c.closeWith(aoba.CloseTooSlow, "too slow", false) {
			c.n.metrics.slowDisconnect.Inc()
		}
	}
}

// ping sends a ping. When no writer runs and nothing is queued, the
// pinger takes the writing flag and writes the ping itself, with one
// non-blocking write (writePing): no writer goroutine is woken and no
// write deadline armed. Otherwise the ping is queued for the writer,
// unless the queue is full: then the writer is behind (and the socket
// about to close as too slow), and a ping would not reach the client
// sooner than the frames ahead of it. Only the pinger calls it.
func (c *conn) ping(w *pingWriter) {
	if !c.writing.Load() && c.writing.CompareAndSwap(false, true) {
		if len(c.queue) == 0 && !c.closing() {
			switch c.writePing(w) {
			case pingSent:
				c.release()
				return
			case pingPartial:
				return // finishPing owns the flag now
			}
		}
		// The kernel's buffer is full, the write failed, or there is
		// something to write before: the writer writes the ping (and
		// fails the socket, if the write does) with the rest.
		select {
		case c.queue <- pingItem:
		default:
		}
		c.n.startWriter(c)
		return
	}
	select {
	case c.queue <- pingItem:
		c.kick()
	default:
	}
}

// Results of writePing.
const (
	pingSent    = iota // the whole frame was written
	pingNotSent        // nothing was written: the writer is to send it
	pingPartial        // part of it was written; finishPing writes the rest
)

// writePing writes pingFrame to the connection with one non-blocking write
// system call; the caller holds the writing flag, so that no writer runs,
// and wmu serializes it with the reader's pongs and close frame. A write
// that would block (the client is not reading), or a connection without a
// file descriptor, sends nothing: the caller hands the ping to a writer,
// which writes it under the write deadline. A write that took one of the
// two bytes hands the rest to finishPing, with the flag and wmu.
func (c *conn) writePing(w *pingWriter) int {
	raw := c.rawConn()
	if raw == nil {
		return pingNotSent
	}
	c.wmu.Lock()
	if c.closeSent {
		c.wmu.Unlock()
		return pingNotSent
	}
	w.n = 0
	err := raw.Write(w.write)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The write deadline of the last batch has passed: a write
		// deadline is for blocking writes, this one does not block.
		// Clear it (flush arms the next) and try again.
		_ = c.ws.NetConn().SetWriteDeadline(time.Time{})
		c.deadline = time.Time{}
		err = raw.Write(w.write)
	}
	n := w.n
	switch {
	case err == nil && n == len(pingFrame):
		c.wmu.Unlock()
		return pingSent
	case err == nil && n > 0:
		go c.finishPing(pingFrame[n:])
		return pingPartial
	}
	c.wmu.Unlock()
	return pingNotSent
}

// pingWriter is the pinger's function for syscall.RawConn.Write, made
// once so that a ping allocates nothing: write writes pingFrame to fd with
// one non-blocking system call, never waits, and leaves the bytes written
// in n.
type pingWriter struct {
	n     int
	write func(fd uintptr) bool
}

func newPingWriter() *pingWriter {
	w := &pingWriter{}
	w.write = func(fd uintptr) bool {
		for {
			n, err := syscall.Write(int(fd), pingFrame[:])
			if err != syscall.EINTR {
				w.n = max(n, 0)
				return true // never wait for the socket to be writable
			}
		}
	}
	return w
}

// finishPing writes rest, what writePing could not write of the ping, under
// the write deadline, then releases wmu and writes what was queued
// meanwhile; the caller held both the writing flag and wmu for it.
func (c *conn) finishPing(rest []byte) {
	nc := c.ws.NetConn()
	c.deadline = time.Now().Add(c.n.cfg.WriteTimeout)
	_ = nc.SetWriteDeadline(c.deadline)
	_, err := nc.Write(rest)
	c.wmu.Unlock()
	if err != nil {
		c.abort()
	}
	c.writeAll()
}

// rawConn returns the file descriptor of c's TCP connection, under the
// wrappers of the HTTP server (and of tests), or nil if it has none.
func (c *conn) rawConn() syscall.RawConn {
	if !c.rawDone {
		c.rawDone = true
		nc := c.ws.NetConn()
		for {
			if u, ok := nc.(interface{ UnsafeConn() net.Conn }); ok {
				nc = u.UnsafeConn() // fasthttp's hijacked connection
				continue
			}
			break
		}
		if sc, ok := nc.(syscall.Conn); ok {
			c.raw, _ = sc.SyscallConn()
		}
	}
	return c.raw
}

// release clears the writing flag once the caller, which holds it, has
// nothing left to write, and starts a writer if an enqueue or a close
// request came meanwhile: one that saw the flag still set started none.
func (c *conn) release() {
	c.writing.Store(false)
	if (len(c.queue) > 0 || c.closing()) && c.writing.CompareAndSwap(false, true) {
		c.n.startWriter(c)
	}
}

// send encodes a frame for this socket alone and queues it.
func (c *conn) send(typ, id string, data any) {
	b, err := aoba.EncodeFrame(typ, id, data)
	if err != nil {
		c.n.log.Error("realtime: encode frame", "type", typ, "err", err)
		return
	}
	c.enqueue(&item{frame: b, at: time.Now()})
}

// closeWith asks the writer to close the socket with code, starting one
// unless one runs; only the first call counts. drain writes the queued
// frames first. It reports whether this call was the first.
func (c *conn) closeWith(code int, reason string, drain bool) bool {
	first := false
	c.closeOnce.Do(func() {
		c.closeCode, c.closeReason, c.closeDrain = code, reason, drain
		close(c.closeReq)
		first = true
	})
	if first {
		c.kick()
	}
	return first
}

// closing reports whether closeWith was called.
func (c *conn) closing() bool {
	select {
	case <-c.closeReq:
		return true
	default:
		return false
	}
}

// kick makes sure a writer runs after the caller's enqueue or close
// request: it starts one unless one holds the writing flag, which then sees
// the request before it ends (see writeAll).
func (c *conn) kick() {
	if !c.writing.Load() && c.writing.CompareAndSwap(false, true) {
		c.n.startWriter(c)
	}
}

// writeAll writes what the socket has to write; the caller holds the
// writing flag. It returns when the queue is empty, having cleared the
// flag, or once the socket is closed, keeping the flag for good.
func (c *conn) writeAll() {
	for {
		// A close request wins over queued frames.
		if c.closing() {
			c.writeClose()
			close(c.writerDone)
			return
		}
		if len(c.queue) > 0 {
			if !c.flush() {
				close(c.writerDone)
				return
			}
			continue
		}
		// Nothing left. Clear the flag, then look again: an enqueue or a
		// close request that saw the flag still set before it was cleared
		// started no writer, and its item or request is visible now.
		c.writing.Store(false)
		if len(c.queue) == 0 && !c.closing() {
			return
		}
		if !c.writing.CompareAndSwap(false, true) {
			return // the enqueuer's kick started another writer
		}
	}
}

// flush writes the frames waiting in the queue, in order, up to
// batchFrames of them or about batchBytes, with one write to the
// connection: server frames are not masked, so the writer frames them
// itself into one buffer (see appendFrameHeader), pings included. On failure it
// drops the connection; it reports false when the socket is done with
// (write failed, or the reader already answered the client's close).
func (c *conn) flush() bool {
	b := getBatch()
	defer putBatch(b)
	for n := 0; n < batchFrames && len(b.buf) < batchBytes; n++ {
		var it *item
		select {
		case it = <-c.queue:
		default:
		}
		if it == nil {
			break
		}
		if it == pingItem {
			b.buf = appendFrameHeader(b.buf, websocket.PingMessage, 0)
			continue
		}
		b.buf = append(appendFrameHeader(b.buf, websocket.TextMessage, len(it.frame)), it.frame...)
		b.items = append(b.items, it)
	}
	if len(b.buf) == 0 {
		return true
	}
	c.wmu.Lock()
	if c.closeSent {
		c.wmu.Unlock()
		return false
	}
	nc := c.ws.NetConn()
	// Arming a deadline costs a timer update: a batch re-arms it only
	// once an eighth of WriteTimeout has gone by, so every write has
	// between 7/8 of WriteTimeout and all of it.
	if now, timeout := time.Now(), c.n.cfg.WriteTimeout; c.deadline.Sub(now) < timeout-timeout/8 {
		c.deadline = now.Add(timeout)
		_ = nc.SetWriteDeadline(c.deadline)
	}
	_, err := nc.Write(b.buf)
	c.wmu.Unlock()
	if err != nil {
		c.abort()
		return false
	}
	now := time.Now()
	for _, it := range b.items {
		c.n.metrics.framesOut.Inc()
		c.n.metrics.latency.Observe(now.Sub(it.at).Seconds())
	}
	return true
}

// writeClose writes the queued frames if asked to, then the close frame,
// and gives the client closeGrace to answer before the reader gives up.
func (c *conn) writeClose() {
	if c.closeDrain {
		for len(c.queue) > 0 {
			if !c.flush() {
				return
			}
		}
	}
	if c.closeCode == 0 {
		// The reader ended on its own (the client closed, or the
		// library already answered a protocol error).
		return
	}
	msg := websocket.FormatCloseMessage(c.closeCode, c.closeReason)
	c.wmu.Lock()
	if c.closeSent {
		c.wmu.Unlock()
		return
	}
	c.closeSent, c.deadline = true, time.Time{}
	err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.n.cfg.WriteTimeout))
	c.wmu.Unlock()
	if err != nil {
		c.abort()
		return
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
}

// answerPing is the socket's ping handler: it writes the pong the
// library's default handler would, serialized with the writer's batches.
func (c *conn) answerPing(data string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return nil
	}
	c.deadline = time.Time{} // WriteControl sets its own
	err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(controlTimeout))
	var ne net.Error
	if err == nil || errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) {
		return nil // as the library's default: a failed pong is not the reader's error
	}
	return err
}

// answerClose is the socket's close handler: it echoes the client's close
// code as the library's default handler does, serialized with the
// writer's batches, after which the writer writes nothing more.
func (c *conn) answerClose(code int, _ string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return nil
	}
	c.closeSent, c.deadline = true, time.Time{}
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(controlTimeout))
	return nil
}

// abort drops the TCP connection, which ends the reader at once.
func (c *conn) abort() {
	c.closeWith(0, "", false)
	_ = c.ws.NetConn().Close()
}

// readLoop reads frames until the socket fails or closes and returns the
// close code to send (0 when none is due).
func (c *conn) readLoop() (int, string) {
	idle := c.n.cfg.IdleTimeout
	c.ws.SetReadLimit(int64(c.n.cfg.MaxFrameBytes))
	// The pinger closes a socket idle for IdleTimeout (see Node.pinger),
	// from lastRead. The read deadline is a backstop for an idle timeout
	// shorter than the ping interval: it lies between IdleTimeout and
	// twice that after the last read, re-armed only once fewer than
	// IdleTimeout remain, so that a pong costs no timer update most times.
	var deadline time.Time
	read := func() {
		now := time.Now()
		c.lastRead.Store(int64(now.Sub(c.n.epoch)))
		if deadline.Sub(now) >= idle {
			return
		}
		select {
		case <-c.closeReq:
			// Once closing, the writer sets the close grace instead.
		default:
			deadline = now.Add(2 * idle)
			_ = c.ws.SetReadDeadline(deadline)
		}
	}
	read()
	c.ws.SetPingHandler(c.answerPing)
	c.ws.SetCloseHandler(c.answerClose)
	c.ws.SetPongHandler(func(string) error {
		read()
		return nil
	})
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				// The library has sent the 1009 close frame; read what the
				// client still sends so that closing does not reset the
				// connection before the client has read it.
				_ = c.ws.NetConn().SetReadDeadline(time.Now().Add(closeGrace))
				_, _ = io.Copy(io.Discard, c.ws.NetConn())
				return 0, ""
			case errors.As(err, &ne) && ne.Timeout():
				return aoba.CloseIdle, "idle timeout"
			}
			return 0, ""
		}
		c.n.metrics.framesIn.Inc()
		if typ == websocket.TextMessage && !utf8.Valid(data) {
			// RFC 6455 section 8.1: a text frame must be UTF-8, and an
			// endpoint that receives one that is not fails the connection
			// with 1007. The library does not check it.
			return aoba.CloseInvalidPayload, "text frame is not valid UTF-8"
		}
		select {
		case <-c.closeReq:
			// Closing: ignore what is still coming, wait for the close.
			continue
		default:
		}
		read()
		c.handle(typ, data)
	}
}
