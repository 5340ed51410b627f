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
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read %s frame: %v", typ, err)
		}
		var f aoba.Frame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %s: %v", data, err)
		}
		if f.Type == typ {
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
