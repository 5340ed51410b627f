package main_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"

	"github.com/aoba-chat/aoba"
	"github.com/fasthttp/websocket"
)

// withoutHeader removes a header that do sets (Content-Type for a body).
func withoutHeader(k string) opt { return func(r *http.Request) { r.Header.Del(k) } }

// gzipped returns b compressed with gzip.
func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBodyRules drives the contract's body rules through the server: 415
// for an encoded or non-JSON body, 400 for invalid UTF-8, unknown fields and
// trailing data, and bodiless routes still working without Content-Type.
func TestBodyRules(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_RATE_STANDARD": "100000"})
		alice := s.register(t, "alice")
		creds := `{"username":"` + alice.Name + `","password":"` + alice.Password + `"}`

		t.Run("GzipBombLogin", func(t *testing.T) {
			// 64 MiB of spaces, gzipped twice: a few KiB on the wire. Fiber's
			// c.Body() would inflate the outer layer without a limit.
			inner := gzipped(t, append(append([]byte(`{"username":"x","password":"`), bytes.Repeat([]byte(" "), 64<<20)...), `"}`...))
			bomb := gzipped(t, inner)
			r := s.do(t, "POST", "/api/auth/login", "", bomb, withHeader("Content-Encoding", "gzip, gzip")).want(t, 415)
			if !strings.Contains(errorMessage(r), "Content-Encoding") {
				t.Fatalf("message %q", errorMessage(r))
			}
			s.do(t, "POST", "/api/auth/login", "", gzipped(t, []byte(creds)), withHeader("Content-Encoding", "gzip")).want(t, 415)
			s.do(t, "POST", "/api/auth/login", "", []byte(creds), withHeader("Content-Encoding", "deflate")).want(t, 415)
			s.do(t, "POST", "/api/auth/login", "", []byte(creds), withHeader("Content-Encoding", "identity")).want(t, 200)
		})
		t.Run("ContentType", func(t *testing.T) {
			for name, tc := range map[string]struct {
				ct   string
				body string
				want int
			}{
				"TextPlainJSON":  {"text/plain", creds, 415},
				"TextPlainUTF8":  {"text/plain;charset=UTF-8", creds, 415},
				"FormEncoded":    {"application/x-www-form-urlencoded", "username=" + alice.Name + "&password=x", 415},
				"Multipart":      {"multipart/form-data; boundary=x", creds, 415},
				"Missing":        {"", creds, 415},
				"MissingEmpty":   {"", "", 415},
				"Latin1":         {"application/json; charset=latin1", creds, 415},
				"Garbage":        {";;;", creds, 415},
				"JSONWithParams": {"application/json; charset=utf-8", creds, 200},
				"JSONUpperCase":  {"Application/JSON", creds, 200},
			} {
				t.Run(name, func(t *testing.T) {
					o := withHeader("Content-Type", tc.ct)
					if tc.ct == "" {
						o = withoutHeader("Content-Type")
					}
					s.do(t, "POST", "/api/auth/login", "", []byte(tc.body), o).want(t, tc.want)
				})
			}
			// A route that takes no body works without one and without a
			// Content-Type, as the SPA calls it; with a text body it is a 415.
			var g createdGroup
			s.do(t, "POST", "/api/groups", alice.Token, map[string]any{"name": "G"}).want(t, 201).decode(t, &g)
			s.do(t, "POST", "/api/groups/"+g.Group.ID+"/leave", alice.Token, nil).want(t, 409)
			s.do(t, "POST", "/api/groups/"+g.Group.ID+"/leave", alice.Token, "x", withHeader("Content-Type", "text/plain")).want(t, 415)
			s.do(t, "DELETE", "/api/groups/"+g.Group.ID, alice.Token, nil).want(t, 204)
		})
		t.Run("InvalidUTF8", func(t *testing.T) {
			for name, body := range map[string]string{
				"RawByte":       `{"username":"` + newName("u") + "\xff" + `","password":"tea-kettle-42"}`,
				"Overlong":      `{"username":"` + newName("u") + `","password":"tea-kettle-` + "\xc0\xaf" + `"}`,
				"LoneSurrogate": `{"username":"` + newName("u") + `","password":"tea-kettle-\ud800"}`,
				"LoneLow":       `{"username":"` + newName("u") + `","password":"tea-kettle-\udc00x"}`,
			} {
				t.Run(name, func(t *testing.T) {
					r := s.do(t, "POST", "/api/auth/register", "", []byte(body)).want(t, 400)
					if !strings.Contains(errorMessage(r), "UTF-8") {
						t.Fatalf("message %q", errorMessage(r))
					}
				})
			}
			// A proper pair is a character, not an error.
			name := newName("u")
			s.do(t, "POST", "/api/auth/register", "", []byte(`{"username":"`+name+`","password":"kettle-\ud83d\ude00-42"}`)).want(t, 201)
			s.login(t, name, "kettle-😀-42")
		})
		t.Run("UnknownField", func(t *testing.T) {
			bob := s.register(t, "bob")
			var before struct {
				Groups []any `json:"groups"`
			}
			s.do(t, "GET", "/api/groups", bob.Token, nil).want(t, 200).decode(t, &before)
			r := s.do(t, "POST", "/api/groups", bob.Token, map[string]any{"name": "Typo", "members": []string{alice.Name}}).want(t, 400)
			if errorMessage(r) != `Unknown field "members".` {
				t.Fatalf("message %q", errorMessage(r))
			}
			var after struct {
				Groups []any `json:"groups"`
			}
			s.do(t, "GET", "/api/groups", bob.Token, nil).want(t, 200).decode(t, &after)
			if len(after.Groups) != len(before.Groups) {
				t.Fatalf("a group was created: %d then %d", len(before.Groups), len(after.Groups))
			}
			r = s.do(t, "POST", "/api/auth/register", "", `{"username":"`+newName("u")+`","password":"tea-kettle-42","extra":{"x":1}}`).want(t, 400)
			if !strings.Contains(errorMessage(r), `"extra"`) {
				t.Fatalf("message %q", errorMessage(r))
			}
		})
		t.Run("TrailingData", func(t *testing.T) {
			for _, body := range []string{creds + `{}`, creds + ` x`, creds + `,`, creds + creds} {
				s.do(t, "POST", "/api/auth/login", "", body).want(t, 400)
			}
			s.do(t, "POST", "/api/auth/login", "", creds+" \r\n\t").want(t, 200)
		})
		t.Run("MessagesKept", func(t *testing.T) {
			if m := errorMessage(s.do(t, "POST", "/api/auth/login", "", `{"username":1,"password":"x"}`).want(t, 400)); m != "username has the wrong type." {
				t.Fatalf("message %q", m)
			}
			if m := errorMessage(s.do(t, "POST", "/api/auth/login", "", `{"username":"x"}`).want(t, 400)); m != "password is required." {
				t.Fatalf("message %q", m)
			}
		})
	})
}

