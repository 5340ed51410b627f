package main_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/internal/redistest"
)

// liveSocket reads a socket in the background: the contents of the
// `message` frames it receives, then the close code. It sends a ping frame
// every few seconds so that the server never finds it idle.
type liveSocket struct {
	mu     sync.Mutex
	live   []string
	code   int
	closed chan struct{}
}

// watchSocket opens a socket of token on s, reads its hello and starts
// reading it; it returns the hello's sync cursor.
func watchSocket(t *testing.T, s *server, token string) (*liveSocket, string) {
	t.Helper()
	c, _, err := s.dial(t, "?token="+token, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	f := readAny(t, c)
	var hello aoba.Hello
	if f.Type != aoba.FrameHello || json.Unmarshal(f.Data, &hello) != nil || hello.Sync == "" {
		t.Fatalf("first frame %s %s, want hello with a sync cursor", f.Type, f.Data)
	}
	ls := &liveSocket{closed: make(chan struct{})}
	var wmu sync.Mutex
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ls.closed:
				return
			case <-tick.C:
				wmu.Lock()
				_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":"keepalive"}`))
				wmu.Unlock()
			}
		}
	}()
	go func() {
		defer close(ls.closed)
		for {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
			_, data, err := c.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				ls.mu.Lock()
				if errors.As(err, &ce) {
					ls.code = ce.Code
				} else {
					ls.code = -1
				}
				ls.mu.Unlock()
				return
			}
			var f aoba.Frame
			if json.Unmarshal(data, &f) != nil || f.Type != aoba.FrameMessage {
				continue
			}
			var m aoba.MessageView
			if json.Unmarshal(f.Data, &m) == nil {
				ls.mu.Lock()
				ls.live = append(ls.live, m.Content)
				ls.mu.Unlock()
			}
		}
	}()
	return ls, hello.Sync
}

// received returns the contents received live so far.
func (ls *liveSocket) received() []string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return append([]string(nil), ls.live...)
}

// waitClose waits for the socket to close and returns the close code.
func (ls *liveSocket) waitClose(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-ls.closed:
	case <-time.After(timeout):
		t.Fatalf("the socket is still open after %v", timeout)
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.code
}

// health is the body of GET /health.
type health struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// TestRedisOutageDegrades stops the real redis-server of two scaled-out
// pods for 30 s while a user sends messages through one pod to a user with
// a socket on the other: authenticated REST reads and sends keep answering
// 2xx (authentication reads the store, rate limits fall back to each pod,
// logged once), /health says "degraded" and stays 200; when Redis returns
// the socket that missed live deliveries is closed with 4004, and every
// acknowledged message reached it live or is in its sync.
func TestRedisOutageDegrades(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MongoDB and Redis, and stops Redis for 30 s")
	}
	const outage = 30 * time.Second
	rs := redistest.Start(t)
	e := scaledEnv(t)
	e["AOBA_REDIS_URL"] = rs.URL()
	e["AOBA_RATE_STANDARD"] = "10000" // the traffic below, counted per pod during the outage
	a, b := startMain(t, e), startMain(t, e)
	alice, bob := a.register(t, "alice"), a.register(t, "bob")
	sock, since := watchSocket(t, b, alice.Token)
	send := func(content string) {
		t.Helper()
		a.do(t, "POST", "/api/messages", bob.Token, map[string]string{"to": alice.Name, "content": content}).want(t, 201)
	}
	send("before")
	for deadline := time.Now().Add(10 * time.Second); len(sock.received()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the message sent before the outage never arrived live")
		}
		time.Sleep(20 * time.Millisecond)
	}

	rs.Stop()
	acked := []string{"before"}
	sawDegraded := false
	start := time.Now()
	for i := 0; time.Since(start) < outage; i++ {
		content := fmt.Sprintf("during %d", i)
		send(content)
		acked = append(acked, content)
		b.do(t, "GET", "/api/users/me", alice.Token, nil).want(t, 200)
		b.do(t, "GET", "/api/messages?with="+bob.Name, alice.Token, nil).want(t, 200)
		a.do(t, "GET", "/api/conversations", bob.Token, nil).want(t, 200)
		if i%10 == 0 {
			var h health
			a.do(t, "GET", "/health", "", nil).want(t, 200).decode(t, &h)
			if h.Status == "degraded" && strings.HasPrefix(h.Checks["redis"], "degraded") && h.Checks["store"] == "ok" {
				sawDegraded = true
			} else {
				t.Errorf("health during the outage = %+v, want status degraded", h)
			}
		}
		if i == 5 {
			a.login(t, bob.Name, bob.Password) // the login budget falls back too
		}
		time.Sleep(150 * time.Millisecond)
	}
	if !sawDegraded {
		t.Error("health never said degraded")
	}
	rs.Restart()

	// Pod B lost its pub/sub connection: once it is back, it closes the
	// socket that may have missed events with 4004.
	if code := sock.waitClose(t, 30*time.Second); code != aoba.CloseResync {
		t.Fatalf("alice's socket closed with %d, want %d", code, aoba.CloseResync)
	}
	items, _ := b.syncAll(t, alice.Token, since, 100)
	got := map[string]bool{}
	for _, c := range sock.received() {
		got[c] = true
	}
	for _, it := range items {
		got[strings.TrimPrefix(it.name, "msg:")] = true
	}
	missing := 0
	for _, c := range acked {
		if !got[c] {
			missing++
			t.Errorf("acknowledged message %q neither arrived live nor is in sync", c)
		}
	}
	t.Logf("%d messages acknowledged during %v without Redis; %d received live, %d through sync", len(acked)-1, outage, len(sock.received()), len(items))

	for deadline := time.Now().Add(15 * time.Second); ; {
		var h health
		r := a.do(t, "GET", "/health", "", nil)
		r.decode(t, &h)
		if r.Status == 200 && h.Status == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health after Redis returned = %d %+v, want ok", r.Status, h)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// And the pods deliver live across each other again.
	sock2, _ := watchSocket(t, b, alice.Token)
	for deadline, i := time.Now().Add(15*time.Second), 0; len(sock2.received()) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no live delivery across pods after Redis returned")
		}
		send(fmt.Sprintf("after %d", i))
		time.Sleep(200 * time.Millisecond)
	}

	logs := a.logs.String()
	if n := strings.Count(logs, "rate limits fall back to a per-pod limiter"); n != 1 {
		t.Errorf("pod A logged the rate limit fallback %d times, want once", n)
	}
	if n := strings.Count(logs, "Redis unreachable: serving degraded"); n != 1 {
		t.Errorf("pod A logged the outage %d times, want once", n)
	}
	metrics := string(a.do(t, "GET", "/metrics", "", nil).want(t, 200).Body)
	if !strings.Contains(metrics, "aoba_hub_rate_limit_fallbacks_total") || strings.Contains(metrics, "aoba_hub_rate_limit_fallbacks_total 0\n") {
		t.Error("aoba_hub_rate_limit_fallbacks_total did not count the fallbacks")
	}
}
