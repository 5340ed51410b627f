package main_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	main "github.com/aoba-chat/aoba/cmd/aoba"
	"github.com/aoba-chat/aoba/internal/mongotest"
	"github.com/aoba-chat/aoba/internal/redistest"
)

// readiness is the body of GET /health/ready.
type readiness struct {
	Status   string            `json:"status"`
	Checks   map[string]string `json:"checks"`
	Warnings []string          `json:"warnings"`
	Error    string            `json:"error"`
	Message  string            `json:"message"`
}

// ready returns the status code and body of GET /health/ready.
func (s *server) ready(t *testing.T) (int, readiness) {
	t.Helper()
	var r readiness
	res := s.do(t, "GET", "/health/ready", "", nil)
	res.decode(t, &r)
	return res.Status, r
}

// TestProbes: live and ready answer 200 on a working pod; Drain turns ready
// to 503 (draining) at once, live and /health stay 200, open sockets close
// with 1001 and new upgrades are refused.
func TestProbes(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_DRAIN_DELAY": "0", "AOBA_DRAIN_SPREAD": "0s"})
		alice := s.register(t, "alice")
		var live struct {
			Status string `json:"status"`
		}
		s.do(t, "GET", "/health/live", "", nil).want(t, 200).decode(t, &live)
		if live.Status != "ok" {
			t.Fatalf("live = %+v", live)
		}
		st, r := s.ready(t)
		if st != 200 || r.Status != "ok" || r.Checks["store"] != "ok" || len(r.Warnings) != 0 {
			t.Fatalf("ready = %d %+v, want 200 ok", st, r)
		}
		if s.m.Config.RedisURL != "" && r.Checks["redis"] != "ok" {
			t.Fatalf("ready checks = %v, want redis ok", r.Checks)
		}
		if contains(s.logs.String(), `"route":"/health/ready"`) {
			t.Fatal("a probe was logged at info level")
		}
		c, _, err := s.dial(t, "?token="+alice.Token, nil)
		if err != nil {
			t.Fatal(err)
		}
		readFrame(t, c, aoba.FrameHello)

		s.m.Drain(context.Background())
		st, r = s.ready(t)
		if st != 503 || r.Status != "draining" || r.Error != "Service Unavailable" || r.Message == "" {
			t.Fatalf("ready while draining = %d %+v, want 503 draining", st, r)
		}
		s.do(t, "GET", "/health/live", "", nil).want(t, 200)
		if h := s.health(t); h.Status != "ok" {
			t.Fatalf("/health while draining = %+v, want its contract: ok while every dependency answers", h)
		}
		wantClose(t, c, aoba.CloseGoingAway)
		if _, res, err := s.dial(t, "?token="+alice.Token, nil); err == nil || res == nil || res.StatusCode != 503 {
			t.Fatalf("upgrade while draining: %v, want 503", err)
		}
		if !contains(s.logs.String(), "draining: /health/ready answers 503") {
			t.Fatal("no draining log line")
		}
	})
}

// TestReadyDegradedWithoutRedis: with the pod's redis-server stopped, ready
// and /health stay 200 ("degraded", the redis check failing: the pod
// serves without Redis) and live 200; the failed pings are counted as
// Redis errors.
func TestReadyDegradedWithoutRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MongoDB and Redis")
	}
	rs := redistest.Start(t)
	e := scaledEnv(t)
	e["AOBA_REDIS_URL"] = rs.URL()
	s := startMain(t, e)
	rs.Stop()
	st, r := s.ready(t)
	if st != 200 || r.Status != "degraded" || r.Checks["redis"] == "ok" || r.Checks["store"] != "ok" {
		t.Fatalf("ready without Redis = %d %+v, want 200 degraded", st, r)
	}
	s.do(t, "GET", "/health/live", "", nil).want(t, 200)
	var h struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	s.do(t, "GET", "/health", "", nil).want(t, 200).decode(t, &h)
	if h.Status != "degraded" || h.Checks["redis"] == "ok" || h.Checks["store"] != "ok" {
		t.Fatalf("/health without Redis = %+v, want degraded", h)
	}
	if got := metricValue(t, s, `aoba_redis_command_errors_total{code="unavailable",command="ping"}`); got < 1 {
		t.Fatalf("Redis ping errors = %v, want at least 1", got)
	}
}

