package main_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/fasthttp/websocket"
)

// dial opens the WebSocket channel with the given header.
func (s *server) dial(t *testing.T, query string, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	url := "ws" + strings.TrimPrefix(s.base, "http") + "/ws" + query
	c, res, err := websocket.DefaultDialer.Dial(url, h)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, res, err
}

// readFrame reads frames until one of type typ arrives.
func readFrame(t *testing.T, c *websocket.Conn, typ string) aoba.Frame {
	t.Helper()
	for {
		if f := readAny(t, c); f.Type == typ {
			return f
		}
	}
}

func TestWebSocket(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice := s.register(t, "alice")
		bob := s.register(t, "bob")

		t.Run("Refused", func(t *testing.T) {
			if _, res, err := s.dial(t, "", nil); err == nil || res == nil || res.StatusCode != 401 {
				t.Fatalf("no token: %v", err)
			}
			h := http.Header{"Cookie": {"auth_token=" + alice.Token}, "Origin": {"https://evil.example"}}
			if _, res, err := s.dial(t, "", h); err == nil || res == nil || res.StatusCode != 403 {
				t.Fatalf("foreign origin with cookie: %v", err)
			}
		})
		t.Run("MessageDelivered", func(t *testing.T) {
			c, _, err := s.dial(t, "?token="+bob.Token, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":"p1"}`)); err != nil {
				t.Fatal(err)
			}
			if f := readFrame(t, c, aoba.FramePong); f.ID != "p1" {
				t.Fatalf("pong id = %q", f.ID)
			}
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": "over the socket"}).want(t, 201)
			var m aoba.MessageView
			if err := json.Unmarshal(readFrame(t, c, aoba.FrameMessage).Data, &m); err != nil || m.Content != "over the socket" {
				t.Fatalf("message = %+v, %v", m, err)
			}
			if strings.Contains(s.logs.String(), bob.Token) {
				t.Fatal("the query token was logged")
			}
		})
		t.Run("OwnOriginWithCookie", func(t *testing.T) {
			h := http.Header{"Cookie": {"auth_token=" + alice.Token}, "Origin": {s.base}}
			if _, _, err := s.dial(t, "", h); err != nil {
				t.Fatalf("dial: %v", err)
			}
		})
		t.Run("ShutdownClosesWith1001", func(t *testing.T) {
			c, _, err := s.dial(t, "", http.Header{"Authorization": {"Bearer " + alice.Token}})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			done := make(chan error, 1)
			go func() { done <- s.m.Close() }()
			wantClose(t, c, aoba.CloseGoingAway)
			if err := <-done; err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	})
}

// TestFrameReplies: every client frame with an id gets exactly one reply
// with that id (pong, ack or error), errors carry a machine code, and a
// rate_limited error says when to retry.
func TestFrameReplies(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_RATE_STANDARD": "30"})
		alice := s.register(t, "alice")
		bob := s.register(t, "bob")
		c, _, err := s.dial(t, "?token="+alice.Token, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		type reply struct {
			typ  string
			data map[string]any
		}
		ask := func(t *testing.T, frame string) reply {
			t.Helper()
			if err := c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
				t.Fatal(err)
			}
			// Skip events (presence) until the reply to id "r".
			for {
				f := readAny(t, c)
				if f.ID == "r" {
					var d map[string]any
					_ = json.Unmarshal(f.Data, &d)
					return reply{f.Type, d}
				}
			}
		}
		for name, tc := range map[string]struct {
			frame, typ, code string
		}{
			"Ping":               {`{"type":"ping","id":"r"}`, aoba.FramePong, ""},
			"Typing":             {`{"type":"typing","id":"r","data":{"to":"` + bob.Name + `","state":"composing"}}`, aoba.FrameAck, ""},
			"TypingBadState":     {`{"type":"typing","id":"r","data":{"to":"` + bob.Name + `","state":"shouting"}}`, aoba.FrameError, "invalid"},
			"PresenceSubscribe":  {`{"type":"presence.subscribe","id":"r","data":{"usernames":["` + bob.Name + `"]}}`, aoba.FrameAck, ""},
			"PresenceUnsub":      {`{"type":"presence.unsubscribe","id":"r","data":{"usernames":["` + bob.Name + `"]}}`, aoba.FrameAck, ""},
			"Send":               {`{"type":"message.send","id":"r","data":{"to":"` + bob.Name + `","content":"hi"}}`, aoba.FrameAck, ""},
			"SendUnknownUser":    {`{"type":"message.send","id":"r","data":{"to":"nobody_at_all","content":"hi"}}`, aoba.FrameError, "not_found"},
			"UnknownType":        {`{"type":"teleport","id":"r"}`, aoba.FrameError, "invalid"},
			"MalformedFrameData": {`{"type":"message.send","id":"r","data":"nope"}`, aoba.FrameError, "invalid"},
		} {
			t.Run(name, func(t *testing.T) {
				r := ask(t, tc.frame)
				if r.typ != tc.typ || (tc.code != "" && r.data["code"] != tc.code) {
					t.Fatalf("reply = %s %v, want %s with code %q", r.typ, r.data, tc.typ, tc.code)
				}
			})
		}
		t.Run("PresenceUnknownReported", func(t *testing.T) {
			r := ask(t, `{"type":"presence.subscribe","id":"r","data":{"usernames":["`+bob.Name+`","nobody_at_all"]}}`)
			if u, _ := r.data["unknown"].([]any); r.typ != aoba.FrameAck || len(u) != 1 || u[0] != "nobody_at_all" {
				t.Fatalf("reply = %s %v, want unknown [nobody_at_all]", r.typ, r.data)
			}
		})
		t.Run("RateLimited", func(t *testing.T) {
			for i := 0; ; i++ {
				r := ask(t, `{"type":"message.send","id":"r","data":{"to":"`+bob.Name+`","content":"flood"}}`)
				if r.typ == aoba.FrameAck {
					if i > 40 {
						t.Fatal("no refusal after 40 sends with a budget of 30")
					}
					continue
				}
				if ra, _ := r.data["retry_after"].(float64); r.typ != aoba.FrameError || r.data["code"] != "rate_limited" || ra < 1 {
					t.Fatalf("refusal = %s %v, want rate_limited with retry_after", r.typ, r.data)
				}
				return
			}
		})
	})
}

// readAny reads the next frame of any type.
func readAny(t *testing.T, c *websocket.Conn) aoba.Frame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	var f aoba.Frame
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("frame %s: %v", data, err)
	}
	return f
}
