package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	main "github.com/aoba-chat/aoba/cmd/aoba"
)

func TestBadInput(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_RATE_STANDARD": "100000", "AOBA_RATE_BATCH": "100000"})
		alice := s.register(t, "alice")
		var g createdGroup
		s.do(t, "POST", "/api/groups", alice.Token, map[string]any{"name": "G"}).want(t, 201).decode(t, &g)
		gid := g.Group.ID
		ids101 := make([]string, 101)
		for i := range ids101 {
			ids101[i] = aoba.NewID()
		}
		big := bytes.Repeat([]byte("a"), 2<<20)
		bigJSON := append(append([]byte(`{"username":"`), big...), `","password":"x"}`...)
		tests := []struct {
			name, method, path, token string
			body                      any
			want                      int
		}{
			{"NotJSON", "POST", "/api/auth/register", "", "not json", 400},
			{"JSONArray", "POST", "/api/auth/register", "", "[]", 400},
			{"JSONNull", "POST", "/api/auth/register", "", "null", 400},
			{"EmptyBody", "POST", "/api/auth/login", "", "", 400},
			{"Truncated", "POST", "/api/auth/login", "", `{"username":"a`, 400},
			{"WrongType", "POST", "/api/auth/register", "", `{"username":1,"password":"tea-kettle-42"}`, 400},
			{"NullField", "POST", "/api/auth/register", "", `{"username":null,"password":"tea-kettle-42"}`, 400},
			{"MissingField", "POST", "/api/auth/login", "", `{"username":"alice"}`, 400},
			{"UnknownField", "POST", "/api/auth/register", "", `{"username":"` + newName("u") + `","password":"tea-kettle-42","extra":{"x":1}}`, 400},
			{"UsernameTooShort", "POST", "/api/auth/register", "", `{"username":"ab","password":"tea-kettle-42"}`, 400},
			{"UsernameTooLong", "POST", "/api/auth/register", "", `{"username":"` + strings.Repeat("a", 256) + `","password":"tea-kettle-42"}`, 400},
			{"PasswordTooLong", "POST", "/api/auth/register", "", `{"username":"` + newName("u") + `","password":"` + strings.Repeat("p", 129) + `"}`, 400},
			{"LoginHugePassword", "POST", "/api/auth/login", "", `{"username":"alice","password":"` + strings.Repeat("p", 100000) + `"}`, 401},
			{"InvalidGroupUUID", "GET", "/api/groups/123", alice.Token, nil, 400},
			{"InvalidInvitationUUID", "POST", "/api/invitations/xyz/deny", alice.Token, nil, 400},
			{"UnknownGroup", "GET", "/api/groups/" + aoba.NewID(), alice.Token, nil, 404},
			{"Batch101", "POST", "/api/metadata/users/batch", alice.Token, map[string]any{"userIds": ids101}, 400},
			{"PresenceBatch101", "POST", "/api/presence/id/batch", alice.Token, map[string]any{"userIds": ids101}, 400},
			{"InitialMembers101", "POST", "/api/groups", alice.Token, map[string]any{"name": "x", "initial_members": ids101}, 400},
			{"RoleWrongType", "PUT", "/api/groups/" + gid + "/members/" + alice.Name + "/role", alice.Token, `{"role":true}`, 400},
			{"BadRole", "POST", "/api/groups/" + gid + "/members", alice.Token, `{"username":"x","role":"king"}`, 400},
			{"UnknownRoute", "GET", "/api/nothing-here", "", nil, 404},
			{"WrongMethod", "PATCH", "/api/users/me", alice.Token, nil, 405},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s.do(t, tt.method, tt.path, tt.token, tt.body).want(t, tt.want)
			})
		}
		t.Run("Body2MiB", func(t *testing.T) {
			r := s.postOverTCP(t, "/api/auth/register", bigJSON)
			if r.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413", r.Status)
			}
		})
		t.Run("HugeToken", func(t *testing.T) {
			tok := strings.Repeat("a", 1<<20)
			for _, o := range []opt{withHeader("Authorization", "Bearer "+tok), withCookie(tok)} {
				r := s.rawDo(t, "GET", "/api/users/me", o)
				if r.Status < 400 || r.Status >= 500 {
					t.Fatalf("status %d for a 1 MiB token", r.Status)
				}
			}
			r := s.rawDo(t, "GET", "/api/users/me?token="+tok)
			if r.Status < 400 || r.Status >= 500 {
				t.Fatalf("status %d for a 1 MiB query token", r.Status)
			}
		})
	})
}

