package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// startAoba builds ../aoba and starts it in embedded mode on a free port
// with a temp data dir, cheap argon2, high rate limits and a ping every
// second. It skips the test when cmd/aoba does not build and returns the
// base URL.
func startAoba(t *testing.T) string { return startAobaFiles(t, 0) }

// startAobaFiles is startAoba with the server's open file limit set to
// nofile (soft and hard) when nofile is positive.
func startAobaFiles(t *testing.T, nofile int) string { return startAobaEnv(t, nofile) }

// startAobaXMPP is startAoba with the XMPP listener on (AOBA_DOMAIN
// aoba.chat); it returns the base URL and the listener's address.
func startAobaXMPP(t *testing.T) (string, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	xaddr := ln.Addr().String()
	ln.Close()
	return startAobaEnv(t, 0, "AOBA_XMPP_ADDR="+xaddr, "AOBA_DOMAIN=aoba.chat"), xaddr
}

// startAobaEnv is startAobaFiles with more environment variables.
func startAobaEnv(t *testing.T, nofile int, env ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("smoke test skipped in -short mode")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "aoba")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(gobin, "build", "-o", bin, "../aoba")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("cmd/aoba does not build yet, smoke test skipped: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	if nofile > 0 {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0"`, nofile), bin)
	}
	cmd.Env = append(os.Environ(),
		"AOBA_ADDR="+addr,
		"AOBA_DATA_DIR="+filepath.Join(dir, "data"),
		"AOBA_MONGO_URI=", "AOBA_REDIS_URL=",
		"AOBA_JWT_SECRET=smoke-test-secret-0123456789abcdef",
		"AOBA_RATE_STANDARD=1000000", "AOBA_RATE_BATCH=1000000", "AOBA_RATE_SEARCH=1000000",
		"AOBA_ARGON2_MEMORY_KIB=1024", "AOBA_ARGON2_ITERATIONS=1", "AOBA_PING_INTERVAL=1s",
	)
	cmd.Env = append(cmd.Env, env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy after 15s: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func runJSON(t *testing.T, args ...string) Result {
	t.Helper()
	var out, log bytes.Buffer
	args = append(args, "-json", "-progress", "0")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx, args, &out, &log); err != nil {
		t.Fatalf("aoba-bench %v: %v\n%s", args, err, log.String())
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	return res
}

func metric(t *testing.T, r Result, name string) float64 {
	t.Helper()
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value
		}
	}
	t.Fatalf("%s result has no %q: %+v", r.Command, name, r.Metrics)
	return 0
}

func TestSmoke(t *testing.T) {
	base := startAoba(t)
	t.Run("Idle", func(t *testing.T) {
		r := runJSON(t, "idle", "-addr", base, "-n", "20", "-duration", "2500ms", "-settle", "500ms")
		if v := metric(t, r, "sockets_alive_at_end"); v != 20 {
			t.Errorf("sockets_alive_at_end = %v, want 20", v)
		}
		if v := metric(t, r, "connect_rate"); v <= 0 {
			t.Errorf("connect_rate = %v, want > 0", v)
		}
		metric(t, r, "rss_per_socket")
		metric(t, r, "bench_rss_per_socket")
		// The server pings every second (AOBA_PING_INTERVAL): the hold
		// covers two intervals and more, and every socket answered.
		if v := metric(t, r, "ping_interval"); v != 1 {
			t.Errorf("ping_interval = %v s, want 1 from the hello", v)
		}
		if v := metric(t, r, "hold_ping_intervals"); v < 2 {
			t.Errorf("hold_ping_intervals = %v, want >= 2", v)
		}
		if v := metric(t, r, "pings_per_socket"); v < 1.5 {
			t.Errorf("pings_per_socket = %v, want about 2.5", v)
		}
		if v := metric(t, r, "heartbeat_cpu"); v < 0 || v > 200 {
			t.Errorf("heartbeat_cpu = %v %% of one core, want within [0, 200] on this machine", v)
		}
		if v := r.Params["sources"]; v != float64(1) {
			t.Errorf("sources = %v, want 1 picked for 20 sockets", v)
		}
	})
	t.Run("Direct", func(t *testing.T) {
		r := runJSON(t, "direct", "-addr", base, "-pairs", "4", "-rate", "100", "-duration", "2s")
		sent := metric(t, r, "sent")
		if sent < 50 {
			t.Errorf("sent = %v, want >= 50", sent)
		}
		if v := metric(t, r, "lost"); v != 0 {
			t.Errorf("lost = %v, want 0", v)
		}
		if v := metric(t, r, "send_errors"); v != 0 {
			t.Errorf("send_errors = %v, want 0 (%s)", v, r.Runs[0].LastError)
		}
		if d, a := metric(t, r, "delivered"), metric(t, r, "acked"); d != a || a != sent {
			t.Errorf("delivered %v acked %v sent %v, want all equal", d, a, sent)
		}
	})
	t.Run("Fanout", func(t *testing.T) {
		r := runJSON(t, "fanout", "-addr", base, "-members", "10", "-publishers", "2", "-rate", "50",
			"-duration", "2s", "-baseline")
		if v := metric(t, r, "delivered"); v < 9*50 {
			t.Errorf("delivered = %v, want >= 450", v)
		}
		if v := metric(t, r, "baseline_lost"); v != 0 {
			t.Errorf("baseline_lost = %v, want 0", v)
		}
		if v := metric(t, r, "ratio_deliveries_rate"); v <= 0 {
			t.Errorf("ratio_deliveries_rate = %v, want > 0", v)
		}
	})
	t.Run("FanoutREST", func(t *testing.T) {
		// 40 messages through POST /api/messages, as fast as 2 requests in
		// flight per publisher allow: each reaches the 9 other members.
		r := runJSON(t, "fanout", "-addr", base, "-members", "10", "-publishers", "2", "-via", "rest",
			"-count", "40", "-window", "2", "-duration", "20s")
		if v := metric(t, r, "acked"); v != 40 {
			t.Errorf("acked = %v, want 40 (%s)", v, r.Runs[0].LastError)
		}
		if d, l := metric(t, r, "delivered"), metric(t, r, "lost"); d != 40*9 || l != 0 {
			t.Errorf("delivered %v lost %v, want %d and 0", d, l, 40*9)
		}
		if v := metric(t, r, "deliveries_per_server_cpu_s"); v <= 0 {
			t.Errorf("deliveries_per_server_cpu_s = %v, want > 0", v)
		}
	})
	t.Run("REST", func(t *testing.T) {
		r := runJSON(t, "rest", "-addr", base, "-users", "4", "-concurrency", "4", "-duration", "2s", "-seed-messages", "2")
		if v := metric(t, r, "requests"); v < 10 {
			t.Errorf("requests = %v, want >= 10", v)
		}
		if v := metric(t, r, "errors"); v != 0 {
			t.Errorf("errors = %v, want 0: %+v", v, r.Metrics)
		}
	})
	t.Run("RESTSend", func(t *testing.T) {
		r := runJSON(t, "rest", "-addr", base, "-users", "4", "-concurrency", "4", "-duration", "2s", "-seed-messages", "0", "-ops", "send")
		if v := metric(t, r, "send p50"); v <= 0 {
			t.Errorf("send p50 = %v, want > 0: %+v", v, r.Metrics)
		}
		if v := metric(t, r, "errors"); v != 0 {
			t.Errorf("errors = %v, want 0: %+v", v, r.Metrics)
		}
	})
}

// TestServerFileLimit proves that idle refuses, before provisioning
// anyone, a run that the server's open file limit cannot hold, and says so.
func TestServerFileLimit(t *testing.T) {
	base := startAobaFiles(t, 512)
	var out, log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"idle", "-addr", base, "-n", "1000", "-progress", "0"}, &out, &log)
	if err == nil || !strings.Contains(err.Error(), "open file limit is 512") {
		t.Fatalf("idle -n 1000 against a server limited to 512 files: %v, want the server's limit named", err)
	}
	if strings.Contains(log.String(), "provisioned") {
		t.Fatalf("users were provisioned before the refusal:\n%s", log.String())
	}
}

// TestSmokeXMPP runs both XMPP modes against a real server with its XMPP
// listener on: every session opens and stays, and every message crosses
// between XMPP and the JSON socket, both ways, once.
func TestSmokeXMPP(t *testing.T) {
	base, xaddr := startAobaXMPP(t)
	t.Run("Idle", func(t *testing.T) {
		r := runJSON(t, "xmpp-idle", "-addr", base, "-xmpp-addr", xaddr, "-n", "20", "-duration", "2s",
			"-settle", "300ms", "-keepalive", "1s")
		if v := metric(t, r, "sessions_alive_at_end"); v != 20 {
			t.Errorf("sessions_alive_at_end = %v, want 20", v)
		}
		if v := metric(t, r, "server_streams_opened"); v != 20 {
			t.Errorf("server_streams_opened = %v, want 20 (aoba_xmpp_streams)", v)
		}
		if v := metric(t, r, "keepalives_sent"); v < 20 {
			t.Errorf("keepalives_sent = %v, want >= 20", v)
		}
		metric(t, r, "rss_per_session")
		metric(t, r, "goroutines_per_session")
		metric(t, r, "server_cpu_per_session")
	})
	t.Run("IdlePlain", func(t *testing.T) {
		r := runJSON(t, "xmpp-idle", "-addr", base, "-xmpp-addr", xaddr, "-n", "4", "-duration", "1s",
			"-settle", "100ms", "-sasl", "plain")
		if v := metric(t, r, "sessions_alive_at_end"); v != 4 {
			t.Errorf("sessions_alive_at_end = %v, want 4", v)
		}
	})
	t.Run("Latency", func(t *testing.T) {
		r := runJSON(t, "xmpp-latency", "-addr", base, "-xmpp-addr", xaddr, "-pairs", "4", "-rate", "40",
			"-duration", "1500ms", "-drain", "3s")
		for _, dir := range []string{"x2j", "j2x", "j2j"} {
			sent := metric(t, r, dir+"_sent")
			if sent < 30 {
				t.Errorf("%s_sent = %v, want >= 30", dir, sent)
			}
			if d := metric(t, r, dir+"_delivered"); d != sent {
				t.Errorf("%s_delivered = %v, want %v", dir, d, sent)
			}
			for _, m := range []string{"_lost", "_duplicated", "_send_errors", "_disconnected"} {
				if v := metric(t, r, dir+m); v != 0 {
					t.Errorf("%s%s = %v, want 0", dir, m, v)
				}
			}
		}
		metric(t, r, "x2j_ratio_latency_p50")
	})
	t.Run("WrongDomain", func(t *testing.T) {
		var out, log bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := run(ctx, []string{"xmpp-idle", "-addr", base, "-xmpp-addr", xaddr, "-domain", "example.org", "-n", "1",
			"-duration", "1s", "-progress", "0"}, &out, &log)
		if err == nil || !strings.Contains(err.Error(), "host-unknown") {
			t.Fatalf("xmpp-idle with the wrong domain: %v, want the host-unknown stream error", err)
		}
	})
}
