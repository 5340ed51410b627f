package main_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/internal/redistest"
	"github.com/aoba-chat/aoba/sqlitestore"
	"github.com/fasthttp/websocket"
)

// sessionList is the body of GET /api/users/me/sessions.
type sessionList struct {
	Sessions []aoba.SessionView `json:"sessions"`
}

// sessions returns the caller's open sessions.
func (s *server) sessions(t *testing.T, token string) []aoba.SessionView {
	t.Helper()
	var out sessionList
	s.do(t, "GET", "/api/users/me/sessions", token, nil).want(t, 200).decode(t, &out)
	return out.Sessions
}

// current returns the session marked current.
func current(t *testing.T, list []aoba.SessionView) aoba.SessionView {
	t.Helper()
	for _, v := range list {
		if v.Current {
			return v
		}
	}
	t.Fatalf("no current session in %+v", list)
	return aoba.SessionView{}
}

// wantClose reads until the socket closes and fails unless with code.
func wantClose(t *testing.T, c *websocket.Conn, code int) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var err error
	for err == nil {
		_, _, err = c.ReadMessage()
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("socket ended with %v, want close %d", err, code)
	}
}

// loginAs signs in with a User-Agent and returns the token.
func (s *server) loginAs(t *testing.T, u *user, agent string) string {
	t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": u.Name, "password": u.Password},
		withHeader("User-Agent", agent)).want(t, 200).decode(t, &out)
	return out.Token
}