// rawDo sends a request whose transport may fail or be cut by the server
// (an oversized header), returning status 431 in that case.
func (s *server) rawDo(t *testing.T, method, path string, opts ...opt) *response {
	req, err := http.NewRequest(method, s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(req)
	}
	res, err := s.hc.Do(req)
	if err != nil {
		t.Logf("request cut by the server: %v", err)
		return &response{Status: http.StatusRequestHeaderFieldsTooLarge}
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	r := &response{Status: res.StatusCode, Header: res.Header, Body: buf.Bytes()}
	checkResponse(t, req, r)
	return r
}

// postOverTCP writes a POST with body on a raw connection while reading the
// response, since the server may answer (and close) before the whole body
// is sent.
func (s *server) postOverTCP(t *testing.T, path string, body []byte) *response {
	conn, err := net.Dial("tcp", s.m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, s.m.Addr(), len(body))
		_, _ = conn.Write(body)
	}()
	req, _ := http.NewRequest("POST", s.base+path, nil)
	res, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	r := &response{Status: res.StatusCode, Header: res.Header, Body: data}
	checkResponse(t, req, r)
	return r
}

func TestConcurrentRegistration(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		name := newName("Frank")
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i, n := range []string{name, strings.ToLower(name)} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = s.do(t, "POST", "/api/auth/register", "", map[string]string{"username": n, "password": "tea-kettle-42"}).Status
			}()
		}
		wg.Wait()
		sort.Ints(statuses)
		if statuses[0] != 201 || statuses[1] != 409 {
			t.Fatalf("statuses = %v, want [201 409]", statuses)
		}
	})
}

func TestRateLimit(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_RATE_SEARCH": "10"})
		alice := s.register(t, "alice")
		bob := s.register(t, "bob")
		var wg sync.WaitGroup
		results := make([]*response, 50)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = s.do(t, "GET", "/api/users?q=ab", alice.Token, nil)
			}()
		}
		wg.Wait()
		ok, refused := 0, 0
		for _, r := range results {
			if r.Header.Get("X-RateLimit-Limit") != "10" || r.Header.Get("X-RateLimit-Remaining") == "" || r.Header.Get("X-RateLimit-Reset") == "" {
				t.Fatalf("rate-limit headers missing: %v", r.Header)
			}
			switch r.Status {
			case 200:
				ok++
			case 429:
				refused++
				if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
					t.Fatalf("Retry-After = %q", r.Header.Get("Retry-After"))
				}
			default:
				t.Fatalf("status %d", r.Status)
			}
		}
		if ok != 10 || refused != 40 {
			t.Fatalf("%d passed and %d refused, want 10 and 40", ok, refused)
		}
		t.Run("PerUser", func(t *testing.T) {
			s.do(t, "GET", "/api/users?q=ab", bob.Token, nil).want(t, 200)
		})
		t.Run("OtherClassesUnaffected", func(t *testing.T) {
			s.do(t, "GET", "/api/users/me", alice.Token, nil).want(t, 200)
		})
		t.Run("Metric", func(t *testing.T) {
			r := s.do(t, "GET", "/metrics", "", nil).want(t, 200)
			if !contains(string(r.Body), `aoba_rate_limit_refusals_total{class="search"} 40`) {
				t.Fatalf("refusal metric missing")
			}
		})
	})
}

func TestRevocationAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MongoDB and Redis")
	}
	e := scaledEnv(t)
	a := startMain(t, e)
	b := startMain(t, e)
	u := a.register(t, "alice")
	b.do(t, "GET", "/api/users/me", u.Token, nil).want(t, 200)
	a.do(t, "POST", "/api/auth/logout", u.Token, nil).want(t, 200)
	b.do(t, "GET", "/api/users/me", u.Token, nil).want(t, 401)

	t.Run("PasswordChange", func(t *testing.T) {
		keep := a.login(t, u.Name, u.Password)
		other := b.login(t, u.Name, u.Password)
		a.do(t, "PUT", "/api/users/me/password", keep, map[string]string{"current_password": u.Password, "new_password": "another password"}).want(t, 200)
		b.do(t, "GET", "/api/users/me", other, nil).want(t, 401)
		b.do(t, "GET", "/api/users/me", keep, nil).want(t, 200)
	})
}

func TestSystemRoutes(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice := s.register(t, "alice")
		t.Run("Health", func(t *testing.T) {
			var h struct {
				Status string            `json:"status"`
				Mode   string            `json:"mode"`
				Checks map[string]string `json:"checks"`
			}
			s.do(t, "GET", "/health", "", nil).want(t, 200).decode(t, &h)
			if h.Status != "ok" || h.Checks["store"] != "ok" || h.Mode == "" {
				t.Fatalf("health = %+v", h)
			}
			if s.m.Config.RedisURL != "" && h.Checks["redis"] != "ok" {
				t.Fatalf("redis check missing: %+v", h)
			}
		})
		t.Run("OpenAPI", func(t *testing.T) {
			r := s.do(t, "GET", "/api/openapi.json", "", nil).want(t, 200)
			if !contains(string(r.Body), `"openapi": "3.0`) {
				t.Fatalf("not an OpenAPI document")
			}
		})
		t.Run("Static", func(t *testing.T) {
			r := s.do(t, "GET", "/", "", nil).want(t, 200)
			if !contains(strings.ToLower(string(r.Body)), "<html") {
				t.Fatalf("/ is not the SPA")
			}
			if csp := r.Header.Get("Content-Security-Policy"); !contains(csp, "default-src 'self'") || !contains(csp, "frame-ancestors 'none'") {
				t.Fatalf("Content-Security-Policy = %q", csp)
			}
			if r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatal("X-Content-Type-Options is not nosniff")
			}
		})
		t.Run("MetricsUseRouteTemplates", func(t *testing.T) {
			s.do(t, "GET", "/api/users/"+alice.Name, alice.Token, nil).want(t, 200)
			r := s.do(t, "GET", "/metrics", "", nil).want(t, 200)
			body := string(r.Body)
			if !contains(body, `route="/api/users/:username"`) || contains(body, alice.Name) {
				t.Fatalf("metrics do not use route templates")
			}
			for _, m := range []string{"aoba_http_request_duration_seconds_bucket", "go_goroutines", "process_cpu_seconds_total"} {
				if !contains(body, m) {
					t.Errorf("metric %s missing", m)
				}
			}
		})
		t.Run("WebSocketAuth", func(t *testing.T) {
			s.do(t, "GET", "/ws", "", nil).want(t, 401)
			s.do(t, "GET", "/ws", "bogus", nil).want(t, 401)
			s.do(t, "GET", "/ws", "", nil, withCookie(alice.Token), withHeader("Origin", "https://evil.example")).want(t, 403)
			r := s.do(t, "GET", "/ws", "", nil, withCookie(alice.Token), withHeader("Origin", s.base))
			if r.Status == 401 || r.Status == 403 {
				t.Fatalf("own origin refused: %d", r.Status)
			}
			r = s.do(t, "GET", "/ws", alice.Token, nil, withHeader("Origin", "https://evil.example"))
			if r.Status == 401 || r.Status == 403 {
				t.Fatalf("bearer upgrade refused by origin: %d", r.Status)
			}
		})
	})
}

