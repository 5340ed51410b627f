package main_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// adminToken opens the admin API of the servers these tests start.
const adminToken = "admin-token-admin-token-admin-token-0123"

// adminUser is the admin view of an account.
type adminUser struct {
	ID         string     `json:"id"`
	Username   string     `json:"username"`
	Disabled   bool       `json:"disabled"`
	DisabledAt *time.Time `json:"disabled_at"`
	Sessions   int        `json:"sessions"`
	Sockets    *int       `json:"sockets"`
	Online     *bool      `json:"online"`
	LastSeen   *time.Time `json:"last_seen"`
}

// adminUsers returns the users GET /api/admin/users?query lists.
func (s *server) adminUsers(t *testing.T, query url.Values) (users []adminUser, total int) {
	t.Helper()
	var out struct {
		Users []adminUser `json:"users"`
		Total int         `json:"total"`
	}
	s.do(t, "GET", "/api/admin/users?"+query.Encode(), adminToken, nil).want(t, 200).decode(t, &out)
	return out.Users, out.Total
}

// adminDo sends an admin request for the user ref and decodes the answer.
func (s *server) adminDo(t *testing.T, method, ref, action string, status int) adminUser {
	t.Helper()
	path := "/api/admin/users/" + url.PathEscape(ref)
	if action != "" {
		path += "/" + action
	}
	var u adminUser
	r := s.do(t, method, path, adminToken, nil).want(t, status)
	if status == 200 {
		r.decode(t, &u)
	}
	return u
}

// loginStatus returns the status of a login of u and its error message.
func (s *server) loginStatus(t *testing.T, u *user) (int, string) {
	t.Helper()
	r := s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": u.Name, "password": u.Password})
	return r.Status, errorMessage(r)
}