// metricValue returns the value of the sample named exactly series (name
// and labels as /metrics writes them) on s, or 0 when there is none.
func metricValue(t *testing.T, s *server, series string) float64 {
	t.Helper()
	body := string(s.do(t, "GET", "/metrics", "", nil).want(t, 200).Body)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// tcpProxy forwards connections from its own loopback port to a target
// while up; while down it closes every connection it accepts at once, so
// that a test can make a real dependency unreachable and reachable again.
// It keeps its port all along: a freed port may be taken meanwhile (by a
// client dialing it, which can connect to itself).
type tcpProxy struct {
	addr   string
	target string

	mu    sync.Mutex
	isUp  bool
	conns map[net.Conn]bool
}

// newTCPProxy returns a proxy to target, down; it stops when t ends.
func newTCPProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: ln.Addr().String(), target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() {
		ln.Close()
		p.down()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			up := p.isUp
			p.mu.Unlock()
			if !up {
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[u] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

// up starts forwarding.
func (p *tcpProxy) up() {
	p.mu.Lock()
	p.isUp = true
	p.mu.Unlock()
}

// down stops forwarding and cuts every forwarded connection.
func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isUp = false
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// runMain starts a Main with e in the background, as startMain does, and
// returns its logs and the channel of Run's result; the Main is closed when
// the test ends.
func runMain(t *testing.T, e env) (*main.Main, *logBuffer, chan error) {
	t.Helper()
	loadSpec(t)
	m := main.NewMain()
	logs := &logBuffer{}
	m.LogOutput = logs
	if err := m.ParseEnv(func(k string) string { return e[k] }); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()
	t.Cleanup(func() { _ = m.Close() })
	return m, logs, done
}

// TestStartRetry: a pod whose MongoDB or Redis is not reachable yet retries
// with logged backoff and starts once it is; past AOBA_START_TIMEOUT it
// fails naming the dependency and the setting.
func TestStartRetry(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MongoDB and Redis")
	}
	waitRun := func(t *testing.T, done chan error, logs *logBuffer) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(60 * time.Second):
			t.Fatalf("Run did not return within 60 s:\n%s", logs)
			return nil
		}
	}
	t.Run("Redis", func(t *testing.T) {
		rs := redistest.Start(t)
		rs.Stop()
		e := scaledEnv(t)
		e["AOBA_REDIS_URL"] = rs.URL()
		m, logs, done := runMain(t, e)
		for !contains(logs.String(), "Redis unreachable at start, retrying") {
			select {
			case err := <-done:
				t.Fatalf("Run returned %v before retrying:\n%s", err, logs)
			case <-time.After(20 * time.Millisecond):
			}
		}
		rs.Restart()
		if err := waitRun(t, done, logs); err != nil {
			t.Fatalf("Run after Redis came back: %v", err)
		}
		s := &server{m: m, base: "http://" + m.Addr(), logs: logs, hc: &http.Client{Timeout: 10 * time.Second}}
		s.register(t, "alice")
		if !contains(logs.String(), "Redis reachable") {
			t.Fatalf("no log line of the recovery:\n%s", logs)
		}
	})
	t.Run("MongoDB", func(t *testing.T) {
		uri, db := mongotest.New(t)
		target := strings.TrimPrefix(uri, "mongodb://")
		target, _, _ = strings.Cut(target, "/")
		proxy := newTCPProxy(t, target)
		e := cheap(env{"AOBA_MONGO_URI": "mongodb://" + proxy.addr + "/", "AOBA_MONGO_DB": db, "AOBA_JWT_SECRET": testSecret})
		m, logs, done := runMain(t, e)
		for !contains(logs.String(), "MongoDB unreachable at start, retrying") {
			select {
			case err := <-done:
				t.Fatalf("Run returned %v before retrying:\n%s", err, logs)
			case <-time.After(20 * time.Millisecond):
			}
		}
		proxy.up()
		if err := waitRun(t, done, logs); err != nil {
			t.Fatalf("Run after MongoDB came back: %v", err)
		}
		s := &server{m: m, base: "http://" + m.Addr(), logs: logs, hc: &http.Client{Timeout: 10 * time.Second}}
		s.register(t, "alice")
	})
	t.Run("Timeout", func(t *testing.T) {
		rs := redistest.Start(t)
		rs.Stop()
		e := scaledEnv(t)
		e["AOBA_REDIS_URL"] = rs.URL()
		e["AOBA_START_TIMEOUT"] = "1s"
		began := time.Now()
		_, logs, done := runMain(t, e)
		err := waitRun(t, done, logs)
		if err == nil || !contains(err.Error(), "Redis") || !contains(err.Error(), "AOBA_START_TIMEOUT") {
			t.Fatalf("Run = %v, want an error naming Redis and AOBA_START_TIMEOUT", err)
		}
		if took := time.Since(began); took > 15*time.Second {
			t.Fatalf("Run gave up after %v with a 1 s budget", took)
		}
	})
	t.Run("BadURINotRetried", func(t *testing.T) {
		e := cheap(env{"AOBA_MONGO_URI": "mongodb://%zz", "AOBA_MONGO_DB": "x", "AOBA_JWT_SECRET": testSecret})
		_, logs, done := runMain(t, e)
		if err := waitRun(t, done, logs); err == nil || contains(logs.String(), "retrying") {
			t.Fatalf("Run = %v with a malformed URI, want an error at once; logs:\n%s", err, logs)
		}
	})
}