func TestRoutesDocumented(t *testing.T) {
	// With the admin token, so that the admin API's routes exist too.
	e := embeddedEnv(t)
	e["AOBA_ADMIN_TOKEN"] = adminToken
	s := startMain(t, e)
	loadSpec(t)
	documented := map[string]bool{}
	for path, item := range spec.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	registered := map[string]bool{}
	for _, r := range s.m.Server().App().GetRoutes(true) {
		if r.Method == http.MethodHead {
			continue
		}
		path := r.Path
		for _, p := range r.Params {
			path = strings.Replace(path, ":"+p, "{"+p+"}", 1)
		}
		registered[r.Method+" "+path] = true
	}
	for k := range registered {
		if !documented[k] {
			t.Errorf("route %s is not in the OpenAPI document", k)
		}
	}
	for k := range documented {
		if !registered[k] {
			t.Errorf("documented %s is not a route", k)
		}
	}
}

func TestConfig(t *testing.T) {
	t.Run("ScaledOutNeedsSecret", func(t *testing.T) {
		m := main.NewMain()
		m.LogOutput = &logBuffer{}
		if err := m.ParseEnv(func(k string) string {
			return map[string]string{"AOBA_ADDR": "127.0.0.1:0", "AOBA_REDIS_URL": "redis://127.0.0.1:1"}[k]
		}); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(context.Background()); err == nil || !contains(err.Error(), "AOBA_JWT_SECRET") {
			t.Fatalf("Run = %v, want a missing-secret error", err)
		}
		_ = m.Close()
	})
	t.Run("ShortSecret", func(t *testing.T) {
		m := main.NewMain()
		m.LogOutput = &logBuffer{}
		e := embeddedEnv(t)
		e["AOBA_JWT_SECRET"] = "short"
		_ = m.ParseEnv(func(k string) string { return e[k] })
		if err := m.Run(context.Background()); err == nil {
			t.Fatal("Run accepted a short secret")
		}
		_ = m.Close()
	})
	t.Run("BadValues", func(t *testing.T) {
		for _, kv := range [][2]string{{"AOBA_RATE_SEARCH", "x"}, {"AOBA_TOKEN_TTL", "-1h"}, {"AOBA_COOKIE_SECURE", "maybe"}, {"AOBA_BODY_LIMIT", "0"},
			{"AOBA_PING_INTERVAL", "500ms"}, {"AOBA_PING_INTERVAL", "6m"}, {"AOBA_PING_INTERVAL", "25"},
			{"AOBA_WRITE_DELAY", "-1ms"}, {"AOBA_WRITE_DELAY", "1s"}, {"AOBA_WRITE_DELAY", "2"}} {
			if err := main.NewMain().ParseEnv(func(k string) string {
				if k == kv[0] {
					return kv[1]
				}
				return ""
			}); err == nil {
				t.Errorf("%s=%s accepted", kv[0], kv[1])
			}
		}
	})
	t.Run("Pprof", func(t *testing.T) {
		e := embeddedEnv(t)
		e["AOBA_PPROF_ADDR"] = "0.0.0.0:0"
		m := main.NewMain()
		m.LogOutput = &logBuffer{}
		_ = m.ParseEnv(func(k string) string { return e[k] })
		if err := m.Run(context.Background()); err == nil || !contains(err.Error(), "loopback") {
			t.Fatalf("Run with a public pprof address = %v, want a loopback error", err)
		}
		_ = m.Close()

		port := freePort(t)
		e = embeddedEnv(t)
		e["AOBA_PPROF_ADDR"] = "127.0.0.1:" + port
		startMain(t, e)
		res, err := http.Get("http://127.0.0.1:" + port + "/debug/pprof/heap?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || !contains(string(body), "heap profile") {
			t.Fatalf("pprof heap: %d %.80s", res.StatusCode, body)
		}
	})
	t.Run("PingInterval", func(t *testing.T) {
		e := embeddedEnv(t)
		e["AOBA_PING_INTERVAL"] = "1s"
		s := startMain(t, e)
		u := s.register(t, "alice")
		c, _, err := s.dial(t, "?token="+u.Token, nil)
		if err != nil {
			t.Fatal(err)
		}
		var hello aoba.Hello
		if err := json.Unmarshal(readFrame(t, c, aoba.FrameHello).Data, &hello); err != nil || hello.Heartbeat != 1 {
			t.Fatalf("hello heartbeat = %d (%v), want 1", hello.Heartbeat, err)
		}
		pinged := make(chan struct{}, 1)
		c.SetPingHandler(func(string) error {
			select {
			case pinged <- struct{}{}:
			default:
			}
			return nil
		})
		// Pings are handled while reading; nothing else arrives.
		go func() { _, _, _ = c.ReadMessage() }()
		select {
		case <-pinged:
		case <-time.After(5 * time.Second):
			t.Fatal("no ping within 5 s at a 1 s interval")
		}
	})
	t.Run("HeaderLimit", func(t *testing.T) {
		e := embeddedEnv(t)
		e["AOBA_HEADER_LIMIT"] = "4096"
		s := startMain(t, e)
		s.rawDo(t, "GET", "/health", withHeader("X-Pad", strings.Repeat("a", 3000))).want(t, 200)
		if r := s.rawDo(t, "GET", "/health", withHeader("X-Pad", strings.Repeat("a", 5000))); r.Status != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("a 5 KB header under a 4 KB limit: status %d, want 431", r.Status)
		}
	})
	t.Run("EmbeddedSecretPersists", func(t *testing.T) {
		e := embeddedEnv(t)
		a := startMain(t, e)
		u := a.register(t, "alice")
		if err := a.m.Close(); err != nil {
			t.Fatal(err)
		}
		b := startMain(t, e)
		b.do(t, "GET", "/api/users/me", u.Token, nil).want(t, 200)
		if !contains(a.logs.String(), "generated a JWT secret") || contains(b.logs.String(), "generated a JWT secret") {
			t.Fatal("the secret was not generated once and reused")
		}
	})
	t.Run("SecureCookie", func(t *testing.T) {
		e := embeddedEnv(t)
		e["AOBA_COOKIE_SECURE"] = "true"
		s := startMain(t, e)
		u := s.register(t, "alice")
		r := s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": u.Name, "password": u.Password}).want(t, 200)
		if c := findCookie(r, "auth_token"); c == nil || !c.Secure {
			t.Fatalf("cookie not Secure: %+v", c)
		}
	})
}

