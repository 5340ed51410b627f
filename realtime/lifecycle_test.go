package realtime_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/realtime"
)

func TestHandlerRefusals(t *testing.T) {
	e := newEnv(t, realtime.Config{AllowedOrigins: []string{"https://app.example"}})
	tok, _ := e.user("alice")

	t.Run("NotUpgrade", func(t *testing.T) {
		resp, err := http.Get("http://" + e.addr + "/ws?token=" + tok)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body errorData
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusUpgradeRequired || body.Error != "Upgrade Required" {
			t.Fatalf("status %d body %+v, want 426", resp.StatusCode, body)
		}
	})
	t.Run("NoClaims", func(t *testing.T) {
		if got := e.dialStatus("", nil); got != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", got)
		}
	})
	cookie := http.Header{"Cookie": {aoba.AuthCookie + "=" + tok}}
	for name, tc := range map[string]struct {
		origin string
		header http.Header
		want   int
	}{
		"CrossSiteCookie":     {"https://evil.example", cookie, http.StatusForbidden},
		"CrossSiteToken":      {"https://evil.example", nil, http.StatusSwitchingProtocols},
		"AllowedOriginCookie": {"https://app.example", cookie, http.StatusSwitchingProtocols},
		"SameOriginCookie":    {"http://" + e.addr, cookie, http.StatusSwitchingProtocols},
		"NoOriginCookie":      {"", cookie, http.StatusSwitchingProtocols},
	} {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h[k] = v
			}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			query := ""
			if tc.header == nil {
				query = "?token=" + tok
			}
			if got := e.dialStatus(query, h); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}

func TestFrameTooLarge(t *testing.T) {
	e := newEnv(t, realtime.Config{MaxFrameBytes: 1024})
	tok, _ := e.user("alice")
	c := e.dial(tok)
	t.Run("UnderLimit", func(t *testing.T) {
		c.send(realtime.FramePing, strings.Repeat("a", 900), nil)
		c.expect(aoba.FramePong)
	})
	t.Run("OverLimit", func(t *testing.T) {
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 4096))); err != nil {
			t.Fatal(err)
		}
		if code := c.closeCode(5 * time.Second); code != aoba.CloseTooLarge {
			t.Fatalf("close code %d, want %d", code, aoba.CloseTooLarge)
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t, realtime.Config{IdleTimeout: 300 * time.Millisecond, PingInterval: time.Hour})
	tok, _ := e.user("alice")
	c := e.dial(tok)
	// The client neither sends nor answers pings (it does not read).
	time.Sleep(600 * time.Millisecond)
	if code := c.closeCode(5 * time.Second); code != aoba.CloseIdle {
		t.Fatalf("close code %d, want %d", code, aoba.CloseIdle)
	}
}

func TestPingKeepsAlive(t *testing.T) {
	e := newEnv(t, realtime.Config{IdleTimeout: 400 * time.Millisecond, PingInterval: 100 * time.Millisecond})
	tok, _ := e.user("alice")
	c := e.dial(tok)
	// A reading client answers the server's pings with pongs, which keep
	// the socket open well past the idle timeout.
	_ = c.ws.SetReadDeadline(time.Now().Add(1200 * time.Millisecond))
	if _, _, err := c.ws.ReadMessage(); err == nil {
		t.Fatal("unexpected frame")
	} else if ne, ok := err.(interface{ Timeout() bool }); !ok || !ne.Timeout() {
		t.Fatalf("read: %v, want our own deadline to expire first", err)
	}
}

// TestIdleClosedByPinger is TestIdleTimeout with pings due more often than
// the idle timeout: the pinger finds the socket idle and closes it, and
// only once the idle timeout has gone by.
func TestIdleClosedByPinger(t *testing.T) {
	const idle = 300 * time.Millisecond
	e := newEnv(t, realtime.Config{IdleTimeout: idle, PingInterval: 50 * time.Millisecond})
	tok, _ := e.user("alice")
	start := time.Now()
	c := e.dial(tok)
	c.ws.SetPingHandler(func(string) error { return nil }) // answers no ping
	if code := c.closeCode(5 * time.Second); code != aoba.CloseIdle {
		t.Fatalf("close code %d, want %d", code, aoba.CloseIdle)
	}
	if d := time.Since(start); d < idle {
		t.Fatalf("closed %v after the dial, before the idle timeout of %v", d, idle)
	}
}

