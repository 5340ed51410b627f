package aoba_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aoba-chat/aoba"
)

func TestService_Register(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		u, err := ts.Register(ctx, "Alice_1", testPassword)
		if err != nil {
			t.Fatal(err)
		}
		if !aoba.IsValidID(u.ID) || u.Username != "Alice_1" || u.CreatedAt.IsZero() {
			t.Fatalf("registered %+v", u)
		}
		if u.PasswordHash == "" || strings.Contains(u.PasswordHash, testPassword) {
			t.Fatalf("password hash %q", u.PasswordHash)
		}
		got, err := ts.FindUserByUsername(ctx, "alice_1")
		if err != nil || got.ID != u.ID || got.Username != "Alice_1" {
			t.Fatalf("FindUserByUsername(alice_1) = %+v, %v; the name keeps its case and is found in any", got, err)
		}
	})
	t.Run("ErrUsernameInvalid", func(t *testing.T) {
		for _, name := range []string{"", "ab", "al ice", "ali.ce", "alïce", "bob@example", strings.Repeat("a", 256)} {
			_, err := ts.Register(ctx, name, testPassword)
			wantCode(t, err, aoba.EINVALID)
		}
	})
	t.Run("UsernameBounds", func(t *testing.T) {
		for _, name := range []string{"a-_", strings.Repeat("b", 255)} {
			if _, err := ts.Register(ctx, name, testPassword); err != nil {
				t.Fatalf("Register(%d characters): %v", len(name), err)
			}
		}
	})
	t.Run("ErrPasswordInvalid", func(t *testing.T) {
		for _, pw := range []string{"", "short", "ééééééé" /* 7 characters, 14 bytes */, strings.Repeat("a fine passphrase ", 8)[:129]} {
			_, err := ts.Register(ctx, "carol", pw)
			wantCode(t, err, aoba.EINVALID)
		}
		if _, err := ts.FindUserByUsername(ctx, "carol"); aoba.ErrorCode(err) != aoba.ENOTFOUND {
			t.Fatalf("a refused registration left an account: %v", err)
		}
	})
	t.Run("PasswordBounds", func(t *testing.T) {
		// Characters, not bytes: 128 two-byte characters are allowed.
		pw := []rune(strings.Repeat("une phrase é ", 10))[:128]
		if _, err := ts.Register(ctx, "dave", string(pw)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrUsernameTaken", func(t *testing.T) {
		for _, name := range []string{"Alice_1", "alice_1", "ALICE_1"} {
			_, err := ts.Register(ctx, name, testPassword)
			wantCode(t, err, aoba.ECONFLICT)
		}
	})
}

func TestService_ChangeUsername(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	alice := ts.MustRegister(t, "alice")
	bob := ts.MustRegister(t, "bob")

	t.Run("OK", func(t *testing.T) {
		u, err := ts.ChangeUsername(ctx, bob.Claims, "robert")
		if err != nil || u.ID != bob.ID || u.Username != "robert" {
			t.Fatalf("ChangeUsername = %+v, %v", u, err)
		}
		_, err = ts.FindUserByUsername(ctx, "bob")
		wantCode(t, err, aoba.ENOTFOUND)
		ts.MustLogin(t, "robert")
		// The old name is free again.
		ts.MustRegister(t, "bob")
	})
	t.Run("OwnNameInAnotherCase", func(t *testing.T) {
		if u, err := ts.ChangeUsername(ctx, alice.Claims, "ALICE"); err != nil || u.Username != "ALICE" {
			t.Fatalf("ChangeUsername(ALICE) = %+v, %v", u, err)
		}
	})
	t.Run("ErrUsernameTaken", func(t *testing.T) {
		_, err := ts.ChangeUsername(ctx, alice.Claims, "Robert")
		wantCode(t, err, aoba.ECONFLICT)
	})
	t.Run("ErrUsernameInvalid", func(t *testing.T) {
		for _, name := range []string{"", "x", "no spaces"} {
			_, err := ts.ChangeUsername(ctx, alice.Claims, name)
			wantCode(t, err, aoba.EINVALID)
		}
	})
	t.Run("ErrAccountGone", func(t *testing.T) {
		_, err := ts.ChangeUsername(ctx, aoba.Claims{UserID: aoba.NewID()}, "ghost")
		wantCode(t, err, aoba.EUNAUTHORIZED)
	})
}

