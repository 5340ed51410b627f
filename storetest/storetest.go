// Package storetest is the contract test suite of aoba.Store. Every store
// implementation runs RunStoreTests from its own tests, so that the MongoDB
// store and the embedded store behave the same way, including under
// concurrent calls.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// Concurrency is the number of goroutines each concurrency subtest runs.
const Concurrency = 20

// OpenFunc returns a fresh, empty store for one subtest. It should register
// the store's cleanup (Close, dropping data) with t.Cleanup.
type OpenFunc func(t *testing.T) aoba.Store

// Option tells RunStoreTests what more it may expect of the store under
// test than the contract of aoba.Store promises everywhere.
type Option func(*config)

// config is what the options of RunStoreTests set.
type config struct {
	atomicRotate bool
	rosterLimit  int
}

// AtomicRotate declares that the store's RotateSession is an atomic
// compare-and-set, so that of concurrent rotations from the same token
// exactly one succeeds (SQLite, MongoDB). Without it the suite only asks
// that at least one succeeds and that the stored token is a winner's, as
// on FerretDB, whose filtered updates are not atomic.
func AtomicRotate() Option {
	return func(c *config) { c.atomicRotate = true }
}

// RosterLimit declares that the store under test refuses new roster items
// beyond n items instead of aoba.MaxRosterItems (through a test hook of its
// package), so that the suite reaches the limit at a lower cost.
func RosterLimit(n int) Option {
	return func(c *config) { c.rosterLimit = n }
}

// RunStoreTests runs the whole contract suite against the stores that open
// returns, one fresh store per subtest, with the expectations that opts
// add. It reports failures through t.
func RunStoreTests(t *testing.T, open OpenFunc, opts ...Option) {
	cfg := config{rosterLimit: aoba.MaxRosterItems}
	for _, o := range opts {
		o(&cfg)
	}
	t.Run("User", func(t *testing.T) { runUserTests(t, open) })
	t.Run("UserDisabled", func(t *testing.T) { runUserDisabledTests(t, open) })
	t.Run("Group", func(t *testing.T) { runGroupTests(t, open) })
	t.Run("Membership", func(t *testing.T) { runMembershipTests(t, open) })
	t.Run("Invitation", func(t *testing.T) { runInvitationTests(t, open) })
	t.Run("Message", func(t *testing.T) { runMessageTests(t, open) })
	t.Run("Sessions", func(t *testing.T) { runSessionTests(t, open, cfg) })
	t.Run("Events", func(t *testing.T) { runEventTests(t, open) })
	t.Run("Blocks", func(t *testing.T) { runBlockTests(t, open) })
	t.Run("Roster", func(t *testing.T) { runRosterTests(t, open, cfg) })
	t.Run("Conversations", func(t *testing.T) { runConversationTests(t, open) })
	t.Run("Concurrency", func(t *testing.T) { runConcurrencyTests(t, open) })
	t.Run("Ping", func(t *testing.T) {
		s := open(t)
		if err := s.Ping(ctx(t)); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

// ctx returns a context bounded in time for one subtest.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// wantCode fails the test unless err carries the domain error code code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := aoba.ErrorCode(err); got != code {
		t.Fatalf("error code = %q, want %q (err: %v)", got, code, err)
	}
	if code != "" && code != aoba.EINTERNAL {
		if msg := aoba.ErrorMessage(err); msg == "" {
			t.Fatalf("error %v has an empty message", err)
		}
	}
}

// wantTime fails the test unless got is the same instant as want, in UTC.
func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
	if _, off := got.Zone(); off != 0 {
		t.Fatalf("%s = %v, want a UTC time", what, got)
	}
}

