package main

import (
	"context"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/aoba-chat/aoba/internal/fdlimit"
)

func TestSources(t *testing.T) {
	const ports = 60999 - 32768 + 1 // Linux's default range
	t.Run("Auto", func(t *testing.T) {
		for _, tc := range []struct{ sockets, want int }{{1, 1}, {20000, 1}, {25408, 1}, {25409, 2}, {100000, 4}, {200000, 8}} {
			s, err := NewSources(tc.sockets, 0, ports)
			if err != nil || s.Len() != tc.want {
				t.Errorf("NewSources(%d, auto) = %v, %v, want %d addresses", tc.sockets, s, err, tc.want)
			}
		}
	})
	t.Run("Explicit", func(t *testing.T) {
		if s, err := NewSources(100, 8, ports); err != nil || s.Len() != 8 {
			t.Fatalf("NewSources(100, 8) = %v, %v, want 8 addresses", s, err)
		}
		_, err := NewSources(100000, 3, ports)
		if err == nil || !strings.Contains(err.Error(), "at least 4 source addresses") {
			t.Fatalf("100,000 sockets on 3 addresses: %v, want an error asking for 4", err)
		}
	})
	t.Run("OverTheCap", func(t *testing.T) {
		if _, err := NewSources(MaxSockets, 0, 1000); err == nil {
			t.Fatal("200,000 sockets over 1,000 ports per address accepted, want refused (more than MaxSources)")
		}
	})
	t.Run("Spread", func(t *testing.T) {
		s, err := NewSources(100000, 0, ports)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for range 100000 {
			a := s.Next()
			if a.Port != 0 || !a.IP.Equal(a.IP.To4()) || a.IP.To4()[0] != 127 {
				t.Fatalf("source %v, want a 127.0.0.x address with any port", a)
			}
			count[a.IP.String()]++
		}
		if len(count) != 4 {
			t.Fatalf("sockets spread over %v, want 4 addresses", count)
		}
		for ip, n := range count {
			if n != 25000 {
				t.Errorf("%s got %d sockets, want 25,000", ip, n)
			}
		}
	})
	t.Run("EphemeralPorts", func(t *testing.T) {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
		if err != nil {
			if got := EphemeralPorts(); got != ports {
				t.Fatalf("EphemeralPorts without /proc = %d, want the default %d", got, ports)
			}
			return
		}
		f := strings.Fields(string(b))
		lo, _ := strconv.Atoi(f[0])
		hi, _ := strconv.Atoi(f[1])
		if got := EphemeralPorts(); got != hi-lo+1 {
			t.Fatalf("EphemeralPorts = %d, want %d from %q", got, hi-lo+1, b)
		}
	})
}

func TestFileLimit(t *testing.T) {
	t.Run("Check", func(t *testing.T) {
		err := checkFiles(fdlimit.Limit{Soft: 20000, Hard: 20000}, 100000)
		if err == nil || !strings.Contains(err.Error(), "hard limit 20000") || !strings.Contains(err.Error(), "at most 19680 sockets") {
			t.Fatalf("100,000 sockets under a 20,000 limit: %v, want the limit and the most it allows", err)
		}
		if err := checkFiles(fdlimit.Limit{Soft: 100320, Hard: 100320}, 100000); err != nil {
			t.Fatalf("100,000 sockets under 100,320: %v, want accepted", err)
		}
		if err := checkFiles(fdlimit.Limit{}, MaxSockets); err != nil {
			t.Fatalf("an unknown limit refused a run: %v", err)
		}
	})
	t.Run("RaisedAtStart", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("RLIMIT_NOFILE is read on Linux only")
		}
		orig, err := fdlimit.Get()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = fdlimit.Set(orig) })
		if err := fdlimit.Set(fdlimit.Limit{Soft: orig.Hard - 1, Hard: orig.Hard}); err != nil {
			t.Fatal(err)
		}
		// Nothing listens there: the run fails, after the limit was raised.
		addr := "http://" + closedAddr(t)
		err = run(context.Background(), []string{"idle", "-addr", addr, "-n", "1", "-progress", "0"}, discard{}, discard{})
		if err == nil {
			t.Fatal("idle against a closed port succeeded")
		}
		if now, _ := fdlimit.Get(); now.Soft != orig.Hard {
			t.Fatalf("soft limit after a run = %d, want the hard limit %d", now.Soft, orig.Hard)
		}
		// A run this process's limit cannot hold is refused, saying why.
		if n := orig.Hard; n+fileMargin <= MaxSockets {
			err := run(context.Background(), []string{"idle", "-addr", addr, "-n", strconv.FormatUint(n, 10), "-progress", "0"}, discard{}, discard{})
			if err == nil || !strings.Contains(err.Error(), "RLIMIT_NOFILE") {
				t.Fatalf("idle -n %d under a hard limit of %d: %v, want the limit named", n, orig.Hard, err)
			}
		}
	})
}

func TestSocketCap(t *testing.T) {
	addr := "http://" + closedAddr(t)
	err := run(context.Background(), []string{"idle", "-addr", addr, "-n", strconv.Itoa(MaxSockets + 1)}, discard{}, discard{})
	if err == nil || !strings.Contains(err.Error(), "1..200000") {
		t.Fatalf("idle -n %d: %v, want the cap of 200,000", MaxSockets+1, err)
	}
	err = run(context.Background(), []string{"idle", "-addr", addr, "-n", strconv.Itoa(MaxSockets), "-progress", "0"}, discard{}, discard{})
	if err == nil || strings.Contains(err.Error(), "1..200000") {
		t.Fatalf("idle -n %d: %v, want past the cap (refused by the file limit or the closed port)", MaxSockets, err)
	}
}

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
