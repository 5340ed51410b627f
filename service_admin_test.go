package aoba_test

import (
	"context"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
)

// wantOneClose fails the test unless envs is one close order with code
// 4001 for every session of the user.
func wantOneClose(t *testing.T, envs []aoba.Envelope) {
	t.Helper()
	if len(envs) != 1 || envs[0].Close == nil {
		t.Fatalf("published %s, want one close order", describe(envs))
	}
	if o := envs[0].Close; o.Code != aoba.CloseSessionRevoked || o.Session != "" || o.KeepSession != "" {
		t.Fatalf("close order %+v, want code 4001 for every session", o)
	}
}

func TestService_DisableUser(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		here := ts.MustRegister(t, "alice")
		there := ts.MustLogin(t, "alice")
		other := ts.MustRegister(t, "bob")
		ts.Subscribe(t, aoba.UserTopic(here.ID))

		v, err := ts.DisableUser(ctx, "ALICE")
		if err != nil {
			t.Fatal(err)
		}
		if v.ID != here.ID || !v.Disabled || v.DisabledAt == nil || v.Sessions != 0 {
			t.Fatalf("view = %+v, want alice disabled without open sessions", v)
		}
		for _, a := range []Account{here, there} {
			_, err := ts.Authenticate(ctx, a.Token)
			wantCode(t, err, aoba.EUNAUTHORIZED)
		}
		wantOneClose(t, ts.Published(t, aoba.UserTopic(here.ID)))
		if _, err := ts.Authenticate(ctx, other.Token); err != nil {
			t.Fatalf("another account signed out: %v", err)
		}

		// The right password gets a clear refusal; a wrong one the usual 401.
		_, _, _, err = ts.Login(ctx, "alice", testPassword, aoba.Device{})
		wantCode(t, err, aoba.EFORBIDDEN)
		if msg := aoba.ErrorMessage(err); msg != "This account has been disabled by an administrator." {
			t.Fatalf("message = %q", msg)
		}
		_, _, _, err = ts.Login(ctx, "alice", "not the passphrase", aoba.Device{})
		wantCode(t, err, aoba.EUNAUTHORIZED)

		// Disabling again keeps the first time and revokes again.
		again, err := ts.DisableUser(ctx, here.ID)
		if err != nil || !again.DisabledAt.Equal(*v.DisabledAt) {
			t.Fatalf("disable again = %+v, %v; want DisabledAt kept at %v", again, err, v.DisabledAt)
		}
		wantOneClose(t, ts.Published(t, aoba.UserTopic(here.ID)))

		// Enabling lets alice sign in again; the old sessions stay revoked.
		en, err := ts.EnableUser(ctx, "alice")
		if err != nil || en.Disabled || en.DisabledAt != nil {
			t.Fatalf("enable = %+v, %v", en, err)
		}
		_, err = ts.Authenticate(ctx, here.Token)
		wantCode(t, err, aoba.EUNAUTHORIZED)
		back := ts.MustLogin(t, "alice")
		if _, err := ts.Authenticate(ctx, back.Token); err != nil {
			t.Fatalf("new session after enable: %v", err)
		}
		if en, err := ts.EnableUser(ctx, "alice"); err != nil || en.Disabled || en.Sessions != 1 {
			t.Fatalf("enable an enabled account = %+v, %v", en, err)
		}
	})

	t.Run("SessionOpenedAroundTheDisable", func(t *testing.T) {
		// A login that passed its check before the disable opens a session
		// after the revocation: the session check reads the account, so the
		// token opens nothing.
		late := ts.MustRegister(t, "carol")
		if _, err := ts.Store.UpdateUserDisabled(ctx, late.ID, ptr(aoba.Now())); err != nil {
			t.Fatal(err)
		}
		_, err := ts.Authenticate(ctx, late.Token)
		wantCode(t, err, aoba.EUNAUTHORIZED)
		if msg := aoba.ErrorMessage(err); msg != "The account has been disabled." {
			t.Fatalf("message = %q", msg)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		for _, ref := range []string{aoba.NewID(), "nobody_here", "not a name!", ""} {
			_, err := ts.DisableUser(ctx, ref)
			wantCode(t, err, aoba.ENOTFOUND)
			_, err = ts.EnableUser(ctx, ref)
			wantCode(t, err, aoba.ENOTFOUND)
			_, err = ts.ForceLogout(ctx, ref)
			wantCode(t, err, aoba.ENOTFOUND)
			_, err = ts.AdminDeleteUser(ctx, ref)
			wantCode(t, err, aoba.ENOTFOUND)
			_, err = ts.AdminUser(ctx, ref)
			wantCode(t, err, aoba.ENOTFOUND)
		}
	})
}

