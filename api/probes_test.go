package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/api"
)

// pingerFunc adapts a function to aoba.Pinger.
type pingerFunc func() error

func (f pingerFunc) Ping(context.Context) error { return f() }

var (
	up   = pingerFunc(func() error { return nil })
	down = pingerFunc(func() error { return aoba.Errorf(aoba.EUNAVAILABLE, "The service is unavailable.") })
)

// TestProbes: /health/live never looks at a dependency; /health/ready is
// 503 only when the store fails or the server drains, and degraded (200)
// when another dependency fails.
func TestProbes(t *testing.T) {
	allow := limiterFunc(func() (aoba.RateResult, error) { return aoba.RateResult{Allowed: true}, nil })
	for name, tc := range map[string]struct {
		store, redis aoba.Pinger
		drain        bool
		status       int
		state        string
	}{
		"OK":                {up, up, false, 200, api.ReadyOK},
		"RedisDown":         {up, down, false, 200, api.ReadyDegraded},
		"StoreDown":         {down, up, false, 503, api.ReadyUnavailable},
		"Draining":          {up, up, true, 503, api.ReadyDraining},
		"DrainingAllDown":   {down, down, true, 503, api.ReadyDraining},
		"StoreAndRedisDown": {down, down, false, 503, api.ReadyUnavailable},
	} {
		t.Run(name, func(t *testing.T) {
			s := api.New(api.Config{
				Service: aoba.NewService(aoba.ServiceConfig{}), Limiter: allow,
				Pingers: map[string]aoba.Pinger{api.StoreCheck: tc.store, "redis": tc.redis},
			})
			if tc.drain {
				s.Drain()
			}
			get := func(path string) (int, map[string]any) {
				res, err := s.App().Test(httptest.NewRequest("GET", path, nil))
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(res.Body)
				var body map[string]any
				if err := json.Unmarshal(raw, &body); err != nil {
					t.Fatalf("%s: %s: %v", path, raw, err)
				}
				return res.StatusCode, body
			}
			if st, body := get("/health/live"); st != 200 || body["status"] != "ok" {
				t.Fatalf("live: %d %v, want 200 ok whatever the dependencies", st, body)
			}
			st, body := get("/health/ready")
			if st != tc.status || body["status"] != tc.state {
				t.Fatalf("ready: %d %v, want %d %s", st, body, tc.status, tc.state)
			}
			if st == 503 && (body["error"] != "Service Unavailable" || body["message"] == "") {
				t.Fatalf("ready 503 without the error fields: %v", body)
			}
			checks, _ := body["checks"].(map[string]any)
			if want := map[bool]string{true: "ok", false: "The service is unavailable."}; checks["redis"] != want[tc.redis.Ping(context.Background()) == nil] {
				t.Fatalf("ready checks = %v", checks)
			}
		})
	}
}

// TestReadyHidesDriverErrors: a raw driver error never reaches the body.
func TestReadyHidesDriverErrors(t *testing.T) {
	s := api.New(api.Config{
		Service: aoba.NewService(aoba.ServiceConfig{}), Limiter: limiterFunc(func() (aoba.RateResult, error) { return aoba.RateResult{Allowed: true}, nil }),
		Pingers: map[string]aoba.Pinger{"redis": pingerFunc(func() error { return errors.New("dial tcp 10.1.2.3:6379: refused") })},
	})
	res, err := s.App().Test(httptest.NewRequest("GET", "/health/ready", nil))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || res.StatusCode != 200 || body.Status != api.ReadyDegraded || body.Checks["redis"] != "unreachable" {
		t.Fatalf("%d %s (%v), want 200 degraded with redis unreachable", res.StatusCode, raw, err)
	}
}