func TestTrustedProxies(t *testing.T) {
	register := func(s *server, xff string) int {
		body := map[string]string{"username": "x", "password": "tea-kettle-42"}
		return s.do(t, "POST", "/api/auth/register", "", body, withHeader("X-Forwarded-For", xff)).Status
	}
	t.Run("Trusted", func(t *testing.T) {
		e := embeddedEnv(t)
		e["AOBA_RATE_STANDARD"] = "2"
		e["AOBA_TRUSTED_PROXIES"] = "127.0.0.1"
		s := startMain(t, e)
		for i := 0; i < 2; i++ {
			register(s, "203.0.113.1")
		}
		if st := register(s, "203.0.113.1"); st != 429 {
			t.Fatalf("third request from one client: %d, want 429", st)
		}
		if st := register(s, "203.0.113.2"); st != 400 {
			t.Fatalf("another client behind the proxy: %d, want its own budget (400)", st)
		}
	})
	t.Run("Untrusted", func(t *testing.T) {
		e := embeddedEnv(t)
		e["AOBA_RATE_STANDARD"] = "2"
		s := startMain(t, e)
		register(s, "203.0.113.1")
		register(s, "203.0.113.2")
		if st := register(s, "203.0.113.3"); st != 429 {
			t.Fatalf("a forged X-Forwarded-For escaped the limit: %d", st)
		}
	})
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