// TestSinglePodWarning: MongoDB without Redis is said loudly, at start and
// in /health and /health/ready; the supported modes say nothing.
func TestSinglePodWarning(t *testing.T) {
	const consequence = "never delivered live to sockets on another"
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		if h := s.healthWarnings(t); len(h) != 0 || contains(s.logs.String(), consequence) {
			t.Fatalf("warnings %v in a supported mode", h)
		}
	})
	t.Run("MongoWithoutRedis", func(t *testing.T) {
		if testing.Short() {
			t.Skip("needs MongoDB")
		}
		uri, db := mongotest.New(t)
		s := startMain(t, cheap(env{"AOBA_MONGO_URI": uri, "AOBA_MONGO_DB": db, "AOBA_JWT_SECRET": testSecret}))
		var warned bool
		for _, line := range strings.Split(s.logs.String(), "\n") {
			var rec struct {
				Level, Msg string
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "WARN" && contains(rec.Msg, consequence) && contains(rec.Msg, "AOBA_REDIS_URL") {
				warned = true
			}
		}
		if !warned {
			t.Fatalf("no start-up warning naming the consequence:\n%s", s.logs)
		}
		if h := s.healthWarnings(t); len(h) != 1 || !contains(h[0], consequence) {
			t.Fatalf("/health warnings = %v", h)
		}
		if h := s.health(t); h.Hub != "memory" || h.Store != "mongodb" || h.Status != "ok" {
			t.Fatalf("/health = %+v, want its contract fields unchanged", h)
		}
		if st, r := s.ready(t); st != 200 || len(r.Warnings) != 1 {
			t.Fatalf("ready = %d %+v, want 200 with the warning", st, r)
		}
	})
}

// healthWarnings returns the warnings of /health.
func (s *server) healthWarnings(t *testing.T) []string {
	t.Helper()
	var h struct {
		Warnings []string `json:"warnings"`
	}
	s.do(t, "GET", "/health", "", nil).want(t, 200).decode(t, &h)
	return h.Warnings
}