func TestSessions(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice := s.register(t, "alice")

		t.Run("List", func(t *testing.T) {
			phone := s.loginAs(t, alice, "AobaPhone/1.0")
			list := s.sessions(t, phone)
			if len(list) != 2 {
				t.Fatalf("sessions = %+v, want the registration login and the phone", list)
			}
			cur := current(t, list)
			if cur.UserAgent != "AobaPhone/1.0" || cur.IP != "127.0.0.1" || cur.CreatedAt.IsZero() || cur.LastSeenAt.Before(cur.CreatedAt) {
				t.Fatalf("current session = %+v", cur)
			}
			if other := current(t, s.sessions(t, alice.Token)); other.ID == cur.ID {
				t.Fatal("two tokens report the same current session")
			}
		})
		t.Run("Refresh", func(t *testing.T) {
			tok := s.loginAs(t, alice, "refresher")
			before := current(t, s.sessions(t, tok))
			c, _, err := s.dial(t, "?token="+tok, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			var out struct {
				Token     string    `json:"token"`
				ExpiresAt time.Time `json:"expires_at"`
				User      aoba.User `json:"user"`
			}
			r := s.do(t, "POST", "/api/auth/refresh", tok, nil).want(t, 200)
			r.decode(t, &out)
			if out.Token == "" || out.Token == tok || out.User.ID != alice.ID {
				t.Fatalf("refresh = %+v", out)
			}
			if ck := findCookie(r, "auth_token"); ck == nil || ck.Value != out.Token {
				t.Fatalf("cookie not renewed: %+v", ck)
			}
			s.do(t, "GET", "/api/users/me", tok, nil).want(t, 401)
			s.do(t, "POST", "/api/auth/refresh", tok, nil).want(t, 401)
			if after := current(t, s.sessions(t, out.Token)); after.ID != before.ID {
				t.Fatalf("refresh changed the session: %s -> %s", before.ID, after.ID)
			}
			// The socket of the session stays open across a refresh.
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":"r"}`)); err != nil {
				t.Fatal(err)
			}
			if f := readFrame(t, c, aoba.FramePong); f.ID != "r" {
				t.Fatalf("pong = %+v", f)
			}
		})
		t.Run("Delete", func(t *testing.T) {
			mine := s.loginAs(t, alice, "laptop")
			lost := s.loginAs(t, alice, "lost phone")
			c, _, err := s.dial(t, "?token="+lost, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			id := current(t, s.sessions(t, lost)).ID
			s.do(t, "DELETE", "/api/users/me/sessions/"+id, mine, nil).want(t, 204)
			wantClose(t, c, aoba.CloseSessionRevoked)
			s.do(t, "GET", "/api/users/me", lost, nil).want(t, 401)
			s.do(t, "GET", "/api/users/me", mine, nil).want(t, 200)
			for _, v := range s.sessions(t, mine) {
				if v.ID == id {
					t.Fatal("the deleted session is still listed")
				}
			}
			s.do(t, "DELETE", "/api/users/me/sessions/"+id, mine, nil).want(t, 404)
			s.do(t, "DELETE", "/api/users/me/sessions/"+aoba.NewID(), mine, nil).want(t, 404)
			s.do(t, "DELETE", "/api/users/me/sessions/not-a-uuid", mine, nil).want(t, 400)
			bob := s.register(t, "bob")
			s.do(t, "DELETE", "/api/users/me/sessions/"+current(t, s.sessions(t, mine)).ID, bob.Token, nil).want(t, 404)
			s.do(t, "GET", "/api/users/me", mine, nil).want(t, 200)
		})
		t.Run("WebSocketTicket", func(t *testing.T) {
			tok := s.login(t, alice.Name, alice.Password)
			var tk struct {
				Ticket    string    `json:"ticket"`
				ExpiresAt time.Time `json:"expires_at"`
			}
			s.do(t, "POST", "/api/auth/ws-ticket", tok, nil).want(t, 200).decode(t, &tk)
			if len(tk.Ticket) < 32 || time.Until(tk.ExpiresAt) > 31*time.Second || time.Until(tk.ExpiresAt) < 20*time.Second {
				t.Fatalf("ticket = %+v", tk)
			}
			c, _, err := s.dial(t, "?ticket="+tk.Ticket, nil)
			if err != nil {
				t.Fatalf("dial with ticket: %v", err)
			}
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":"t"}`)); err != nil {
				t.Fatal(err)
			}
			readFrame(t, c, aoba.FramePong)
			if _, res, err := s.dial(t, "?ticket="+tk.Ticket, nil); err == nil || res == nil || res.StatusCode != 401 {
				t.Fatalf("a used ticket opened a socket: %v", err)
			}
			if _, res, err := s.dial(t, "?ticket=made-up", nil); err == nil || res == nil || res.StatusCode != 401 {
				t.Fatalf("an unknown ticket opened a socket: %v", err)
			}
			// A ticket does not outlive its session.
			s.do(t, "POST", "/api/auth/ws-ticket", tok, nil).want(t, 200).decode(t, &tk)
			s.do(t, "POST", "/api/auth/logout", tok, nil).want(t, 200)
			if _, res, err := s.dial(t, "?ticket="+tk.Ticket, nil); err == nil || res == nil || res.StatusCode != 401 {
				t.Fatalf("a ticket of a revoked session opened a socket: %v", err)
			}
			// A ticket opens only /ws.
			s.do(t, "POST", "/api/auth/ws-ticket", alice.Token, nil).want(t, 200).decode(t, &tk)
			s.do(t, "GET", "/api/users/me?ticket="+tk.Ticket, "", nil).want(t, 401)
		})
		t.Run("DeletedAccount", func(t *testing.T) {
			carol := s.register(t, "carol")
			second := s.login(t, carol.Name, carol.Password)
			s.do(t, "DELETE", "/api/users/me", carol.Token, nil).want(t, 204)
			for _, tok := range []string{carol.Token, second} {
				s.do(t, "GET", "/api/users/me", tok, nil).want(t, 401)
				s.do(t, "GET", "/api/messages", tok, nil).want(t, 401)
				if _, res, err := s.dial(t, "?token="+tok, nil); err == nil || res == nil || res.StatusCode != 401 {
					t.Fatalf("a deleted account's token opened a socket: %v", err)
				}
			}
		})
	})
}