// TestCrossSite checks the cross-site rule: cookie-authenticated writes and
// every login and register from a foreign origin are refused, Bearer and
// header-less clients are not.
func TestCrossSite(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_RATE_STANDARD": "100000", "AOBA_ALLOWED_ORIGINS": "https://app.example"})
		alice := s.register(t, "alice")
		creds := map[string]string{"username": alice.Name, "password": alice.Password}
		evil := withHeader("Origin", "https://evil.example")
		crossSite := withHeader("Sec-Fetch-Site", "cross-site")
		group := map[string]string{"name": "G"}

		t.Run("Login", func(t *testing.T) {
			s.do(t, "POST", "/api/auth/login", "", creds, evil).want(t, 403)
			s.do(t, "POST", "/api/auth/login", "", creds, crossSite).want(t, 403)
			s.do(t, "POST", "/api/auth/login", "", creds, withHeader("Origin", "null")).want(t, 403)
			// Even with a valid Bearer token: login is always checked.
			s.do(t, "POST", "/api/auth/login", alice.Token, creds, evil).want(t, 403)
			s.do(t, "POST", "/api/auth/login", "", creds, withHeader("Origin", s.base), withHeader("Sec-Fetch-Site", "same-origin")).want(t, 200)
			s.do(t, "POST", "/api/auth/login", "", creds, withHeader("Origin", "https://app.example"), crossSite).want(t, 200)
			s.do(t, "POST", "/api/auth/login", "", creds).want(t, 200)
		})
		t.Run("Register", func(t *testing.T) {
			body := map[string]string{"username": newName("u"), "password": "tea-kettle-42"}
			s.do(t, "POST", "/api/auth/register", "", body, evil).want(t, 403)
			s.do(t, "POST", "/api/auth/register", "", body, withHeader("Origin", s.base)).want(t, 201)
		})
		t.Run("CookieWrites", func(t *testing.T) {
			cookie := withCookie(alice.Token)
			s.do(t, "POST", "/api/groups", "", group, cookie, crossSite).want(t, 403)
			s.do(t, "POST", "/api/groups", "", group, cookie, evil).want(t, 403)
			s.do(t, "PUT", "/api/users/me/username", "", map[string]string{"username": newName("x")}, cookie, evil).want(t, 403)
			s.do(t, "DELETE", "/api/users/me", "", nil, cookie, evil).want(t, 403)
			s.do(t, "POST", "/api/auth/logout", "", nil, cookie, crossSite).want(t, 403)
			// Reads are not state-changing.
			s.do(t, "GET", "/api/users/me", "", nil, cookie, evil, crossSite).want(t, 200)
			// Own origin, an allowed one, and no headers at all pass.
			s.do(t, "POST", "/api/groups", "", group, cookie, withHeader("Origin", s.base), withHeader("Sec-Fetch-Site", "same-origin")).want(t, 201)
			s.do(t, "POST", "/api/groups", "", group, cookie, withHeader("Origin", "https://app.example")).want(t, 201)
			s.do(t, "POST", "/api/groups", "", group, cookie).want(t, 201)
		})
		t.Run("BearerWritesAllowed", func(t *testing.T) {
			// Not cookie-authenticated: a foreign page cannot know the token.
			s.do(t, "POST", "/api/groups", alice.Token, group, evil, crossSite).want(t, 201)
			s.do(t, "POST", "/api/groups", alice.Token, group, evil, withCookie(alice.Token)).want(t, 201)
		})
		t.Run("WebSocketSameRule", func(t *testing.T) {
			h := http.Header{"Cookie": {"auth_token=" + alice.Token}, "Sec-Fetch-Site": {"cross-site"}}
			if _, res, err := s.dial(t, "", h); err == nil || res == nil || res.StatusCode != 403 {
				t.Fatalf("cross-site upgrade with cookie: %v", err)
			}
			h = http.Header{"Cookie": {"auth_token=" + alice.Token}, "Origin": {"https://app.example"}}
			if _, _, err := s.dial(t, "", h); err != nil {
				t.Fatalf("allowed origin: %v", err)
			}
		})
	})
}

