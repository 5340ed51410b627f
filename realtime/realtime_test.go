package realtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
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
	e := &testEnv{t: tb, svc: svc, store: store, tokens: tokens, node: node, claims: make(map[string]aoba.Claims)}

	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use("/ws", func(c *fiber.Ctx) error {
		token := c.Query("token")
		if token == "" {
			token = c.Cookies(realtime.AuthCookie)
		}
		if token == "" {
			return c.Next()
		}
		cl, err := svc.Authenticate(c.UserContext(), token)
		if err != nil {
			return c.Status(http.StatusUnauthorized).SendString("bad token")
		}
		c.Locals(realtime.ClaimsKey, cl)
		return c.Next()
	})
	app.Get("/ws", node.Handler())
	// As api.New does: the sockets outlive the upgrade handler.
	app.Server().KeepHijackedConns = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
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

// client is a test WebSocket client.
type client struct {
	t  testing.TB
	ws *websocket.Conn
}

func (e *testEnv) dialer() *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
}

// dial opens a socket with token, failing the test on error.
func (e *testEnv) dial(token string) *client {
	e.t.Helper()
	ws, resp, err := e.dialer().Dial("ws://"+e.addr+"/ws?token="+token, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		e.t.Fatalf("dial: %v (status %d)", err, status)
	}
	c := &client{t: e.t, ws: ws}
	e.t.Cleanup(func() { _ = ws.Close() })
	return c
}

