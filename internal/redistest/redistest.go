// Package redistest starts real redis-server processes for tests. Tests
// share one server per package and isolate themselves with unique key
// prefixes (see Prefix).
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Binary is the redis-server executable the tests start.
const Binary = "/usr/bin/redis-server"

// Server is one redis-server process listening on 127.0.0.1.
type Server struct {
	tb   testing.TB
	dir  string
	port int
	// args are the command line before the common options: empty for a
	// plain server, the config file and --sentinel for a sentinel.
	args []string
	// extra are options appended after the common ones (cluster mode,
	// replication).
	extra []string

	mu     sync.Mutex
	proc   *os.Process
	exited chan struct{} // closed when proc has exited
}

// Start starts a redis-server on a free port in a temporary directory and
// waits until it answers PING. The server is killed when tb's test ends. It
// skips the test when redis-server is not installed and fails it when the
// server cannot be started.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if _, err := os.Stat(Binary); err != nil {
		tb.Skipf("redistest: %s is not installed: %v", Binary, err)
	}
	s := &Server{tb: tb, dir: tb.TempDir()}
	startOnFreePorts(tb, s, "start", func() {})
	tb.Cleanup(s.Stop)
	return s
}

var shared struct {
	once sync.Once
	srv  *Server
	dir  string
	err  error
}

// Shared returns the package's one shared server, starting it on first use.
// It lives until Main's tests end, so tests using it must call Main from
// TestMain and use unique key prefixes (Prefix). It skips the test when
// redis-server is not installed and fails it when the server cannot start.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	if _, err := os.Stat(Binary); err != nil {
		tb.Skipf("redistest: %s is not installed: %v", Binary, err)
	}
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "redistest-")
		if err != nil {
			shared.err = err
			return
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			shared.err = err
			return
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		shared.dir = dir
		shared.srv = &Server{dir: dir, port: port}
		shared.err = shared.srv.start()
	})
	if shared.err != nil {
		tb.Fatalf("redistest: shared server: %v", shared.err)
	}
	return shared.srv
}

// Main runs the tests of m and then stops the shared server, if one was
// started. Call it from TestMain: os.Exit(redistest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	return code
}

// URL returns the redis:// URL of database 0 of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Addr returns the host:port address of the server.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Stop kills the server and waits for it to exit. Stopping a stopped server
// does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.Kill()
	<-s.exited
	s.proc, s.exited = nil, nil
}

// Restart stops the server and starts a new, empty one on the same port. It
// fails the test when the new server does not come up. Only servers from
// Start may be restarted: restarting the shared one would disturb the other
// tests, so Restart panics for it.
func (s *Server) Restart() {
	if s.tb == nil {
		panic("redistest: Restart of the shared server")
	}
	s.tb.Helper()
	s.Stop()
	var err error
	// The port can stay busy for a moment after the kill: retry a while.
	for i := 0; i < 50; i++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.tb.Fatalf("redistest: restart: %v", err)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logPath := filepath.Join(s.dir, "redis.log")
	_ = os.Remove(logPath)
	args := append(append([]string(nil), s.args...),
		"--port", fmt.Sprint(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", logPath,
	)
	cmd := exec.Command(Binary, append(args, s.extra...)...)
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", Binary, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited: %v; log: %s", waitErr, readLog(logPath))
		default:
		}
		if ping(s.Addr()) == nil {
			s.proc, s.exited = cmd.Process, exited
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server on %s did not answer PING within 10s; log: %s", s.Addr(), readLog(logPath))
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected PING reply %q", line)
	}
	return nil
}

func readLog(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// freePort returns a TCP port that was free a moment ago on 127.0.0.1.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var prefixSeq atomic.Int64

// Prefix returns a key prefix unique to this process and call, derived from
// tb's name, so that tests sharing one server never see each other's keys.
func Prefix(tb testing.TB) string {
	name := strings.NewReplacer("/", ".", " ", "_").Replace(tb.Name())
	return fmt.Sprintf("t%d:%d:%s:", os.Getpid(), prefixSeq.Add(1), name)
}
