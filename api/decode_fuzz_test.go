package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/api"
	"github.com/aoba-chat/aoba/auth"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/sqlitestore"
	"github.com/valyala/fasthttp"
)

// realServer returns a Server on a fresh embedded store, the in-process hub
// and a limiter that allows everything, with a signed-in user's token.
func realServer(tb testing.TB) (*api.Server, string) {
	tb.Helper()
	ctx := context.Background()
	store, err := sqlitestore.Open(ctx, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	tokens, err := auth.NewTokens([]byte(strings.Repeat("k", 32)), time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	hasher, err := auth.NewArgon2id(auth.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	if err != nil {
		tb.Fatal(err)
	}
	broker := hub.NewMemoryBroker()
	presence := hub.NewMemoryPresence(hub.PresenceOptions{})
	tb.Cleanup(func() { _ = broker.Close(); _ = presence.Close() })
	sessions := hub.NewMemorySessions()
	svc := aoba.NewService(aoba.ServiceConfig{Store: store, Broker: broker, Presence: presence,
		Sessions: sessions, Tickets: sessions, Tokens: tokens, Hasher: hasher})
	// No sockets here: envelopes and presence changes go nowhere.
	broker.RegisterDeliver(func(string, aoba.Envelope) {})
	presence.RegisterChangeHandler(func(aoba.Presence) {})
	if _, err := svc.Register(ctx, "fuzzer", "tea-kettle-42"); err != nil {
		tb.Fatal(err)
	}
	token, _, _, err := svc.Login(ctx, "fuzzer", "tea-kettle-42", aoba.Device{})
	if err != nil {
		tb.Fatal(err)
	}
	s := api.New(api.Config{
		Service: svc,
		Limiter: limiterFunc(func() (aoba.RateResult, error) { return aoba.RateResult{Allowed: true, Limit: 1 << 30}, nil }),
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return s, token
}

// fuzzRoutes are the routes that decode a body, plus one that takes none.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/api/auth/login"},
	{"POST", "/api/auth/register"},
	{"PUT", "/api/users/me/username"},
	{"PUT", "/api/users/me/password"},
	{"POST", "/api/metadata/users/batch"},
	{"POST", "/api/groups"},
	{"POST", "/api/presence/batch"},
	{"POST", "/api/presence/id/batch"},
	{"POST", "/api/messages"},
	{"POST", "/api/groups/00000000-0000-0000-0000-000000000000/transfer"},
	{"POST", "/api/groups/00000000-0000-0000-0000-000000000000/leave"},
}

// FuzzRequestBody sends arbitrary bodies, Content-Types and
// Content-Encodings to the routes that decode a body, through the real
// Fiber app on an embedded store: the server never panics and never
// answers 5xx, and every error has the contract's shape.
func FuzzRequestBody(f *testing.F) {
	s, token := realServer(f)
	handler := s.App().Handler()
	for i, body := range []string{
		`{"username":"alice_1","password":"tea-kettle-42"}`,
		`{"username":"fuzzer","password":"tea-kettle-42"}`,
		`{"username":"550e8400-e29b-41d4-a716-446655440000"}`,
		`{"current_password":"tea-kettle-42","new_password":"password"}`,
		`{"userIds":["00000000-0000-0000-0000-000000000000"]}`,
		`{"name":"G","initial_members":["bob"]}`,
		`{"usernames":["fuzzer"]}`,
		`{"userIds":[]}`,
		`{"to":"fuzzer","content":"hi","type":"chat"}`,
		`{"newOwner":"bob"}`,
		"",
	} {
		f.Add(uint8(i), "application/json", "", []byte(body))
	}
	f.Add(uint8(0), "text/plain", "", []byte(`{"username":"a","password":"b"}`))
	f.Add(uint8(0), "application/json", "gzip", []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"))
	f.Add(uint8(5), "application/json; charset=utf-8", "identity", []byte(`{"name":"x","members":[]}`))
	f.Add(uint8(1), "application/json", "", []byte("{\"username\":\"\xff\",\"password\":\"\\ud800\"}"))
	f.Add(uint8(8), "multipart/form-data; boundary=x", "", []byte("--x\r\n\r\n--x--"))
	f.Fuzz(func(t *testing.T, route uint8, contentType, encoding string, body []byte) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(r.method)
		ctx.Request.SetRequestURI(r.path)
		ctx.Request.Header.Set("Authorization", "Bearer "+token)
		if contentType != "" {
			ctx.Request.Header.Set("Content-Type", contentType)
		}
		if encoding != "" {
			ctx.Request.Header.Set("Content-Encoding", encoding)
		}
		ctx.Request.SetBody(body)
		handler(&ctx)
		status := ctx.Response.StatusCode()
		if status >= 500 {
			t.Fatalf("%s %s (%q, %q, %q): status %d: %s", r.method, r.path, contentType, encoding, body, status, ctx.Response.Body())
		}
		if status >= 400 {
			var e api.ErrorResponse
			if err := json.Unmarshal(ctx.Response.Body(), &e); err != nil || e.Error != http.StatusText(status) || e.Message == "" {
				t.Fatalf("%s %s: error body %q for status %d", r.method, r.path, ctx.Response.Body(), status)
			}
		}
	})
}
