package main_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/fasthttp/websocket"
)

func TestAuthentication(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		name := newName("Alice")
		pw := "tea-kettle-42"

		t.Run("Register", func(t *testing.T) {
			var u aoba.User
			s.do(t, "POST", "/api/auth/register", "", map[string]string{"username": name, "password": pw}).want(t, 201).decode(t, &u)
			if u.Username != name || !aoba.IsValidID(u.ID) || u.CreatedAt.IsZero() {
				t.Fatalf("user = %+v", u)
			}
		})
		t.Run("RegisterTakenAnyCase", func(t *testing.T) {
			s.do(t, "POST", "/api/auth/register", "", map[string]string{"username": strings.ToLower(name), "password": pw}).want(t, 409)
		})
		t.Run("RegisterInvalid", func(t *testing.T) {
			for _, body := range []map[string]string{
				{"username": "ab", "password": pw},
				{"username": strings.Repeat("a", 256), "password": pw},
				{"username": "bad name", "password": pw},
				{"username": newName("u"), "password": "short"},
				{"username": newName("u"), "password": strings.Repeat("p", 129)},
				{"username": newName("u")},
				{"password": pw},
			} {
				s.do(t, "POST", "/api/auth/register", "", body).want(t, 400)
			}
		})
		var token string
		t.Run("Login", func(t *testing.T) {
			r := s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": strings.ToUpper(name), "password": pw}).want(t, 200)
			var out struct {
				Token     string    `json:"token"`
				ExpiresAt time.Time `json:"expires_at"`
				User      aoba.User `json:"user"`
			}
			r.decode(t, &out)
			token = out.Token
			if out.User.Username != name || time.Until(out.ExpiresAt) < 23*time.Hour {
				t.Fatalf("login = %+v", out)
			}
			c := findCookie(r, "auth_token")
			if c == nil || c.Value != token || !c.HttpOnly || c.Path != "/" || c.SameSite != http.SameSiteLaxMode || c.Secure {
				t.Fatalf("cookie = %+v", c)
			}
			if d := c.Expires.Sub(out.ExpiresAt); d < -time.Second || d > time.Second {
				t.Fatalf("cookie expires %v, token %v", c.Expires, out.ExpiresAt)
			}
		})
		t.Run("LoginWrongPasswordOrUser", func(t *testing.T) {
			a := s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": name, "password": "wrong-password"}).want(t, 401)
			b := s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": newName("nobody"), "password": pw}).want(t, 401)
			if errorMessage(a) != errorMessage(b) {
				t.Fatalf("messages differ: %q vs %q", errorMessage(a), errorMessage(b))
			}
		})
		t.Run("TokenSources", func(t *testing.T) {
			s.do(t, "GET", "/api/users/me", token, nil).want(t, 200)
			s.do(t, "GET", "/api/users/me", "", nil, withCookie(token)).want(t, 200)
			s.do(t, "GET", "/api/users/me?token="+url.QueryEscape(token), "", nil).want(t, 200)
			s.do(t, "GET", "/api/users/me", "", nil).want(t, 401)
			s.do(t, "GET", "/api/users/me", "not-a-jwt", nil).want(t, 401)
			s.do(t, "GET", "/api/users/me", "", nil, withHeader("Authorization", "Basic abc")).want(t, 401)
			// The header wins over a bad cookie.
			s.do(t, "GET", "/api/users/me", token, nil, withCookie("garbage")).want(t, 200)
		})
		t.Run("QueryTokenNotLogged", func(t *testing.T) {
			if contains(s.logs.String(), token) {
				t.Fatal("a token appears in the logs")
			}
			if !contains(s.logs.String(), "REDACTED") {
				t.Fatal("the token query parameter was not logged as REDACTED")
			}
		})
		t.Run("Logout", func(t *testing.T) {
			other := s.login(t, name, pw)
			r := s.do(t, "POST", "/api/auth/logout", token, nil).want(t, 200)
			if c := findCookie(r, "auth_token"); c == nil || c.Value != "" || (c.MaxAge >= 0 && c.Expires.After(time.Now())) {
				t.Fatalf("cookie not cleared: %+v", c)
			}
			s.do(t, "GET", "/api/users/me", token, nil).want(t, 401)
			s.do(t, "POST", "/api/auth/logout", token, nil).want(t, 401)
			s.do(t, "GET", "/api/users/me", other, nil).want(t, 200)
		})
	})
}

