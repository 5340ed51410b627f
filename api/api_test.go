package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/api"
	"github.com/gofiber/fiber/v2"
)

// limiterFunc adapts a function to aoba.RateLimiter.
type limiterFunc func() (aoba.RateResult, error)

func (f limiterFunc) Allow(context.Context, string, int, time.Duration) (aoba.RateResult, error) {
	return f()
}

func (f limiterFunc) Peek(context.Context, string, int, time.Duration) (aoba.RateResult, error) {
	return f()
}

// newServer returns a Server on a Service without backing services: enough
// for the routes that fail before reaching one.
func newServer(t *testing.T, lim aoba.RateLimiter) (*api.Server, *bytes.Buffer) {
	t.Helper()
	logs := &bytes.Buffer{}
	s := api.New(api.Config{
		Service: aoba.NewService(aoba.ServiceConfig{}),
		Limiter: lim,
		Logger:  slog.New(slog.NewJSONHandler(logs, nil)),
	})
	return s, logs
}

func decodeError(t *testing.T, res *http.Response) api.ErrorResponse {
	t.Helper()
	body, _ := io.ReadAll(res.Body)
	var e api.ErrorResponse
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e
}

func TestErrorStatus(t *testing.T) {
	for code, want := range map[string]int{
		aoba.EINVALID: 400, aoba.EUNAUTHORIZED: 401, aoba.EFORBIDDEN: 403, aoba.ENOTFOUND: 404, aoba.ECONFLICT: 409,
		aoba.ETOOLARGE: 413, aoba.EUNSUPPORTED: 415, aoba.ERATELIMIT: 429, aoba.EUNAVAILABLE: 503, aoba.EINTERNAL: 500, "bogus": 500,
	} {
		if got := aoba.ErrorStatus(code); got != want {
			t.Errorf("aoba.ErrorStatus(%q) = %d, want %d", code, got, want)
		}
	}
}

func TestPanicRecovered(t *testing.T) {
	s, logs := newServer(t, limiterFunc(func() (aoba.RateResult, error) { return aoba.RateResult{Allowed: true}, nil }))
	s.App().Get("/boom", func(c *fiber.Ctx) error { panic("secret detail") })
	res, err := s.App().Test(httptest.NewRequest("GET", "/boom", nil))
	if err != nil {
		t.Fatal(err)
	}
	e := decodeError(t, res)
	if res.StatusCode != 500 || e.Error != "Internal Server Error" || e.Message != "Internal server error" {
		t.Fatalf("%d %+v", res.StatusCode, e)
	}
	if !strings.Contains(logs.String(), "secret detail") || !strings.Contains(logs.String(), "goroutine") {
		t.Fatalf("panic not logged with its stack: %s", logs)
	}
}

func TestLimiterFailure(t *testing.T) {
	s, _ := newServer(t, limiterFunc(func() (aoba.RateResult, error) { return aoba.RateResult{}, errors.New("redis down") }))
	req := httptest.NewRequest("POST", "/api/auth/register", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := s.App().Test(req)
	if err != nil {
		t.Fatal(err)
	}
	if e := decodeError(t, res); res.StatusCode != 503 || strings.Contains(e.Message, "redis") {
		t.Fatalf("%d %+v", res.StatusCode, e)
	}
}

func TestRateLimitRefusal(t *testing.T) {
	s, _ := newServer(t, limiterFunc(func() (aoba.RateResult, error) {
		return aoba.RateResult{Allowed: false, Limit: 100, Remaining: 0, Reset: time.Now().Add(30 * time.Second), RetryAfter: 200 * time.Millisecond}, nil
	}))
	req := httptest.NewRequest("POST", "/api/auth/login", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := s.App().Test(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "1" || res.Header.Get("X-RateLimit-Limit") != "100" ||
		res.Header.Get("X-RateLimit-Remaining") != "0" || res.Header.Get("X-RateLimit-Reset") == "" {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
	if e := decodeError(t, res); e.Error != "Too Many Requests" {
		t.Fatalf("%+v", e)
	}
}
