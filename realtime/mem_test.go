package realtime_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
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
	if body := rawFrame(tb, r); !bytes.Contains(body, []byte(`"hello"`)) {
		tb.Fatalf("got %q, want the hello", body)
	}
	if body := rawFrame(tb, r); !bytes.Contains(body, []byte(`"pong"`)) {
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
		ext := make([]byte, 2)
		if _, err := io.ReadFull(r, ext); err != nil {
			tb.Fatal(err)
		}
		n = int(ext[0])<<8 | int(ext[1])
	case 127:
		tb.Fatal("frame of 64 KiB or more, want a short one")
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		tb.Fatal(err)
	}
	return body
}