func findCookie(r *response, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestUsers(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice := s.register(t, "alice")
		bob := s.register(t, "bob")

		t.Run("Me", func(t *testing.T) {
			var u aoba.User
			s.do(t, "GET", "/api/users/me", alice.Token, nil).want(t, 200).decode(t, &u)
			if u.ID != alice.ID || u.Username != alice.Name {
				t.Fatalf("me = %+v", u)
			}
		})
		t.Run("ByUsername", func(t *testing.T) {
			var u aoba.User
			s.do(t, "GET", "/api/users/"+strings.ToUpper(bob.Name), alice.Token, nil).want(t, 200).decode(t, &u)
			if u.ID != bob.ID {
				t.Fatalf("user = %+v", u)
			}
			s.do(t, "GET", "/api/users/"+newName("ghost"), alice.Token, nil).want(t, 404)
			s.do(t, "GET", "/api/users/"+bob.Name, "", nil).want(t, 401)
		})
		t.Run("Search", func(t *testing.T) {
			var out struct {
				Users      []aoba.User `json:"users"`
				Total      int         `json:"total"`
				Page       int         `json:"page"`
				Limit      int         `json:"limit"`
				TotalPages int         `json:"total_pages"`
			}
			s.do(t, "GET", "/api/users?q="+bob.Name[:6]+"&limit=5", alice.Token, nil).want(t, 200).decode(t, &out)
			if out.Total < 1 || out.Page != 1 || out.Limit != 5 || out.TotalPages < 1 {
				t.Fatalf("search = %+v", out)
			}
			s.do(t, "GET", "/api/users?q="+bob.Name+"&exclude="+bob.ID, alice.Token, nil).want(t, 200).decode(t, &out)
			if out.Total != 0 || len(out.Users) != 0 {
				t.Fatalf("excluded user found: %+v", out)
			}
			for _, q := range []string{"q=a", "q=" + strings.Repeat("a", 101), "", "q=ab&page=0", "q=ab&page=x", "q=ab&limit=101",
				"q=ab&limit=0", "q=ab&exclude=not-a-uuid", "q=ab&exclude=" + strings.Repeat(bob.ID+",", 101)} {
				s.do(t, "GET", "/api/users?"+q, alice.Token, nil).want(t, 400)
			}
			s.do(t, "GET", "/api/users?q=ab", "", nil).want(t, 401)
		})
		t.Run("ChangeUsername", func(t *testing.T) {
			carol := s.register(t, "carol")
			next := newName("Carol")
			var u aoba.User
			s.do(t, "PUT", "/api/users/me/username", carol.Token, map[string]string{"username": next}).want(t, 200).decode(t, &u)
			if u.Username != next || u.ID != carol.ID {
				t.Fatalf("renamed = %+v", u)
			}
			s.do(t, "PUT", "/api/users/me/username", carol.Token, map[string]string{"username": strings.ToUpper(bob.Name)}).want(t, 409)
			s.do(t, "PUT", "/api/users/me/username", carol.Token, map[string]string{"username": "x"}).want(t, 400)
			s.do(t, "PUT", "/api/users/me/username", carol.Token, map[string]int{"username": 5}).want(t, 400)
			s.do(t, "PUT", "/api/users/me/username", "", map[string]string{"username": next}).want(t, 401)
		})
		t.Run("ChangePassword", func(t *testing.T) {
			dave := s.register(t, "dave")
			other := s.login(t, dave.Name, dave.Password)
			s.do(t, "PUT", "/api/users/me/password", dave.Token, map[string]string{"current_password": "wrong-one!", "new_password": "new password 1"}).want(t, 403)
			s.do(t, "PUT", "/api/users/me/password", dave.Token, map[string]string{"current_password": dave.Password, "new_password": "short"}).want(t, 400)
			s.do(t, "PUT", "/api/users/me/password", dave.Token, map[string]string{"new_password": "new password 1"}).want(t, 400)
			var msg struct {
				Message string `json:"message"`
			}
			s.do(t, "PUT", "/api/users/me/password", dave.Token, map[string]string{"current_password": dave.Password, "new_password": "new password 1"}).want(t, 200).decode(t, &msg)
			if msg.Message != "Password updated successfully" {
				t.Fatalf("message = %q", msg.Message)
			}
			s.do(t, "GET", "/api/users/me", dave.Token, nil).want(t, 200)
			s.do(t, "GET", "/api/users/me", other, nil).want(t, 401)
			s.do(t, "POST", "/api/auth/login", "", map[string]string{"username": dave.Name, "password": dave.Password}).want(t, 401)
			s.login(t, dave.Name, "new password 1")
		})
		t.Run("DeleteAccount", func(t *testing.T) {
			erin := s.register(t, "erin")
			other := s.login(t, erin.Name, erin.Password)
			r := s.do(t, "DELETE", "/api/users/me", erin.Token, nil).want(t, 204)
			if len(r.Body) != 0 {
				t.Fatalf("204 with a body: %s", r.Body)
			}
			s.do(t, "GET", "/api/users/me", erin.Token, nil).want(t, 401)
			s.do(t, "GET", "/api/users/me", other, nil).want(t, 401)
			s.do(t, "GET", "/api/users/"+erin.Name, alice.Token, nil).want(t, 404)
			s.do(t, "POST", "/api/auth/register", "", map[string]string{"username": erin.Name, "password": erin.Password}).want(t, 201)
			s.do(t, "DELETE", "/api/users/me", "", nil).want(t, 401)
		})
	})
}