// TestNewAccountRules checks that registration and changes refuse UUID
// usernames, whitespace-only and common passwords, saying why.
func TestNewAccountRules(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_RATE_STANDARD": "100000"})
		alice := s.register(t, "alice")
		for name, tc := range map[string]struct{ username, password, why string }{
			"UUIDUsername":       {"550e8400-e29b-41d4-a716-446655440000", "tea-kettle-42", "UUID"},
			"UUIDUsernameNoDash": {"550e8400e29b41d4a716446655440000", "tea-kettle-42", "UUID"},
			"CommonPassword":     {newName("u"), "password", "too common"},
			"CommonAnyCase":      {newName("u"), "QWERTY123", "too common"},
			"CommonIloveyou":     {newName("u"), "iloveyou", "too common"},
			"WhitespacePassword": {newName("u"), "          ", "whitespace"},
		} {
			t.Run(name, func(t *testing.T) {
				r := s.do(t, "POST", "/api/auth/register", "", map[string]string{"username": tc.username, "password": tc.password}).want(t, 400)
				if !strings.Contains(errorMessage(r), tc.why) {
					t.Fatalf("message %q does not say %q", errorMessage(r), tc.why)
				}
			})
		}
		t.Run("ChangeUsernameToUUID", func(t *testing.T) {
			r := s.do(t, "PUT", "/api/users/me/username", alice.Token, map[string]string{"username": aoba.NewID()}).want(t, 400)
			if !strings.Contains(errorMessage(r), "UUID") {
				t.Fatalf("message %q", errorMessage(r))
			}
		})
		t.Run("ChangePasswordToCommon", func(t *testing.T) {
			for pw, why := range map[string]string{"12345678": "too common", "\t \t \t \t ": "whitespace"} {
				r := s.do(t, "PUT", "/api/users/me/password", alice.Token, map[string]string{"current_password": alice.Password, "new_password": pw}).want(t, 400)
				if !strings.Contains(errorMessage(r), why) {
					t.Fatalf("message %q", errorMessage(r))
				}
			}
			s.login(t, alice.Name, alice.Password)
		})
	})
}

// TestPagingBounds checks that a search page or a history offset too large
// for the arithmetic or for an int is a 400, never page 1.
func TestPagingBounds(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_RATE_STANDARD": "100000", "AOBA_RATE_SEARCH": "100000"})
		alice := s.register(t, "alice")
		for _, page := range []string{"9223372036854775807", "99999999999999999999", "461168601842738791", "107374184"} {
			s.do(t, "GET", "/api/users?q=alice&page="+page, alice.Token, nil).want(t, 400)
		}
		// The largest page whose offset fits: empty, not page 1.
		var out struct {
			Users []aoba.User `json:"users"`
			Page  int         `json:"page"`
		}
		s.do(t, "GET", "/api/users?q=alice&page=107374183", alice.Token, nil).want(t, 200).decode(t, &out)
		if len(out.Users) != 0 || out.Page != 107374183 {
			t.Fatalf("search = %+v", out)
		}
		for _, q := range []string{"offset=2147483648", "offset=99999999999999999999", "offset=9223372036854775807",
			"limit=9223372036854775807", "limit=-9223372036854775808", "offset=-1"} {
			s.do(t, "GET", "/api/messages?"+q, alice.Token, nil).want(t, 400)
		}
		s.do(t, "GET", "/api/messages?offset=2147483647", alice.Token, nil).want(t, 200)
	})
}

// TestWebSocketInvalidUTF8 checks that a text frame that is not UTF-8 closes
// the socket with 1007 (RFC 6455 section 8.1).
func TestWebSocketInvalidUTF8(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice := s.register(t, "alice")
		c, _, err := s.dial(t, "?token="+alice.Token, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte("{\"type\":\"ping\",\"id\":\"\xff\xfe\"}")); err != nil {
			t.Fatal(err)
		}
		wantClose(t, c, websocket.CloseInvalidFramePayloadData)
	})
}
