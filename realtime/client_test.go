package realtime_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/realtime"
)

// client is a test WebSocket client.
type client struct {
	t  testing.TB
	ws *websocket.Conn
	// hello is the first frame the socket got, which dial checked.
	hello aoba.Frame
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
	c.hello = c.expect(aoba.FrameHello)
	_ = ws.SetReadDeadline(time.Time{})
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