// TestFramesKeepAlive: a client that sends frames but never reads, and so
// answers no ping, is not idle.
func TestFramesKeepAlive(t *testing.T) {
	const idle = 400 * time.Millisecond
	e := newEnv(t, realtime.Config{IdleTimeout: idle, PingInterval: 50 * time.Millisecond})
	tok, _ := e.user("alice")
	c := rawDial(t, e.addr, tok)
	defer c.Close()
	frame := func(id string) []byte {
		p := []byte(`{"type":"ping","id":"` + id + `"}`)
		return append([]byte{0x81, 0x80 | byte(len(p)), 0, 0, 0, 0}, p...) // masked, zero mask
	}
	for range 3 * idle / (100 * time.Millisecond) {
		time.Sleep(100 * time.Millisecond)
		if _, err := c.Write(frame("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write(frame("last")); err != nil {
		t.Fatal(err)
	}
	// Everything the server sent meanwhile: pings, pongs, and the pong of
	// "last" unless it closed the socket.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for {
		hdr := make([]byte, 2)
		if _, err := io.ReadFull(r, hdr); err != nil {
			t.Fatalf("socket closed without a close frame: %v", err)
		}
		body := make([]byte, hdr[1]&0x7f)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatal(err)
		}
		switch hdr[0] & 0x0f {
		case 0x8:
			t.Fatalf("socket closed with code %d while the client sent frames", binary.BigEndian.Uint16(body))
		case 0x1:
			if bytes.Contains(body, []byte(`"id":"last"`)) {
				return
			}
		}
	}
}

func TestShutdown(t *testing.T) {
	e := newEnv(t, realtime.Config{})
	tok, _ := e.user("alice")
	c1, c2 := e.dial(tok), e.dial(tok)
	c1.quiet()
	c2.quiet()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- e.node.Shutdown(ctx) }()
	for name, c := range map[string]*client{"first": c1, "second": c2} {
		if code := c.closeCode(5 * time.Second); code != aoba.CloseGoingAway {
			t.Fatalf("%s: close code %d, want %d", name, code, aoba.CloseGoingAway)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := e.dialStatus("?token="+tok, nil); got != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown: status %d, want 503", got)
	}
}

