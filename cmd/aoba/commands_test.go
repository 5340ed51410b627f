package main_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// result is how a run of the binary ended.
type result struct {
	Code           int
	Stdout, Stderr string
}

// runBinary runs bin with args and exactly the environment env ("NAME=value"
// entries, PATH added), and fails the test unless it ends within 30 s.
func runBinary(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("aoba %s did not end within 30 s:\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
	}
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run aoba %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// want fails the test unless the run exited with code.
func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.Code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.Code, code, r.Stdout, r.Stderr)
	}
	return r
}

// freeAddr returns a loopback address on which nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestCommandLine runs the real binary, built with a stamped version, as a
// tool: help and version never start a server, unknown commands and
// arguments are refused, healthcheck answers for a running server, and the
// stamped version reaches /metrics.
func TestCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const stamped = "9.8.7-test"
	bin := buildBinary(t, "-ldflags", "-X main.version="+stamped+" -X main.revision=abc1234")

	t.Run("Help", func(t *testing.T) {
		// AOBA_ADDR names a free port: a server started by mistake would
		// take it and run until the 30 s bound.
		addr := freeAddr(t)
		for _, arg := range []string{"--help", "-h", "help", "-help"} {
			r := runBinary(t, bin, []string{"AOBA_ADDR=" + addr, "AOBA_DATA_DIR=" + t.TempDir()}, arg).want(t, 0)
			for _, want := range []string{"Usage: aoba", "healthcheck", "backup FILE", "restore FILE", "admin COMMAND", "AOBA_ADMIN_TOKEN", "AOBA_DATA_DIR"} {
				if !strings.Contains(r.Stdout, want) {
					t.Fatalf("aoba %s: usage lacks %q:\n%s", arg, want, r.Stdout)
				}
			}
			if strings.Contains(r.Stderr, "aoba started") {
				t.Fatalf("aoba %s started a server:\n%s", arg, r.Stderr)
			}
		}
		runBinary(t, bin, nil, "serve", "--help").want(t, 0)
		r := runBinary(t, bin, nil, "admin", "-h").want(t, 0)
		if !strings.Contains(r.Stdout, "disable USER") {
			t.Fatalf("admin usage:\n%s", r.Stdout)
		}
	})
	t.Run("Version", func(t *testing.T) {
		for _, arg := range []string{"--version", "-version", "version"} {
			r := runBinary(t, bin, nil, arg).want(t, 0)
			if want := "aoba " + stamped + " (abc1234, " + runtime.Version() + ")\n"; r.Stdout != want {
				t.Fatalf("aoba %s = %q, want %q", arg, r.Stdout, want)
			}
		}
	})
	t.Run("Refusals", func(t *testing.T) {
		for _, args := range [][]string{{"frobnicate"}, {"serve", "now"}, {"version", "x"}, {"backup"}, {"restore", "a", "b"}, {"healthcheck", "-bogus"}, {"admin", "frob"}} {
			r := runBinary(t, bin, []string{"AOBA_ADDR=" + freeAddr(t)}, args...).want(t, 2)
			if r.Stderr == "" {
				t.Fatalf("aoba %v: exit 2 without a word on stderr", args)
			}
		}
		// A malformed setting is named, whatever the command.
		r := runBinary(t, bin, []string{"AOBA_ADMIN_TOKEN=short"}, "healthcheck").want(t, 1)
		if !strings.Contains(r.Stderr, "AOBA_ADMIN_TOKEN must be at least 32 bytes") {
			t.Fatalf("stderr = %q", r.Stderr)
		}
	})
	t.Run("Healthcheck", func(t *testing.T) {
		p := startProc(t, bin, t.TempDir())
		addr := strings.TrimPrefix(p.base, "http://")
		_, port, _ := net.SplitHostPort(addr)
		// AOBA_ADDR as the server reads it: a wildcard host means loopback.
		r := runBinary(t, bin, []string{"AOBA_ADDR=:" + port}, "healthcheck").want(t, 0)
		if !strings.HasPrefix(r.Stdout, "healthy: /health") {
			t.Fatalf("stdout = %q", r.Stdout)
		}
		runBinary(t, bin, nil, "healthcheck", "-url", p.base).want(t, 0)
		r = runBinary(t, bin, []string{"AOBA_ADDR=" + freeAddr(t)}, "healthcheck", "-timeout", "2s").want(t, 1)
		if !strings.Contains(r.Stderr, "unhealthy") {
			t.Fatalf("stderr = %q", r.Stderr)
		}

		// The stamped build is in the metrics and the start-up log.
		body := string(p.do(t, "GET", "/metrics", "", nil).want(t, 200).Body)
		re := regexp.MustCompile(`(?m)^aoba_build_info\{(.*)\} 1$`)
		m := re.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no aoba_build_info 1 in /metrics")
		}
		for _, label := range []string{`version="` + stamped + `"`, `revision="abc1234"`, `goversion="` + runtime.Version() + `"`} {
			if !strings.Contains(m[1], label) {
				t.Fatalf("aoba_build_info{%s} lacks %s", m[1], label)
			}
		}
		if !strings.Contains(p.logs.String(), `"version":"`+stamped+`"`) {
			t.Fatalf("the start-up log does not name the version")
		}
	})
}