// TestRequestID: every response has an X-Request-Id, the one of the
// request's log line; a trusted proxy's sane id is kept, a client's never.
// The log line's duration is in milliseconds.
func TestRequestID(t *testing.T) {
	// logged returns the request log line of id.
	logged := func(t *testing.T, s *server, id string) (rec struct {
		Route    string  `json:"route"`
		Duration float64 `json:"duration"`
	}) {
		t.Helper()
		for _, line := range strings.Split(s.logs.String(), "\n") {
			if contains(line, `"msg":"request"`) && contains(line, `"request_id":"`+id+`"`) {
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatal(err)
				}
				return rec
			}
		}
		t.Fatalf("no request log line with request_id %s:\n%s", id, s.logs)
		return rec
	}
	t.Run("Generated", func(t *testing.T) {
		// Expensive hashing, so that a login takes long enough to tell
		// milliseconds from seconds.
		e := embeddedEnv(t)
		e["AOBA_ARGON2_MEMORY_KIB"] = "65536"
		e["AOBA_ARGON2_ITERATIONS"] = "3"
		s := startMain(t, e)
		u := &user{Name: newName("alice"), Password: "correct horse battery"}
		s.do(t, "POST", "/api/auth/register", "", map[string]string{"username": u.Name, "password": u.Password}).want(t, 201)
		began := time.Now()
		r := s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": u.Name, "password": u.Password},
			withHeader("X-Request-Id", "forged-by-client")).want(t, 200)
		took := time.Since(began)
		id := r.Header.Get("X-Request-Id")
		if !aoba.IsValidID(id) {
			t.Fatalf("X-Request-Id = %q from a client that is no proxy, want a new UUID", id)
		}
		rec := logged(t, s, id)
		if ms := float64(took.Microseconds()) / 1000; rec.Route != "/api/auth/login" || rec.Duration < 5 || rec.Duration > ms {
			t.Fatalf("log line %+v: want route /api/auth/login and a duration in milliseconds (client saw %.1f ms)", rec, ms)
		}
		if other := s.do(t, "GET", "/health/live", "", nil).Header.Get("X-Request-Id"); other == id || !aoba.IsValidID(other) {
			t.Fatalf("second request id %q", other)
		}
		// Errors carry it too.
		if r := s.do(t, "GET", "/api/users/me", "", nil).want(t, 401); !aoba.IsValidID(r.Header.Get("X-Request-Id")) {
			t.Fatalf("401 without a request id: %v", r.Header)
		}
	})
	t.Run("FromTrustedProxy", func(t *testing.T) {
		e := embeddedEnv(t)
		e["AOBA_TRUSTED_PROXIES"] = "127.0.0.1"
		s := startMain(t, e)
		for id, kept := range map[string]bool{
			"9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c": true,
			"Root=1-5759e988-bd862e3fe1be46a9": true,
			"has space":                        false,
			`quote"`:                           false,
			strings.Repeat("a", 129):           false,
		} {
			got := s.do(t, "GET", "/health", "", nil, withHeader("X-Request-Id", id)).want(t, 200).Header.Get("X-Request-Id")
			if kept && got != id || !kept && !aoba.IsValidID(got) {
				t.Errorf("proxy's id %q: response id %q (kept: want %v)", id, got, kept)
			}
			if kept {
				logged(t, s, id)
			}
		}
	})
}

// TestPagerMetrics: messages stored are counted by type and store
// operations timed, in both modes; Redis commands too when scaled out.
func TestPagerMetrics(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice, bob := s.register(t, "alice"), s.register(t, "bob")
		gid := s.newGroup(t, alice.Token, "pager")
		before := map[string]float64{}
		series := []string{
			`aoba_messages_stored_total{type="chat"}`, `aoba_messages_stored_total{type="groupchat"}`,
			`aoba_store_operation_duration_seconds_count{operation="CreateMessage"}`,
		}
		for _, name := range series {
			before[name] = metricValue(t, s, name)
		}
		for range 2 {
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": "hi", "type": "chat"}).want(t, 201)
		}
		s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": gid, "content": "all", "type": "groupchat"}).want(t, 201)
		// A resent client_id stores nothing.
		for range 2 {
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": "once", "client_id": "pager-1"})
		}
		want := []float64{3, 1, 5}
		for i, name := range series {
			if got := metricValue(t, s, name) - before[name]; got != want[i] {
				t.Errorf("%s grew by %v, want %v", name, got, want[i])
			}
		}
		// The embedded store's committer: four messages stored, in
		// transactions each timed by stage once synced (the observer runs
		// after the callers are answered); none on MongoDB.
		stored := `aoba_store_message_commit_messages_sum`
		synced := `aoba_store_message_commit_duration_seconds_count{stage="sync"}`
		if s.m.Config.MongoURI == "" {
			deadline := time.Now().Add(5 * time.Second)
			for metricValue(t, s, stored) < 4 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := metricValue(t, s, stored); got != 4 {
				t.Errorf("%s = %v, want 4", stored, got)
			}
			if got := metricValue(t, s, synced); got < 1 {
				t.Errorf("%s = %v, want at least 1", synced, got)
			}
		} else if body := string(s.do(t, "GET", "/metrics", "", nil).want(t, 200).Body); strings.Contains(body, "aoba_store_message_commit") {
			t.Errorf("committer metrics on MongoDB")
		}
		if s.m.Config.RedisURL != "" {
			if got := metricValue(t, s, `aoba_redis_command_duration_seconds_count{command="pipeline:publish"}`); got < 1 {
				t.Errorf("Redis publish timed %v times, want at least 1", got)
			}
		}
	})
	t.Run("StoreErrors", func(t *testing.T) {
		if testing.Short() {
			t.Skip("needs MongoDB")
		}
		uri, db := mongotest.New(t)
		target, _, _ := strings.Cut(strings.TrimPrefix(uri, "mongodb://"), "/")
		proxy := newTCPProxy(t, target)
		proxy.up()
		s := startMain(t, cheap(env{"AOBA_MONGO_URI": "mongodb://" + proxy.addr + "/", "AOBA_MONGO_DB": db, "AOBA_JWT_SECRET": testSecret}))
		u := s.register(t, "alice")
		proxy.down()
		s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": u.Name, "password": u.Password}).want(t, 503)
		if got := metricValue(t, s, `aoba_store_operation_errors_total{code="unavailable",operation="FindUserByUsername"}`); got != 1 {
			t.Fatalf("store errors of FindUserByUsername = %v, want 1", got)
		}
	})
}