// TestSlowClient floods a socket that never reads with large frames while
// 50 reading sockets receive small ones: the slow socket is closed with
// 4002 (after the frames its TCP buffers already held) and the others get
// every frame in order.
func TestSlowClient(t *testing.T) {
	const queue, readers, rounds, burst = 16, 50, 400, 4
	e := newEnv(t, realtime.Config{SendQueue: queue})
	slowTok, slow := e.user("slow")
	fastTok, fast := e.user("fast")
	s := e.dial(slowTok)
	s.quiet()

	progress := make([]chan int, readers)
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i := range readers {
		c := e.dial(fastTok)
		c.quiet()
		progress[i] = make(chan int, rounds)
		wg.Add(1)
		go func(c *client, ch chan int) {
			defer wg.Done()
			for want := range rounds {
				_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, data, err := c.ws.ReadMessage()
				if err != nil {
					errs <- err
					return
				}
				if got := string(data); got != fmt.Sprintf(`{"type":"n","data":%d}`, want) {
					errs <- fmt.Errorf("frame %q, want number %d", got, want)
					return
				}
				ch <- want
			}
		}(c, progress[i])
	}
	// Each big frame is a fresh 60 KB allocation (24 MB in all), so a
	// queue that grew without bound would show in the heap.
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	for i := range rounds {
		big := []byte(`{"type":"big","data":"` + strings.Repeat("z", 60000) + `"}`)
		e.node.Deliver(aoba.UserTopic(slow.UserID), aoba.Envelope{Frame: big})
		e.node.Deliver(aoba.UserTopic(fast.UserID), aoba.Envelope{Frame: fmt.Appendf(nil, `{"type":"n","data":%d}`, i)})
		if i%burst == burst-1 {
			// Wait until every reader has the round's frame, so that
			// only the slow socket's queue can overflow.
			for _, ch := range progress {
				for got := -1; got < i; {
					select {
					case got = <-ch:
					case err := <-errs:
						t.Fatalf("reader: %v", err)
					case <-time.After(10 * time.Second):
						t.Fatalf("reader stalled at round %d", i)
					}
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if grew := int64(peak) - int64(base); grew > 8<<20 {
		t.Errorf("heap grew by %d MiB while a client stalled: the send queue is not bounded", grew>>20)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("reader: %v", err)
	}
	if code := s.closeCode(10 * time.Second); code != aoba.CloseTooSlow {
		t.Fatalf("slow client close code %d, want %d", code, aoba.CloseTooSlow)
	}
}

func TestHello(t *testing.T) {
	e := newEnv(t, realtime.Config{PingInterval: 20 * time.Second})
	tok, cl := e.user("alice")
	before := time.Now()
	c := e.dial(tok) // dial checks that hello is the first frame
	after := time.Now()
	var h aoba.Hello
	if err := json.Unmarshal(c.hello.Data, &h); err != nil {
		t.Fatal(err)
	}
	if h.SessionID != cl.SessionID || h.Heartbeat != 20 {
		t.Fatalf("hello = %+v, want session %s and heartbeat 20", h, cl.SessionID)
	}
	if lo, hi := aoba.SyncCursorAt(before), aoba.SyncCursorAt(after); h.Sync < lo || h.Sync > hi {
		t.Fatalf("hello sync = %s, want the cursor of the connection time (%s..%s)", h.Sync, lo, hi)
	}
	c.quiet()
}

// TestDrainSpreadsCloses: Drain refuses new sockets at once and closes the
// open ones with 1001 spread over the given time, not all together; a
// context that ends cuts the spread short.
func TestDrainSpreadsCloses(t *testing.T) {
	const sockets, spread = 10, time.Second
	e := newEnv(t, realtime.Config{})
	tok, _ := e.user("alice")
	clients := make([]*client, sockets)
	for i := range clients {
		clients[i] = e.dial(tok)
		clients[i].quiet()
	}
	start := time.Now()
	closed := make(chan time.Duration, sockets)
	for _, c := range clients {
		go func() {
			if code := c.closeCode(10 * time.Second); code != aoba.CloseGoingAway {
				t.Errorf("close code %d, want %d", code, aoba.CloseGoingAway)
			}
			closed <- time.Since(start)
		}()
	}
	done := make(chan int, 1)
	go func() { done <- e.node.Drain(context.Background(), spread) }()
	var at []time.Duration
	for range sockets {
		at = append(at, <-closed)
	}
	if n := <-done; n != sockets {
		t.Fatalf("Drain closed %d sockets, want %d", n, sockets)
	}
	if got := e.dialStatus("?token="+tok, nil); got != http.StatusServiceUnavailable {
		t.Fatalf("dial while draining: status %d, want 503", got)
	}
	first, last := slices.Min(at), slices.Max(at)
	// Evenly spread: the last closes at 9/10 of the spread, the first at
	// once.
	if first > spread/4 || last-first < spread*6/10 {
		t.Fatalf("closes from %v to %v after Drain, want spread over about %v", first, last, spread*9/10)
	}
	t.Logf("closes from %v to %v", first.Round(time.Millisecond), last.Round(time.Millisecond))

	t.Run("ContextEndsSpread", func(t *testing.T) {
		e := newEnv(t, realtime.Config{})
		tok, _ := e.user("bob")
		c1, c2 := e.dial(tok), e.dial(tok)
		c1.quiet()
		c2.quiet()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		begin := time.Now()
		if n := e.node.Drain(ctx, time.Hour); n != 2 {
			t.Fatalf("Drain closed %d sockets, want 2", n)
		}
		for _, c := range []*client{c1, c2} {
			if code := c.closeCode(5 * time.Second); code != aoba.CloseGoingAway {
				t.Fatalf("close code %d, want %d", code, aoba.CloseGoingAway)
			}
		}
		if took := time.Since(begin); took > 5*time.Second {
			t.Fatalf("an ended context still waited %v", took)
		}
	})
}