// mustCreateUser stores a user named name and returns it.
func mustCreateUser(t *testing.T, s aoba.Store, name string) *aoba.User {
	t.Helper()
	u := &aoba.User{ID: aoba.NewID(), Username: name, PasswordHash: "hash-" + name, CreatedAt: aoba.Now()}
	if err := s.CreateUser(ctx(t), u); err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

// mustCreateGroup stores a group owned by owner, with the owner's
// membership, and returns it.
func mustCreateGroup(t *testing.T, s aoba.Store, name, ownerID string) *aoba.Group {
	t.Helper()
	now := aoba.Now()
	g := &aoba.Group{ID: aoba.NewID(), Name: name, OwnerID: ownerID, CreatedAt: now}
	m := &aoba.Membership{GroupID: g.ID, UserID: ownerID, Role: aoba.RoleOwner, JoinedAt: now}
	if err := s.CreateGroup(ctx(t), g, m); err != nil {
		t.Fatalf("CreateGroup(%q): %v", name, err)
	}
	return g
}

// mustCreateMembership stores a membership and returns it.
func mustCreateMembership(t *testing.T, s aoba.Store, groupID, userID string, role aoba.Role, at time.Time) *aoba.Membership {
	t.Helper()
	m := &aoba.Membership{GroupID: groupID, UserID: userID, Role: role, JoinedAt: at}
	if err := s.CreateMembership(ctx(t), m); err != nil {
		t.Fatalf("CreateMembership: %v", err)
	}
	return m
}

// mustCreateInvitation stores a pending invitation and returns it.
func mustCreateInvitation(t *testing.T, s aoba.Store, groupID, inviterID, inviteeID string, at time.Time) *aoba.Invitation {
	t.Helper()
	inv := &aoba.Invitation{
		ID: aoba.NewID(), GroupID: groupID, InviterID: inviterID, InviteeID: inviteeID,
		Status: aoba.InvitationPending, CreatedAt: at,
	}
	if err := s.CreateInvitation(ctx(t), inv); err != nil {
		t.Fatalf("CreateInvitation: %v", err)
	}
	return inv
}

func userNames(users []*aoba.User) []string {
	names := make([]string, len(users))
	for i, u := range users {
		names[i] = u.Username
	}
	return names
}

func sortedUserNames(users []*aoba.User) []string {
	names := userNames(users)
	sort.Strings(names)
	return names
}

func wantStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") || len(got) != len(want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

func runUserTests(t *testing.T, open OpenFunc) {
	t.Run("CreateUser/OK", func(t *testing.T) {
		s := open(t)
		u := mustCreateUser(t, s, "Alice")
		got, err := s.FindUserByID(ctx(t), u.ID)
		if err != nil {
			t.Fatalf("FindUserByID: %v", err)
		}
		if got.ID != u.ID || got.Username != "Alice" || got.PasswordHash != u.PasswordHash {
			t.Fatalf("FindUserByID = %+v, want %+v", got, u)
		}
		wantTime(t, "CreatedAt", got.CreatedAt, u.CreatedAt)
	})
	t.Run("CreateUser/ErrConflictSameName", func(t *testing.T) {
		s := open(t)
		mustCreateUser(t, s, "alice")
		err := s.CreateUser(ctx(t), &aoba.User{ID: aoba.NewID(), Username: "alice", PasswordHash: "x", CreatedAt: aoba.Now()})
		wantCode(t, err, aoba.ECONFLICT)
	})
	t.Run("CreateUser/ErrConflictOtherCase", func(t *testing.T) {
		s := open(t)
		mustCreateUser(t, s, "Alice")
		err := s.CreateUser(ctx(t), &aoba.User{ID: aoba.NewID(), Username: "aLICE", PasswordHash: "x", CreatedAt: aoba.Now()})
		wantCode(t, err, aoba.ECONFLICT)
		if _, err := s.FindUserByUsername(ctx(t), "alice"); err != nil {
			t.Fatalf("FindUserByUsername after conflict: %v", err)
		}
	})
	t.Run("FindUserByID/ErrNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.FindUserByID(ctx(t), aoba.NewID())
		wantCode(t, err, aoba.ENOTFOUND)
	})
	t.Run("FindUserByUsername/CaseInsensitive", func(t *testing.T) {
		s := open(t)
		u := mustCreateUser(t, s, "Alice")
		for _, name := range []string{"Alice", "alice", "ALICE", "aLiCe"} {
			got, err := s.FindUserByUsername(ctx(t), name)
			if err != nil {
				t.Fatalf("FindUserByUsername(%q): %v", name, err)
			}
			if got.ID != u.ID || got.Username != "Alice" {
				t.Fatalf("FindUserByUsername(%q) = %+v, want %+v", name, got, u)
			}
		}
	})
	t.Run("FindUserByUsername/ErrNotFound", func(t *testing.T) {
		s := open(t)
		mustCreateUser(t, s, "alice")
		_, err := s.FindUserByUsername(ctx(t), "alic")
		wantCode(t, err, aoba.ENOTFOUND)
	})
	t.Run("FindUsersByIDs", func(t *testing.T) {
		s := open(t)
		a := mustCreateUser(t, s, "alice")
		b := mustCreateUser(t, s, "bob")
		mustCreateUser(t, s, "carol")
		got, err := s.FindUsersByIDs(ctx(t), []string{a.ID, aoba.NewID(), b.ID})
		if err != nil {
			t.Fatalf("FindUsersByIDs: %v", err)
		}
		wantStrings(t, "users", sortedUserNames(got), []string{"alice", "bob"})
		got, err = s.FindUsersByIDs(ctx(t), nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("FindUsersByIDs(nil) = %v, %v; want none", got, err)
		}
	})
	t.Run("FindUsersByUsernames", func(t *testing.T) {
		s := open(t)
		mustCreateUser(t, s, "Alice")
		mustCreateUser(t, s, "bob")
		mustCreateUser(t, s, "carol")
		got, err := s.FindUsersByUsernames(ctx(t), []string{"alice", "BOB", "nobody"})
		if err != nil {
			t.Fatalf("FindUsersByUsernames: %v", err)
		}
		wantStrings(t, "users", sortedUserNames(got), []string{"Alice", "bob"})
		got, err = s.FindUsersByUsernames(ctx(t), nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("FindUsersByUsernames(nil) = %v, %v; want none", got, err)
		}
	})
	t.Run("FindUsers/OrderAndTotal", func(t *testing.T) {
		s := open(t)
		for _, name := range []string{"bob_anna", "Anna", "zanna", "carl", "annabel", "JoANNe"} {
			mustCreateUser(t, s, name)
		}
		got, total, err := s.FindUsers(ctx(t), aoba.UserFilter{Query: "ann", Limit: 10})
		if err != nil {
			t.Fatalf("FindUsers: %v", err)
		}
		if total != 5 {
			t.Fatalf("total = %d, want 5", total)
		}
		wantStrings(t, "users", userNames(got), []string{"Anna", "annabel", "bob_anna", "JoANNe", "zanna"})
	})
	t.Run("FindUsers/Paging", func(t *testing.T) {
		s := open(t)
		for _, name := range []string{"user_e", "user_a", "USER_c", "user_b", "user_d"} {
			mustCreateUser(t, s, name)
		}
		got, total, err := s.FindUsers(ctx(t), aoba.UserFilter{Query: "user", Offset: 1, Limit: 2})
		if err != nil {
			t.Fatalf("FindUsers: %v", err)
		}
		if total != 5 {
			t.Fatalf("total = %d, want 5", total)
		}
		wantStrings(t, "page", userNames(got), []string{"user_b", "USER_c"})
		got, total, err = s.FindUsers(ctx(t), aoba.UserFilter{Query: "user", Offset: 4, Limit: 2})
		if err != nil {
			t.Fatalf("FindUsers: %v", err)
		}
		if total != 5 {
			t.Fatalf("total = %d, want 5", total)
		}
		wantStrings(t, "last page", userNames(got), []string{"user_e"})
		got, total, err = s.FindUsers(ctx(t), aoba.UserFilter{Query: "user", Offset: 10, Limit: 2})
		if err != nil || total != 5 || len(got) != 0 {
			t.Fatalf("FindUsers past the end = %v, %d, %v; want none, 5, nil", userNames(got), total, err)
		}
	})
	t.Run("FindUsers/Exclude", func(t *testing.T) {
		s := open(t)
		a := mustCreateUser(t, s, "team_a")
		mustCreateUser(t, s, "team_b")
		c := mustCreateUser(t, s, "team_c")
		got, total, err := s.FindUsers(ctx(t), aoba.UserFilter{Query: "team", Exclude: []string{a.ID, c.ID, aoba.NewID()}, Limit: 10})
		if err != nil {
			t.Fatalf("FindUsers: %v", err)
		}
		if total != 1 {
			t.Fatalf("total = %d, want 1", total)
		}
		wantStrings(t, "users", userNames(got), []string{"team_b"})
	})
	t.Run("FindUsers/EscapesPatterns", func(t *testing.T) {
		s := open(t)
		// Usernames cannot hold '.', '%' or '*': a query with them must
		// match nothing rather than act as a pattern.
		for _, name := range []string{"axb", "a_b", "a-b", "abc"} {
			mustCreateUser(t, s, name)
		}
		for _, q := range []string{"a.b", "a%", "a*", ".*", "a+", "(a)", "[a]", `a\`, "a?b", "^a", "b$"} {
			got, total, err := s.FindUsers(ctx(t), aoba.UserFilter{Query: q, Limit: 10})
			if err != nil {
				t.Fatalf("FindUsers(%q): %v", q, err)
			}
			if total != 0 || len(got) != 0 {
				t.Fatalf("FindUsers(%q) = %v, total %d; want none", q, userNames(got), total)
			}
		}
		// '_' is a literal character, not a one-character wildcard.
		got, total, err := s.FindUsers(ctx(t), aoba.UserFilter{Query: "a_", Limit: 10})
		if err != nil {
			t.Fatalf("FindUsers(a_): %v", err)
		}
		if total != 1 {
			t.Fatalf("FindUsers(a_) total = %d, want 1", total)
		}
		wantStrings(t, "users", userNames(got), []string{"a_b"})
	})
	t.Run("UpdateUsername/OK", func(t *testing.T) {
		s := open(t)
		u := mustCreateUser(t, s, "alice")
		got, err := s.UpdateUsername(ctx(t), u.ID, "Alicia")
		if err != nil {
			t.Fatalf("UpdateUsername: %v", err)
		}
		if got.ID != u.ID || got.Username != "Alicia" || got.PasswordHash != u.PasswordHash {
			t.Fatalf("UpdateUsername = %+v", got)
		}
		wantTime(t, "CreatedAt", got.CreatedAt, u.CreatedAt)
		if _, err := s.FindUserByUsername(ctx(t), "alice"); aoba.ErrorCode(err) != aoba.ENOTFOUND {
			t.Fatalf("old name lookup: err = %v, want ENOTFOUND", err)
		}
		found, err := s.FindUserByUsername(ctx(t), "ALICIA")
		if err != nil || found.ID != u.ID || found.Username != "Alicia" {
			t.Fatalf("new name lookup = %+v, %v", found, err)
		}
		// The old name is free again.
		mustCreateUser(t, s, "ALICE")
	})
	t.Run("UpdateUsername/OwnNameOtherCase", func(t *testing.T) {
		s := open(t)
		u := mustCreateUser(t, s, "alice")
		got, err := s.UpdateUsername(ctx(t), u.ID, "ALICE")
		if err != nil {
			t.Fatalf("UpdateUsername to own name in another case: %v", err)
		}
		if got.Username != "ALICE" {
			t.Fatalf("Username = %q, want ALICE", got.Username)
		}
		got, err = s.UpdateUsername(ctx(t), u.ID, "ALICE")
		if err != nil || got.Username != "ALICE" {
			t.Fatalf("UpdateUsername to the same name = %+v, %v", got, err)
		}
		found, err := s.FindUserByUsername(ctx(t), "alice")
		if err != nil || found.Username != "ALICE" {
			t.Fatalf("FindUserByUsername = %+v, %v", found, err)
		}
		err = s.CreateUser(ctx(t), &aoba.User{ID: aoba.NewID(), Username: "Alice", PasswordHash: "x", CreatedAt: aoba.Now()})
		wantCode(t, err, aoba.ECONFLICT)
	})
	t.Run("UpdateUsername/ErrConflict", func(t *testing.T) {
		s := open(t)
		mustCreateUser(t, s, "alice")
		b := mustCreateUser(t, s, "bob")
		_, err := s.UpdateUsername(ctx(t), b.ID, "Alice")
		wantCode(t, err, aoba.ECONFLICT)
		got, err := s.FindUserByID(ctx(t), b.ID)
		if err != nil || got.Username != "bob" {
			t.Fatalf("user after conflict = %+v, %v; want bob", got, err)
		}
		if _, err := s.FindUserByUsername(ctx(t), "bob"); err != nil {
			t.Fatalf("bob's name lost after conflict: %v", err)
		}
	})
	t.Run("UpdateUsername/ErrNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.UpdateUsername(ctx(t), aoba.NewID(), "ghost")
		wantCode(t, err, aoba.ENOTFOUND)
		// The failed rename must not hold the name.
		mustCreateUser(t, s, "ghost")
	})
	t.Run("UpdatePasswordHash/OK", func(t *testing.T) {
		s := open(t)
		u := mustCreateUser(t, s, "alice")
		if err := s.UpdatePasswordHash(ctx(t), u.ID, "new-hash"); err != nil {
			t.Fatalf("UpdatePasswordHash: %v", err)
		}
		got, err := s.FindUserByID(ctx(t), u.ID)
		if err != nil || got.PasswordHash != "new-hash" || got.Username != "alice" {
			t.Fatalf("user = %+v, %v", got, err)
		}
	})
	t.Run("UpdatePasswordHash/ErrNotFound", func(t *testing.T) {
		s := open(t)
		wantCode(t, s.UpdatePasswordHash(ctx(t), aoba.NewID(), "h"), aoba.ENOTFOUND)
	})
	t.Run("DeleteUser/OK", func(t *testing.T) {
		s := open(t)
		u := mustCreateUser(t, s, "Alice")
		other := mustCreateUser(t, s, "bob")
		if err := s.DeleteUser(ctx(t), u.ID); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		_, err := s.FindUserByID(ctx(t), u.ID)
		wantCode(t, err, aoba.ENOTFOUND)
		_, err = s.FindUserByUsername(ctx(t), "alice")
		wantCode(t, err, aoba.ENOTFOUND)
		if _, err := s.FindUserByID(ctx(t), other.ID); err != nil {
			t.Fatalf("other user gone: %v", err)
		}
		// The name is free again, in any case.
		mustCreateUser(t, s, "alice")
		wantCode(t, s.DeleteUser(ctx(t), u.ID), aoba.ENOTFOUND)
	})
	t.Run("DeleteUser/ErrNotFound", func(t *testing.T) {
		s := open(t)
		wantCode(t, s.DeleteUser(ctx(t), aoba.NewID()), aoba.ENOTFOUND)
	})
}

func runGroupTests(t *testing.T, open OpenFunc) {
	t.Run("CreateGroup/OK", func(t *testing.T) {
		s := open(t)
		owner := mustCreateUser(t, s, "owner")
		g := mustCreateGroup(t, s, "Friends", owner.ID)
		got, err := s.FindGroupByID(ctx(t), g.ID)
		if err != nil {
			t.Fatalf("FindGroupByID: %v", err)
		}
		if got.ID != g.ID || got.Name != "Friends" || got.OwnerID != owner.ID {
			t.Fatalf("group = %+v, want %+v", got, g)
		}
		wantTime(t, "CreatedAt", got.CreatedAt, g.CreatedAt)
		m, err := s.FindMembership(ctx(t), g.ID, owner.ID)
		if err != nil {
			t.Fatalf("owner membership: %v", err)
		}
		if m.Role != aoba.RoleOwner || m.GroupID != g.ID || m.UserID != owner.ID {
			t.Fatalf("owner membership = %+v", m)
		}
		wantTime(t, "JoinedAt", m.JoinedAt, g.CreatedAt)
	})
	t.Run("FindGroupByID/ErrNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.FindGroupByID(ctx(t), aoba.NewID())
		wantCode(t, err, aoba.ENOTFOUND)
	})
	t.Run("FindGroupsByIDs", func(t *testing.T) {
		s := open(t)
		owner := mustCreateUser(t, s, "owner")
		a := mustCreateGroup(t, s, "a", owner.ID)
		b := mustCreateGroup(t, s, "b", owner.ID)
		mustCreateGroup(t, s, "c", owner.ID)
		got, err := s.FindGroupsByIDs(ctx(t), []string{b.ID, aoba.NewID(), a.ID})
		if err != nil {
			t.Fatalf("FindGroupsByIDs: %v", err)
		}
		names := make([]string, len(got))
		for i, g := range got {
			names[i] = g.Name
		}
		sort.Strings(names)
		wantStrings(t, "groups", names, []string{"a", "b"})
		got, err = s.FindGroupsByIDs(ctx(t), nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("FindGroupsByIDs(nil) = %v, %v; want none", got, err)
		}
	})
	t.Run("DeleteGroup/OK", func(t *testing.T) {
		s := open(t)
		owner := mustCreateUser(t, s, "owner")
		member := mustCreateUser(t, s, "member")
		invitee := mustCreateUser(t, s, "invitee")
		g := mustCreateGroup(t, s, "doomed", owner.ID)
		keep := mustCreateGroup(t, s, "kept", owner.ID)
		mustCreateMembership(t, s, g.ID, member.ID, aoba.RoleMember, aoba.Now())
		mustCreateMembership(t, s, keep.ID, member.ID, aoba.RoleMember, aoba.Now())
		inv := mustCreateInvitation(t, s, g.ID, owner.ID, invitee.ID, aoba.Now())
		keptInv := mustCreateInvitation(t, s, keep.ID, owner.ID, invitee.ID, aoba.Now())

		if err := s.DeleteGroup(ctx(t), g.ID); err != nil {
			t.Fatalf("DeleteGroup: %v", err)
		}
		_, err := s.FindGroupByID(ctx(t), g.ID)
		wantCode(t, err, aoba.ENOTFOUND)
		ms, err := s.FindMembershipsByGroup(ctx(t), g.ID)
		if err != nil || len(ms) != 0 {
			t.Fatalf("memberships of deleted group = %d, %v; want none", len(ms), err)
		}
		_, err = s.FindMembership(ctx(t), g.ID, member.ID)
		wantCode(t, err, aoba.ENOTFOUND)
		ms, err = s.FindMembershipsByUser(ctx(t), member.ID)
		if err != nil || len(ms) != 1 || ms[0].GroupID != keep.ID {
			t.Fatalf("member's memberships = %+v, %v; want only the kept group", ms, err)
		}
		_, err = s.FindInvitationByID(ctx(t), inv.ID)
		wantCode(t, err, aoba.ENOTFOUND)
		invs, err := s.FindInvitations(ctx(t), aoba.InvitationFilter{InviteeID: invitee.ID})
		if err != nil || len(invs) != 1 || invs[0].ID != keptInv.ID {
			t.Fatalf("invitee's invitations = %+v, %v; want only the kept one", invs, err)
		}
		if _, err := s.FindGroupByID(ctx(t), keep.ID); err != nil {
			t.Fatalf("kept group: %v", err)
		}
		wantCode(t, s.DeleteGroup(ctx(t), g.ID), aoba.ENOTFOUND)
	})
	t.Run("DeleteGroup/ErrNotFound", func(t *testing.T) {
		s := open(t)
		wantCode(t, s.DeleteGroup(ctx(t), aoba.NewID()), aoba.ENOTFOUND)
	})
	t.Run("TransferGroupOwnership/OK", func(t *testing.T) {
		s := open(t)
		a := mustCreateUser(t, s, "alice")
		b := mustCreateUser(t, s, "bob")
		g := mustCreateGroup(t, s, "g", a.ID)
		mustCreateMembership(t, s, g.ID, b.ID, aoba.RoleAdmin, aoba.Now())
		if err := s.TransferGroupOwnership(ctx(t), g.ID, a.ID, b.ID); err != nil {
			t.Fatalf("TransferGroupOwnership: %v", err)
		}
		got, err := s.FindGroupByID(ctx(t), g.ID)
		if err != nil || got.OwnerID != b.ID || got.Name != "g" {
			t.Fatalf("group after transfer = %+v, %v", got, err)
		}
		wantTime(t, "CreatedAt", got.CreatedAt, g.CreatedAt)
		// Membership roles are the caller's business.
		m, err := s.FindMembership(ctx(t), g.ID, a.ID)
		if err != nil || m.Role != aoba.RoleOwner {
			t.Fatalf("old owner's stored role = %+v, %v; want unchanged", m, err)
		}
	})
	t.Run("TransferGroupOwnership/ErrConflict", func(t *testing.T) {
		s := open(t)
		a := mustCreateUser(t, s, "alice")
		b := mustCreateUser(t, s, "bob")
		c := mustCreateUser(t, s, "carol")
		g := mustCreateGroup(t, s, "g", a.ID)
		wantCode(t, s.TransferGroupOwnership(ctx(t), g.ID, b.ID, c.ID), aoba.ECONFLICT)
		got, err := s.FindGroupByID(ctx(t), g.ID)
		if err != nil || got.OwnerID != a.ID {
			t.Fatalf("group after failed transfer = %+v, %v", got, err)
		}
	})
	t.Run("TransferGroupOwnership/ErrNotFound", func(t *testing.T) {
		s := open(t)
		wantCode(t, s.TransferGroupOwnership(ctx(t), aoba.NewID(), aoba.NewID(), aoba.NewID()), aoba.ENOTFOUND)
	})
}

func runMembershipTests(t *testing.T, open OpenFunc) {
	t.Run("CreateMembership/OK", func(t *testing.T) {
		s := open(t)
		a := mustCreateUser(t, s, "alice")
		b := mustCreateUser(t, s, "bob")
		g := mustCreateGroup(t, s, "g", a.ID)
		m := mustCreateMembership(t, s, g.ID, b.ID, aoba.RoleAdmin, aoba.Now())
		got, err := s.FindMembership(ctx(t), g.ID, b.ID)
		if err != nil {
			t.Fatalf("FindMembership: %v", err)
		}
		if got.GroupID != g.ID || got.UserID != b.ID || got.Role != aoba.RoleAdmin {
			t.Fatalf("membership = %+v", got)
		}
		wantTime(t, "JoinedAt", got.JoinedAt, m.JoinedAt)
	})
	t.Run("CreateMembership/ErrConflict", func(t *testing.T) {
		s := open(t)
		a := mustCreateUser(t, s, "alice")
		b := mustCreateUser(t, s, "bob")
		g := mustCreateGroup(t, s, "g", a.ID)
		mustCreateMembership(t, s, g.ID, b.ID, aoba.RoleMember, aoba.Now())
		err := s.CreateMembership(ctx(t), &aoba.Membership{GroupID: g.ID, UserID: b.ID, Role: aoba.RoleAdmin, JoinedAt: aoba.Now()})
		wantCode(t, err, aoba.ECONFLICT)
		err = s.CreateMembership(ctx(t), &aoba.Membership{GroupID: g.ID, UserID: a.ID, Role: aoba.RoleMember, JoinedAt: aoba.Now()})
		wantCode(t, err, aoba.ECONFLICT)
		got, err := s.FindMembership(ctx(t), g.ID, b.ID)
		if err != nil || got.Role != aoba.RoleMember {
			t.Fatalf("membership after conflict = %+v, %v", got, err)
		}
	})
	t.Run("FindMembership/ErrNotFound", func(t *testing.T) {
		s := open(t)
		a := mustCreateUser(t, s, "alice")
		b := mustCreateUser(t, s, "bob")
		g := mustCreateGroup(t, s, "g", a.ID)
		_, err := s.FindMembership(ctx(t), g.ID, b.ID)
		wantCode(t, err, aoba.ENOTFOUND)
		_, err = s.FindMembership(ctx(t), aoba.NewID(), a.ID)
		wantCode(t, err, aoba.ENOTFOUND)
	})
	t.Run("FindMembershipsByGroup/Order", func(t *testing.T) {
		s := open(t)
		owner := mustCreateUser(t, s, "owner")
		g := mustCreateGroup(t, s, "g", owner.ID)
		other := mustCreateGroup(t, s, "other", owner.ID)
		base := g.CreatedAt
		// Two members join at the same instant: ties go by user id.
		x := &aoba.User{ID: "00000000-0000-7000-8000-000000000002", Username: "xavier", PasswordHash: "h", CreatedAt: base}
		y := &aoba.User{ID: "00000000-0000-7000-8000-000000000001", Username: "yann", PasswordHash: "h", CreatedAt: base}
		z := mustCreateUser(t, s, "zoe")
		for _, u := range []*aoba.User{x, y} {
			if err := s.CreateUser(ctx(t), u); err != nil {
				t.Fatalf("CreateUser: %v", err)
			}
		}
		mustCreateMembership(t, s, g.ID, z.ID, aoba.RoleMember, base.Add(3*time.Second))
		mustCreateMembership(t, s, g.ID, x.ID, aoba.RoleMember, base.Add(time.Second))
		mustCreateMembership(t, s, g.ID, y.ID, aoba.RoleAdmin, base.Add(time.Second))
		mustCreateMembership(t, s, other.ID, z.ID, aoba.RoleMember, base)
		ms, err := s.FindMembershipsByGroup(ctx(t), g.ID)
		if err != nil {
			t.Fatalf("FindMembershipsByGroup: %v", err)
		}
		var ids []string
		for _, m := range ms {
			if m.GroupID != g.ID {
				t.Fatalf("membership of another group: %+v", m)
			}
			ids = append(ids, m.UserID)
		}
		wantStrings(t, "members", ids, []string{owner.ID, y.ID, x.ID, z.ID})
		wantTime(t, "JoinedAt", ms[3].JoinedAt, base.Add(3*time.Second))
		ms, err = s.FindMembershipsByGroup(ctx(t), aoba.NewID())
		if err != nil || len(ms) != 0 {
			t.Fatalf("memberships of unknown group = %v, %v; want none", ms, err)
		}
	})
	t.Run("FindMembershipsByUser/Order", func(t *testing.T) {
		s := open(t)
		owner := mustCreateUser(t, s, "owner")
		u := mustCreateUser(t, s, "user")
		g1 := mustCreateGroup(t, s, "g1", owner.ID)
		g2 := mustCreateGroup(t, s, "g2", owner.ID)
		g3 := mustCreateGroup(t, s, "g3", owner.ID)
		base := aoba.Now()
		mustCreateMembership(t, s, g2.ID, u.ID, aoba.RoleMember, base.Add(2*time.Second))
		mustCreateMembership(t, s, g1.ID, u.ID, aoba.RoleMember, base.Add(3*time.Second))
		mustCreateMembership(t, s, g3.ID, u.ID, aoba.RoleAdmin, base.Add(time.Second))
		ms, err := s.FindMembershipsByUser(ctx(t), u.ID)
		if err != nil {
			t.Fatalf("FindMembershipsByUser: %v", err)
		}
		var ids []string
		for _, m := range ms {
			if m.UserID != u.ID {
				t.Fatalf("membership of another user: %+v", m)
			}
			ids = append(ids, m.GroupID)
		}
		wantStrings(t, "groups", ids, []string{g3.ID, g2.ID, g1.ID})
		ms, err = s.FindMembershipsByUser(ctx(t), aoba.NewID())
		if err != nil || len(ms) != 0 {
			t.Fatalf("memberships of unknown user = %v, %v; want none", ms, err)
		}
	})
	t.Run("UpdateMembershipRole/OK", func(t *testing.T) {
		s := open(t)
		a := mustCreateUser(t, s, "alice")
		b := mustCreateUser(t, s, "bob")
		g := mustCreateGroup(t, s, "g", a.ID)
		m := mustCreateMembership(t, s, g.ID, b.ID, aoba.RoleMember, aoba.Now())
		got, err := s.UpdateMembershipRole(ctx(t), g.ID, b.ID, aoba.RoleAdmin)
		if err != nil {
			t.Fatalf("UpdateMembershipRole: %v", err)
		}
		if got.Role != aoba.RoleAdmin || got.UserID != b.ID || got.GroupID != g.ID {
			t.Fatalf("updated membership = %+v", got)
		}
		wantTime(t, "JoinedAt", got.JoinedAt, m.JoinedAt)
		found, err := s.FindMembership(ctx(t), g.ID, b.ID)
		if err != nil || found.Role != aoba.RoleAdmin {
			t.Fatalf("stored membership = %+v, %v", found, err)
		}
		owner, err := s.FindMembership(ctx(t), g.ID, a.ID)
		if err != nil || owner.Role != aoba.RoleOwner {
			t.Fatalf("other membership changed: %+v, %v", owner, err)
		}
	})
	t.Run("UpdateMembershipRole/ErrNotFound", func(t *testing.T) {
		s := open(t)
		a := mustCreateUser(t, s, "alice")
		g := mustCreateGroup(t, s, "g", a.ID)
		_, err := s.UpdateMembershipRole(ctx(t), g.ID, aoba.NewID(), aoba.RoleAdmin)
		wantCode(t, err, aoba.ENOTFOUND)
	})
	t.Run("DeleteMembership/OK", func(t *testing.T) {
		s := open(t)
		a := mustCreateUser(t, s, "alice")
		b := mustCreateUser(t, s, "bob")
		g := mustCreateGroup(t, s, "g", a.ID)
		mustCreateMembership(t, s, g.ID, b.ID, aoba.RoleMember, aoba.Now())
		if err := s.DeleteMembership(ctx(t), g.ID, b.ID); err != nil {
			t.Fatalf("DeleteMembership: %v", err)
		}
		_, err := s.FindMembership(ctx(t), g.ID, b.ID)
		wantCode(t, err, aoba.ENOTFOUND)
		wantCode(t, s.DeleteMembership(ctx(t), g.ID, b.ID), aoba.ENOTFOUND)
		// A member who left may join again.
		mustCreateMembership(t, s, g.ID, b.ID, aoba.RoleMember, aoba.Now())
	})
	t.Run("DeleteMembership/ErrNotFound", func(t *testing.T) {
		s := open(t)
		wantCode(t, s.DeleteMembership(ctx(t), aoba.NewID(), aoba.NewID()), aoba.ENOTFOUND)
	})
}

func runInvitationTests(t *testing.T, open OpenFunc) {
	type fixture struct {
		s           aoba.Store
		owner, a, b *aoba.User
		g, other    *aoba.Group
		base        time.Time
	}
	setup := func(t *testing.T) fixture {
		s := open(t)
		f := fixture{s: s, base: aoba.Now()}
		f.owner = mustCreateUser(t, s, "owner")
		f.a = mustCreateUser(t, s, "alice")
		f.b = mustCreateUser(t, s, "bob")
		f.g = mustCreateGroup(t, s, "g", f.owner.ID)
		f.other = mustCreateGroup(t, s, "other", f.owner.ID)
		return f
	}
	t.Run("CreateInvitation/OK", func(t *testing.T) {
		f := setup(t)
		inv := mustCreateInvitation(t, f.s, f.g.ID, f.owner.ID, f.a.ID, f.base)
		got, err := f.s.FindInvitationByID(ctx(t), inv.ID)
		if err != nil {
			t.Fatalf("FindInvitationByID: %v", err)
		}
		if got.ID != inv.ID || got.GroupID != f.g.ID || got.InviterID != f.owner.ID || got.InviteeID != f.a.ID ||
			got.Status != aoba.InvitationPending || got.RespondedAt != nil {
			t.Fatalf("invitation = %+v, want %+v", got, inv)
		}
		wantTime(t, "CreatedAt", got.CreatedAt, f.base)
	})
	t.Run("CreateInvitation/ErrConflict", func(t *testing.T) {
		f := setup(t)
		mustCreateInvitation(t, f.s, f.g.ID, f.owner.ID, f.a.ID, f.base)
		dup := &aoba.Invitation{ID: aoba.NewID(), GroupID: f.g.ID, InviterID: f.b.ID, InviteeID: f.a.ID,
			Status: aoba.InvitationPending, CreatedAt: f.base}
		wantCode(t, f.s.CreateInvitation(ctx(t), dup), aoba.ECONFLICT)
		_, err := f.s.FindInvitationByID(ctx(t), dup.ID)
		wantCode(t, err, aoba.ENOTFOUND)
		// Another invitee, or another group, is fine.
		mustCreateInvitation(t, f.s, f.g.ID, f.owner.ID, f.b.ID, f.base)
		mustCreateInvitation(t, f.s, f.other.ID, f.owner.ID, f.a.ID, f.base)
	})
	t.Run("CreateInvitation/AfterResponse", func(t *testing.T) {
		f := setup(t)
		for _, status := range []aoba.InvitationStatus{aoba.InvitationDenied, aoba.InvitationCancelled, aoba.InvitationAccepted} {
			inv := mustCreateInvitation(t, f.s, f.g.ID, f.owner.ID, f.a.ID, f.base)
			if _, err := f.s.RespondInvitation(ctx(t), inv.ID, status, aoba.Now()); err != nil {
				t.Fatalf("RespondInvitation(%s): %v", status, err)
			}
		}
		mustCreateInvitation(t, f.s, f.g.ID, f.owner.ID, f.a.ID, f.base)
		invs, err := f.s.FindInvitations(ctx(t), aoba.InvitationFilter{GroupID: f.g.ID, InviteeID: f.a.ID})
		if err != nil || len(invs) != 4 {
			t.Fatalf("invitations = %d, %v; want 4", len(invs), err)
		}
	})
	t.Run("FindInvitationByID/ErrNotFound", func(t *testing.T) {
		f := setup(t)
		_, err := f.s.FindInvitationByID(ctx(t), aoba.NewID())
		wantCode(t, err, aoba.ENOTFOUND)
	})
	t.Run("FindInvitations/Filter", func(t *testing.T) {
		f := setup(t)
		i1 := mustCreateInvitation(t, f.s, f.g.ID, f.owner.ID, f.a.ID, f.base.Add(3*time.Second))
		i2 := mustCreateInvitation(t, f.s, f.other.ID, f.owner.ID, f.a.ID, f.base.Add(1*time.Second))
		i3 := mustCreateInvitation(t, f.s, f.g.ID, f.owner.ID, f.b.ID, f.base.Add(2*time.Second))
		if _, err := f.s.RespondInvitation(ctx(t), i2.ID, aoba.InvitationDenied, aoba.Now()); err != nil {
			t.Fatalf("RespondInvitation: %v", err)
		}
		ids := func(f aoba.InvitationFilter, s aoba.Store) []string {
			t.Helper()
			invs, err := s.FindInvitations(ctx(t), f)
			if err != nil {
				t.Fatalf("FindInvitations(%+v): %v", f, err)
			}
			out := make([]string, len(invs))
			for i, inv := range invs {
				out[i] = inv.ID
			}
			return out
		}
		wantStrings(t, "all", ids(aoba.InvitationFilter{}, f.s), []string{i2.ID, i3.ID, i1.ID})
		wantStrings(t, "by invitee", ids(aoba.InvitationFilter{InviteeID: f.a.ID}, f.s), []string{i2.ID, i1.ID})
		wantStrings(t, "by group", ids(aoba.InvitationFilter{GroupID: f.g.ID}, f.s), []string{i3.ID, i1.ID})
		wantStrings(t, "pending for invitee", ids(aoba.InvitationFilter{InviteeID: f.a.ID, Status: aoba.InvitationPending}, f.s), []string{i1.ID})
		wantStrings(t, "denied", ids(aoba.InvitationFilter{Status: aoba.InvitationDenied}, f.s), []string{i2.ID})
		wantStrings(t, "group and invitee", ids(aoba.InvitationFilter{GroupID: f.g.ID, InviteeID: f.b.ID}, f.s), []string{i3.ID})
		wantStrings(t, "none", ids(aoba.InvitationFilter{InviteeID: f.owner.ID}, f.s), nil)
	})
	t.Run("RespondInvitation/OK", func(t *testing.T) {
		f := setup(t)
		inv := mustCreateInvitation(t, f.s, f.g.ID, f.owner.ID, f.a.ID, f.base)
		at := aoba.Now().Add(time.Second)
		got, err := f.s.RespondInvitation(ctx(t), inv.ID, aoba.InvitationAccepted, at)
		if err != nil {
			t.Fatalf("RespondInvitation: %v", err)
		}
		if got.ID != inv.ID || got.Status != aoba.InvitationAccepted || got.RespondedAt == nil ||
			got.GroupID != f.g.ID || got.InviteeID != f.a.ID || got.InviterID != f.owner.ID {
			t.Fatalf("responded invitation = %+v", got)
		}
		wantTime(t, "RespondedAt", *got.RespondedAt, at)
		wantTime(t, "CreatedAt", got.CreatedAt, f.base)
		found, err := f.s.FindInvitationByID(ctx(t), inv.ID)
		if err != nil || found.Status != aoba.InvitationAccepted || found.RespondedAt == nil {
			t.Fatalf("stored invitation = %+v, %v", found, err)
		}
		wantTime(t, "stored RespondedAt", *found.RespondedAt, at)
	})
	t.Run("RespondInvitation/ErrConflict", func(t *testing.T) {
		f := setup(t)
		inv := mustCreateInvitation(t, f.s, f.g.ID, f.owner.ID, f.a.ID, f.base)
		if _, err := f.s.RespondInvitation(ctx(t), inv.ID, aoba.InvitationDenied, aoba.Now()); err != nil {
			t.Fatalf("RespondInvitation: %v", err)
		}
		_, err := f.s.RespondInvitation(ctx(t), inv.ID, aoba.InvitationAccepted, aoba.Now())
		wantCode(t, err, aoba.ECONFLICT)
		found, err := f.s.FindInvitationByID(ctx(t), inv.ID)
		if err != nil || found.Status != aoba.InvitationDenied {
			t.Fatalf("invitation after conflict = %+v, %v; want denied", found, err)
		}
	})
	t.Run("RespondInvitation/ErrNotFound", func(t *testing.T) {
		f := setup(t)
		_, err := f.s.RespondInvitation(ctx(t), aoba.NewID(), aoba.InvitationAccepted, aoba.Now())
		wantCode(t, err, aoba.ENOTFOUND)
	})
}

func runMessageTests(t *testing.T, open OpenFunc) {
	// conv stores messages in three conversations, in id order:
	// alice↔bob, alice↔carol, bob↔carol and the group.
	type fixture struct {
		s          aoba.Store
		a, b, c    string
		g          string
		all        []*aoba.Message // in creation (= id) order
		ab, ac, bc []*aoba.Message
		group      []*aoba.Message
	}
	setup := func(t *testing.T) *fixture {
		s := open(t)
		f := &fixture{s: s, a: aoba.NewID(), b: aoba.NewID(), c: aoba.NewID(), g: aoba.NewID()}
		base := aoba.Now()
		add := func(i int, from, to string, typ aoba.MessageType) *aoba.Message {
			conv := aoba.DirectConversation(from, to)
			if typ == aoba.MessageGroupChat {
				conv = aoba.GroupConversation(to)
			}
			m := &aoba.Message{
				ID: aoba.NewID(), Conversation: conv, FromID: from, ToID: to,
				FromName: "from-" + from[:8], ToName: "to-" + to[:8],
				Content: fmt.Sprintf("message %d", i), Type: typ, Timestamp: base.Add(time.Duration(i) * time.Millisecond),
			}
			if err := s.CreateMessage(ctx(t), m); err != nil {
				t.Fatalf("CreateMessage: %v", err)
			}
			f.all = append(f.all, m)
			return m
		}
		for i := 0; i < 12; i++ {
			switch i % 4 {
			case 0:
				f.ab = append(f.ab, add(i, f.a, f.b, aoba.MessageChat))
			case 1:
				f.ac = append(f.ac, add(i, f.c, f.a, aoba.MessageChat))
			case 2:
				f.bc = append(f.bc, add(i, f.b, f.c, aoba.MessageChat))
			case 3:
				f.group = append(f.group, add(i, f.a, f.g, aoba.MessageGroupChat))
			}
		}
		return f
	}
	find := func(t *testing.T, s aoba.Store, flt aoba.MessageFilter) ([]string, int) {
		t.Helper()
		ms, total, err := s.FindMessages(ctx(t), flt)
		if err != nil {
			t.Fatalf("FindMessages(%+v): %v", flt, err)
		}
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.ID
		}
		return ids, total
	}
	idsOf := func(ms ...*aoba.Message) []string {
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.ID
		}
		return ids
	}
	newestFirst := func(ms ...*aoba.Message) []string {
		ids := idsOf(ms...)
		sort.Sort(sort.Reverse(sort.StringSlice(ids)))
		return ids
	}
	oldestFirst := func(ms ...*aoba.Message) []string {
		ids := idsOf(ms...)
		sort.Strings(ids)
		return ids
	}

	t.Run("CreateMessage/RoundTrip", func(t *testing.T) {
		f := setup(t)
		want := f.group[1]
		ms, total, err := f.s.FindMessages(ctx(t), aoba.MessageFilter{Conversations: []string{aoba.GroupConversation(f.g)}})
		if err != nil {
			t.Fatalf("FindMessages: %v", err)
		}
		if total != 3 || len(ms) != 3 {
			t.Fatalf("got %d messages, total %d; want 3, 3", len(ms), total)
		}
		got := ms[1]
		if got.ID != want.ID || got.Conversation != want.Conversation || got.FromID != want.FromID ||
			got.ToID != want.ToID || got.FromName != want.FromName || got.ToName != want.ToName ||
			got.Content != want.Content || got.Type != want.Type {
			t.Fatalf("message = %+v, want %+v", got, want)
		}
		wantTime(t, "Timestamp", got.Timestamp, want.Timestamp)
	})
	t.Run("CreateMessage/Unicode", func(t *testing.T) {
		s := open(t)
		a, b := aoba.NewID(), aoba.NewID()
		content := "héllo 世界 🎉 \"quoted\" <b>&amp;</b>\n" + strings.Repeat("x", 100)
		m := &aoba.Message{ID: aoba.NewID(), Conversation: aoba.DirectConversation(a, b), FromID: a, ToID: b,
			FromName: "a", ToName: "b", Content: content, Type: aoba.MessageChat, Timestamp: aoba.Now()}
		if err := s.CreateMessage(ctx(t), m); err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}
		ms, _, err := s.FindMessages(ctx(t), aoba.MessageFilter{Conversations: []string{m.Conversation}})
		if err != nil || len(ms) != 1 || ms[0].Content != content {
			t.Fatalf("FindMessages = %+v, %v", ms, err)
		}
	})
	t.Run("CreateMessage/ClientID", func(t *testing.T) {
		s := open(t)
		a, b, c := aoba.NewID(), aoba.NewID(), aoba.NewID()
		msg := func(from, to, content, clientID string) *aoba.Message {
			return &aoba.Message{ID: aoba.NewID(), Conversation: aoba.DirectConversation(from, to), FromID: from, ToID: to,
				FromName: "from", ToName: "to", Content: content, Type: aoba.MessageChat, Timestamp: aoba.Now(), ClientID: clientID}
		}
		first := msg(a, b, "first", "device-1:42")
		if err := s.CreateMessage(ctx(t), first); err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}

		// A retry, even with other content, a later time and another
		// recipient, gets the first message and stores nothing.
		retry := msg(a, c, "edited", first.ClientID)
		retry.Timestamp = first.Timestamp.Add(time.Hour)
		err := s.CreateMessage(ctx(t), retry)
		wantCode(t, err, aoba.ECONFLICT)
		var dup *aoba.DuplicateMessageError
		if !errors.As(err, &dup) {
			t.Fatalf("CreateMessage with a used client id: %v, want a DuplicateMessageError", err)
		}
		got := dup.Message
		if got.ID != first.ID || got.Content != "first" || got.ToID != b || got.ClientID != first.ClientID ||
			got.Conversation != first.Conversation || got.FromID != a {
			t.Fatalf("duplicate of %+v, want %+v", got, first)
		}
		wantTime(t, "duplicate's Timestamp", got.Timestamp, first.Timestamp)
		ms, total, err := s.FindMessages(ctx(t), aoba.MessageFilter{ParticipantID: a})
		if err != nil || total != 1 || len(ms) != 1 || ms[0].ID != first.ID || ms[0].ClientID != first.ClientID {
			t.Fatalf("FindMessages = %+v, %d, %v; want the first message only, with its client id", ms, total, err)
		}

		// Client ids are per sender; no client id means no deduplication.
		other := msg(b, a, "first", first.ClientID)
		if err := s.CreateMessage(ctx(t), other); err != nil {
			t.Fatalf("CreateMessage by another sender with the same client id: %v", err)
		}
		for range 2 {
			if err := s.CreateMessage(ctx(t), msg(a, b, "same", "")); err != nil {
				t.Fatalf("CreateMessage without a client id: %v", err)
			}
		}
		ms, total, err = s.FindMessages(ctx(t), aoba.MessageFilter{Conversations: []string{first.Conversation}})
		if err != nil || total != 4 {
			t.Fatalf("FindMessages = %d messages, %v; want 4", total, err)
		}
		for _, m := range ms {
			if want := map[string]string{first.ID: first.ClientID, other.ID: other.ClientID}[m.ID]; m.ClientID != want {
				t.Fatalf("message %s client id = %q, want %q", m.ID, m.ClientID, want)
			}
		}

		// A reused message id is still a plain conflict.
		sameID := msg(a, b, "x", "device-1:43")
		sameID.ID = first.ID
		err = s.CreateMessage(ctx(t), sameID)
		wantCode(t, err, aoba.ECONFLICT)
		if errors.As(err, &dup) {
			t.Fatalf("CreateMessage with a used id returned the duplicate %+v", dup.Message)
		}
	})
	t.Run("FindMessages/Conversation", func(t *testing.T) {
		f := setup(t)
		ids, total := find(t, f.s, aoba.MessageFilter{Conversations: []string{aoba.DirectConversation(f.b, f.a)}})
		wantStrings(t, "alice-bob", ids, newestFirst(f.ab...))
		if total != 3 {
			t.Fatalf("total = %d, want 3", total)
		}
		ids, total = find(t, f.s, aoba.MessageFilter{Conversations: []string{aoba.DirectConversation(f.a, f.b), aoba.GroupConversation(f.g)}})
		wantStrings(t, "alice-bob and group", ids, newestFirst(append(append([]*aoba.Message{}, f.ab...), f.group...)...))
		if total != 6 {
			t.Fatalf("total = %d, want 6", total)
		}
		ids, total = find(t, f.s, aoba.MessageFilter{Conversations: []string{aoba.GroupConversation(aoba.NewID())}})
		if len(ids) != 0 || total != 0 {
			t.Fatalf("unknown conversation = %v, %d; want none", ids, total)
		}
	})
	t.Run("FindMessages/Participant", func(t *testing.T) {
		f := setup(t)
		// Alice's 1:1 messages, sent or received, and not bob↔carol.
		ids, total := find(t, f.s, aoba.MessageFilter{ParticipantID: f.a})
		wantStrings(t, "alice's chats", ids, newestFirst(append(append([]*aoba.Message{}, f.ab...), f.ac...)...))
		if total != 6 {
			t.Fatalf("total = %d, want 6", total)
		}
		// With her group's conversation as well; a group message she sent is
		// read once, through the group, not as a 1:1 message.
		ids, total = find(t, f.s, aoba.MessageFilter{ParticipantID: f.a, Conversations: []string{aoba.GroupConversation(f.g)}})
		wantStrings(t, "alice's chats and group", ids, newestFirst(append(append(append([]*aoba.Message{}, f.ab...), f.ac...), f.group...)...))
		if total != 9 {
			t.Fatalf("total = %d, want 9", total)
		}
		// A conversation named and also read through the participant
		// yields each message once.
		ids, total = find(t, f.s, aoba.MessageFilter{ParticipantID: f.a, Conversations: []string{aoba.DirectConversation(f.a, f.b)}})
		wantStrings(t, "alice's chats, alice-bob named", ids, newestFirst(append(append([]*aoba.Message{}, f.ab...), f.ac...)...))
		if total != 6 {
			t.Fatalf("total = %d, want 6", total)
		}
		ids, total = find(t, f.s, aoba.MessageFilter{ParticipantID: aoba.NewID()})
		if len(ids) != 0 || total != 0 {
			t.Fatalf("stranger's chats = %v, %d; want none", ids, total)
		}
	})
	t.Run("FindMessages/Paging", func(t *testing.T) {
		f := setup(t)
		flt := aoba.MessageFilter{ParticipantID: f.a, Conversations: []string{aoba.GroupConversation(f.g)}}
		all, _ := find(t, f.s, flt)
		flt.Offset, flt.Limit = 2, 3
		ids, total := find(t, f.s, flt)
		wantStrings(t, "page", ids, all[2:5])
		if total != 9 {
			t.Fatalf("total = %d, want 9", total)
		}
		flt.Offset, flt.Limit = 8, 3
		ids, total = find(t, f.s, flt)
		wantStrings(t, "last page", ids, all[8:])
		if total != 9 {
			t.Fatalf("total = %d, want 9", total)
		}
		flt.Offset, flt.Limit = 20, 3
		ids, total = find(t, f.s, flt)
		if len(ids) != 0 || total != 9 {
			t.Fatalf("past the end = %v, %d; want none, 9", ids, total)
		}
	})
	t.Run("FindMessages/AfterID", func(t *testing.T) {
		f := setup(t)
		// Catch-up: messages after the cursor, oldest first.
		flt := aoba.MessageFilter{ParticipantID: f.a, Conversations: []string{aoba.GroupConversation(f.g)}, AfterID: f.all[4].ID}
		var want []*aoba.Message
		for _, m := range f.all[5:] {
			if m.Conversation != aoba.DirectConversation(f.b, f.c) {
				want = append(want, m)
			}
		}
		ids, total := find(t, f.s, flt)
		wantStrings(t, "after", ids, oldestFirst(want...))
		if total != len(want) {
			t.Fatalf("total = %d, want %d", total, len(want))
		}
		flt.Limit = 2
		ids, total = find(t, f.s, flt)
		wantStrings(t, "after, first page", ids, oldestFirst(want...)[:2])
		if total != len(want) {
			t.Fatalf("total = %d, want %d", total, len(want))
		}
		flt.AfterID, flt.Limit = f.all[len(f.all)-1].ID, 0
		ids, total = find(t, f.s, flt)
		if len(ids) != 0 || total != 0 {
			t.Fatalf("after the newest = %v, %d; want none", ids, total)
		}
	})
	t.Run("FindMessages/BeforeID", func(t *testing.T) {
		f := setup(t)
		flt := aoba.MessageFilter{Conversations: []string{aoba.DirectConversation(f.a, f.b), aoba.DirectConversation(f.b, f.c)}, BeforeID: f.all[8].ID}
		// ab holds messages 0, 4, 8; bc holds 2, 6, 10.
		want := []*aoba.Message{f.all[0], f.all[2], f.all[4], f.all[6]}
		ids, total := find(t, f.s, flt)
		wantStrings(t, "before", ids, newestFirst(want...))
		if total != 4 {
			t.Fatalf("total = %d, want 4", total)
		}
		flt.Limit = 3
		ids, _ = find(t, f.s, flt)
		wantStrings(t, "before, first page", ids, newestFirst(want...)[:3])
		flt.BeforeID, flt.Limit = f.all[0].ID, 0
		ids, total = find(t, f.s, flt)
		if len(ids) != 0 || total != 0 {
			t.Fatalf("before the oldest = %v, %d; want none", ids, total)
		}
	})
	t.Run("FindMessages/Empty", func(t *testing.T) {
		s := open(t)
		ms, total, err := s.FindMessages(ctx(t), aoba.MessageFilter{ParticipantID: aoba.NewID(), Limit: 10})
		if err != nil || len(ms) != 0 || total != 0 {
			t.Fatalf("FindMessages on empty store = %v, %d, %v", ms, total, err)
		}
	})
	t.Run("FindMessageByID/OK", func(t *testing.T) {
		f := setup(t)
		want := f.group[0]
		got, err := f.s.FindMessageByID(ctx(t), want.ID)
		if err != nil {
			t.Fatalf("FindMessageByID: %v", err)
		}
		if got.ID != want.ID || got.Conversation != want.Conversation || got.FromID != want.FromID ||
			got.ToID != want.ToID || got.Content != want.Content || got.Type != want.Type ||
			got.EditedAt != nil || got.Deleted {
			t.Fatalf("message = %+v, want %+v", got, want)
		}
		wantTime(t, "Timestamp", got.Timestamp, want.Timestamp)
	})
	t.Run("FindMessageByID/ErrNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.FindMessageByID(ctx(t), aoba.NewID())
		wantCode(t, err, aoba.ENOTFOUND)
	})
	t.Run("UpdateMessage/Edit", func(t *testing.T) {
		f := setup(t)
		m := *f.ab[1]
		at := aoba.Now()
		m.Content, m.EditedAt = "edited", &at
		m.FromName = "ignored" // only content, edited_at and deleted are written
		if err := f.s.UpdateMessage(ctx(t), &m); err != nil {
			t.Fatalf("UpdateMessage: %v", err)
		}
		got, err := f.s.FindMessageByID(ctx(t), m.ID)
		if err != nil {
			t.Fatalf("FindMessageByID: %v", err)
		}
		if got.Content != "edited" || got.Deleted || got.EditedAt == nil || got.FromName != f.ab[1].FromName {
			t.Fatalf("after edit = %+v", got)
		}
		wantTime(t, "EditedAt", *got.EditedAt, at)
		// FindMessages shows the edit too.
		ms, _, err := f.s.FindMessages(ctx(t), aoba.MessageFilter{Conversations: []string{m.Conversation}})
		if err != nil {
			t.Fatalf("FindMessages: %v", err)
		}
		for _, x := range ms {
			if x.ID == m.ID && (x.Content != "edited" || x.EditedAt == nil) {
				t.Fatalf("FindMessages shows %+v", x)
			}
		}
	})
	t.Run("UpdateMessage/Delete", func(t *testing.T) {
		f := setup(t)
		m := *f.group[2]
		m.Content, m.Deleted = "", true
		if err := f.s.UpdateMessage(ctx(t), &m); err != nil {
			t.Fatalf("UpdateMessage: %v", err)
		}
		ms, _, err := f.s.FindMessages(ctx(t), aoba.MessageFilter{Conversations: []string{m.Conversation}})
		if err != nil || len(ms) != 3 {
			t.Fatalf("FindMessages = %d, %v; want 3 messages", len(ms), err)
		}
		if got := ms[0]; got.ID != m.ID || got.Content != "" || !got.Deleted || got.EditedAt != nil {
			t.Fatalf("deleted message = %+v", got)
		}
		if ms[1].Deleted {
			t.Fatalf("another message is deleted: %+v", ms[1])
		}
	})
	t.Run("UpdateMessage/ErrNotFound", func(t *testing.T) {
		s := open(t)
		err := s.UpdateMessage(ctx(t), &aoba.Message{ID: aoba.NewID(), Content: "x"})
		wantCode(t, err, aoba.ENOTFOUND)
	})
}

// race runs fn in Concurrency goroutines, released together, and returns
// their errors.
func race(fn func(i int) error) []error {
	errs := make([]error, Concurrency)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// wantOneWinner fails the test unless exactly one error is nil and every
// other carries ECONFLICT. It returns the winner's index.
func wantOneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch code := aoba.ErrorCode(err); code {
		case "":
			if winner >= 0 {
				t.Fatalf("calls %d and %d both succeeded", winner, i)
			}
			winner = i
		case aoba.ECONFLICT:
		default:
			t.Fatalf("call %d: error code %q, want conflict (err: %v)", i, code, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no call succeeded")
	}
	return winner
}

func runConcurrencyTests(t *testing.T, open OpenFunc) {
	t.Run("CreateUser", func(t *testing.T) {
		s := open(t)
		c := ctx(t)
		users := make([]*aoba.User, Concurrency)
		errs := race(func(i int) error {
			// Every goroutine spells "racer" in its own case mix.
			name := []byte("racer")
			for j := range name {
				if i>>j&1 == 1 {
					name[j] -= 'a' - 'A'
				}
			}
			users[i] = &aoba.User{ID: aoba.NewID(), Username: string(name), PasswordHash: "h", CreatedAt: aoba.Now()}
			return s.CreateUser(c, users[i])
		})
		w := wantOneWinner(t, errs)
		got, err := s.FindUserByUsername(c, "RACER")
		if err != nil || got.ID != users[w].ID {
			t.Fatalf("FindUserByUsername = %+v, %v; want the winner %+v", got, err, users[w])
		}
		all, total, err := s.FindUsers(c, aoba.UserFilter{Query: "racer", Limit: 100})
		if err != nil || total != 1 || len(all) != 1 {
			t.Fatalf("FindUsers = %v, %d, %v; want exactly one user", userNames(all), total, err)
		}
	})
	t.Run("UpdateUsername", func(t *testing.T) {
		s := open(t)
		c := ctx(t)
		users := make([]*aoba.User, Concurrency)
		for i := range users {
			users[i] = mustCreateUser(t, s, fmt.Sprintf("user%02d", i))
		}
		errs := race(func(i int) error {
			name := "target"
			if i%2 == 1 {
				name = "TARGET"
			}
			_, err := s.UpdateUsername(c, users[i].ID, name)
			return err
		})
		w := wantOneWinner(t, errs)
		got, err := s.FindUserByUsername(c, "Target")
		if err != nil || got.ID != users[w].ID {
			t.Fatalf("FindUserByUsername = %+v, %v; want the winner", got, err)
		}
		all, total, err := s.FindUsers(c, aoba.UserFilter{Query: "target", Limit: 100})
		if err != nil || total != 1 || len(all) != 1 {
			t.Fatalf("FindUsers = %v, %d, %v; want exactly one user", userNames(all), total, err)
		}
		// The losers keep their names.
		for i, u := range users {
			if i == w {
				continue
			}
			got, err := s.FindUserByUsername(c, u.Username)
			if err != nil || got.ID != u.ID {
				t.Fatalf("loser %d lost its name: %+v, %v", i, got, err)
			}
		}
	})
	t.Run("CreateUserAndUpdateUsername", func(t *testing.T) {
		s := open(t)
		c := ctx(t)
		users := make([]*aoba.User, Concurrency)
		for i := 0; i < Concurrency; i += 2 {
			users[i] = mustCreateUser(t, s, fmt.Sprintf("renamer%02d", i))
		}
		errs := race(func(i int) error {
			if i%2 == 0 {
				_, err := s.UpdateUsername(c, users[i].ID, "Prize")
				return err
			}
			users[i] = &aoba.User{ID: aoba.NewID(), Username: "pRIZE", PasswordHash: "h", CreatedAt: aoba.Now()}
			return s.CreateUser(c, users[i])
		})
		w := wantOneWinner(t, errs)
		got, err := s.FindUserByUsername(c, "prize")
		if err != nil || got.ID != users[w].ID {
			t.Fatalf("FindUserByUsername = %+v, %v; want the winner %+v", got, err, users[w])
		}
		all, total, err := s.FindUsers(c, aoba.UserFilter{Query: "prize", Limit: 100})
		if err != nil || total != 1 || len(all) != 1 {
			t.Fatalf("FindUsers = %v, %d, %v; want exactly one user", userNames(all), total, err)
		}
	})
	t.Run("CreateInvitation", func(t *testing.T) {
		s := open(t)
		c := ctx(t)
		owner := mustCreateUser(t, s, "owner")
		invitee := mustCreateUser(t, s, "invitee")
		g := mustCreateGroup(t, s, "g", owner.ID)
		errs := race(func(i int) error {
			return s.CreateInvitation(c, &aoba.Invitation{ID: aoba.NewID(), GroupID: g.ID, InviterID: owner.ID,
				InviteeID: invitee.ID, Status: aoba.InvitationPending, CreatedAt: aoba.Now()})
		})
		wantOneWinner(t, errs)
		invs, err := s.FindInvitations(c, aoba.InvitationFilter{GroupID: g.ID, InviteeID: invitee.ID})
		if err != nil || len(invs) != 1 {
			t.Fatalf("FindInvitations = %d, %v; want exactly one", len(invs), err)
		}
	})
	t.Run("RespondInvitation", func(t *testing.T) {
		s := open(t)
		c := ctx(t)
		owner := mustCreateUser(t, s, "owner")
		invitee := mustCreateUser(t, s, "invitee")
		g := mustCreateGroup(t, s, "g", owner.ID)
		inv := mustCreateInvitation(t, s, g.ID, owner.ID, invitee.ID, aoba.Now())
		statuses := []aoba.InvitationStatus{aoba.InvitationAccepted, aoba.InvitationDenied, aoba.InvitationCancelled}
		results := make([]*aoba.Invitation, Concurrency)
		errs := race(func(i int) error {
			var err error
			results[i], err = s.RespondInvitation(c, inv.ID, statuses[i%len(statuses)], aoba.Now())
			return err
		})
		w := wantOneWinner(t, errs)
		got, err := s.FindInvitationByID(c, inv.ID)
		if err != nil || got.Status != statuses[w%len(statuses)] || results[w].Status != got.Status {
			t.Fatalf("invitation = %+v, %v; want the winner's status %s", got, err, statuses[w%len(statuses)])
		}
	})
	t.Run("TransferGroupOwnership", func(t *testing.T) {
		s := open(t)
		c := ctx(t)
		owner := mustCreateUser(t, s, "owner")
		g := mustCreateGroup(t, s, "g", owner.ID)
		targets := make([]string, Concurrency)
		for i := range targets {
			targets[i] = aoba.NewID()
		}
		errs := race(func(i int) error {
			return s.TransferGroupOwnership(c, g.ID, owner.ID, targets[i])
		})
		w := wantOneWinner(t, errs)
		got, err := s.FindGroupByID(c, g.ID)
		if err != nil || got.OwnerID != targets[w] {
			t.Fatalf("group = %+v, %v; want owner %s", got, err, targets[w])
		}
	})
	t.Run("CreateMembership", func(t *testing.T) {
		s := open(t)
		c := ctx(t)
		owner := mustCreateUser(t, s, "owner")
		u := mustCreateUser(t, s, "joiner")
		g := mustCreateGroup(t, s, "g", owner.ID)
		errs := race(func(i int) error {
			return s.CreateMembership(c, &aoba.Membership{GroupID: g.ID, UserID: u.ID, Role: aoba.RoleMember, JoinedAt: aoba.Now()})
		})
		wantOneWinner(t, errs)
		ms, err := s.FindMembershipsByGroup(c, g.ID)
		if err != nil || len(ms) != 2 {
			t.Fatalf("memberships = %d, %v; want 2", len(ms), err)
		}
	})
	t.Run("CreateMessage", func(t *testing.T) {
		s := open(t)
		c := ctx(t)
		a, b := aoba.NewID(), aoba.NewID()
		conv := aoba.DirectConversation(a, b)
		errs := race(func(i int) error {
			return s.CreateMessage(c, &aoba.Message{ID: aoba.NewID(), Conversation: conv, FromID: a, ToID: b,
				FromName: "a", ToName: "b", Content: fmt.Sprint(i), Type: aoba.MessageChat, Timestamp: aoba.Now()})
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("CreateMessage %d: %v", i, err)
			}
		}
		_, total, err := s.FindMessages(c, aoba.MessageFilter{Conversations: []string{conv}, Limit: 1})
		if err != nil || total != Concurrency {
			t.Fatalf("total = %d, %v; want %d", total, err, Concurrency)
		}
	})
	t.Run("CreateMessageClientID", func(t *testing.T) {
		s := open(t)
		c := ctx(t)
		a, b := aoba.NewID(), aoba.NewID()
		conv := aoba.DirectConversation(a, b)
		msgs := make([]*aoba.Message, Concurrency)
		errs := race(func(i int) error {
			msgs[i] = &aoba.Message{ID: aoba.NewID(), Conversation: conv, FromID: a, ToID: b, FromName: "a", ToName: "b",
				Content: fmt.Sprint(i), Type: aoba.MessageChat, Timestamp: aoba.Now(), ClientID: "same"}
			return s.CreateMessage(c, msgs[i])
		})
		w := wantOneWinner(t, errs)
		for i, err := range errs {
			var dup *aoba.DuplicateMessageError
			if i != w && (!errors.As(err, &dup) || dup.Message.ID != msgs[w].ID || dup.Message.Content != msgs[w].Content) {
				t.Fatalf("call %d: %v, want the winner's message %s", i, err, msgs[w].ID)
			}
		}
		ms, total, err := s.FindMessages(c, aoba.MessageFilter{Conversations: []string{conv}})
		if err != nil || total != 1 || ms[0].ID != msgs[w].ID {
			t.Fatalf("FindMessages = %d messages, %v; want only the winner's", total, err)
		}
	})
}
