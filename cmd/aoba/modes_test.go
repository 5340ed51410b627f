package main_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aoba-chat/aoba/internal/mongotest"
)

func TestHealthReportsWhereDataLives(t *testing.T) {
	want := map[string][3]string{
		"Embedded":  {"embedded", "sqlite", "memory"},
		"ScaledOut": {"scaled-out", "mongodb", "redis"},
	}
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		h := s.health(t)
		w := want[t.Name()[len("TestHealthReportsWhereDataLives/"):]]
		if h.Status != "ok" || h.Mode != w[0] || h.Store != w[1] || h.Hub != w[2] {
			t.Fatalf("health = %+v, want mode %s, store %s, hub %s", h, w[0], w[1], w[2])
		}
		if w[2] == "redis" && h.Checks["redis"] != "ok" {
			t.Fatalf("health checks = %v, want redis ok", h.Checks)
		}
	})
}

// BenchmarkRESTWorkload runs the same REST mix through the real server over
// 127.0.0.1 in each storage mode. One op is four sequential requests by one
// user: POST /api/messages, GET /api/messages?with=..&limit=50 (a full
// page), GET /api/users/me and POST /api/metadata/users/batch (two ids).
//
//   - embedded: SQLite in a temporary directory, in-process hub;
//   - mongo: MongoDB wire protocol (the embedded FerretDB of
//     internal/mongotest, or AOBA_TEST_MONGO_URI), in-process hub;
//   - mongo-redis: the scaled-out pod, MongoDB as above and a real
//     redis-server for presence, rate limits, revocations and fan-out.
//
// The embedded FerretDB runs inside the benchmark process, so it shares the
// CPU with the server: the mongo figures are an upper bound for a real
// MongoDB on its own machine.
func BenchmarkRESTWorkload(b *testing.B) {
	high := env{"AOBA_RATE_STANDARD": "1000000000", "AOBA_RATE_BATCH": "1000000000", "AOBA_RATE_SEARCH": "1000000000", "AOBA_LOG_LEVEL": "error"}
	modes := []struct {
		name string
		env  func(b *testing.B) env
	}{
		{"embedded", func(b *testing.B) env { return embeddedEnv(b) }},
		{"mongo", func(b *testing.B) env {
			uri, db := mongotest.New(b)
			return cheap(env{"AOBA_MONGO_URI": uri, "AOBA_MONGO_DB": db, "AOBA_JWT_SECRET": testSecret})
		}},
		{"mongo-redis", func(b *testing.B) env {
			if testing.Short() {
				b.Skip("Redis skipped in -short")
			}
			return scaledEnv(b)
		}},
	}
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			e := mode.env(b)
			for k, v := range high {
				e[k] = v
			}
			s := startMain(b, e)
			alice := s.register(b, "alice")
			bob := s.register(b, "bob")
			for i := 0; i < 50; i++ {
				s.do(b, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": "seed", "type": "chat"}).want(b, 201)
			}
			hc := &http.Client{Timeout: 30 * time.Second}
			send, _ := json.Marshal(map[string]string{"to": bob.Name, "content": "hello from the benchmark", "type": "chat"})
			batch, _ := json.Marshal(map[string][]string{"userIds": {alice.ID, bob.ID}})
			historyURL := s.base + "/api/messages?limit=50&with=" + url.QueryEscape(bob.Name)
			req := func(method, u string, body []byte, want int) {
				var r io.Reader
				if body != nil {
					r = bytes.NewReader(body)
				}
				rq, err := http.NewRequest(method, u, r)
				if err != nil {
					b.Fatal(err)
				}
				rq.Header.Set("Authorization", "Bearer "+alice.Token)
				if body != nil {
					rq.Header.Set("Content-Type", "application/json")
				}
				res, err := hc.Do(rq)
				if err != nil {
					b.Fatalf("%s %s: %v", method, u, err)
				}
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != want {
					b.Fatalf("%s %s: status %d (%v), want %d", method, u, res.StatusCode, err, want)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req("POST", s.base+"/api/messages", send, 201)
				req("GET", historyURL, nil, 200)
				req("GET", s.base+"/api/users/me", nil, 200)
				req("POST", s.base+"/api/metadata/users/batch", batch, 200)
			}
		})
	}
}