func TestService_ChangePassword(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	const next = "another fine passphrase"

	t.Run("OK", func(t *testing.T) {
		here := ts.MustRegister(t, "alice")
		there := ts.MustLogin(t, "alice")
		ts.Subscribe(t, aoba.UserTopic(here.ID))
		if err := ts.ChangePassword(ctx, here.Claims, testPassword, next); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Authenticate(ctx, here.Token); err != nil {
			t.Fatalf("the current session: %v", err)
		}
		_, err := ts.Authenticate(ctx, there.Token)
		wantCode(t, err, aoba.EUNAUTHORIZED)

		envs := ts.Published(t, aoba.UserTopic(here.ID))
		if len(envs) != 1 || envs[0].Close == nil {
			t.Fatalf("published %s, want one close order", describe(envs))
		}
		if o := envs[0].Close; o.Code != 4001 || o.KeepSession != here.SessionID || o.Session != "" {
			t.Fatalf("close order %+v, want code 4001 sparing session %s", o, here.SessionID)
		}

		_, _, _, err = ts.Login(ctx, "alice", testPassword, aoba.Device{})
		wantCode(t, err, aoba.EUNAUTHORIZED)
		if _, _, _, err := ts.Login(ctx, "alice", next, aoba.Device{}); err != nil {
			t.Fatalf("login with the new password: %v", err)
		}
	})

	bob := ts.MustRegister(t, "bob")
	t.Run("ErrCurrentRequired", func(t *testing.T) {
		wantCode(t, ts.ChangePassword(ctx, bob.Claims, "", next), aoba.EINVALID)
	})
	t.Run("ErrPasswordInvalid", func(t *testing.T) {
		wantCode(t, ts.ChangePassword(ctx, bob.Claims, testPassword, "short"), aoba.EINVALID)
		wantCode(t, ts.ChangePassword(ctx, bob.Claims, testPassword, strings.Repeat("p", 129)), aoba.EINVALID)
	})
	t.Run("ErrCurrentWrong", func(t *testing.T) {
		other := ts.MustLogin(t, "bob")
		wantCode(t, ts.ChangePassword(ctx, bob.Claims, "not my passphrase", next), aoba.EFORBIDDEN)
		wantCode(t, ts.ChangePassword(ctx, bob.Claims, strings.Repeat("x", 4096), next), aoba.EFORBIDDEN)
		// A refused change signs nobody out and keeps the password.
		if _, err := ts.Authenticate(ctx, other.Token); err != nil {
			t.Fatalf("another session after a refused change: %v", err)
		}
		ts.MustLogin(t, "bob")
	})
	t.Run("ErrAccountGone", func(t *testing.T) {
		err := ts.ChangePassword(ctx, aoba.Claims{UserID: aoba.NewID()}, testPassword, next)
		wantCode(t, err, aoba.EUNAUTHORIZED)
	})
}