func TestMetadata(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice := s.register(t, "alice")
		bob := s.register(t, "bob")
		t.Run("One", func(t *testing.T) {
			var m aoba.Metadata
			s.do(t, "GET", "/api/metadata/users/"+bob.ID, alice.Token, nil).want(t, 200).decode(t, &m)
			if m.ID != bob.ID || m.Username != bob.Name || m.Domain != "aoba.chat" {
				t.Fatalf("metadata = %+v", m)
			}
			s.do(t, "GET", "/api/metadata/users/not-a-uuid", alice.Token, nil).want(t, 400)
			s.do(t, "GET", "/api/metadata/users/"+aoba.NewID(), alice.Token, nil).want(t, 404)
			s.do(t, "GET", "/api/metadata/users/"+bob.ID, "", nil).want(t, 401)
		})
		t.Run("Batch", func(t *testing.T) {
			var out struct {
				Users []aoba.Metadata `json:"users"`
			}
			s.do(t, "POST", "/api/metadata/users/batch", alice.Token, map[string][]string{"userIds": {bob.ID, aoba.NewID(), alice.ID}}).want(t, 200).decode(t, &out)
			if len(out.Users) != 2 || out.Users[0].ID != bob.ID || out.Users[1].ID != alice.ID {
				t.Fatalf("batch = %+v", out)
			}
			ids := make([]string, 101)
			for i := range ids {
				ids[i] = aoba.NewID()
			}
			s.do(t, "POST", "/api/metadata/users/batch", alice.Token, map[string][]string{"userIds": ids}).want(t, 400)
			s.do(t, "POST", "/api/metadata/users/batch", alice.Token, map[string][]string{"userIds": {}}).want(t, 400)
			s.do(t, "POST", "/api/metadata/users/batch", alice.Token, map[string][]string{"userIds": {"nope"}}).want(t, 400)
			s.do(t, "POST", "/api/metadata/users/batch", alice.Token, map[string]string{"userIds": bob.ID}).want(t, 400)
			s.do(t, "POST", "/api/metadata/users/batch", "", map[string][]string{"userIds": {bob.ID}}).want(t, 401)
		})
	})
}

