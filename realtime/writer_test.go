package realtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/realtime"
)

// stableGoroutines waits until the number of goroutines has not changed
// for a while (longer than a writer lingers) and returns it.
func stableGoroutines() int {
	last, same := -1, 0
	for range 60 {
		time.Sleep(200 * time.Millisecond)
		g := runtime.NumGoroutine()
		if g != last {
			last, same = g, 0
		} else if same++; same == 4 {
			break
		}
	}
	return last
}

// waitGoroutines waits until at most want goroutines run and returns the
// last count seen.
func waitGoroutines(want int) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		g := runtime.NumGoroutine()
		if g <= want || time.Now().After(deadline) {
			return g
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIdleSocketHasNoWriter checks that an idle socket costs the server
// its reader goroutine only, that a burst of frames starts writers that
// end once it is written, and that the idle sockets still get pings.
func TestIdleSocketHasNoWriter(t *testing.T) {
	const sockets = 30
	// slack covers the node's pinger and the test's own stray goroutines.
	const slack = 3
	e := newEnv(t, realtime.Config{})
	tok, cl := e.user("idle")
	warm := e.dial(tok) // starts the node's pinger
	warm.quiet()
	base := stableGoroutines()
	cs := make([]*client, sockets)
	for i := range cs {
		cs[i] = e.dial(tok)
		cs[i].quiet()
	}

	t.Run("OneGoroutinePerIdleSocket", func(t *testing.T) {
		if g := waitGoroutines(base + sockets + slack); g-base > sockets+slack {
			t.Fatalf("%d goroutines for %d idle sockets, want about one each", g-base, sockets)
		}
		if g := runtime.NumGoroutine(); g-base < sockets {
			t.Fatalf("%d goroutines for %d idle sockets: the reader count is off", g-base, sockets)
		}
	})
	t.Run("BurstThenIdle", func(t *testing.T) {
		const burst = 20
		for i := range burst {
			e.node.Deliver(aoba.UserTopic(cl.UserID), aoba.Envelope{Frame: fmt.Appendf(nil, `{"type":"n","data":%d}`, i)})
		}
		for _, c := range cs {
			for i := range burst {
				f := c.next()
				if want := fmt.Sprint(i); f.Type != "n" || string(f.Data) != want {
					t.Fatalf("frame %s %s, want n %s", f.Type, f.Data, want)
				}
			}
		}
		if g := waitGoroutines(base + sockets + slack); g-base > sockets+slack {
			t.Fatalf("%d goroutines for %d sockets after the burst, want about one each", g-base, sockets)
		}
	})
}

// TestIdleSocketGetsPings checks that the node's pinger reaches an idle
// socket, and that frames still flow between pings.
func TestIdleSocketGetsPings(t *testing.T) {
	const frames = 5
	e := newEnv(t, realtime.Config{PingInterval: 50 * time.Millisecond, IdleTimeout: 5 * time.Second})
	tok, cl := e.user("pinged")
	c := e.dial(tok)
	c.quiet()
	var pings atomic.Int32
	c.ws.SetPingHandler(func(string) error {
		pings.Add(1)
		return c.ws.WriteControl(websocket.PongMessage, nil, time.Now().Add(time.Second))
	})
	go func() {
		for i := range frames {
			time.Sleep(150 * time.Millisecond) // idle between frames
			e.node.Deliver(aoba.UserTopic(cl.UserID), aoba.Envelope{Frame: fmt.Appendf(nil, `{"type":"n","data":%d}`, i)})
		}
	}()
	for i := range frames {
		if f := c.next(); f.Type != "n" || string(f.Data) != fmt.Sprint(i) {
			t.Fatalf("frame %s %s, want n %d", f.Type, f.Data, i)
		}
	}
	if got := pings.Load(); got < 3 {
		t.Fatalf("%d pings in about 750 ms at a 50 ms interval, want several", got)
	}
}

// TestNoConcurrentWrites delivers frames from several goroutines while the
// pinger pings every few milliseconds and a close order arrives midway:
// the race detector, and the library's own check, fail the test if two
// goroutines ever write to one socket at once. Every socket must see each
// sender's frames in order and end with the ordered close code.
func TestNoConcurrentWrites(t *testing.T) {
	const sockets, senders, frames = 4, 4, 200
	e := newEnv(t, realtime.Config{PingInterval: 2 * time.Millisecond, SendQueue: 4096})
	tok, cl := e.user("busy")
	type result struct {
		code int
		err  error
	}
	results := make(chan result, sockets)
	for range sockets {
		c := e.dial(tok)
		c.quiet()
		go func() {
			last := make([]int, senders)
			for i := range last {
				last[i] = -1
			}
			for {
				_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, data, err := c.ws.ReadMessage()
				if err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						results <- result{code: ce.Code}
					} else {
						results <- result{err: err}
					}
					return
				}
				var s, n int
				if _, err := fmt.Sscanf(string(data), `{"type":"n","data":[%d,%d]}`, &s, &n); err != nil {
					results <- result{err: fmt.Errorf("frame %s: %v", data, err)}
					return
				}
				if n <= last[s] {
					results <- result{err: fmt.Errorf("sender %d: frame %d after %d", s, n, last[s])}
					return
				}
				last[s] = n
			}
		}()
	}
	topic := aoba.UserTopic(cl.UserID)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range frames {
				e.node.Deliver(topic, aoba.Envelope{Frame: fmt.Appendf(nil, `{"type":"n","data":[%d,%d]}`, s, n)})
				if s == 0 && n == frames/2 {
					e.node.Deliver(topic, aoba.Envelope{Close: &aoba.CloseOrder{Code: aoba.CloseSessionRevoked, Reason: "revoked"}})
				}
				if n%20 == 0 {
					time.Sleep(time.Millisecond) // let pings in between
				}
			}
		}()
	}
	wg.Wait()
	for range sockets {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.code != aoba.CloseSessionRevoked {
			t.Fatalf("close code %d, want %d", r.code, aoba.CloseSessionRevoked)
		}
	}
}

