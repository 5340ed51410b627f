package realtime

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/aoba-chat/aoba"
)

// writerLinger is how long a writer goroutine with nothing to write waits
// for another socket to write to before it ends. Sockets have no writer of
// their own: the node keeps the writer goroutines that finished a socket's
// frames for a while and hands them the next socket that needs one, so
// that a frame on an idle socket does not start (and allocate) a goroutine
// each time.
const writerLinger = 500 * time.Millisecond

// startWriter runs c's writer (c.writeAll) on an idle writer goroutine, or
// on a new one when none waits. With a WriteDelay, the socket waits for the
// end of the current delay window instead, so that what is queued meanwhile
// goes out in the same write: the messages a group commit publishes
// together reach each socket in one write. The caller holds c's writing
// flag.
func (n *Node) startWriter(c *conn) {
	if n.cfg.WriteDelay > 0 {
		n.delayed.add(n, c)
		return
	}
	n.startWriterNow(c)
}

// startWriterNow is startWriter without the delay.
func (n *Node) startWriterNow(c *conn) {
	select {
	case n.idleWriters <- c:
	default:
		go n.writer(c)
	}
}

// delayedWriters gathers the sockets waiting for the end of a WriteDelay
// window; one timer per window starts their writers, whatever their
// number.
type delayedWriters struct {
	mu    sync.Mutex
	conns []*conn
	armed bool
}

// add puts c, whose writing flag the caller holds, in the current window,
// opening one if none is open.
func (d *delayedWriters) add(n *Node, c *conn) {
	d.mu.Lock()
	d.conns = append(d.conns, c)
	if !d.armed {
		d.armed = true
		time.AfterFunc(n.cfg.WriteDelay, func() { d.release(n) })
	}
	d.mu.Unlock()
}

// release ends the window: it starts the writers of its sockets.
func (d *delayedWriters) release(n *Node) {
	d.mu.Lock()
	conns := d.conns
	d.conns, d.armed = nil, false
	d.mu.Unlock()
	for _, c := range conns {
		n.startWriterNow(c)
	}
}

// writer writes c's frames, then those of the sockets it is handed, until
// it waited writerLinger for one.
func (n *Node) writer(c *conn) {
	var linger *time.Timer
	for {
		c.writeAll()
		if linger == nil {
			linger = time.NewTimer(writerLinger)
		} else {
			linger.Reset(writerLinger)
		}
		select {
		case c = <-n.idleWriters:
		case <-linger.C:
			return
		}
	}
}

// pinger pings every socket indexed in the shards once every PingInterval,
// one shard at a time spread over the interval, until stop is closed. A
// socket from which nothing (frame or pong) was read for IdleTimeout is
// closed with aoba.CloseIdle instead: when IdleTimeout is at least the
// interval, that happens between IdleTimeout and IdleTimeout plus one
// interval after the last read (the reader's deadline is only a backstop,
// see readLoop).
func (n *Node) pinger(stop <-chan struct{}) {
	t := time.NewTicker(max(n.cfg.PingInterval/shardCount, time.Millisecond))
	defer t.Stop()
	idle := int64(n.cfg.IdleTimeout)
	var conns []*conn // one shard's sockets, reused
	w := newPingWriter()
	for i := 0; ; i = (i + 1) % shardCount {
		select {
		case <-t.C:
		case <-stop:
			return
		}
		// The pings are written outside the shard's lock: they take a
		// system call each, and Deliver must not wait behind a socket
		// opening or closing that waits for the walk.
		s := &n.shards[i]
		s.mu.RLock()
		for _, u := range s.users {
			for c := range u.conns {
				conns = append(conns, c)
			}
		}
		s.mu.RUnlock()
		now := int64(time.Since(n.epoch))
		for _, c := range conns {
			if now-c.lastRead.Load() >= idle {
				c.closeWith(aoba.CloseIdle, "idle timeout", false)
				continue
			}
			c.ping(w)
		}
		clear(conns) // the closed sockets may be collected
		conns = conns[:0]
	}
}

// Bounds of one batch (see conn.flush): at most batchFrames frames, and no
// frame added once the batch holds batchBytes. A single frame larger than
// that is written alone.
const (
	batchFrames = 64
	batchBytes  = 64 << 10
)

// batch is the buffer one flush frames its frames into, and the items it
// holds, for the metrics once written. Batches are pooled, so a flush
// allocates nothing once the pool is warm.
type batch struct {
	buf   []byte
	items []*item
}

// maxPooledBatch is the largest buffer returned to the pool: a batch grown
// by one very large frame is left to the garbage collector.
const maxPooledBatch = 2 * batchBytes

var batchPool = sync.Pool{New: func() any {
	return &batch{buf: make([]byte, 0, 4096), items: make([]*item, 0, batchFrames)}
}}

func getBatch() *batch { return batchPool.Get().(*batch) }

func putBatch(b *batch) {
	if cap(b.buf) > maxPooledBatch {
		return
	}
	clear(b.items) // the frames may be collected
	b.buf, b.items = b.buf[:0], b.items[:0]
	batchPool.Put(b)
}

// appendFrameHeader appends the header of a final, unmasked server frame
// of opcode op (websocket.TextMessage, PingMessage...) with a payload of n
// bytes (RFC 6455 section 5.2: a 7-bit length up to 125, then 126 and a
// 16-bit length, then 127 and a 64-bit length).
func appendFrameHeader(b []byte, op, n int) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n <= 125:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}
