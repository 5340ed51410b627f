package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/api"
	main "github.com/aoba-chat/aoba/cmd/aoba"
	"github.com/aoba-chat/aoba/internal/mongotest"
	"github.com/aoba-chat/aoba/internal/redistest"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

func TestMain(m *testing.M) {
	code := redistest.Main(m)
	mongotest.Stop()
	os.Exit(code)
}

// spec and router validate every response the tests receive.
var (
	specOnce sync.Once
	spec     *openapi3.T
	router   routers.Router
	specErr  error
)

func loadSpec(tb testing.TB) {
	tb.Helper()
	specOnce.Do(func() {
		spec, specErr = openapi3.NewLoader().LoadFromData(api.OpenAPI)
		if specErr == nil {
			specErr = spec.Validate(context.Background())
		}
		if specErr == nil {
			router, specErr = legacy.NewRouter(spec)
		}
	})
	if specErr != nil {
		tb.Fatalf("OpenAPI document: %v", specErr)
	}
}

// env is a set of AOBA_* variables for one server.
type env map[string]string

// cheap makes password hashing cheap for tests and binds a free port.
func cheap(e env) env {
	base := env{"AOBA_ADDR": "127.0.0.1:0", "AOBA_ARGON2_MEMORY_KIB": "64", "AOBA_ARGON2_ITERATIONS": "1", "AOBA_LOG_LEVEL": "info"}
	for k, v := range e {
		base[k] = v
	}
	return base
}

func embeddedEnv(t testing.TB) env {
	return cheap(env{"AOBA_DATA_DIR": t.TempDir()})
}

const testSecret = "test-secret-test-secret-test-secret-0123"

// scaledEnv returns the environment of a scaled-out pod on a fresh MongoDB
// database and a fresh Redis key prefix.
func scaledEnv(t testing.TB) env {
	uri, db := mongotest.New(t)
	return cheap(env{
		"AOBA_MONGO_URI": uri, "AOBA_MONGO_DB": db, "AOBA_REDIS_URL": redistest.Shared(t).URL(),
		"AOBA_REDIS_PREFIX": redistest.Prefix(t), "AOBA_JWT_SECRET": testSecret,
	})
}

// logBuffer collects a server's logs, safe for concurrent writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is one running Main driven over its socket.
type server struct {
	m    *main.Main
	base string
	logs *logBuffer
	hc   *http.Client
}

// startMain runs a real Main with e and stops it when the test ends.
func startMain(tb testing.TB, e env) *server {
	tb.Helper()
	loadSpec(tb)
	m := main.NewMain()
	logs := &logBuffer{}
	m.LogOutput = logs
	if err := m.ParseEnv(func(k string) string { return e[k] }); err != nil {
		tb.Fatalf("ParseEnv: %v", err)
	}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		tb.Fatalf("Run: %v", err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return &server{m: m, base: "http://" + m.Addr(), logs: logs, hc: &http.Client{Timeout: 30 * time.Second}}
}

// forEachMode runs fn against a server factory of each mode: embedded
// (SQLite, in-process hub) and scaled-out (MongoDB on FerretDB, Redis).
func forEachMode(t *testing.T, fn func(t *testing.T, start func(extra env) *server)) {
	t.Run("Embedded", func(t *testing.T) {
		fn(t, func(extra env) *server {
			e := embeddedEnv(t)
			for k, v := range extra {
				e[k] = v
			}
			return startMain(t, e)
		})
	})
	t.Run("ScaledOut", func(t *testing.T) {
		if testing.Short() {
			t.Skip("scaled-out mode skipped in -short")
		}
		fn(t, func(extra env) *server {
			e := scaledEnv(t)
			for k, v := range extra {
				e[k] = v
			}
			return startMain(t, e)
		})
	})
}

// response is a received response, already validated against the OpenAPI
// document.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// decode unmarshals the body into v.
func (r *response) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// want fails the test unless the status is status.
func (r *response) want(tb testing.TB, status int) *response {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	return r
}

// opt changes a request before it is sent.
type opt func(*http.Request)

func withHeader(k, v string) opt { return func(r *http.Request) { r.Header.Set(k, v) } }

func withCookie(token string) opt {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: aoba.AuthCookie, Value: token}) }
}

