package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/aoba-chat/aoba"
	main "github.com/aoba-chat/aoba/cmd/aoba"
)

// ask writes frame on c and returns the reply with id, skipping events.
func ask(t *testing.T, c *websocket.Conn, id, frame string) (string, map[string]any) {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	for {
		f := readAny(t, c)
		if f.ID == id {
			var d map[string]any
			_ = json.Unmarshal(f.Data, &d)
			return f.Type, d
		}
	}
}

// wantRateLimited fails unless the reply is an `error` rate_limited with a
// retry_after of at least one second.
func wantRateLimited(t *testing.T, typ string, d map[string]any) {
	t.Helper()
	if ra, _ := d["retry_after"].(float64); typ != aoba.FrameError || d["code"] != "rate_limited" || ra < 1 {
		t.Fatalf("reply = %s %v, want rate_limited with retry_after", typ, d)
	}
}

// dialOK opens a socket for token and reads its hello.
func (s *server) dialOK(t *testing.T, token string) *websocket.Conn {
	t.Helper()
	c, _, err := s.dial(t, "?token="+token, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	readFrame(t, c, aoba.FrameHello)
	return c
}

// TestTypingLimits: a burst of typing notices reaches the peer once, every
// one is acknowledged, and past AOBA_RATE_STANDARD per minute typing frames
// get rate_limited while messages (another budget) still go.
func TestTypingLimits(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		const budget, burst = 25, 20
		s := start(env{"AOBA_RATE_STANDARD": fmt.Sprint(budget)})
		alice, bob := s.register(t, "alice"), s.register(t, "bob")
		a, b := s.dialOK(t, alice.Token), s.dialOK(t, bob.Token)
		typing := func(id string) string {
			return `{"type":"typing","id":"` + id + `","data":{"to":"` + bob.Name + `","state":"composing"}}`
		}
		t0 := time.Now()
		for i := 0; i < burst; i++ {
			if typ, d := ask(t, a, fmt.Sprint("t", i), typing(fmt.Sprint("t", i))); typ != aoba.FrameAck {
				t.Fatalf("typing %d: %s %v, want ack", i, typ, d)
			}
		}
		elapsed := time.Since(t0)
		// Bob gets one notice per started second of the burst: one when
		// it took less than a second.
		want := 1 + int(elapsed/aoba.TypingInterval)
		got := 0
		for {
			_ = b.SetReadDeadline(time.Now().Add(700 * time.Millisecond))
			_, data, err := b.ReadMessage()
			if err != nil {
				var ne interface{ Timeout() bool }
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatalf("read: %v", err)
				}
				break
			}
			var f aoba.Frame
			_ = json.Unmarshal(data, &f)
			if f.Type == aoba.FrameTyping {
				got++
			}
		}
		if got < 1 || got > want {
			t.Fatalf("bob received %d typing notices for a burst of %d in %v, want 1 (at most %d)", got, burst, elapsed, want)
		}
		for i := burst; i < budget; i++ {
			if typ, d := ask(t, a, "r", typing("r")); typ != aoba.FrameAck {
				t.Fatalf("typing %d within the budget: %s %v", i+1, typ, d)
			}
		}
		typ, d := ask(t, a, "r", typing("r"))
		wantRateLimited(t, typ, d)
		// Typing spends its own budget, not the messages'.
		if typ, d := ask(t, a, "m", `{"type":"message.send","id":"m","data":{"to":"`+bob.Name+`","content":"hi"}}`); typ != aoba.FrameAck {
			t.Fatalf("message.send after the typing budget: %s %v, want ack", typ, d)
		}
	})
}

// TestPresenceSubscribeBudget: presence.subscribe frames and the REST batch
// routes share the user's batch budget.
func TestPresenceSubscribeBudget(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_RATE_BATCH": "3"})
		alice, bob := s.register(t, "alice"), s.register(t, "bob")
		a := s.dialOK(t, alice.Token)
		sub := `{"type":"presence.subscribe","id":"r","data":{"usernames":["` + bob.Name + `"]}}`
		for i := 0; i < 2; i++ {
			if typ, d := ask(t, a, "r", sub); typ != aoba.FrameAck {
				t.Fatalf("subscribe %d: %s %v, want ack", i+1, typ, d)
			}
		}
		s.do(t, "POST", "/api/metadata/users/batch", alice.Token, map[string][]string{"userIds": {bob.ID}}).want(t, 200)
		typ, d := ask(t, a, "r", sub)
		wantRateLimited(t, typ, d)
	})
}

