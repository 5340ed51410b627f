package main_test

import (
	"encoding/json"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkAuthenticatedRequest measures GET /api/users/me through the
// Fiber app in process: token verification, revocation check, rate-limit
// check, store read and encoding.
func BenchmarkAuthenticatedRequest(b *testing.B) {
	e := embeddedEnv(b)
	e["AOBA_RATE_STANDARD"] = "1000000000"
	e["AOBA_LOG_LEVEL"] = "error"
	s := startMain(b, e)
	u := s.register(b, "bench")
	h := s.m.Server().App().Handler()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.Request.Header.SetMethod("GET")
			ctx.Request.SetRequestURI("/api/users/me")
			ctx.Request.Header.Set("Authorization", "Bearer "+u.Token)
			h(&ctx)
			if ctx.Response.StatusCode() != 200 {
				b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
		}
	})
}

// BenchmarkLogin measures POST /api/auth/login with the default (OWASP)
// argon2id cost, for a correct password, a wrong one and an unknown user:
// the three should take about the same time.
func BenchmarkLogin(b *testing.B) {
	e := embeddedEnv(b)
	delete(e, "AOBA_ARGON2_MEMORY_KIB")
	delete(e, "AOBA_ARGON2_ITERATIONS")
	e["AOBA_RATE_STANDARD"] = "1000000000"
	e["AOBA_LOG_LEVEL"] = "error"
	s := startMain(b, e)
	u := s.register(b, "bench")
	h := s.m.Server().App().Handler()
	for _, bc := range []struct {
		name, user, password string
		want                 int
	}{
		{"OK", u.Name, u.Password, 200},
		{"WrongPassword", u.Name, "wrong password", 401},
		{"UnknownUser", newName("nobody"), u.Password, 401},
	} {
		body, _ := json.Marshal(map[string]string{"username": bc.user, "password": bc.password})
		b.Run(bc.name, func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			for i := 0; i < b.N; i++ {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.Header.SetMethod("POST")
				ctx.Request.SetRequestURI("/api/auth/login")
				ctx.Request.Header.SetContentType("application/json")
				ctx.Request.SetBody(body)
				h(&ctx)
				if ctx.Response.StatusCode() != bc.want {
					b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
			}
		})
	}
}

// BenchmarkConversations measures GET /api/conversations?limit=50 through
// the Fiber app in process, for a user with 1,000 1:1 conversations (each
// with one message from its peer, all unread), in the embedded mode.
func BenchmarkConversations(b *testing.B) {
	const peers = 1000
	e := embeddedEnv(b)
	e["AOBA_RATE_STANDARD"] = "1000000000"
	e["AOBA_LOG_LEVEL"] = "error"
	s := startMain(b, e)
	me := s.register(b, "reader")
	for i := 0; i < peers; i++ {
		p := s.register(b, "peer")
		s.do(b, "POST", "/api/messages", p.Token, map[string]string{"to": me.Name, "content": "hello"}).want(b, 201)
	}
	h := s.m.Server().App().Handler()
	b.ReportAllocs()
	b.ResetTimer()
	var ctx fasthttp.RequestCtx
	for i := 0; i < b.N; i++ {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod("GET")
		ctx.Request.SetRequestURI("/api/conversations?limit=50")
		ctx.Request.Header.Set("Authorization", "Bearer "+me.Token)
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