func TestPresence(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice := s.register(t, "alice")
		bob := s.register(t, "bob")
		t.Run("ByUsername", func(t *testing.T) {
			var p struct {
				Username string     `json:"username"`
				Status   string     `json:"status"`
				LastSeen *time.Time `json:"lastSeen"`
			}
			r := s.do(t, "GET", "/api/presence/"+bob.Name, alice.Token, nil).want(t, 200)
			r.decode(t, &p)
			if p.Username != bob.Name || p.Status != "offline" || p.LastSeen != nil || !contains(string(r.Body), `"lastSeen":null`) {
				t.Fatalf("presence = %s", r.Body)
			}
			s.do(t, "GET", "/api/presence/"+newName("ghost"), alice.Token, nil).want(t, 404)
			s.do(t, "GET", "/api/presence/"+bob.Name, "", nil).want(t, 401)
		})
		t.Run("ByID", func(t *testing.T) {
			var p struct {
				UserID string `json:"userId"`
				Status string `json:"status"`
			}
			s.do(t, "GET", "/api/presence/id/"+bob.ID, alice.Token, nil).want(t, 200).decode(t, &p)
			if p.UserID != bob.ID || p.Status != "offline" {
				t.Fatalf("presence = %+v", p)
			}
			s.do(t, "GET", "/api/presence/id/zzz", alice.Token, nil).want(t, 400)
			s.do(t, "GET", "/api/presence/id/"+aoba.NewID(), alice.Token, nil).want(t, 404)
		})
		t.Run("Batch", func(t *testing.T) {
			var out struct {
				Presence map[string]struct {
					Status string `json:"status"`
				} `json:"presence"`
			}
			s.do(t, "POST", "/api/presence/batch", alice.Token, map[string][]string{"usernames": {bob.Name, newName("ghost")}}).want(t, 200).decode(t, &out)
			if len(out.Presence) != 1 || out.Presence[bob.Name].Status != "offline" {
				t.Fatalf("batch = %+v", out)
			}
			var byID struct {
				Presence map[string]struct {
					Status string `json:"status"`
				} `json:"presence"`
			}
			s.do(t, "POST", "/api/presence/id/batch", alice.Token, map[string][]string{"userIds": {bob.ID, alice.ID}}).want(t, 200).decode(t, &byID)
			if len(byID.Presence) != 2 || byID.Presence[alice.ID].Status == "" {
				t.Fatalf("id batch = %+v", byID)
			}
			s.do(t, "POST", "/api/presence/batch", alice.Token, map[string][]string{"usernames": {}}).want(t, 400)
			s.do(t, "POST", "/api/presence/id/batch", alice.Token, map[string][]string{"userIds": {"x"}}).want(t, 400)
			s.do(t, "POST", "/api/presence/id/batch", alice.Token, `{"userIds": "x"}`).want(t, 400)
			s.do(t, "POST", "/api/presence/batch", "", map[string][]string{"usernames": {bob.Name}}).want(t, 401)
		})
	})
}

