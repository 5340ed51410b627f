package main_test

import (
	"fmt"
	"net/http"
	"testing"
)

// failLogin sends a login that fails (an unknown account, so that no
// per-account budget is involved) with the given X-Forwarded-For and
// returns the status.
func failLogin(t *testing.T, s *server, xff string) int {
	t.Helper()
	body := map[string]string{"username": newName("nobody"), "password": "wrong password"}
	return s.do(t, "POST", "/api/auth/login", "", body, withHeader("X-Forwarded-For", xff)).Status
}

// TestClientIPRightMost proves that the per-IP budget is keyed by the
// right-most X-Forwarded-For address that is not a trusted proxy: what a
// client writes to the left of it cannot buy a fresh budget.
func TestClientIPRightMost(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(extra env) *server) {
		s := start(env{"AOBA_RATE_STANDARD": "5", "AOBA_TRUSTED_PROXIES": "127.0.0.1/32, 10.9.0.0/16"})
		t.Run("SpoofedLeftMost", func(t *testing.T) {
			// The proxy appended 203.0.113.7 (the client) and, in front of
			// it, a trusted second hop; the client forged the rest.
			for i := 1; i <= 5; i++ {
				xff := fmt.Sprintf("1.2.3.%d, 10.0.0.%d, 203.0.113.7, 10.9.0.1", i, i)
				if st := failLogin(t, s, xff); st != http.StatusUnauthorized {
					t.Fatalf("login %d: status %d, want 401", i, st)
				}
			}
			if st := failLogin(t, s, "1.2.3.6, 10.0.0.6, 203.0.113.7, 10.9.0.1"); st != http.StatusTooManyRequests {
				t.Fatalf("login 6 with a new forged left-most address: status %d, want 429", st)
			}
			if !contains(s.logs.String(), `"ip":"203.0.113.7"`) || contains(s.logs.String(), `"ip":"1.2.3.1"`) {
				t.Fatal("request logs do not name the right-most untrusted address as the client")
			}
		})
		t.Run("SeparateBudgets", func(t *testing.T) {
			for i := 1; i <= 5; i++ {
				failLogin(t, s, fmt.Sprintf("1.2.3.%d, 198.51.100.1", i))
			}
			if st := failLogin(t, s, "1.2.3.6, 198.51.100.1"); st != http.StatusTooManyRequests {
				t.Fatalf("sixth login from 198.51.100.1: status %d, want 429", st)
			}
			if st := failLogin(t, s, "1.2.3.6, 198.51.100.2"); st != http.StatusUnauthorized {
				t.Fatalf("first login from 198.51.100.2: status %d, want its own budget (401)", st)
			}
		})
	})
}

// TestCookieSecureBehindProxy proves that the auth_token cookie is Secure
// when a trusted proxy says the client used HTTPS, on login and on logout,
// and that an untrusted peer cannot say so.
func TestCookieSecureBehindProxy(t *testing.T) {
	https := withHeader("X-Forwarded-Proto", "https")
	t.Run("TrustedProxy", func(t *testing.T) {
		e := embeddedEnv(t)
		e["AOBA_TRUSTED_PROXIES"] = "127.0.0.1"
		s := startMain(t, e)
		u := s.register(t, "alice")
		r := s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": u.Name, "password": u.Password}, https).want(t, 200)
		if c := findCookie(r, "auth_token"); c == nil || !c.Secure {
			t.Fatalf("login over HTTPS through a trusted proxy: cookie not Secure: %+v", c)
		}
		r = s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": u.Name, "password": u.Password}).want(t, 200)
		if c := findCookie(r, "auth_token"); c == nil || c.Secure {
			t.Fatalf("login over plain HTTP: cookie %+v, want not Secure", c)
		}
		r = s.do(t, "POST", "/api/auth/logout", u.Token, nil, https).want(t, 200)
		if c := findCookie(r, "auth_token"); c == nil || !c.Secure || c.MaxAge >= 0 {
			t.Fatalf("logout over HTTPS: cleared cookie %+v, want Secure and expired", c)
		}
	})
	t.Run("UntrustedPeer", func(t *testing.T) {
		e := embeddedEnv(t)
		e["AOBA_TRUSTED_PROXIES"] = "10.0.0.1"
		s := startMain(t, e)
		u := s.register(t, "alice")
		r := s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": u.Name, "password": u.Password}, https).want(t, 200)
		if c := findCookie(r, "auth_token"); c == nil || c.Secure {
			t.Fatalf("X-Forwarded-Proto from an untrusted peer: cookie %+v, want not Secure", c)
		}
	})
}