// TestConfigOps: the drain and start settings take durations (0 allowed
// for the drain), and a malformed one stops the server naming it.
func TestConfigOps(t *testing.T) {
	parse := func(e env) (*main.Main, error) {
		m := main.NewMain()
		return m, m.ParseEnv(func(k string) string { return e[k] })
	}
	m, err := parse(env{"AOBA_DRAIN_DELAY": "0", "AOBA_DRAIN_SPREAD": "1m30s", "AOBA_START_TIMEOUT": "2m"})
	if err != nil || m.Config.DrainDelay != 0 || m.Config.DrainSpread != 90*time.Second || m.Config.StartTimeout != 2*time.Minute {
		t.Fatalf("ParseEnv = %v, config %+v", err, m.Config)
	}
	if m, _ := parse(nil); m.Config.DrainDelay != main.DefaultDrainDelay || m.Config.DrainSpread != main.DefaultDrainSpread || m.Config.StartTimeout != main.DefaultStartTimeout {
		t.Fatalf("defaults = %+v", m.Config)
	}
	for _, kv := range [][2]string{
		{"AOBA_DRAIN_DELAY", "-1s"}, {"AOBA_DRAIN_SPREAD", "soon"}, {"AOBA_START_TIMEOUT", "0"}, {"AOBA_START_TIMEOUT", "10"},
	} {
		if _, err := parse(env{kv[0]: kv[1]}); err == nil || !contains(err.Error(), kv[0]) {
			t.Errorf("%s=%s: %v, want an error naming it", kv[0], kv[1], err)
		}
	}
}

// TestNginxRequestID: behind the shipped nginx configuration, the request
// id of a response is nginx's $request_id, in nginx's access log and in the
// server's log line alike; what the client sent is replaced.
func TestNginxRequestID(t *testing.T) {
	s := startMain(t, cheap(env{"AOBA_DATA_DIR": t.TempDir(), "AOBA_TRUSTED_PROXIES": "127.0.0.1/32"}))
	live := strings.TrimPrefix(s.base, "http://")
	base, dir := startNginx(t, [2]string{live, live}, nil)
	r := viaProxy(s, base).do(t, "GET", "/health", "", nil, withHeader("X-Request-Id", "forged-by-client")).want(t, 200)
	id := r.Header.Get("X-Request-Id")
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("X-Request-Id = %q, want nginx's 32 hex digits", id)
	}
	if !contains(s.logs.String(), `"request_id":"`+id+`"`) {
		t.Fatalf("the server did not log request_id %s", id)
	}
	var access []byte
	for deadline := time.Now().Add(5 * time.Second); !contains(string(access), id) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		access, _ = os.ReadFile(filepath.Join(dir, "access.log"))
	}
	if !contains(string(access), id) {
		t.Fatalf("nginx's access log lacks %s:\n%s", id, access)
	}
}
