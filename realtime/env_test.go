package realtime_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/auth"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/realtime"
	"github.com/aoba-chat/aoba/sqlitestore"
)

// testEnv is one pod: a real Service on the embedded store, the in-process
// hub, a Node and a Fiber app listening on 127.0.0.1.
type testEnv struct {
	t      testing.TB
	svc    *aoba.Service
	store  aoba.Store
	tokens aoba.TokenAuthority
	node   *realtime.Node
	addr   string
	claims map[string]aoba.Claims // by token
	// writes counts the Write calls on the server's connections (see
	// countingConn).
	writes *atomic.Int64
}

// countingConn counts its Write calls. The node writes a socket's frames
// straight to its connection, so on a TCP connection each call is one
// write system call (more only when the kernel takes part of it at a
// time): the benchmarks report them per frame.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// SyscallConn hands out the connection's file descriptor, as a TCP
// connection does, counting the pinger's own writes on it (see
// countingRawConn).
func (c countingConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("countingConn: no file descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	return countingRawConn{RawConn: raw, writes: c.writes}, nil
}

// countingRawConn counts its Write calls, like countingConn.
type countingRawConn struct {
	syscall.RawConn
	writes *atomic.Int64
}

func (c countingRawConn) Write(f func(fd uintptr) bool) error {
	c.writes.Add(1)
	return c.RawConn.Write(f)
}

// countingListener hands out its connections as countingConns.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, writes: l.writes}, nil
}

// countingLimiter is a fixed-window stand-in for the hub's limiter, enough
// to check that message.send frames are counted and refused.
type countingLimiter struct {
	mu   sync.Mutex
	seen map[string]int
}

func (l *countingLimiter) Allow(_ context.Context, key string, limit int, _ time.Duration) (aoba.RateResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[key] >= limit {
		return aoba.RateResult{Allowed: false, Limit: limit, RetryAfter: 30 * time.Second}, nil
	}
	l.seen[key]++
	return aoba.RateResult{Allowed: true, Limit: limit, Remaining: limit - l.seen[key]}, nil
}

func (l *countingLimiter) Peek(_ context.Context, key string, limit int, _ time.Duration) (aoba.RateResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return aoba.RateResult{Allowed: l.seen[key] < limit, Limit: limit, Remaining: limit - l.seen[key]}, nil
}

// newEnv returns one pod on a fresh embedded store and the in-process hub.
func newEnv(tb testing.TB, cfg realtime.Config) *testEnv {
	tb.Helper()
	store := openStore(tb)
	return newPod(tb, cfg, store, hub.NewMemoryBroker())
}

// openStore opens an embedded store closed when tb ends.
func openStore(tb testing.TB) aoba.Store {
	tb.Helper()
	store, err := sqlitestore.Open(context.Background(), tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	return store
}

// newPod returns one pod on store whose Service and Node use broker, wired
// as the server wires them; the pod closes the broker when tb ends. Pods
// sharing a store and a Redis are a cluster.
func newPod(tb testing.TB, cfg realtime.Config, store aoba.Store, broker aoba.Broker) *testEnv {
	tb.Helper()
	ctx := context.Background()
	tokens, err := auth.NewTokens([]byte(strings.Repeat("k", 32)), time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	hasher, err := auth.NewArgon2id(auth.Argon2Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1})
	if err != nil {
		tb.Fatal(err)
	}
	sessions := hub.NewMemorySessions()
	presence := hub.NewMemoryPresence(hub.PresenceOptions{Grace: 50 * time.Millisecond})
	if cfg.Limiter == nil {
		cfg.Limiter = &countingLimiter{seen: make(map[string]int)}
	}
	svc := aoba.NewService(aoba.ServiceConfig{Store: store, Broker: broker, Presence: presence, Sessions: sessions,
		Tickets: sessions, Tokens: tokens, Hasher: hasher})
	cfg.Broker, cfg.Service, cfg.Presence = broker, svc, presence
	node := realtime.New(cfg)
	broker.RegisterDeliver(node.Deliver)
	presence.RegisterChangeHandler(svc.PresenceChanged)
	e := &testEnv{t: tb, svc: svc, store: store, tokens: tokens, node: node, claims: make(map[string]aoba.Claims),
		writes: new(atomic.Int64)}

	// As api.New does: buffers back to their pools between requests, so
	// that an upgraded socket keeps no read buffer of the HTTP server.
	app := fiber.New(fiber.Config{DisableStartupMessage: true, ReduceMemoryUsage: true})
	app.Use("/ws", func(c *fiber.Ctx) error {
		token := c.Query("token")
		if token == "" {
			token = c.Cookies(aoba.AuthCookie)
		}
		if token == "" {
			return c.Next()
		}
		cl, err := svc.Authenticate(c.UserContext(), token)
		if err != nil {
			return c.Status(http.StatusUnauthorized).SendString("bad token")
		}
		c.Locals(aoba.ClaimsLocal, cl)
		return c.Next()
	})
	app.Get("/ws", node.Handler())
	// As api.New does: the sockets outlive the upgrade handler.
	app.Server().KeepHijackedConns = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = app.Listener(countingListener{Listener: ln, writes: e.writes}) }()
	e.addr = ln.Addr().String()
	tb.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = node.Shutdown(sctx)
		_ = app.ShutdownWithTimeout(2 * time.Second)
		_ = broker.Close()
		_ = presence.Close()
	})
	return e
}

// user registers name and returns a fresh session token and its claims.
func (e *testEnv) user(name string) (string, aoba.Claims) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.svc.Register(ctx, name, "tea-kettle-42"); err != nil && aoba.ErrorCode(err) != aoba.ECONFLICT {
		e.t.Fatal(err)
	}
	return e.login(name)
}

func (e *testEnv) login(name string) (string, aoba.Claims) {
	e.t.Helper()
	token, cl, _, err := e.svc.Login(context.Background(), name, "tea-kettle-42", aoba.Device{})
	if err != nil {
		e.t.Fatal(err)
	}
	return token, cl
}