// adminLogged reports whether the logs hold an "admin action" line for
// action from the address ip.
func adminLogged(logs, action, ip string) bool {
	for _, line := range strings.Split(logs, "\n") {
		var rec struct {
			Msg     string `json:"msg"`
			Action  string `json:"action"`
			AdminIP string `json:"admin_ip"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "admin action" && rec.Action == action && rec.AdminIP == ip {
			return true
		}
	}
	return false
}

func TestAdminAPI(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		t.Run("OffWithoutToken", func(t *testing.T) {
			s := start(nil)
			for _, r := range []*response{
				s.do(t, "GET", "/api/admin/users", adminToken, nil),
				s.do(t, "POST", "/api/admin/users/alice/disable", adminToken, nil),
			} {
				if r.want(t, 404); errorMessage(r) != "Route not found." {
					t.Fatalf("admin API without a token: %s", r.Body)
				}
			}
		})

		// The peer is trusted to name the client: the log must carry the
		// address the request came from as the proxies name it.
		s := start(env{"AOBA_ADMIN_TOKEN": adminToken, "AOBA_TRUSTED_PROXIES": "127.0.0.1"})
		alice, bob, carol := s.register(t, "alice"), s.register(t, "bob"), s.register(t, "carol")

		t.Run("OnlyTheAdminToken", func(t *testing.T) {
			for name, r := range map[string]*response{
				"NoToken":    s.do(t, "GET", "/api/admin/users", "", nil),
				"WrongToken": s.do(t, "GET", "/api/admin/users", adminToken+"x", nil),
				"Prefix":     s.do(t, "GET", "/api/admin/users", adminToken[:len(adminToken)-1], nil),
				"UserToken":  s.do(t, "GET", "/api/admin/users", alice.Token, nil),
				"Cookie":     s.do(t, "GET", "/api/admin/users", "", nil, withCookie(adminToken)),
				"Query":      s.do(t, "GET", "/api/admin/users?token="+adminToken, "", nil),
				"UserWrite":  s.do(t, "POST", "/api/admin/users/"+bob.Name+"/disable", alice.Token, nil),
			} {
				if r.Status != 401 {
					t.Fatalf("%s: status %d, want 401: %s", name, r.Status, r.Body)
				}
			}
			if !contains(s.logs.String(), "admin authentication failed") {
				t.Fatal("refused admin requests are not logged")
			}
			// Nobody was disabled by the refused write.
			s.do(t, "GET", "/api/users/me", bob.Token, nil).want(t, 200)
			if contains(s.logs.String(), adminToken) {
				t.Fatal("the admin token reached the logs")
			}
		})

		t.Run("ListAndSearch", func(t *testing.T) {
			c := s.dialOK(t, alice.Token)
			defer c.Close()
			var got adminUser
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				users, total := s.adminUsers(t, url.Values{"q": {alice.Name}})
				if total != 1 || len(users) != 1 {
					t.Fatalf("search %s: %d users, total %d", alice.Name, len(users), total)
				}
				got = users[0]
				if got.Sockets != nil && *got.Sockets == 1 && got.Online != nil && *got.Online {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("alice = %+v, want one socket and online", got)
				}
			}
			if got.ID != alice.ID || got.Username != alice.Name || got.Disabled || got.Sessions != 1 || got.LastSeen == nil {
				t.Fatalf("alice = %+v", got)
			}
			// Every user, paged.
			users, total := s.adminUsers(t, url.Values{"limit": {"2"}})
			if total < 3 || len(users) != 2 {
				t.Fatalf("page of 2: %d users of %d", len(users), total)
			}
			// One user, by id or by name.
			if u := s.adminDo(t, "GET", bob.ID, "", 200); u.Username != bob.Name || *u.Sockets != 0 {
				t.Fatalf("bob by id = %+v", u)
			}
			if u := s.adminDo(t, "GET", strings.ToUpper(bob.Name), "", 200); u.ID != bob.ID {
				t.Fatalf("bob by name = %+v", u)
			}
			s.adminDo(t, "GET", "nobody_here", "", 404)
			s.adminDo(t, "GET", aoba.NewID(), "", 404)
			for _, q := range []string{"limit=0", "limit=101", "page=0", "page=x", "q=" + strings.Repeat("a", 101)} {
				s.do(t, "GET", "/api/admin/users?"+q, adminToken, nil).want(t, 400)
			}
		})

		t.Run("DisableAndEnable", func(t *testing.T) {
			c := s.dialOK(t, alice.Token)
			u := s.do(t, "POST", "/api/admin/users/"+alice.Name+"/disable", adminToken, nil,
				withHeader("X-Forwarded-For", "203.0.113.9")).want(t, 200)
			var v adminUser
			u.decode(t, &v)
			if !v.Disabled || v.DisabledAt == nil || v.Sessions != 0 {
				t.Fatalf("disabled alice = %+v", v)
			}
			wantClose(t, c, aoba.CloseSessionRevoked)
			s.do(t, "GET", "/api/users/me", alice.Token, nil).want(t, 401)
			if status, msg := s.loginStatus(t, alice); status != 403 || msg != "This account has been disabled by an administrator." {
				t.Fatalf("login of a disabled account: %d %q", status, msg)
			}
			// Other accounts are untouched.
			s.do(t, "GET", "/api/users/me", bob.Token, nil).want(t, 200)
			if !adminLogged(s.logs.String(), "disable", "203.0.113.9") {
				t.Fatalf("no admin action log for the disable from 203.0.113.9:\n%s", s.logs.String())
			}

			if v := s.adminDo(t, "POST", alice.ID, "enable", 200); v.Disabled || v.DisabledAt != nil {
				t.Fatalf("enabled alice = %+v", v)
			}
			// The old token stays revoked; a new login works.
			s.do(t, "GET", "/api/users/me", alice.Token, nil).want(t, 401)
			alice.Token = s.login(t, alice.Name, alice.Password)
			s.do(t, "GET", "/api/users/me", alice.Token, nil).want(t, 200)
			if !adminLogged(s.logs.String(), "enable", "127.0.0.1") {
				t.Fatal("no admin action log for the enable")
			}
		})

		t.Run("Logout", func(t *testing.T) {
			c := s.dialOK(t, bob.Token)
			if v := s.adminDo(t, "POST", bob.Name, "logout", 200); v.Sessions != 0 || v.Disabled {
				t.Fatalf("bob after logout = %+v", v)
			}
			wantClose(t, c, aoba.CloseSessionRevoked)
			s.do(t, "GET", "/api/users/me", bob.Token, nil).want(t, 401)
			bob.Token = s.login(t, bob.Name, bob.Password)
			if !adminLogged(s.logs.String(), "logout", "127.0.0.1") {
				t.Fatal("no admin action log for the logout")
			}
		})

		t.Run("Delete", func(t *testing.T) {
			c := s.dialOK(t, carol.Token)
			s.adminDo(t, "DELETE", carol.Name, "", 204)
			wantClose(t, c, aoba.CloseSessionRevoked)
			s.do(t, "GET", "/api/users/me", carol.Token, nil).want(t, 401)
			if status, _ := s.loginStatus(t, carol); status != 401 {
				t.Fatalf("login of a deleted account: %d", status)
			}
			s.adminDo(t, "GET", carol.ID, "", 404)
			s.adminDo(t, "DELETE", carol.ID, "", 404)
			s.adminDo(t, "POST", carol.ID, "disable", 404)
			if !adminLogged(s.logs.String(), "delete", "127.0.0.1") {
				t.Fatal("no admin action log for the delete")
			}
		})

		t.Run("CommandLine", func(t *testing.T) {
			if testing.Short() {
				t.Skip("builds the binary")
			}
			bin := buildBinary(t)
			dave := s.register(t, "dave")
			cli := func(args ...string) result {
				return runBinary(t, bin, []string{"AOBA_ADMIN_TOKEN=" + adminToken, "AOBA_ADMIN_URL=" + s.base}, append([]string{"admin"}, args...)...)
			}
			r := cli("users", "-q", dave.Name).want(t, 0)
			if !contains(r.Stdout, dave.Name) || !contains(r.Stdout, dave.ID) || !contains(r.Stdout, "1 users (page 1 of 1)") {
				t.Fatalf("admin users:\n%s", r.Stdout)
			}
			if r = cli("disable", dave.Name).want(t, 0); !contains(r.Stdout, "disabled "+dave.Name) {
				t.Fatalf("admin disable:\n%s", r.Stdout)
			}
			if status, _ := s.loginStatus(t, dave); status != 403 {
				t.Fatalf("login after aoba admin disable: %d", status)
			}
			var v adminUser
			if err := json.Unmarshal([]byte(cli("show", "-json", dave.ID).want(t, 0).Stdout), &v); err != nil || !v.Disabled {
				t.Fatalf("admin show -json: %+v, %v", v, err)
			}
			cli("enable", dave.Name).want(t, 0)
			dave.Token = s.login(t, dave.Name, dave.Password)
			cli("logout", dave.Name).want(t, 0)
			s.do(t, "GET", "/api/users/me", dave.Token, nil).want(t, 401)
			cli("delete", dave.Name).want(t, 2) // not without -yes
			cli("delete", "-yes", dave.Name).want(t, 0)
			if r = cli("show", dave.Name).want(t, 1); !contains(r.Stderr, "User not found.") {
				t.Fatalf("admin show of a deleted user: %q", r.Stderr)
			}
			// A wrong token, and a server without an admin API, are named.
			r = runBinary(t, bin, []string{"AOBA_ADMIN_TOKEN=" + strings.Repeat("w", 40), "AOBA_ADMIN_URL=" + s.base}, "admin", "users").want(t, 1)
			if !contains(r.Stderr, "401") {
				t.Fatalf("wrong token: %q", r.Stderr)
			}
			runBinary(t, bin, []string{"AOBA_ADMIN_URL=" + s.base}, "admin", "users").want(t, 2)
		})
	})
}

// TestAdminConfig: AOBA_ADMIN_TOKEN must be long enough to resist
// guessing and AOBA_ADMIN_URL must be a base URL; each error names its
// variable.
func TestAdminConfig(t *testing.T) {
	if err := parseOne("AOBA_ADMIN_TOKEN", adminToken); err != nil {
		t.Fatalf("a 40-byte token refused: %v", err)
	}
	if err := parseOne("AOBA_ADMIN_TOKEN", strings.Repeat("x", 31)); err == nil || !contains(err.Error(), "AOBA_ADMIN_TOKEN") {
		t.Fatalf("a 31-byte token: %v, want an AOBA_ADMIN_TOKEN error", err)
	}
	for _, ok := range []string{"http://127.0.0.1:8080", "https://chat.example.com/", "http://[::1]:9000"} {
		if err := parseOne("AOBA_ADMIN_URL", ok); err != nil {
			t.Errorf("AOBA_ADMIN_URL=%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"127.0.0.1:8080", "ftp://host", "http://", "http://u:p@host", "http://host?x=1", "http://host#f"} {
		if err := parseOne("AOBA_ADMIN_URL", bad); err == nil || !contains(err.Error(), "AOBA_ADMIN_URL") {
			t.Errorf("AOBA_ADMIN_URL=%s: %v, want an AOBA_ADMIN_URL error", bad, err)
		}
	}
}