// do sends a request with an optional bearer token and body (a []byte or
// string is sent raw, anything else as JSON), then validates the response.
func (s *server) do(tb testing.TB, method, path, token string, body any, opts ...opt) *response {
	tb.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			tb.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, s.base+path, bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, o := range opts {
		o(req)
	}
	res, err := s.hc.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	r := &response{Status: res.StatusCode, Header: res.Header, Body: data}
	checkResponse(tb, req, r)
	return r
}

// checkResponse asserts the contract's error shape on every error, that no
// request ends in a 500, and, for documented routes, that the response
// matches the OpenAPI document (status included).
func checkResponse(tb testing.TB, req *http.Request, r *response) {
	tb.Helper()
	if r.Status >= 500 && r.Status != http.StatusServiceUnavailable {
		tb.Errorf("%s %s: status %d: %s", req.Method, req.URL.Path, r.Status, r.Body)
	}
	if r.Status >= 400 && req.URL.Path != "/health" {
		var e struct {
			Error   *string `json:"error"`
			Message *string `json:"message"`
		}
		if err := json.Unmarshal(r.Body, &e); err != nil || e.Error == nil || e.Message == nil {
			tb.Errorf("%s %s: error body %q is not {error, message}", req.Method, req.URL.Path, r.Body)
		} else if *e.Error != http.StatusText(r.Status) || *e.Message == "" {
			tb.Errorf("%s %s: error body %q does not match status %d", req.Method, req.URL.Path, r.Body, r.Status)
		}
	}
	if r.Status == http.StatusSwitchingProtocols {
		return
	}
	vreq := req.Clone(context.Background())
	route, params, err := router.FindRoute(vreq)
	if err != nil {
		return // an undocumented path: the 404/405 tests
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route},
		Status:                 r.Status,
		Header:                 r.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	in.SetBodyBytes(r.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		tb.Errorf("%s %s: response %d does not match the OpenAPI document: %v\nbody: %s", req.Method, req.URL.Path, r.Status, err, r.Body)
	}
}

// user is a registered, signed-in account.
type user struct {
	ID, Name, Password, Token string
}

var userSeq atomic.Int64

// newName returns a fresh valid username.
func newName(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, time.Now().UnixNano()%1e9, userSeq.Add(1))
}

// register creates an account and signs it in.
func (s *server) register(tb testing.TB, prefix string) *user {
	tb.Helper()
	u := &user{Name: newName(prefix), Password: "correct horse battery"}
	var out struct {
		ID string `json:"id"`
	}
	s.do(tb, "POST", "/api/auth/register", "", map[string]string{"username": u.Name, "password": u.Password}).want(tb, 201).decode(tb, &out)
	u.ID = out.ID
	u.Token = s.login(tb, u.Name, u.Password)
	return u
}

// login returns a new session token.
func (s *server) login(tb testing.TB, name, password string) string {
	tb.Helper()
	var out struct {
		Token string `json:"token"`
	}
	s.do(tb, "POST", "/api/auth/login", "", map[string]string{"username": name, "password": password}).want(tb, 200).decode(tb, &out)
	if out.Token == "" {
		tb.Fatal("login returned no token")
	}
	return out.Token
}

// newGroup creates a group named name owned by the holder of token and
// returns its id.
func (s *server) newGroup(tb testing.TB, token, name string) string {
	tb.Helper()
	var g struct {
		Group struct {
			ID string `json:"group_id"`
		} `json:"group"`
	}
	s.do(tb, "POST", "/api/groups", token, map[string]any{"name": name}).want(tb, 201).decode(tb, &g)
	return g.Group.ID
}

// errorMessage returns the message of an error body.
func errorMessage(r *response) string {
	var e api.ErrorResponse
	_ = json.Unmarshal(r.Body, &e)
	return e.Message
}

// contains reports whether s holds sub, for log assertions.
func contains(s, sub string) bool { return strings.Contains(s, sub) }