// dialStatus attempts an upgrade and returns the HTTP status it got.
func (e *testEnv) dialStatus(query string, h http.Header) int {
	e.t.Helper()
	ws, resp, err := e.dialer().Dial("ws://"+e.addr+"/ws"+query, h)
	if err == nil {
		_ = ws.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		e.t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode
}

func (c *client) send(typ, id string, data any) {
	c.t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.ws.WriteJSON(aoba.Frame{Type: typ, ID: id, Data: raw}); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame, failing the test after 5 s.
func (c *client) next() aoba.Frame {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var f aoba.Frame
	if err := c.ws.ReadJSON(&f); err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

// expect returns the next frame, which must be of type typ.
func (c *client) expect(typ string) aoba.Frame {
	c.t.Helper()
	f := c.next()
	if f.Type != typ {
		c.t.Fatalf("got frame %s %s, want %s", f.Type, f.Data, typ)
	}
	return f
}

// quiet checks that the next frame is the pong of a fresh ping: nothing
// else was queued for this socket before it.
func (c *client) quiet() {
	c.t.Helper()
	c.send(realtime.FramePing, "quiet", nil)
	if f := c.next(); f.Type != aoba.FramePong || f.ID != "quiet" {
		c.t.Fatalf("got frame %s %s, want only the pong", f.Type, f.Data)
	}
}

// closeCode reads until the server closes and returns the close code.
func (c *client) closeCode(timeout time.Duration) int {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		c.t.Fatalf("read: %v, want a close frame", err)
	}
}

func decodeData[T any](t testing.TB, f aoba.Frame) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(f.Data, &v); err != nil {
		t.Fatalf("decode %s data %s: %v", f.Type, f.Data, err)
	}
	return v
}

type errorData struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// use points the clients' failures at t, the running (sub)test.
func use(t testing.TB, cs ...*client) {
	for _, c := range cs {
		c.t = t
	}
}

func TestNode(t *testing.T) {
	e := newEnv(t, realtime.Config{RateStandard: 1000})
	ctx := context.Background()
	aliceTok, alice := e.user("alice")
	bobTok, _ := e.user("bob")
	carolTok, _ := e.user("carol")
	daveTok, _ := e.user("dave")
	g, err := e.svc.CreateGroup(ctx, alice, "team", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"bob", "carol"} {
		if _, err := e.svc.AddMember(ctx, alice, g.Group.ID, m, "member"); err != nil {
			t.Fatal(err)
		}
	}
	a1, a2 := e.dial(aliceTok), e.dial(aliceTok)
	b1, c1, d1 := e.dial(bobTok), e.dial(carolTok), e.dial(daveTok)

	t.Run("PingPong", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		a1.send(realtime.FramePing, "p1", nil)
		if f := a1.expect(aoba.FramePong); f.ID != "p1" {
			t.Fatalf("pong id %q, want p1", f.ID)
		}
	})

	t.Run("MessageSend", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		a1.send(realtime.FrameMessageSend, "m1", aoba.SendInput{To: "bob", Content: "hi bob"})
		ack := a1.expect(aoba.FrameAck)
		if ack.ID != "m1" {
			t.Fatalf("ack id %q, want m1", ack.ID)
		}
		sent := decodeData[aoba.MessageView](t, ack)
		if sent.ID == "" || sent.Content != "hi bob" || sent.From != "alice" || sent.To != "bob" || sent.Status != "sent" {
			t.Fatalf("ack data %+v", sent)
		}
		for name, c := range map[string]*client{"recipient": b1, "sender's other socket": a2} {
			got := decodeData[aoba.MessageView](t, c.expect(aoba.FrameMessage))
			if got.ID != sent.ID || got.Content != "hi bob" {
				t.Fatalf("%s got %+v, want message %s", name, got, sent.ID)
			}
		}
		a1.quiet() // the sending socket got the ack only
		c1.quiet()
	})

	t.Run("GroupMessage", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		b1.send(realtime.FrameMessageSend, "g1", aoba.SendInput{To: g.Group.ID, Content: "hello team", Type: aoba.MessageGroupChat})
		sent := decodeData[aoba.MessageView](t, b1.expect(aoba.FrameAck))
		for name, c := range map[string]*client{"alice 1": a1, "alice 2": a2, "carol": c1} {
			got := decodeData[aoba.MessageView](t, c.expect(aoba.FrameMessage))
			if got.ID != sent.ID || got.Type != aoba.MessageGroupChat || got.To != g.Group.ID {
				t.Fatalf("%s got %+v, want group message %s", name, got, sent.ID)
			}
		}
		b1.quiet()
		d1.quiet()
	})

	t.Run("NonMemberGroup", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		d1.send(realtime.FrameMessageSend, "x", aoba.SendInput{To: g.Group.ID, Content: "let me in", Type: aoba.MessageGroupChat})
		f := d1.expect(aoba.FrameError)
		if got := decodeData[errorData](t, f); f.ID != "x" || got.Error != "Not Found" || got.Message == "" {
			t.Fatalf("error frame %s %+v", f.ID, got)
		}
		a1.quiet()
	})

	t.Run("BadFrames", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		for name, raw := range map[string]string{
			"NotJSON":     `{"type": "ping"`,
			"UnknownType": `{"type": "dance", "id": "u"}`,
			"BadData":     `{"type": "message.send", "id": "b", "data": "nope"}`,
			"EmptyTo":     `{"type": "message.send", "id": "b", "data": {"content": "x"}}`,
		} {
			t.Run(name, func(t *testing.T) {
				use(t, d1)
				if err := d1.ws.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
					t.Fatal(err)
				}
				if got := decodeData[errorData](t, d1.expect(aoba.FrameError)); got.Error != "Bad Request" {
					t.Fatalf("error %+v, want Bad Request", got)
				}
			})
		}
		use(t, d1)
		d1.quiet() // still connected
	})

	t.Run("Typing", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		a1.send(realtime.FrameTyping, "", map[string]string{"to": "dave", "type": "chat", "state": "composing"})
		got := decodeData[aoba.TypingEvent](t, d1.expect(aoba.FrameTyping))
		if got.From != "alice" || got.To != "dave" || got.State != "composing" {
			t.Fatalf("typing %+v", got)
		}
		a1.quiet()
		a2.quiet() // typing does not echo to the typist's sockets
		msgs, _, err := e.svc.History(ctx, alice, aoba.HistoryQuery{With: "dave", Limit: 10})
		if err != nil {
			t.Fatal(err)
		} else if len(msgs) != 0 {
			t.Fatalf("typing stored %d messages", len(msgs))
		}
		a1.send(realtime.FrameTyping, "t2", map[string]string{"to": "dave", "state": "shouting"})
		if got := decodeData[errorData](t, a1.expect(aoba.FrameError)); got.Error != "Bad Request" {
			t.Fatalf("bad state: %+v", got)
		}
	})

	t.Run("Presence", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		_, erin := e.user("erin")
		b1.send(realtime.FramePresenceSub, "s", map[string]any{"usernames": []string{"ERIN", "carol", "nobody"}})
		seen := map[string]aoba.UserPresence{}
		for range 2 {
			p := decodeData[aoba.UserPresence](t, b1.expect(aoba.FramePresence))
			seen[p.Username] = p
		}
		if seen["erin"].Status != aoba.StatusOffline || seen["erin"].LastSeen != nil || seen["erin"].UserID != erin.UserID {
			t.Fatalf("erin presence %+v", seen["erin"])
		}
		if seen["carol"].Status != aoba.StatusOnline {
			t.Fatalf("carol presence %+v", seen["carol"])
		}
		erinTok, _ := e.login("erin")
		er := e.dial(erinTok)
		p := decodeData[aoba.UserPresence](t, b1.expect(aoba.FramePresence))
		if p.Username != "erin" || p.Status != aoba.StatusOnline {
			t.Fatalf("live presence %+v, want erin online", p)
		}
		_ = er.ws.Close()
		p = decodeData[aoba.UserPresence](t, b1.expect(aoba.FramePresence))
		if p.Username != "erin" || p.Status != aoba.StatusOffline || p.LastSeen == nil {
			t.Fatalf("live presence %+v, want erin offline with lastSeen", p)
		}
		b1.send(realtime.FramePresenceUnsub, "", map[string]any{"userIds": []string{erin.UserID}})
		b1.quiet()
		er = e.dial(erinTok)
		er.quiet()
		b1.quiet() // no event after unsubscribing
	})

	t.Run("CloseOrderMatchesSession", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		tok1, s1 := e.login("carol")
		tok2, _ := e.login("carol")
		k1, k2 := e.dial(tok1), e.dial(tok2)
		k1.quiet()
		k2.quiet()
		if err := e.svc.Logout(ctx, s1); err != nil {
			t.Fatal(err)
		}
		if code := k1.closeCode(5 * time.Second); code != aoba.CloseSessionRevoked {
			t.Fatalf("close code %d, want %d", code, aoba.CloseSessionRevoked)
		}
		k2.quiet()
		c1.quiet()
	})

	t.Run("RateLimited", func(t *testing.T) {
		use(t, a1, a2, b1, c1, d1)
		e2 := newEnv(t, realtime.Config{RateStandard: 2})
		tok, _ := e2.user("frank")
		e2.user("gina")
		f := e2.dial(tok)
		for i := range 2 {
			f.send(realtime.FrameMessageSend, fmt.Sprint(i), aoba.SendInput{To: "gina", Content: "x"})
			f.expect(aoba.FrameAck)
		}
		f.send(realtime.FrameMessageSend, "3", aoba.SendInput{To: "gina", Content: "x"})
		ef := f.expect(aoba.FrameError)
		if got := decodeData[errorData](t, ef); ef.ID != "3" || got.Error != "Too Many Requests" {
			t.Fatalf("error frame %s %+v", ef.ID, got)
		}
	})
}