func TestLoginFailureBudget(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_LOGIN_FAILURES": "3", "AOBA_RATE_STANDARD": "1000"})
		alice := s.register(t, "alice")
		bob := s.register(t, "bob")
		wrong := map[string]string{"username": alice.Name, "password": "not her password"}
		for i := 0; i < 3; i++ {
			s.do(t, "POST", "/api/auth/login", "", wrong).want(t, 401)
		}
		// Over the budget even the right password waits, in any case of the name.
		for _, name := range []string{alice.Name, strings.ToUpper(alice.Name)} {
			r := s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": name, "password": alice.Password}).want(t, 429)
			if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 || n > 15*60 {
				t.Fatalf("Retry-After = %q", r.Header.Get("Retry-After"))
			}
		}
		// Another account, from the same address, is not affected; nor are
		// the sessions alice already has.
		s.login(t, bob.Name, bob.Password)
		s.do(t, "GET", "/api/users/me", alice.Token, nil).want(t, 200)
	})
}

func TestAuthFailureBudget(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(env{"AOBA_RATE_STANDARD": "5"})
		got := map[int]int{}
		for i := 0; i < 8; i++ {
			got[s.do(t, "GET", "/api/users/me", "bad.token."+strconv.Itoa(i), nil).Status]++
		}
		if got[401] != 5 || got[429] != 3 {
			t.Fatalf("statuses = %v, want 5 x 401 then 3 x 429", got)
		}
		if _, res, err := s.dial(t, "?token=bad", nil); err == nil || res == nil || res.StatusCode != 429 {
			t.Fatalf("a flood of bad socket tokens was not refused with 429: %v", err)
		}
	})
}

// TestRevocationSurvivesRedisRestart revokes tokens every way there is,
// then loses Redis (restarted empty, as with no persistence) and restarts
// the pods: every revoked token stays refused, because the store holds the
// revocations.
func TestRevocationSurvivesRedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MongoDB and Redis")
	}
	rs := redistest.Start(t)
	e := scaledEnv(t)
	e["AOBA_REDIS_URL"] = rs.URL()
	a := startMain(t, e)
	b := startMain(t, e)

	// One user per way of revoking, so that none hides another.
	alice := a.register(t, "alice") // logs out
	loggedOut := alice.Token
	carol := a.register(t, "carol") // changes her password
	cutOff := b.login(t, carol.Name, carol.Password)
	dave := a.register(t, "dave") // ends a session from another one
	ended := b.login(t, dave.Name, dave.Password)
	erin := a.register(t, "erin") // refreshes
	rotated := erin.Token
	bob := a.register(t, "bob")
	gone := a.register(t, "gone") // deletes the account
	a.do(t, "POST", "/api/messages", gone.Token, map[string]string{"to": bob.Name, "content": "bye"}).want(t, 201)
	for _, tok := range []string{loggedOut, cutOff, ended, rotated, gone.Token} {
		b.do(t, "GET", "/api/users/me", tok, nil).want(t, 200) // cached as valid on b
	}

	a.do(t, "POST", "/api/auth/logout", loggedOut, nil).want(t, 200)
	a.do(t, "PUT", "/api/users/me/password", carol.Token, map[string]string{"current_password": carol.Password, "new_password": "a new passphrase"}).want(t, 200)
	a.do(t, "DELETE", "/api/users/me/sessions/"+current(t, b.sessions(t, ended)).ID, dave.Token, nil).want(t, 204)
	var fresh struct {
		Token string `json:"token"`
	}
	a.do(t, "POST", "/api/auth/refresh", rotated, nil).want(t, 200).decode(t, &fresh)
	a.do(t, "DELETE", "/api/users/me", gone.Token, nil).want(t, 204)
	revoked := []string{loggedOut, cutOff, ended, rotated, gone.Token}
	valid := []string{carol.Token, dave.Token, fresh.Token, bob.Token}
	check := func(t *testing.T, pods ...*server) {
		t.Helper()
		for _, p := range pods {
			for _, tok := range revoked {
				p.do(t, "GET", "/api/users/me", tok, nil).want(t, 401)
				if _, res, err := p.dial(t, "?token="+tok, nil); err == nil || res == nil || res.StatusCode != 401 {
					t.Fatalf("a revoked token opened a socket: %v", err)
				}
			}
			p.do(t, "GET", "/api/messages?with="+bob.Name, gone.Token, nil).want(t, 401)
			for _, tok := range valid {
				p.do(t, "GET", "/api/users/me", tok, nil).want(t, 200)
			}
		}
	}
	check(t, a, b)

	t.Run("AfterRedisRestart", func(t *testing.T) {
		rs.Restart()
		waitHealthy(t, a, b)
		check(t, a, b)
	})
	t.Run("AfterPodRestart", func(t *testing.T) {
		if err := a.m.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.m.Close(); err != nil {
			t.Fatal(err)
		}
		rs.Restart()
		c := startMain(t, e)
		d := startMain(t, e)
		check(t, c, d)
	})
}

