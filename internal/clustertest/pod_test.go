package clustertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/internal/mongotest"
)

// binary is the cmd/aoba executable built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "aoba-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "aoba")
	build := exec.Command("go", "build", "-o", binary, "github.com/aoba-chat/aoba/cmd/aoba")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "clustertest: cannot build cmd/aoba:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := mongotest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is what the pods of one test share.
type cluster struct {
	tb       testing.TB
	redisURL string
	mongoURI string
	mongoDB  string
	prefix   string
}

func newCluster(tb testing.TB, redisURL string) *cluster {
	uri, db := mongotest.New(tb)
	return &cluster{tb: tb, redisURL: redisURL, mongoURI: uri, mongoDB: db,
		prefix: "ct" + strings.ToLower(aoba.NewID()[:8]) + ":"}
}

// pod is one running aoba process.
type pod struct {
	tb   testing.TB
	name string
	addr string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start starts a pod and waits until it answers /health.
func (c *cluster) start(name string) *pod {
	tb := c.tb
	tb.Helper()
	p := &pod{tb: tb, name: name, addr: freePort(tb), done: make(chan struct{}),
		log: filepath.Join(tb.TempDir(), name+".log")}
	logf, err := os.Create(p.log)
	if err != nil {
		tb.Fatal(err)
	}
	p.cmd = exec.Command(binary)
	p.cmd.Env = append(os.Environ(),
		"AOBA_ADDR="+p.addr,
		"AOBA_REDIS_URL="+c.redisURL,
		"AOBA_REDIS_PREFIX="+c.prefix,
		"AOBA_MONGO_URI="+c.mongoURI,
		"AOBA_MONGO_DB="+c.mongoDB,
		"AOBA_JWT_SECRET="+strings.Repeat("s", 40),
		"AOBA_ARGON2_MEMORY_KIB=1024",
		"AOBA_ARGON2_ITERATIONS=1",
		"AOBA_RATE_STANDARD=1000000",
		"AOBA_RATE_BATCH=1000000",
		"AOBA_RATE_SEARCH=1000000",
		"AOBA_DATA_DIR="+tb.TempDir(),
		"AOBA_LOG_LEVEL=warn",
		"AOBA_DRAIN_DELAY=0",
		"AOBA_DRAIN_SPREAD=0",
	)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.stop()
		if tb.Failed() {
			b, _ := os.ReadFile(p.log)
			tb.Logf("pod %s log:\n%s", name, tail(b, 4000))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url("/health"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			tb.Fatalf("pod %s exited at start:\n%s", name, tail(b, 4000))
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("pod %s not healthy after 30 s (last: %v)", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func (p *pod) url(path string) string { return "http://" + p.addr + path }

// stop ends the pod with SIGTERM (SIGKILL after 10 s).
func (p *pod) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the pod with SIGKILL: no cleanup at all.
func (p *pod) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// do sends a JSON request and decodes a JSON answer into out (when not
// nil); it returns the status.
func (p *pod) do(method, path, token string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.url(path), r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", raw, err)
		}
	}
	return resp.StatusCode, nil
}

// must is do that fails the test unless the status is want.
func (p *pod) must(want int, method, path, token string, body, out any) {
	p.tb.Helper()
	status, err := p.do(method, path, token, body, out)
	if err != nil || status != want {
		p.tb.Fatalf("%s %s on %s: status %d, err %v; want %d", method, path, p.name, status, err, want)
	}
}

// signup registers name and returns a session token.
func (p *pod) signup(name string) string {
	p.tb.Helper()
	creds := map[string]string{"username": name, "password": "tea-kettle-42"}
	p.must(http.StatusCreated, "POST", "/api/auth/register", "", creds, nil)
	return p.login(name)
}

func (p *pod) login(name string) string {
	p.tb.Helper()
	var out struct {
		Token string `json:"token"`
	}
	p.must(http.StatusOK, "POST", "/api/auth/login", "", map[string]string{"username": name, "password": "tea-kettle-42"}, &out)
	return out.Token
}

// send posts a message through REST and returns it.
func (p *pod) send(token, to, content string) (aoba.MessageView, int, error) {
	var m aoba.MessageView
	status, err := p.do("POST", "/api/messages", token, aoba.SendInput{To: to, Content: content}, &m)
	return m, status, err
}

// history returns the 1:1 conversation with `with` after the id `after`.
func (p *pod) history(token, with, after string) []aoba.MessageView {
	p.tb.Helper()
	var out struct {
		Messages []aoba.MessageView `json:"messages"`
	}
	q := url.Values{"with": {with}, "limit": {"100"}}
	if after != "" {
		q.Set("after", after)
	}
	p.must(http.StatusOK, "GET", "/api/messages?"+q.Encode(), token, nil, &out)
	return out.Messages
}

// client is a WebSocket client of one pod.
type client struct {
	tb testing.TB
	ws *websocket.Conn
}

func (p *pod) dial(token string) *client {
	p.tb.Helper()
	c, err := p.tryDial(token)
	if err != nil {
		p.tb.Fatal(err)
	}
	return c
}

// tryDial opens a socket and proves with a ping round trip that the pod has
// registered it. Unlike dial it may run outside the test goroutine.
func (p *pod) tryDial(token string) (*client, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+p.addr+"/ws?token="+url.QueryEscape(token), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, fmt.Errorf("dial %s: %v (status %d)", p.name, err, status)
	}
	p.tb.Cleanup(func() { _ = ws.Close() })
	c := &client{tb: p.tb, ws: ws}
	if err := ws.WriteJSON(aoba.Frame{Type: "ping", ID: "hello"}); err != nil {
		return nil, err
	}
	for {
		f, err := c.read(5 * time.Second)
		if err != nil {
			return nil, fmt.Errorf("waiting for pong from %s: %v", p.name, err)
		}
		if f.Type == aoba.FramePong {
			return c, nil
		}
	}
}

func (c *client) send(typ, id string, data any) {
	c.tb.Helper()
	var raw json.RawMessage
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			c.tb.Fatal(err)
		}
		raw = b
	}
	if err := c.ws.WriteJSON(aoba.Frame{Type: typ, ID: id, Data: raw}); err != nil {
		c.tb.Fatal(err)
	}
}

// read returns the next frame or the read error.
func (c *client) read(timeout time.Duration) (aoba.Frame, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(timeout))
	var f aoba.Frame
	_, raw, err := c.ws.ReadMessage()
	if err != nil {
		return f, err
	}
	return f, json.Unmarshal(raw, &f)
}

// expect returns the next frame of type typ, skipping frames of other
// types, and fails the test after timeout.
func (c *client) expect(typ string, timeout time.Duration) aoba.Frame {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f, err := c.read(time.Until(deadline))
		if err != nil {
			c.tb.Fatalf("waiting for a %s frame: %v", typ, err)
		}
		if f.Type == typ {
			return f
		}
	}
}

// closeCode reads until the server closes and returns the close code.
func (c *client) closeCode(timeout time.Duration) int {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, err := c.read(time.Until(deadline))
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		c.tb.Fatalf("read: %v, want a close frame", err)
	}
}

func decode[T any](tb testing.TB, f aoba.Frame) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(f.Data, &v); err != nil {
		tb.Fatalf("decode %s %s: %v", f.Type, f.Data, err)
	}
	return v
}