func TestService_ForceLogout(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	here := ts.MustRegister(t, "alice")
	there := ts.MustLogin(t, "alice")
	ts.Subscribe(t, aoba.UserTopic(here.ID))

	v, err := ts.ForceLogout(ctx, here.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Disabled || v.Sessions != 0 {
		t.Fatalf("view = %+v, want enabled without open sessions", v)
	}
	for _, a := range []Account{here, there} {
		_, err := ts.Authenticate(ctx, a.Token)
		wantCode(t, err, aoba.EUNAUTHORIZED)
	}
	wantOneClose(t, ts.Published(t, aoba.UserTopic(here.ID)))
	ts.MustLogin(t, "alice")
}

func TestService_AdminDeleteUser(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	owner := ts.MustRegister(t, "alice")
	member := ts.MustRegister(t, "bob")
	g := ts.MustCreateGroup(t, owner, "club", member.As(aoba.RoleMember))
	ts.Subscribe(t, aoba.UserTopic(owner.ID))

	u, err := ts.AdminDeleteUser(ctx, "alice")
	if err != nil || u.ID != owner.ID {
		t.Fatalf("delete = %+v, %v", u, err)
	}
	_, err = ts.Authenticate(ctx, owner.Token)
	wantCode(t, err, aoba.EUNAUTHORIZED)
	_, err = ts.AdminUser(ctx, owner.ID)
	wantCode(t, err, aoba.ENOTFOUND)
	// The group's leave order, then the close order.
	envs := ts.Published(t, aoba.UserTopic(owner.ID))
	if len(envs) == 0 {
		t.Fatal("nothing published on the deleted user's topic")
	}
	wantOneClose(t, envs[len(envs)-1:])
	// As with DeleteAccount, the group passes to the remaining member.
	view, err := ts.GetGroup(ctx, member.Claims, g.ID)
	if err != nil || view.OwnerUsername != "bob" {
		t.Fatalf("group after the owner's deletion = %+v, %v", view, err)
	}
}

func TestService_AdminUsers(t *testing.T) {
	t.Parallel()
	ts := newService(t, withPresence(hub.PresenceOptions{Grace: 10 * time.Millisecond}))
	ctx := context.Background()
	alice := ts.MustRegister(t, "alice")
	ts.MustLogin(t, "alice")
	bob := ts.MustRegister(t, "bob")
	ts.MustRegister(t, "carol")

	// Two sockets of alice, one of bob which then closes.
	for _, c := range []string{"a1", "a2"} {
		if _, err := ts.Sockets.Open(ctx, alice.ID, c, 0); err != nil {
			t.Fatal(err)
		}
		if err := ts.Presence.Connect(ctx, alice.ID, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.Sockets.Open(ctx, bob.ID, "b1", 0); err != nil {
		t.Fatal(err)
	}
	if err := ts.Presence.Connect(ctx, bob.ID, "b1"); err != nil {
		t.Fatal(err)
	}
	if err := ts.Sockets.Close(ctx, bob.ID, "b1"); err != nil {
		t.Fatal(err)
	}
	if err := ts.Presence.Disconnect(ctx, bob.ID, "b1"); err != nil {
		t.Fatal(err)
	}
	var bobGone time.Time
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		p, err := ts.Presence.FindPresence(ctx, []string{bob.ID})
		if err == nil && p[bob.ID].Status == aoba.StatusOffline && p[bob.ID].LastSeen != nil {
			bobGone = *p[bob.ID].LastSeen
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("bob still online: %+v, %v", p, err)
		}
	}

	t.Run("All", func(t *testing.T) {
		users, total, err := ts.AdminUsers(ctx, aoba.AdminSearch{Page: 1, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if total != 3 || len(users) != 3 || users[0].Username != "alice" || users[1].Username != "bob" || users[2].Username != "carol" {
			t.Fatalf("users = %+v, total %d", users, total)
		}
		a, b, c := users[0], users[1], users[2]
		if a.Sockets == nil || *a.Sockets != 2 || a.Online == nil || !*a.Online || a.Sessions != 2 || a.LastSeen == nil {
			t.Fatalf("alice = %+v, want 2 sockets, online, 2 sessions, a last-seen time", a)
		}
		// bob's socket closed after his login: last seen is its close.
		if b.Sockets == nil || *b.Sockets != 0 || b.Online == nil || *b.Online || b.LastSeen == nil || !b.LastSeen.Equal(bobGone) {
			t.Fatalf("bob = %+v, want no socket, offline, last seen %v", b, bobGone)
		}
		if c.Sockets == nil || *c.Sockets != 0 || c.Sessions != 1 {
			t.Fatalf("carol = %+v", c)
		}
	})
	t.Run("SearchAndPages", func(t *testing.T) {
		users, total, err := ts.AdminUsers(ctx, aoba.AdminSearch{Query: "O", Page: 2, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if total != 2 || len(users) != 1 || users[0].Username != "carol" {
			t.Fatalf("page 2 of 'o' = %+v, total %d; want carol of 2", users, total)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		long := make([]byte, aoba.SearchQueryMaxLen+1)
		for i := range long {
			long[i] = 'a'
		}
		for _, q := range []aoba.AdminSearch{
			{Page: 0, Limit: 10}, {Page: 1, Limit: 0}, {Page: 1, Limit: 101}, {Page: 1 << 30, Limit: 100},
			{Query: string(long), Page: 1, Limit: 10},
		} {
			_, _, err := ts.AdminUsers(ctx, q)
			wantCode(t, err, aoba.EINVALID)
		}
	})
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