// waitHealthy waits until every pod reports healthy again.
func waitHealthy(t *testing.T, pods ...*server) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range pods {
		for {
			res, err := p.hc.Get(p.base + "/health")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not healthy: %v", p.base, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestRehashOnLogin raises the argon2id cost between two runs on one data
// directory: the first login after it stores a hash of the new cost.
func TestRehashOnLogin(t *testing.T) {
	dir := t.TempDir()
	e := embeddedEnv(t)
	e["AOBA_DATA_DIR"] = dir
	s := startMain(t, e)
	alice := s.register(t, "alice")
	if err := s.m.Close(); err != nil {
		t.Fatal(err)
	}
	hash := func() string {
		st, err := sqlitestore.Open(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		u, err := st.FindUserByUsername(context.Background(), alice.Name)
		if err != nil {
			t.Fatal(err)
		}
		return u.PasswordHash
	}
	if h := hash(); !strings.Contains(h, "m=64,t=1,") {
		t.Fatalf("first hash = %s", h)
	}
	e["AOBA_ARGON2_MEMORY_KIB"] = "128"
	e["AOBA_ARGON2_ITERATIONS"] = "2"
	s = startMain(t, e)
	s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": alice.Name, "password": "wrong password"}).want(t, 401)
	s.login(t, alice.Name, alice.Password)
	if err := s.m.Close(); err != nil {
		t.Fatal(err)
	}
	if h := hash(); !strings.Contains(h, "m=128,t=2,") {
		t.Fatalf("hash after login = %s, want the configured cost", h)
	}
}

// TestInvitationOfDepartedInviter: an invitation speaks for its inviter's
// membership, so it goes when they leave or are removed.
func TestInvitationOfDepartedInviter(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		owner := s.register(t, "owner")
		for _, how := range []string{"Leaves", "Removed"} {
			t.Run(how, func(t *testing.T) {
				inviter := s.register(t, "inviter")
				invitee := s.register(t, "invitee")
				gid := s.newGroup(t, owner.Token, "club")
				s.do(t, "POST", "/api/groups/"+gid+"/members", owner.Token, map[string]string{"username": inviter.Name, "role": "member"}).want(t, 201)
				var inv aoba.InvitationView
				s.do(t, "POST", "/api/groups/"+gid+"/invitations", inviter.Token, map[string]string{"username": invitee.Name}).want(t, 201).decode(t, &inv)
				if how == "Leaves" {
					s.do(t, "POST", "/api/groups/"+gid+"/leave", inviter.Token, nil).want(t, 200)
				} else {
					s.do(t, "DELETE", "/api/groups/"+gid+"/members/"+inviter.Name, owner.Token, nil).want(t, 204)
				}
				var list struct {
					Invitations []aoba.InvitationView `json:"invitations"`
				}
				s.do(t, "GET", "/api/invitations", invitee.Token, nil).want(t, 200).decode(t, &list)
				if len(list.Invitations) != 0 {
					t.Fatalf("invitations = %+v, want none", list.Invitations)
				}
				s.do(t, "POST", "/api/invitations/"+inv.ID+"/accept", invitee.Token, nil).want(t, 404)
				s.do(t, "GET", "/api/groups/"+gid, invitee.Token, nil).want(t, 404)
				// The owner's own invitation still works.
				s.do(t, "POST", "/api/groups/"+gid+"/invitations", owner.Token, map[string]string{"username": invitee.Name}).want(t, 201).decode(t, &inv)
				s.do(t, "POST", "/api/invitations/"+inv.ID+"/accept", invitee.Token, nil).want(t, 200)
			})
		}
	})
}