// startWith is startMain with the configuration changed by set after the
// environment is read, for settings that have no variable.
func startWith(t *testing.T, e env, set func(*main.Config)) *server {
	t.Helper()
	loadSpec(t)
	m := main.NewMain()
	logs := &logBuffer{}
	m.LogOutput = logs
	if err := m.ParseEnv(func(k string) string { return e[k] }); err != nil {
		t.Fatalf("ParseEnv: %v", err)
	}
	set(&m.Config)
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &server{m: m, base: "http://" + m.Addr(), logs: logs, hc: &http.Client{Timeout: 30 * time.Second}}
}

// TestWatchedUsersPerUser: the users a user watches are counted across
// their sockets (and, on Redis, pods: see hub's TestRedisWatches); past the
// limit a subscribe gets `invalid` naming the limit, and users watched by
// two sockets count once.
func TestWatchedUsersPerUser(t *testing.T) {
	for _, mode := range []string{"Embedded", "ScaledOut"} {
		t.Run(mode, func(t *testing.T) {
			e := embeddedEnv(t)
			if mode == "ScaledOut" {
				if testing.Short() {
					t.Skip("scaled-out mode skipped in -short")
				}
				e = scaledEnv(t)
			}
			const limit = 3
			s := startWith(t, e, func(c *main.Config) { c.MaxWatchedPerUser = limit })
			alice := s.register(t, "alice")
			var others []*user
			for i := 0; i < limit+1; i++ {
				others = append(others, s.register(t, "w"))
			}
			sub := func(us ...*user) string {
				names := make([]string, len(us))
				for i, u := range us {
					names[i] = `"` + u.Name + `"`
				}
				return `{"type":"presence.subscribe","id":"r","data":{"usernames":[` + strings.Join(names, ",") + `]}}`
			}
			a1, a2 := s.dialOK(t, alice.Token), s.dialOK(t, alice.Token)
			if typ, d := ask(t, a1, "r", sub(others[0], others[1])); typ != aoba.FrameAck {
				t.Fatalf("socket 1: %s %v", typ, d)
			}
			// Watched by socket 1 already: counts once.
			if typ, d := ask(t, a2, "r", sub(others[1], others[2])); typ != aoba.FrameAck {
				t.Fatalf("socket 2: %s %v", typ, d)
			}
			typ, d := ask(t, a2, "r", sub(others[3]))
			if msg, _ := d["message"].(string); typ != aoba.FrameError || d["code"] != "invalid" || !strings.Contains(msg, fmt.Sprint(limit)) {
				t.Fatalf("a 4th user across two sockets: %s %v, want invalid naming %d", typ, d, limit)
			}
			// Closing socket 1 gives back others[0] (others[1] stays
			// watched by socket 2).
			a1.Close()
			deadline := time.Now().Add(10 * time.Second)
			for {
				typ, d := ask(t, a2, "r", sub(others[3]))
				if typ == aoba.FrameAck {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after socket 1 closed: %s %v, want ack", typ, d)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestSocketsPerUser: opening one socket more than
// AOBA_MAX_SOCKETS_PER_USER closes the user's oldest with 4005; the others
// stay open.
func TestSocketsPerUser(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_MAX_SOCKETS_PER_USER": "2"})
		alice := s.register(t, "alice")
		first := s.dialOK(t, alice.Token)
		second := s.dialOK(t, alice.Token)
		third := s.dialOK(t, alice.Token)
		wantClosed(t, first, aoba.CloseTooManySockets)
		for i, c := range []*websocket.Conn{second, third} {
			if typ, d := ask(t, c, "p", `{"type":"ping","id":"p"}`); typ != aoba.FramePong {
				t.Fatalf("socket %d: %s %v, want pong", i+2, typ, d)
			}
		}
	})
}

// wantClosed reads c until it closes and fails unless with code.
func wantClosed(t *testing.T, c *websocket.Conn, code int) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("socket ended with %v, want close %d", err, code)
		}
		return
	}
}

// TestUpgradeBudget: each upgrade spends the client IP's standard budget;
// over it, 429 with Retry-After before the upgrade.
func TestUpgradeBudget(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_RATE_STANDARD": "5"})
		alice := s.register(t, "alice") // register and login: 2 of the IP's 5
		for i := 0; i < 3; i++ {
			s.dialOK(t, alice.Token)
		}
		_, res, err := s.dial(t, "?token="+alice.Token, nil)
		if err == nil || res == nil || res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
			status := 0
			if res != nil {
				status = res.StatusCode
			}
			t.Fatalf("4th upgrade: %v, status %d, want 429 with Retry-After", err, status)
		}
	})
}