func TestMessages(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice := s.register(t, "alice")
		bob := s.register(t, "bob")
		mallory := s.register(t, "mallory")
		var g struct {
			Group aoba.GroupView `json:"group"`
		}
		s.do(t, "POST", "/api/groups", alice.Token, map[string]any{"name": "Team"}).want(t, 201).decode(t, &g)
		gid := g.Group.ID

		var first aoba.MessageView
		t.Run("SendChat", func(t *testing.T) {
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": "hi bob"}).want(t, 201).decode(t, &first)
			if first.Status != "sent" || first.Type != aoba.MessageChat || first.From != alice.Name || first.To != bob.Name || first.ToID != bob.ID {
				t.Fatalf("message = %+v", first)
			}
			s.do(t, "POST", "/api/messages", bob.Token, map[string]string{"to": alice.Name, "content": "hi alice", "type": "chat"}).want(t, 201)
		})
		t.Run("SendGroupchat", func(t *testing.T) {
			var m aoba.MessageView
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": gid, "content": "hi team", "type": "groupchat"}).want(t, 201).decode(t, &m)
			if m.To != gid || m.Type != aoba.MessageGroupChat {
				t.Fatalf("message = %+v", m)
			}
			s.do(t, "POST", "/api/messages", mallory.Token, map[string]string{"to": gid, "content": "let me in", "type": "groupchat"}).want(t, 404)
		})
		t.Run("SendErrors", func(t *testing.T) {
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": newName("ghost"), "content": "x"}).want(t, 404)
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": strings.Repeat("x", 10241)}).want(t, 400)
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": ""}).want(t, 400)
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": "x", "type": "shout"}).want(t, 400)
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"content": "x"}).want(t, 400)
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": "nope", "content": "x", "type": "groupchat"}).want(t, 400)
			s.do(t, "POST", "/api/messages", "", map[string]string{"to": bob.Name, "content": "x"}).want(t, 401)
		})
		t.Run("History", func(t *testing.T) {
			var out struct {
				Messages []aoba.MessageView `json:"messages"`
				Total    int                `json:"total"`
				Offset   int                `json:"offset"`
				Limit    int                `json:"limit"`
			}
			s.do(t, "GET", "/api/messages?with="+bob.Name, alice.Token, nil).want(t, 200).decode(t, &out)
			if out.Total != 2 || len(out.Messages) != 2 || out.Messages[0].Content != "hi alice" || out.Limit != 50 || out.Offset != 0 {
				t.Fatalf("history = %+v", out)
			}
			s.do(t, "GET", "/api/messages", alice.Token, nil).want(t, 200).decode(t, &out)
			if out.Total != 3 {
				t.Fatalf("all history total = %d, want 3", out.Total)
			}
			s.do(t, "GET", "/api/messages?with="+bob.Name+"&after="+first.ID, alice.Token, nil).want(t, 200).decode(t, &out)
			if len(out.Messages) != 1 || out.Messages[0].Content != "hi alice" {
				t.Fatalf("after = %+v", out)
			}
			s.do(t, "GET", "/api/messages?with="+gid+"&limit=1&offset=0", alice.Token, nil).want(t, 200).decode(t, &out)
			if len(out.Messages) != 1 || out.Limit != 1 {
				t.Fatalf("group history = %+v", out)
			}
			s.do(t, "GET", "/api/messages?with="+gid, mallory.Token, nil).want(t, 404)
			for _, q := range []string{"limit=0", "limit=101", "limit=x", "offset=-1", "after=bad", "before=bad", "after=" + first.ID + "&before=" + first.ID} {
				s.do(t, "GET", "/api/messages?"+q, alice.Token, nil).want(t, 400)
			}
			s.do(t, "GET", "/api/messages", "", nil).want(t, 401)
		})
	})
}