// burstSizes are the payload lengths the burst tests cycle through: each
// length encoding of RFC 6455 on both sides of its bounds (7-bit up to
// 125, 16-bit up to 65535, 64-bit beyond), and frames larger than a
// writer's batch.
var burstSizes = []int{8, 125, 126, 127, 1000, 65535, 65536, 70000, 200000, 9, 300}

// burstFrame returns frame i of a burst: its number, then letters up to
// burstSizes' length for i.
func burstFrame(i int) []byte {
	b := fmt.Appendf(nil, "%d:", i)
	for n := burstSizes[i%len(burstSizes)]; len(b) < n; {
		b = append(b, byte('a'+i%26))
	}
	return b
}

// TestBurstFraming delivers bursts of frames of every length encoding to a
// socket while the pinger pings it every few milliseconds and the client
// pings the server: a standard client must read every frame intact and in
// order, the server's pings arriving between data frames and the server
// answering each client ping with its pong. The frames a socket has
// queued when its writer runs share one write, so the bursts take fewer
// writes than frames.
func TestBurstFraming(t *testing.T) {
	const chunks, perChunk, pingEvery = 40, 15, 5
	const frames = chunks * perChunk
	const clientPings = chunks / 2 / pingEvery // in the first half
	e := newEnv(t, realtime.Config{PingInterval: time.Millisecond, SendQueue: 4096})
	tok, cl := e.user("bursty")
	c := e.dial(tok)
	c.quiet()

	var read atomic.Int64 // data frames read so far
	var pingsBetween, pongs atomic.Int32
	c.ws.SetPingHandler(func(data string) error {
		// Called while reading, in the order of the stream.
		if n := read.Load(); n > 0 && n < frames {
			pingsBetween.Add(1)
		}
		return c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	c.ws.SetPongHandler(func(data string) error {
		if data == "client-ping" {
			pongs.Add(1)
		}
		return nil
	})
	// After its pings the client sends a `ping` frame: the server reads
	// it after the control pings, so its `pong` frame comes after their
	// pongs; it may come anywhere between the data frames.
	errc := make(chan error, 1)
	go func() {
		for i, done := 0, false; i < frames || !done; {
			_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			typ, data, err := c.ws.ReadMessage()
			if err != nil {
				errc <- fmt.Errorf("after %d frames: %w", i, err)
				return
			}
			if !done && strings.HasPrefix(string(data), "{") {
				var f aoba.Frame
				if err := json.Unmarshal(data, &f); err != nil || f.Type != aoba.FramePong || f.ID != "end" {
					errc <- fmt.Errorf("after %d frames: unexpected frame %.60q", i, data)
					return
				}
				done = true
				continue
			}
			if want := burstFrame(i); typ != websocket.TextMessage || string(data) != string(want) {
				errc <- fmt.Errorf("frame %d: type %d, %d bytes %.20q..., want text, %d bytes %.20q...", i, typ, len(data), data, len(want), want)
				return
			}
			i++
			read.Store(int64(i))
		}
		errc <- nil
	}()

	topic := aoba.UserTopic(cl.UserID)
	writes0 := e.writes.Load()
	for k := range chunks {
		for i := k * perChunk; i < (k+1)*perChunk; i++ {
			e.node.Deliver(topic, aoba.Envelope{Frame: burstFrame(i)})
		}
		if k%pingEvery == 0 && k < chunks/2 {
			if err := c.ws.WriteControl(websocket.PingMessage, []byte("client-ping"), time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if k == chunks/2 {
			c.send(realtime.FramePing, "end", nil)
		}
		time.Sleep(2 * time.Millisecond) // let pings in between
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	writes := e.writes.Load() - writes0
	t.Logf("%d frames in %d writes (pings and pongs included)", frames, writes)
	if writes >= frames {
		t.Errorf("%d frames took %d writes: queued frames do not share writes", frames, writes)
	}
	if pingsBetween.Load() == 0 {
		t.Error("no ping arrived between the data frames of an 80 ms burst at a 1 ms ping interval")
	}
	if got := pongs.Load(); got != clientPings {
		t.Errorf("%d pongs for %d client pings", got, clientPings)
	}
}

// TestCloseAfterBurst shuts the node down right after a burst: the
// socket's queued frames are written, intact and in order, before the
// close frame.
func TestCloseAfterBurst(t *testing.T) {
	const frames = 300
	e := newEnv(t, realtime.Config{SendQueue: 4096})
	tok, cl := e.user("drained")
	c := e.dial(tok)
	c.quiet()
	for i := range frames {
		e.node.Deliver(aoba.UserTopic(cl.UserID), aoba.Envelope{Frame: burstFrame(i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.node.Shutdown(ctx) }()
	for i := range frames {
		_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d of %d: %v", i, frames, err)
		}
		if want := burstFrame(i); string(data) != string(want) {
			t.Fatalf("frame %d: %d bytes %.20q..., want %d bytes %.20q...", i, len(data), data, len(want), want)
		}
	}
	if code := c.closeCode(5 * time.Second); code != aoba.CloseGoingAway {
		t.Fatalf("close code %d after the burst, want %d", code, aoba.CloseGoingAway)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestWriteTimeout stops reading a socket while large frames are queued
// for it: once the TCP buffers are full the writer's write blocks, and the
// write deadline drops the connection about WriteTimeout later, before
// the client has read every frame.
func TestWriteTimeout(t *testing.T) {
	const frames, size = 32, 1 << 20
	const timeout = 200 * time.Millisecond
	e := newEnv(t, realtime.Config{WriteTimeout: timeout, SendQueue: 4 * frames, PingInterval: 50 * time.Millisecond})
	tok, cl := e.user("stalled")
	c := e.dial(tok)
	c.quiet()
	big := []byte(strings.Repeat("w", size))
	for range frames {
		e.node.Deliver(aoba.UserTopic(cl.UserID), aoba.Envelope{Frame: big})
	}
	time.Sleep(10 * timeout) // not reading
	read := 0
	for {
		_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("read %d frames, then nothing: the stalled socket was not dropped", read)
			}
			break
		}
		if len(data) != size {
			t.Fatalf("frame %d of %d bytes, want %d", read, len(data), size)
		}
		read++
	}
	if read == frames {
		t.Fatalf("all %d frames of %d MiB arrived: the writer never blocked, the test proves nothing", frames, size>>20)
	}
	t.Logf("%d of %d frames read before the connection dropped", read, frames)
}

// TestWriteDelay: with a write delay, the frames delivered to a socket
// within one window go out together, in order, once the window ends.
func TestWriteDelay(t *testing.T) {
	const delay, frames = 200 * time.Millisecond, 20
	e := newEnv(t, realtime.Config{WriteDelay: delay, PingInterval: time.Hour})
	tok, cl := e.user("delayed")
	c := e.dial(tok)
	c.quiet()
	writes0 := e.writes.Load()
	start := time.Now()
	for i := range frames {
		e.node.Deliver(aoba.UserTopic(cl.UserID), aoba.Envelope{Frame: fmt.Appendf(nil, `{"type":"n","data":%d}`, i)})
	}
	for i := range frames {
		if f := c.next(); f.Type != "n" || string(f.Data) != fmt.Sprint(i) {
			t.Fatalf("frame %s %s, want n %d", f.Type, f.Data, i)
		}
	}
	if d := time.Since(start); d < delay*9/10 {
		t.Errorf("frames arrived %v after delivery, before the %v delay", d, delay)
	}
	if w := e.writes.Load() - writes0; w != 1 {
		t.Errorf("%d writes for %d frames delivered within one window, want 1", w, frames)
	}
}
