package realtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/realtime"
)

// syncBuffer is a log sink safe for the sockets' goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// allowAll is a rate limiter that never refuses.
type allowAll struct{}

func (allowAll) Allow(context.Context, string, int, time.Duration) (aoba.RateResult, error) {
	return aoba.RateResult{Allowed: true, Limit: 1 << 30, Remaining: 1 << 30}, nil
}

func (a allowAll) Peek(ctx context.Context, key string, limit int, window time.Duration) (aoba.RateResult, error) {
	return a.Allow(ctx, key, limit, window)
}

// syncFrame is sent after each fuzzed frame: its pong says that the
// fuzzed frame has been handled.
var syncFrame = []byte(`{"type":"ping","id":"fuzz-sync"}`)

// FuzzClientFrame writes arbitrary payloads as client frames on a real
// socket of a real Node (embedded store, in-process hub), so that they go
// through the read loop and the frame handler: no handler panics (the
// socket goroutines recover and log panics, so the log is checked), and a
// socket is closed only for the documented reasons (a text frame that is
// not UTF-8: 1007; one over the size limit: 1009).
func FuzzClientFrame(f *testing.F) {
	logs := &syncBuffer{}
	const maxFrame = 4 << 10
	e := newEnv(f, realtime.Config{Logger: slog.New(slog.NewTextHandler(logs, nil)), Limiter: allowAll{}, MaxFrameBytes: maxFrame})
	token, _ := e.user("fuzzer")
	e.user("fuzz_peer")
	for _, s := range []string{
		`{"type":"ping","id":"p1"}`,
		`{"type":"message.send","id":"m1","data":{"to":"fuzz_peer","content":"hi","type":"chat"}}`,
		`{"type":"message.send","id":"m2","data":{"to":"00000000-0000-0000-0000-000000000000","content":"hi","type":"groupchat"}}`,
		`{"type":"typing","data":{"to":"fuzz_peer","type":"chat","state":"composing"}}`,
		`{"type":"presence.subscribe","data":{"usernames":["fuzz_peer","nobody"]}}`,
		`{"type":"presence.subscribe","data":{"userIds":["x"],"usernames":["y"]}}`,
		`{"type":"presence.unsubscribe","data":{"usernames":["FUZZ_PEER"]}}`,
		`{"type":"nope"}`,
		`{"type":"message.send","data":null}`,
		`[]`,
		"",
	} {
		f.Add(true, []byte(s))
	}
	f.Add(true, []byte("{\"type\":\"ping\",\"id\":\"\xff\"}"))
	f.Add(false, []byte{0, 1, 2})
	var ws *websocket.Conn
	f.Cleanup(func() {
		if ws != nil {
			_ = ws.Close()
		}
	})
	f.Fuzz(func(t *testing.T, text bool, payload []byte) {
		if ws == nil {
			c, _, err := e.dialer().Dial("ws://"+e.addr+"/ws?token="+token, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			ws = c
		}
		typ := websocket.BinaryMessage
		if text {
			typ = websocket.TextMessage
		}
		closed := func(err error) {
			t.Helper()
			_ = ws.Close()
			ws = nil
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce) && ce.Code == websocket.CloseInvalidFramePayloadData && text && !utf8.Valid(payload):
			case errors.As(err, &ce) && ce.Code == websocket.CloseMessageTooBig && len(payload) > maxFrame:
			default:
				t.Fatalf("frame %q (text %v) closed the socket: %v", payload, text, err)
			}
		}
		_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := ws.WriteMessage(typ, payload); err != nil {
			t.Fatalf("write: %v", err)
		}
		if err := ws.WriteMessage(websocket.TextMessage, syncFrame); err != nil {
			closed(err)
			return
		}
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				closed(err)
				break
			}
			var fr aoba.Frame
			if json.Unmarshal(data, &fr) == nil && fr.Type == aoba.FramePong && fr.ID == "fuzz-sync" {
				break
			}
		}
		if strings.Contains(logs.String(), "panic") {
			t.Fatalf("frame %q (text %v) made a handler panic: %s", payload, text, logs)
		}
	})
}