func TestIdempotentSend(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		s := start(nil)
		alice := s.register(t, "alice")
		bob := s.register(t, "bob")
		carol := s.register(t, "carol")
		bs, _, err := s.dial(t, "?token="+bob.Token, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		as, _, err := s.dial(t, "?token="+alice.Token, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		for _, c := range []*websocket.Conn{as, bs} {
			if err := c.WriteJSON(aoba.Frame{Type: "ping", ID: "p"}); err != nil {
				t.Fatal(err)
			}
			readFrame(t, c, aoba.FramePong)
		}
		const cid = "5b1d4c2e-8a7f-4e3b-9c6d-0f1e2d3c4b5a"
		send := map[string]any{"to": bob.Name, "content": "exactly once", "client_id": cid}

		var first aoba.MessageView
		s.do(t, "POST", "/api/messages", alice.Token, send).want(t, 201).decode(t, &first)
		if first.ClientID != cid || first.Content != "exactly once" {
			t.Fatalf("first send = %+v", first)
		}

		t.Run("RESTRetry", func(t *testing.T) {
			var again aoba.MessageView
			s.do(t, "POST", "/api/messages", alice.Token, send).want(t, 201).decode(t, &again)
			if again != first {
				t.Fatalf("retry = %+v, want %+v", again, first)
			}
			// Other content and recipient: still the first message.
			changed := map[string]any{"to": carol.Name, "content": "changed my mind", "client_id": cid}
			s.do(t, "POST", "/api/messages", alice.Token, changed).want(t, 201).decode(t, &again)
			if again != first {
				t.Fatalf("retry with other content = %+v, want %+v", again, first)
			}
		})
		t.Run("WebSocketRetry", func(t *testing.T) {
			if err := as.WriteJSON(map[string]any{"type": "message.send", "id": "s1", "data": send}); err != nil {
				t.Fatal(err)
			}
			ack := readFrame(t, as, aoba.FrameAck)
			var got aoba.MessageView
			if err := json.Unmarshal(ack.Data, &got); err != nil || ack.ID != "s1" || got != first {
				t.Fatalf("ack %s %s (%v), want the first message %+v", ack.ID, ack.Data, err, first)
			}
		})
		t.Run("OneStoredOneDelivered", func(t *testing.T) {
			var out struct {
				Messages []aoba.MessageView `json:"messages"`
				Total    int                `json:"total"`
			}
			s.do(t, "GET", "/api/messages?with="+bob.Name, alice.Token, nil).want(t, 200).decode(t, &out)
			if out.Total != 1 || len(out.Messages) != 1 || out.Messages[0] != first {
				t.Fatalf("history = %+v, want the first message only", out)
			}
			s.do(t, "GET", "/api/messages?with="+carol.Name, alice.Token, nil).want(t, 200).decode(t, &out)
			if out.Total != 0 {
				t.Fatalf("history with carol = %+v, want nothing", out)
			}
			// Bob got the first send's frame, then the marker's: no retry's.
			s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": "marker"}).want(t, 201)
			for _, want := range []string{first.ID, ""} {
				var m aoba.MessageView
				if err := json.Unmarshal(readFrame(t, bs, aoba.FrameMessage).Data, &m); err != nil {
					t.Fatal(err)
				}
				if want != "" && m.ID != want || want == "" && m.Content != "marker" {
					t.Fatalf("bob got %+v, want the first message once, then the marker", m)
				}
			}
		})
		t.Run("PerSender", func(t *testing.T) {
			var m aoba.MessageView
			s.do(t, "POST", "/api/messages", bob.Token, map[string]any{"to": alice.Name, "content": "mine", "client_id": cid}).want(t, 201).decode(t, &m)
			if m.ID == first.ID || m.From != bob.Name {
				t.Fatalf("bob's send with alice's client id = %+v, want a message of his own", m)
			}
		})
		t.Run("Validation", func(t *testing.T) {
			for name, id := range map[string]any{"TooLong": strings.Repeat("a", 65), "Empty": "", "Space": "a b", "NotString": 7} {
				r := s.do(t, "POST", "/api/messages", alice.Token, map[string]any{"to": bob.Name, "content": "x", "client_id": id})
				if r.Status != 400 {
					t.Errorf("%s client_id: status %d, want 400", name, r.Status)
				}
			}
			if err := as.WriteJSON(map[string]any{"type": "message.send", "id": "s2",
				"data": map[string]any{"to": bob.Name, "content": "x", "client_id": strings.Repeat("a", 65)}}); err != nil {
				t.Fatal(err)
			}
			if f := readFrame(t, as, aoba.FrameError); f.ID != "s2" || !strings.Contains(string(f.Data), `"Bad Request"`) {
				t.Fatalf("error frame %s %s, want Bad Request", f.ID, f.Data)
			}
			// 64 characters are fine, and null means none.
			s.do(t, "POST", "/api/messages", alice.Token, map[string]any{"to": bob.Name, "content": "x", "client_id": strings.Repeat("a", 64)}).want(t, 201)
			var m aoba.MessageView
			r := s.do(t, "POST", "/api/messages", alice.Token, map[string]any{"to": bob.Name, "content": "x", "client_id": nil}).want(t, 201)
			if r.decode(t, &m); m.ClientID != "" || strings.Contains(string(r.Body), "client_id") {
				t.Fatalf("message without a client id: %s", r.Body)
			}
		})
	})
}