func TestService_DeleteAccount(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		here := ts.MustRegister(t, "alice")
		there := ts.MustLogin(t, "alice")
		ts.Subscribe(t, aoba.UserTopic(here.ID))
		if err := ts.DeleteAccount(ctx, here.Claims); err != nil {
			t.Fatal(err)
		}
		for _, a := range []Account{here, there} {
			_, err := ts.Authenticate(ctx, a.Token)
			wantCode(t, err, aoba.EUNAUTHORIZED)
		}
		_, err := ts.Me(ctx, here.Claims)
		wantCode(t, err, aoba.EUNAUTHORIZED)
		_, err = ts.FindUserByUsername(ctx, "alice")
		wantCode(t, err, aoba.ENOTFOUND)
		wantCode(t, ts.DeleteAccount(ctx, here.Claims), aoba.EUNAUTHORIZED)

		envs := ts.Published(t, aoba.UserTopic(here.ID))
		if len(envs) != 1 || envs[0].Close == nil {
			t.Fatalf("published %s, want one close order", describe(envs))
		}
		if o := envs[0].Close; o.Code != aoba.CloseSessionRevoked || o.Session != "" || o.KeepSession != "" {
			t.Fatalf("close order %+v, want code 4001 for every session", o)
		}
		// The name is free again.
		ts.MustRegister(t, "alice")
	})

	// handOver deletes owner's account and returns the new owner's view of
	// the group.
	handOver := func(t *testing.T, owner Account, g *aoba.GroupView, successor Account) *aoba.GroupAdminView {
		t.Helper()
		if err := ts.DeleteAccount(ctx, owner.Claims); err != nil {
			t.Fatal(err)
		}
		v, err := ts.GroupAdmin(ctx, successor.Claims, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v.CurrentUserRole != aoba.RoleOwner || v.OwnerCount != 1 || v.Group.OwnerID != successor.ID {
			t.Fatalf("after the owner left: role %s, %d owners, owner %s; want %s the one owner",
				v.CurrentUserRole, v.OwnerCount, v.Group.OwnerUsername, successor.Username)
		}
		for _, m := range v.Members {
			if m.UserID == owner.ID {
				t.Fatal("the deleted owner is still a member")
			}
		}
		return v
	}
	t.Run("HandsGroupToLongestStandingAdmin", func(t *testing.T) {
		// Registered in the opposite order of joining, so that neither user
		// id order nor registration order picks the right admin by chance.
		owner := ts.MustRegister(t, "owner1")
		admin2 := ts.MustRegister(t, "admin12")
		admin1 := ts.MustRegister(t, "admin11")
		member := ts.MustRegister(t, "member1")
		g := ts.MustCreateGroup(t, owner, "handover", member.As(aoba.RoleMember), admin1.As(aoba.RoleAdmin), admin2.As(aoba.RoleAdmin))
		ts.Subscribe(t, aoba.UserTopic(member.ID), aoba.UserTopic(owner.ID))
		ts.Forget(t)
		v := handOver(t, owner, g, admin1)
		if len(v.Members) != 3 || v.AdminCount != 1 {
			t.Fatalf("members %d, admins %d; want 3 and 1", len(v.Members), v.AdminCount)
		}

		// The other members hear of the new owner, then of the departure.
		var events []string
		for _, env := range framesOf(t, ts.Published(t, aoba.UserTopic(member.ID)), aoba.FrameGroup) {
			ev := dataOf[aoba.GroupEvent](t, env, aoba.FrameGroup)
			events = append(events, ev.Event)
			if ev.Event == aoba.GroupOwnerTransferred && (ev.PreviousOwner != "owner1" || ev.NewOwner != "admin11") {
				t.Fatalf("owner_transferred %+v", ev)
			}
		}
		if strings.Join(events, ",") != aoba.GroupOwnerTransferred+","+aoba.GroupMemberLeft {
			t.Fatalf("group events %v", events)
		}
		// The departed user's pods leave the group topic.
		var left bool
		for _, env := range ts.Published(t, aoba.UserTopic(owner.ID)) {
			left = left || env.Leave == g.ID
		}
		if !left {
			t.Fatal("no Leave order on the deleted user's topic")
		}
	})
	t.Run("HandsGroupToLongestStandingMember", func(t *testing.T) {
		owner := ts.MustRegister(t, "owner2")
		member2 := ts.MustRegister(t, "member22")
		member1 := ts.MustRegister(t, "member21")
		g := ts.MustCreateGroup(t, owner, "handover", member1.As(aoba.RoleMember), member2.As(aoba.RoleMember))
		handOver(t, owner, g, member1)
	})
	t.Run("DeletesGroupOfLastMember", func(t *testing.T) {
		owner := ts.MustRegister(t, "owner3")
		invitee := ts.MustRegister(t, "invitee3")
		res, err := ts.CreateGroup(ctx, owner.Claims, "alone", []string{"invitee3"})
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.DeleteAccount(ctx, owner.Claims); err != nil {
			t.Fatal(err)
		}
		_, err = ts.Store.FindGroupByID(ctx, res.Group.ID)
		wantCode(t, err, aoba.ENOTFOUND)
		_, err = ts.AcceptInvitation(ctx, invitee.Claims, res.Invitations[0].ID)
		wantCode(t, err, aoba.ENOTFOUND)
	})
	t.Run("LeavesOtherGroups", func(t *testing.T) {
		owner := ts.MustRegister(t, "owner4")
		member := ts.MustRegister(t, "member4")
		g := ts.MustCreateGroup(t, owner, "others", member.As(aoba.RoleAdmin))
		if err := ts.DeleteAccount(ctx, member.Claims); err != nil {
			t.Fatal(err)
		}
		v, err := ts.GetGroup(ctx, owner.Claims, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Members) != 1 || v.OwnerID != owner.ID {
			t.Fatalf("group after a member deleted their account: %+v", v)
		}
	})
	t.Run("CancelsPendingInvitations", func(t *testing.T) {
		owner := ts.MustRegister(t, "owner5")
		invitee := ts.MustRegister(t, "invitee5")
		res, err := ts.CreateGroup(ctx, owner.Claims, "invites", []string{"invitee5"})
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.DeleteAccount(ctx, invitee.Claims); err != nil {
			t.Fatal(err)
		}
		inv, err := ts.Store.FindInvitationByID(ctx, res.Invitations[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if inv.Status != aoba.InvitationCancelled {
			t.Fatalf("invitation of a deleted account is %s, want cancelled", inv.Status)
		}
	})
	t.Run("CancelsInvitationsTheySent", func(t *testing.T) {
		owner := ts.MustRegister(t, "owner6")
		inviter := ts.MustRegister(t, "inviter6")
		invitee := ts.MustRegister(t, "invitee6")
		g := ts.MustCreateGroup(t, owner, "sent", inviter.As(aoba.RoleMember))
		inv, err := ts.Invite(ctx, inviter.Claims, g.ID, "invitee6")
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.DeleteAccount(ctx, inviter.Claims); err != nil {
			t.Fatal(err)
		}
		if invs, err := ts.ListInvitations(ctx, invitee.Claims); err != nil || len(invs) != 0 {
			t.Fatalf("ListInvitations = %d, %v; want none", len(invs), err)
		}
		_, err = ts.AcceptInvitation(ctx, invitee.Claims, inv.ID)
		wantCode(t, err, aoba.ENOTFOUND)
	})
}

func TestService_FindUsers(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	// Registered out of order and in mixed case: search orders by name,
	// ignoring case.
	var ids = map[string]string{}
	for _, name := range []string{"srch_d", "srch_B", "srch_e", "srch_a", "SRCH_c", "other"} {
		ids[name] = ts.MustRegister(t, name).ID
	}
	names := func(us []*aoba.User) string {
		out := make([]string, len(us))
		for i, u := range us {
			out[i] = u.Username
		}
		return strings.Join(out, ",")
	}

	t.Run("SearchUsers", func(t *testing.T) {
		for _, tt := range []struct {
			q     aoba.UserSearch
			want  string
			total int
		}{
			{aoba.UserSearch{Query: "srch", Page: 1, Limit: 2}, "srch_a,srch_B", 5},
			{aoba.UserSearch{Query: "SRCH", Page: 2, Limit: 2}, "SRCH_c,srch_d", 5},
			{aoba.UserSearch{Query: "srch", Page: 3, Limit: 2}, "srch_e", 5},
			{aoba.UserSearch{Query: "srch", Page: 4, Limit: 2}, "", 5},
			{aoba.UserSearch{Query: "rch_", Page: 1, Limit: 100, Exclude: []string{ids["srch_B"], aoba.NewID()}}, "srch_a,SRCH_c,srch_d,srch_e", 4},
			{aoba.UserSearch{Query: "nobody", Page: 1, Limit: 10}, "", 0},
		} {
			us, total, err := ts.SearchUsers(ctx, tt.q)
			if err != nil {
				t.Fatalf("SearchUsers(%+v): %v", tt.q, err)
			}
			if got := names(us); got != tt.want || total != tt.total {
				t.Fatalf("SearchUsers(%+v) = %s (total %d), want %s (total %d)", tt.q, got, total, tt.want, tt.total)
			}
		}
	})
	t.Run("SearchUsersErrInvalid", func(t *testing.T) {
		for _, q := range []aoba.UserSearch{
			{Query: "s", Page: 1, Limit: 10},
			{Query: strings.Repeat("s", 101), Page: 1, Limit: 10},
			{Query: "srch", Page: 0, Limit: 10},
			{Query: "srch", Page: 1, Limit: 0},
			{Query: "srch", Page: 1, Limit: 101},
			{Query: "srch", Page: 1, Limit: 10, Exclude: uuids(101)},
			{Query: "srch", Page: 1, Limit: 10, Exclude: []string{"not-a-uuid"}},
		} {
			_, _, err := ts.SearchUsers(ctx, q)
			if aoba.ErrorCode(err) != aoba.EINVALID {
				t.Fatalf("SearchUsers(query %d chars, page %d, limit %d, %d excluded) = %v, want EINVALID",
					len(q.Query), q.Page, q.Limit, len(q.Exclude), err)
			}
		}
		// The bounds themselves are allowed; two-byte characters count once.
		for _, q := range []aoba.UserSearch{
			{Query: "éé", Page: 1, Limit: 100, Exclude: uuids(100)},
			{Query: strings.Repeat("é", 100), Page: 1, Limit: 1},
		} {
			if _, _, err := ts.SearchUsers(ctx, q); err != nil {
				t.Fatalf("SearchUsers(query %q, limit %d): %v", q.Query, q.Limit, err)
			}
		}
	})
	t.Run("FindUserByUsername", func(t *testing.T) {
		u, err := ts.FindUserByUsername(ctx, "SRCH_B")
		if err != nil || u.ID != ids["srch_B"] {
			t.Fatalf("FindUserByUsername(SRCH_B) = %+v, %v", u, err)
		}
		for _, name := range []string{"nobody", "no one", ""} {
			_, err := ts.FindUserByUsername(ctx, name)
			wantCode(t, err, aoba.ENOTFOUND)
		}
	})
	t.Run("FindMetadata", func(t *testing.T) {
		md, err := ts.FindMetadata(ctx, ids["srch_B"])
		if err != nil {
			t.Fatal(err)
		}
		if md.ID != ids["srch_B"] || md.Username != "srch_B" || md.DisplayName != "srch_B" || md.Domain != "aoba.chat" || md.AvatarURL != nil {
			t.Fatalf("metadata %+v", md)
		}
		_, err = ts.FindMetadata(ctx, "srch_B")
		wantCode(t, err, aoba.EINVALID)
		_, err = ts.FindMetadata(ctx, aoba.NewID())
		wantCode(t, err, aoba.ENOTFOUND)
	})
	t.Run("FindMetadataBatch", func(t *testing.T) {
		asked := []string{ids["srch_e"], aoba.NewID(), ids["srch_a"], ids["srch_e"], ids["other"]}
		mds, err := ts.FindMetadataBatch(ctx, asked)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, md := range mds {
			got = append(got, md.Username)
		}
		if strings.Join(got, ",") != "srch_e,srch_a,other" {
			t.Fatalf("FindMetadataBatch = %v, want the known users once each, in the order asked", got)
		}
		if mds, err := ts.FindMetadataBatch(ctx, uuids(100)); err != nil || len(mds) != 0 {
			t.Fatalf("FindMetadataBatch(100 unknown) = %d, %v", len(mds), err)
		}
	})
	t.Run("FindMetadataBatchErrInvalid", func(t *testing.T) {
		for _, ids := range [][]string{nil, {}, uuids(101), {ids["other"], "other"}} {
			_, err := ts.FindMetadataBatch(ctx, ids)
			wantCode(t, err, aoba.EINVALID)
		}
	})
}
