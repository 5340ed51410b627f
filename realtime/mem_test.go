package realtime_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/realtime"
)

// BenchmarkIdleSocket opens b.N authenticated sockets, each of its own
// user, lets them idle and reports, per socket, the growth of the Go heap
// (heap-B/socket: bytes in use after a GC, the server's share plus a few
// hundred bytes of the minimal client), of goroutine stacks (stack-B/socket)
// and of goroutines (goroutines/socket; the minimal client has none). The clients speak the protocol by
// hand on a bare TCP connection so that they hold almost nothing. Set
// AOBA_HEAP_PROFILE to a file name to write a heap profile with every
// socket open, for `go tool pprof -top -sample_index=inuse_space`.
// Run with -benchtime=2000x.
func BenchmarkIdleSocket(b *testing.B) {
	if os.Getenv("AOBA_HEAP_PROFILE") != "" {
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1 // every allocation, for exact figures
	}
	e := newEnv(b, realtime.Config{})
	tokens := make([]string, b.N)
	for i := range tokens {
		u := &aoba.User{ID: aoba.NewID(), Username: fmt.Sprintf("idle%d", i), PasswordHash: "-", CreatedAt: aoba.Now()}
		if err := e.store.CreateUser(context.Background(), u); err != nil {
			b.Fatal(err)
		}
		tok, cl, err := e.tokens.Issue(u.ID, aoba.NewID())
		if err != nil {
			b.Fatal(err)
		}
		sess := &aoba.Session{ID: cl.SessionID, UserID: cl.UserID, TokenID: cl.TokenID, CreatedAt: aoba.Now(),
			LastSeenAt: aoba.Now(), ExpiresAt: cl.ExpiresAt}
		if err := e.store.CreateSession(context.Background(), sess); err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok
	}
	type usage struct {
		heap, stack uint64
		goroutines  int
	}
	measure := func() usage {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return usage{heap: m.HeapAlloc, stack: m.StackInuse, goroutines: runtime.NumGoroutine()}
	}
	conns := make([]net.Conn, 0, b.N)
	b.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	settle := func() {
		// Wait until the goroutines of earlier sockets (another run's,
		// the setup's, lingering writers) have ended.
		last, same := -1, 0
		for range 40 {
			time.Sleep(250 * time.Millisecond)
			g := runtime.NumGoroutine()
			if g != last {
				last, same = g, 0
			} else if same++; same == 3 {
				return
			}
		}
	}
	settle()
	before := measure()
	b.ResetTimer()
	for _, tok := range tokens {
		conns = append(conns, rawDial(b, e.addr, tok))
	}
	b.StopTimer()
	settle()
	after := measure()
	if path := os.Getenv("AOBA_HEAP_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
	}
	per := func(a, b0 int64) float64 { return float64(a-b0) / float64(b.N) }
	b.ReportMetric(per(int64(after.heap), int64(before.heap)), "heap-B/socket")
	b.ReportMetric(per(int64(after.stack), int64(before.stack)), "stack-B/socket")
	b.ReportMetric(per(int64(after.goroutines), int64(before.goroutines)), "goroutines/socket")
}

// rawDial opens a socket by hand and waits for the pong of a ping, so the
// server has set the socket up completely.
func rawDial(tb testing.TB, addr, token string) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /ws?token=" + token + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		tb.Fatal(err)
	}
	r := bufio.NewReaderSize(c, 512)
	status, err := r.ReadString('\n')
	if err != nil || !bytes.Contains([]byte(status), []byte(" 101 ")) {
		tb.Fatalf("upgrade: %q %v", status, err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			tb.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	// A masked text frame with a zero mask: the payload goes as is.
	ping := []byte(`{"type":"ping","id":"p"}`)
	frame := append([]byte{0x81, 0x80 | byte(len(ping)), 0, 0, 0, 0}, ping...)
	if _, err := c.Write(frame); err != nil {
		tb.Fatal(err)
	}
	next := func() []byte { // the next frame with a payload: server pings have none
		for {
			if body := rawFrame(tb, r); len(body) > 0 {
				return body
			}
		}
	}
	if body := next(); !bytes.Contains(body, []byte(`"hello"`)) {
		tb.Fatalf("got %q, want the hello", body)
	}
	if body := next(); !bytes.Contains(body, []byte(`"pong"`)) {
		tb.Fatalf("got %q, want the pong", body)
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

// rawFrame reads one unmasked server text frame shorter than 64 KiB and
// returns its payload.
func rawFrame(tb testing.TB, r *bufio.Reader) []byte {
	tb.Helper()
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(r, hdr); err != nil {
		tb.Fatal(err)
	}
	n := int(hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, hdr); err != nil {
			tb.Fatal(err)
		}
		n = int(binary.BigEndian.Uint16(hdr))
	case 127:
		tb.Fatalf("frame of 64 KiB or more, want a short one")
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		tb.Fatal(err)
	}
	return body
}

// BenchmarkIdlePings holds 500 idle sockets of minimal clients that
// answer every ping with a pong, pinged every 50 ms (10,000 pings/s), and
// reports the CPU time of the whole process per ping (cpu-ns/ping: the
// server's ping and pong plus the minimal client's share, about a read and
// a write system call) and its allocations per ping; ns/op is the ping
// interval's pace, not a cost. Compare builds with -count and benchstat.
func BenchmarkIdlePings(b *testing.B) {
	const sockets = 500
	e := newEnv(b, realtime.Config{PingInterval: 50 * time.Millisecond, IdleTimeout: time.Hour})
	var pongs atomic.Int64
	for i := range sockets {
		tok, _ := e.user(fmt.Sprintf("pinged%d", i))
		c := rawDial(b, e.addr, tok)
		b.Cleanup(func() { _ = c.Close() })
		go answerPings(c, &pongs)
	}
	wait := func(n int64) {
		for pongs.Load() < n {
			time.Sleep(time.Millisecond)
		}
	}
	wait(2 * sockets) // every socket pinged, the node warm
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime(b)
	start := pongs.Load()
	b.ResetTimer()
	wait(start + int64(b.N))
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	runtime.ReadMemStats(&after)
	n := float64(pongs.Load() - start)
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/ping")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/ping")
}

// answerPings reads the server's frames from c until it fails, answering
// each ping with a pong (masked, with a zero mask) and counting it.
func answerPings(c net.Conn, pongs *atomic.Int64) {
	r := bufio.NewReaderSize(c, 512)
	hdr := make([]byte, 2)
	pong := []byte{0x8a, 0x80, 0, 0, 0, 0}
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return
		}
		op, n := hdr[0]&0x0f, int64(hdr[1]&0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(r, hdr); err != nil {
				return
			}
			n = int64(binary.BigEndian.Uint16(hdr))
		case 127:
			return
		}
		if _, err := r.Discard(int(n)); err != nil {
			return
		}
		if op == 0x9 {
			if _, err := c.Write(pong); err != nil {
				return
			}
			pongs.Add(1)
		}
	}
}

// cpuTime returns the user and system CPU time of this process so far.
func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
