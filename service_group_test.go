package aoba_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aoba-chat/aoba"
)

// wantOrderThenEvent returns the `group` event named event about groupID
// among envs, and fails the test unless a Join (join) or Leave order for
// groupID came before it: a pod must subscribe to or leave the group topic
// before its sockets hear of the change.
func wantOrderThenEvent(t testing.TB, envs []aoba.Envelope, groupID string, join bool, event string) aoba.GroupEvent {
	t.Helper()
	ordered := false
	for _, env := range envs {
		if (join && env.Join == groupID) || (!join && env.Leave == groupID) {
			ordered = true
			continue
		}
		if env.Frame == nil || frameOf(t, env).Type != aoba.FrameGroup {
			continue
		}
		ev := dataOf[aoba.GroupEvent](t, env, aoba.FrameGroup)
		if ev.Event != event || ev.GroupID != groupID {
			continue
		}
		if !ordered {
			t.Fatalf("the %s event came before the Join/Leave order (join %v): %s", event, join, describe(envs))
		}
		return ev
	}
	t.Fatalf("no %s event about %s among %d envelopes", event, groupID, len(envs))
	return aoba.GroupEvent{}
}

// wantEvent returns the only `group` event among envs and fails the test
// unless it is named event.
func wantEvent(t testing.TB, envs []aoba.Envelope, event string) aoba.GroupEvent {
	t.Helper()
	frames := framesOf(t, envs, aoba.FrameGroup)
	if len(frames) != 1 {
		t.Fatalf("%d group events, want one %s", len(frames), event)
	}
	ev := dataOf[aoba.GroupEvent](t, frames[0], aoba.FrameGroup)
	if ev.Event != event {
		t.Fatalf("group event %+v, want %s", ev, event)
	}
	return ev
}

// roles returns the effective roles in a member list, by username.
func roles(ms []*aoba.Member) map[string]aoba.Role {
	out := make(map[string]aoba.Role, len(ms))
	for _, m := range ms {
		out[m.Username] = m.Role
	}
	return out
}

func TestService_CreateGroup(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	alice := ts.MustRegister(t, "alice")
	bob := ts.MustRegister(t, "bob")
	carol := ts.MustRegister(t, "carol")

	t.Run("OK", func(t *testing.T) {
		ts.Subscribe(t, aoba.UserTopic(alice.ID), aoba.UserTopic(bob.ID), aoba.UserTopic(carol.ID))
		res, err := ts.CreateGroup(ctx, alice.Claims, "Team", []string{"bob", "BOB", "ALICE", "nobody", "x", "carol"})
		if err != nil {
			t.Fatal(err)
		}
		g := res.Group
		if !aoba.IsValidID(g.ID) || g.Name != "Team" || g.OwnerID != alice.ID || g.OwnerUsername != "alice" {
			t.Fatalf("group %+v", g)
		}
		if len(g.Members) != 1 || g.Members[0].Username != "alice" || g.Members[0].Role != aoba.RoleOwner {
			t.Fatalf("members %+v, want the owner alone until invitations are accepted", g.Members)
		}
		if strings.Join(res.UnknownUsers, ",") != "nobody,x" {
			t.Fatalf("unknown users %v, want nobody and x", res.UnknownUsers)
		}
		var invited []string
		for _, inv := range res.Invitations {
			invited = append(invited, inv.InviteeUsername)
			if inv.Status != aoba.InvitationPending || inv.GroupID != g.ID || inv.GroupName != "Team" || inv.InviterUsername != "alice" {
				t.Fatalf("invitation %+v", inv)
			}
		}
		if strings.Join(invited, ",") != "bob,carol" {
			t.Fatalf("invited %v, want bob and carol once each, not the owner", invited)
		}

		// The owner's pods join the group topic; the invitees hear of their
		// invitation.
		envs := ts.Published(t, aoba.UserTopic(alice.ID))
		if len(envs) != 1 || envs[0].Join != g.ID {
			t.Fatalf("owner topic: %s, want one Join order", describe(envs))
		}
		for _, a := range []Account{bob, carol} {
			envs := ts.Published(t, aoba.UserTopic(a.ID))
			if len(envs) != 1 {
				t.Fatalf("%s topic: %d envelopes, want one invitation", a.Username, len(envs))
			}
			inv := dataOf[aoba.InvitationView](t, envs[0], aoba.FrameInvitation)
			if inv.InviteeUsername != a.Username || inv.GroupID != g.ID {
				t.Fatalf("invitation frame %+v", inv)
			}
		}
	})
	t.Run("NameBounds", func(t *testing.T) {
		for _, name := range []string{"x", strings.Repeat("é", 100), " padded "} {
			if _, err := ts.CreateGroup(ctx, alice.Claims, name, nil); err != nil {
				t.Fatalf("CreateGroup(%q): %v", name, err)
			}
		}
	})
	t.Run("ErrNameInvalid", func(t *testing.T) {
		for _, name := range []string{"", "   ", "\t\n", strings.Repeat("x", 101)} {
			_, err := ts.CreateGroup(ctx, alice.Claims, name, nil)
			wantCode(t, err, aoba.EINVALID)
		}
	})
	t.Run("ErrTooManyInitialMembers", func(t *testing.T) {
		_, err := ts.CreateGroup(ctx, alice.Claims, "crowd", make([]string, 101))
		wantCode(t, err, aoba.EINVALID)
	})
	t.Run("ErrAccountGone", func(t *testing.T) {
		_, err := ts.CreateGroup(ctx, aoba.Claims{UserID: aoba.NewID()}, "ghosts", nil)
		wantCode(t, err, aoba.EUNAUTHORIZED)
	})
	t.Run("ListGroups", func(t *testing.T) {
		a := ts.MustRegister(t, "lister")
		first := ts.MustCreateGroup(t, alice, "first", a.As(aoba.RoleMember))
		second := ts.MustCreateGroup(t, a, "second")
		gs, err := ts.ListGroups(ctx, a.Claims)
		if err != nil {
			t.Fatal(err)
		}
		if len(gs) != 2 || gs[0].ID != first.ID || gs[1].ID != second.ID {
			t.Fatalf("ListGroups = %+v, want first then second (oldest membership first)", gs)
		}
		if gs, err := ts.ListGroups(ctx, ts.MustRegister(t, "loner").Claims); err != nil || len(gs) != 0 {
			t.Fatalf("ListGroups of a user in no group = %+v, %v", gs, err)
		}
	})
}

func TestService_GroupPermissions(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	owner := ts.MustRegister(t, "owner")
	admin := ts.MustRegister(t, "admin")
	member := ts.MustRegister(t, "member")
	outsider := ts.MustRegister(t, "outsider")
	g := ts.MustCreateGroup(t, owner, "matrix", admin.As(aoba.RoleAdmin), member.As(aoba.RoleMember))

	t.Run("ErrGroupIDInvalid", func(t *testing.T) {
		_, err := ts.GetGroup(ctx, member.Claims, "not-a-uuid")
		wantCode(t, err, aoba.EINVALID)
	})
	t.Run("ErrGroupUnknown", func(t *testing.T) {
		_, err := ts.GetGroup(ctx, member.Claims, aoba.NewID())
		wantCode(t, err, aoba.ENOTFOUND)
	})
	t.Run("ErrNotMember", func(t *testing.T) {
		// A group the caller is not in looks like no group at all.
		c := outsider.Claims
		for name, err := range map[string]error{
			"GetGroup":   second(ts.GetGroup(ctx, c, g.ID)),
			"ListMember": second(ts.ListMembers(ctx, c, g.ID)),
			"GroupAdmin": second(ts.GroupAdmin(ctx, c, g.ID)),
			"Invite":     second(ts.Invite(ctx, c, g.ID, "admin")),
			"AddMember":  second(ts.AddMember(ctx, c, g.ID, "outsider", "member")),
			"Remove":     ts.RemoveMember(ctx, c, g.ID, "member"),
			"ChangeRole": second(ts.ChangeRole(ctx, c, g.ID, "member", "admin")),
			"Leave":      ts.LeaveGroup(ctx, c, g.ID),
			"Transfer":   second(ts.TransferOwnership(ctx, c, g.ID, "outsider")),
			"Delete":     ts.DeleteGroup(ctx, c, g.ID),
		} {
			if aoba.ErrorCode(err) != aoba.ENOTFOUND {
				t.Errorf("%s by a non-member = %v, want ENOTFOUND", name, err)
			}
		}
	})
	t.Run("ErrMemberWithoutRole", func(t *testing.T) {
		c := member.Claims
		for name, err := range map[string]error{
			"GroupAdmin": second(ts.GroupAdmin(ctx, c, g.ID)),
			"AddMember":  second(ts.AddMember(ctx, c, g.ID, "outsider", "member")),
			"Remove":     ts.RemoveMember(ctx, c, g.ID, "admin"),
			"ChangeRole": second(ts.ChangeRole(ctx, c, g.ID, "admin", "member")),
			"Transfer":   second(ts.TransferOwnership(ctx, c, g.ID, "member")),
			"Delete":     ts.DeleteGroup(ctx, c, g.ID),
		} {
			if aoba.ErrorCode(err) != aoba.EFORBIDDEN {
				t.Errorf("%s by a member = %v, want EFORBIDDEN", name, err)
			}
		}
	})
	t.Run("ErrAdminWithoutRole", func(t *testing.T) {
		c := admin.Claims
		for name, err := range map[string]error{
			"AddAdmin":   second(ts.AddMember(ctx, c, g.ID, "outsider", "admin")),
			"ChangeRole": second(ts.ChangeRole(ctx, c, g.ID, "member", "admin")),
			"Transfer":   second(ts.TransferOwnership(ctx, c, g.ID, "admin")),
			"Delete":     ts.DeleteGroup(ctx, c, g.ID),
		} {
			if aoba.ErrorCode(err) != aoba.EFORBIDDEN {
				t.Errorf("%s by an admin = %v, want EFORBIDDEN", name, err)
			}
		}
	})
	t.Run("MemberReads", func(t *testing.T) {
		v, err := ts.GetGroup(ctx, member.Claims, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]aoba.Role{"owner": aoba.RoleOwner, "admin": aoba.RoleAdmin, "member": aoba.RoleMember}
		if got := roles(v.Members); len(got) != 3 || got["owner"] != want["owner"] || got["admin"] != want["admin"] || got["member"] != want["member"] {
			t.Fatalf("roles %v, want %v", got, want)
		}
		ms, err := ts.ListMembers(ctx, member.Claims, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Status != aoba.StatusOffline {
				t.Fatalf("member %s is %q, want offline (nobody connected)", m.Username, m.Status)
			}
		}
	})
	t.Run("GroupAdmin", func(t *testing.T) {
		for _, a := range []Account{owner, admin} {
			v, err := ts.GroupAdmin(ctx, a.Claims, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			if want := roles(v.Members)[a.Username]; v.CurrentUserRole != want || v.OwnerCount != 1 || v.AdminCount != 1 || len(v.Members) != 3 {
				t.Fatalf("GroupAdmin by %s: role %s, %d owners, %d admins, %d members", a.Username, v.CurrentUserRole, v.OwnerCount, v.AdminCount, len(v.Members))
			}
		}
	})
}

// second returns the error of a two-result call.
func second[T any](_ T, err error) error { return err }

func TestService_GroupMembers(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	owner := ts.MustRegister(t, "owner")
	admin := ts.MustRegister(t, "admin")
	member := ts.MustRegister(t, "member")
	g := ts.MustCreateGroup(t, owner, "crew", admin.As(aoba.RoleAdmin), member.As(aoba.RoleMember))

	t.Run("AddMember", func(t *testing.T) {
		t.Run("OK", func(t *testing.T) {
			newcomer := ts.MustRegister(t, "newcomer")
			ts.Subscribe(t, aoba.UserTopic(newcomer.ID), aoba.UserTopic(member.ID))
			m, err := ts.AddMember(ctx, admin.Claims, g.ID, "NEWCOMER", "")
			if err != nil {
				t.Fatal(err)
			}
			if m.UserID != newcomer.ID || m.Username != "newcomer" || m.Role != aoba.RoleMember || m.JoinedAt.IsZero() {
				t.Fatalf("added %+v, want newcomer as a member by default", m)
			}
			ev := wantOrderThenEvent(t, ts.Published(t, aoba.UserTopic(newcomer.ID)), g.ID, true, aoba.GroupMemberAdded)
			if ev.Username != "newcomer" || ev.Role != aoba.RoleMember || ev.GroupName != "crew" {
				t.Fatalf("member_added %+v", ev)
			}
			wantEvent(t, ts.Published(t, aoba.UserTopic(member.ID)), aoba.GroupMemberAdded)
		})
		t.Run("OwnerAddsAdmin", func(t *testing.T) {
			ts.MustRegister(t, "deputy")
			if m, err := ts.AddMember(ctx, owner.Claims, g.ID, "deputy", "admin"); err != nil || m.Role != aoba.RoleAdmin {
				t.Fatalf("AddMember(admin) by the owner = %+v, %v", m, err)
			}
		})
		t.Run("ErrAdminAddsAdmin", func(t *testing.T) {
			ts.MustRegister(t, "hopeful")
			_, err := ts.AddMember(ctx, admin.Claims, g.ID, "hopeful", "admin")
			wantCode(t, err, aoba.EFORBIDDEN)
		})
		t.Run("ErrRoleInvalid", func(t *testing.T) {
			for _, role := range []string{"owner", "boss", "Admin"} {
				_, err := ts.AddMember(ctx, owner.Claims, g.ID, "hopeful", role)
				wantCode(t, err, aoba.EINVALID)
			}
		})
		t.Run("ErrUsernameRequired", func(t *testing.T) {
			_, err := ts.AddMember(ctx, owner.Claims, g.ID, "", "member")
			wantCode(t, err, aoba.EINVALID)
		})
		t.Run("ErrUserUnknown", func(t *testing.T) {
			_, err := ts.AddMember(ctx, owner.Claims, g.ID, "nobody", "member")
			wantCode(t, err, aoba.ENOTFOUND)
		})
		t.Run("ErrAlreadyMember", func(t *testing.T) {
			for _, name := range []string{"member", "ADMIN", "owner"} {
				_, err := ts.AddMember(ctx, owner.Claims, g.ID, name, "member")
				wantCode(t, err, aoba.ECONFLICT)
			}
		})
		t.Run("CancelsPendingInvitation", func(t *testing.T) {
			guest := ts.MustRegister(t, "guest")
			inv, err := ts.Invite(ctx, member.Claims, g.ID, "guest")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ts.AddMember(ctx, admin.Claims, g.ID, "guest", "member"); err != nil {
				t.Fatal(err)
			}
			if invs, err := ts.ListInvitations(ctx, guest.Claims); err != nil || len(invs) != 0 {
				t.Fatalf("ListInvitations after a direct add = %d, %v; want none", len(invs), err)
			}
			_, err = ts.AcceptInvitation(ctx, guest.Claims, inv.ID)
			wantCode(t, err, aoba.ENOTFOUND)
		})
	})

	t.Run("RemoveMember", func(t *testing.T) {
		t.Run("ErrOwner", func(t *testing.T) {
			for _, a := range []Account{owner, admin} {
				wantCode(t, ts.RemoveMember(ctx, a.Claims, g.ID, "owner"), aoba.EFORBIDDEN)
			}
		})
		t.Run("ErrAdminRemovesAdmin", func(t *testing.T) {
			wantCode(t, ts.RemoveMember(ctx, admin.Claims, g.ID, "deputy"), aoba.EFORBIDDEN)
			wantCode(t, ts.RemoveMember(ctx, admin.Claims, g.ID, "admin"), aoba.EFORBIDDEN)
		})
		t.Run("ErrNotMember", func(t *testing.T) {
			wantCode(t, ts.RemoveMember(ctx, admin.Claims, g.ID, "hopeful"), aoba.ENOTFOUND)
			wantCode(t, ts.RemoveMember(ctx, admin.Claims, g.ID, "nobody"), aoba.ENOTFOUND)
		})
		t.Run("AdminRemovesMember", func(t *testing.T) {
			guest := ts.MustLogin(t, "guest")
			ts.Subscribe(t, aoba.UserTopic(guest.ID), aoba.UserTopic(member.ID))
			ts.Forget(t)
			if err := ts.RemoveMember(ctx, admin.Claims, g.ID, "Guest"); err != nil {
				t.Fatal(err)
			}
			// The removed member hears of it too, after their pods left the
			// group topic.
			ev := wantOrderThenEvent(t, ts.Published(t, aoba.UserTopic(guest.ID)), g.ID, false, aoba.GroupMemberRemoved)
			if ev.Username != "guest" {
				t.Fatalf("member_removed %+v", ev)
			}
			wantEvent(t, ts.Published(t, aoba.UserTopic(member.ID)), aoba.GroupMemberRemoved)
			_, err := ts.GetGroup(ctx, guest.Claims, g.ID)
			wantCode(t, err, aoba.ENOTFOUND)
		})
		t.Run("OwnerRemovesAdmin", func(t *testing.T) {
			if err := ts.RemoveMember(ctx, owner.Claims, g.ID, "deputy"); err != nil {
				t.Fatal(err)
			}
		})
	})

	t.Run("ChangeRole", func(t *testing.T) {
		t.Run("OK", func(t *testing.T) {
			ts.Subscribe(t, aoba.UserTopic(member.ID))
			ts.Forget(t)
			m, err := ts.ChangeRole(ctx, owner.Claims, g.ID, "newcomer", "admin")
			if err != nil || m.Role != aoba.RoleAdmin || m.Username != "newcomer" {
				t.Fatalf("ChangeRole(admin) = %+v, %v", m, err)
			}
			ev := wantEvent(t, ts.Published(t, aoba.UserTopic(member.ID)), aoba.GroupRoleChanged)
			if ev.Username != "newcomer" || ev.Role != aoba.RoleAdmin {
				t.Fatalf("role_changed %+v", ev)
			}
			if m, err := ts.ChangeRole(ctx, owner.Claims, g.ID, "newcomer", "member"); err != nil || m.Role != aoba.RoleMember {
				t.Fatalf("ChangeRole(member) = %+v, %v", m, err)
			}
		})
		t.Run("ErrNotOwner", func(t *testing.T) {
			_, err := ts.ChangeRole(ctx, admin.Claims, g.ID, "newcomer", "admin")
			wantCode(t, err, aoba.EFORBIDDEN)
		})
		t.Run("ErrRoleInvalid", func(t *testing.T) {
			for _, role := range []string{"owner", "", "root"} {
				_, err := ts.ChangeRole(ctx, owner.Claims, g.ID, "newcomer", role)
				wantCode(t, err, aoba.EINVALID)
			}
		})
		t.Run("ErrOwnersRole", func(t *testing.T) {
			_, err := ts.ChangeRole(ctx, owner.Claims, g.ID, "owner", "member")
			wantCode(t, err, aoba.ECONFLICT)
		})
		t.Run("ErrNotMember", func(t *testing.T) {
			_, err := ts.ChangeRole(ctx, owner.Claims, g.ID, "guest", "admin")
			wantCode(t, err, aoba.ENOTFOUND)
		})
	})

	t.Run("LeaveGroup", func(t *testing.T) {
		t.Run("ErrOwner", func(t *testing.T) {
			wantCode(t, ts.LeaveGroup(ctx, owner.Claims, g.ID), aoba.ECONFLICT)
		})
		t.Run("OK", func(t *testing.T) {
			newcomer := ts.MustLogin(t, "newcomer")
			ts.Subscribe(t, aoba.UserTopic(newcomer.ID), aoba.UserTopic(member.ID))
			ts.Forget(t)
			if err := ts.LeaveGroup(ctx, newcomer.Claims, g.ID); err != nil {
				t.Fatal(err)
			}
			ev := wantOrderThenEvent(t, ts.Published(t, aoba.UserTopic(newcomer.ID)), g.ID, false, aoba.GroupMemberLeft)
			if ev.Username != "newcomer" {
				t.Fatalf("member_left %+v", ev)
			}
			wantEvent(t, ts.Published(t, aoba.UserTopic(member.ID)), aoba.GroupMemberLeft)
			wantCode(t, ts.LeaveGroup(ctx, newcomer.Claims, g.ID), aoba.ENOTFOUND)
		})
	})
}

func TestService_TransferAndDeleteGroup(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	owner := ts.MustRegister(t, "owner")
	admin := ts.MustRegister(t, "admin")
	member := ts.MustRegister(t, "member")
	outsider := ts.MustRegister(t, "outsider")
	g := ts.MustCreateGroup(t, owner, "heirloom", admin.As(aoba.RoleAdmin), member.As(aoba.RoleMember))

	t.Run("TransferOwnership", func(t *testing.T) {
		t.Run("ErrNewOwnerRequired", func(t *testing.T) {
			_, err := ts.TransferOwnership(ctx, owner.Claims, g.ID, "")
			wantCode(t, err, aoba.EINVALID)
		})
		t.Run("ErrSelf", func(t *testing.T) {
			_, err := ts.TransferOwnership(ctx, owner.Claims, g.ID, "OWNER")
			wantCode(t, err, aoba.EINVALID)
		})
		t.Run("ErrNotMember", func(t *testing.T) {
			for _, name := range []string{"outsider", "nobody"} {
				_, err := ts.TransferOwnership(ctx, owner.Claims, g.ID, name)
				wantCode(t, err, aoba.ENOTFOUND)
			}
		})
		t.Run("OK", func(t *testing.T) {
			ts.Subscribe(t, aoba.UserTopic(admin.ID))
			ts.Forget(t)
			res, err := ts.TransferOwnership(ctx, owner.Claims, g.ID, "member")
			if err != nil {
				t.Fatal(err)
			}
			if res.PreviousOwner != "owner" || res.NewOwner != "member" {
				t.Fatalf("transfer %+v", res)
			}
			ev := wantEvent(t, ts.Published(t, aoba.UserTopic(admin.ID)), aoba.GroupOwnerTransferred)
			if ev.PreviousOwner != "owner" || ev.NewOwner != "member" {
				t.Fatalf("owner_transferred %+v", ev)
			}
			v, err := ts.GroupAdmin(ctx, member.Claims, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			got := roles(v.Members)
			if v.CurrentUserRole != aoba.RoleOwner || v.OwnerCount != 1 || v.AdminCount != 2 ||
				got["member"] != aoba.RoleOwner || got["owner"] != aoba.RoleAdmin || got["admin"] != aoba.RoleAdmin {
				t.Fatalf("after transfer: %v (%d owners, %d admins), want exactly one owner, the old one an admin", got, v.OwnerCount, v.AdminCount)
			}
		})
		t.Run("ErrFormerOwner", func(t *testing.T) {
			_, err := ts.TransferOwnership(ctx, owner.Claims, g.ID, "admin")
			wantCode(t, err, aoba.EFORBIDDEN)
			wantCode(t, ts.DeleteGroup(ctx, owner.Claims, g.ID), aoba.EFORBIDDEN)
		})
		t.Run("NewOwnerCannotLeave", func(t *testing.T) {
			wantCode(t, ts.LeaveGroup(ctx, member.Claims, g.ID), aoba.ECONFLICT)
		})
		t.Run("FormerOwnerMayLeave", func(t *testing.T) {
			if err := ts.LeaveGroup(ctx, owner.Claims, g.ID); err != nil {
				t.Fatal(err)
			}
		})
	})

	t.Run("DeleteGroup", func(t *testing.T) {
		newOwner := member
		_, err := ts.Invite(ctx, admin.Claims, g.ID, "outsider")
		if err != nil {
			t.Fatal(err)
		}
		t.Run("ErrNotOwner", func(t *testing.T) {
			wantCode(t, ts.DeleteGroup(ctx, admin.Claims, g.ID), aoba.EFORBIDDEN)
			wantCode(t, ts.DeleteGroup(ctx, outsider.Claims, g.ID), aoba.ENOTFOUND)
			wantCode(t, ts.DeleteGroup(ctx, newOwner.Claims, "not-a-uuid"), aoba.EINVALID)
		})
		t.Run("OK", func(t *testing.T) {
			ts.Subscribe(t, aoba.UserTopic(admin.ID), aoba.UserTopic(newOwner.ID))
			ts.Forget(t)
			if err := ts.DeleteGroup(ctx, newOwner.Claims, g.ID); err != nil {
				t.Fatal(err)
			}
			for _, a := range []Account{admin, newOwner} {
				ev := wantOrderThenEvent(t, ts.Published(t, aoba.UserTopic(a.ID)), g.ID, false, aoba.GroupDeleted)
				if ev.By != "member" || ev.GroupName != "heirloom" {
					t.Fatalf("deleted %+v", ev)
				}
				_, err := ts.GetGroup(ctx, a.Claims, g.ID)
				wantCode(t, err, aoba.ENOTFOUND)
				if gs, err := ts.ListGroups(ctx, a.Claims); err != nil || len(gs) != 0 {
					t.Fatalf("ListGroups of %s = %d, %v; want none", a.Username, len(gs), err)
				}
			}
			// Its invitations went with it.
			if invs, err := ts.ListInvitations(ctx, outsider.Claims); err != nil || len(invs) != 0 {
				t.Fatalf("ListInvitations = %d, %v; want none", len(invs), err)
			}
			wantCode(t, ts.DeleteGroup(ctx, newOwner.Claims, g.ID), aoba.ENOTFOUND)
		})
	})
}

// transferRace runs before and after the first ownership transfer stored:
// the moments other requests may act between the Service's checks.
type transferRace struct {
	aoba.Store
	before, after func()
}

func (s *transferRace) TransferGroupOwnership(ctx context.Context, groupID, from, to string) error {
	before, after := s.before, s.after
	s.before, s.after = nil, nil
	if before != nil {
		before()
	}
	err := s.Store.TransferGroupOwnership(ctx, groupID, from, to)
	if err == nil && after != nil {
		after()
	}
	return err
}

// TestService_TransferRolledBackAfterOwnerLeft: bob leaves between the
// transfer's membership check and its write, and alice, for the moment the
// write names bob the owner, leaves too. The transfer is put back to alice, so she
// must be a member again: a group's owner is always among its members.
func TestService_TransferRolledBackAfterOwnerLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	race := &transferRace{}
	ts := newService(t, withStore(func(s aoba.Store) aoba.Store { race.Store = s; return race }))
	alice, bob, carol := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob"), ts.MustRegister(t, "carol")
	g := ts.MustCreateGroup(t, alice, "Race", bob.As(aoba.RoleMember), carol.As(aoba.RoleMember))
	race.before = func() {
		if err := ts.LeaveGroup(ctx, bob.Claims, g.ID); err != nil {
			t.Errorf("bob leaves: %v", err)
		}
	}
	race.after = func() {
		if err := ts.LeaveGroup(ctx, alice.Claims, g.ID); err != nil {
			t.Errorf("alice leaves while bob owns the group: %v", err)
		}
	}
	if _, err := ts.TransferOwnership(ctx, alice.Claims, g.ID, "bob"); aoba.ErrorCode(err) != aoba.ECONFLICT {
		t.Fatalf("transfer to a member who left meanwhile: %v, want %s", err, aoba.ECONFLICT)
	}
	v, err := ts.GetGroup(ctx, carol.Claims, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.OwnerID != alice.ID || v.OwnerUsername != "alice" {
		t.Fatalf("owner %q (%s), want alice among the members %v", v.OwnerUsername, v.OwnerID, roles(v.Members))
	}
	if r := roles(v.Members)["alice"]; r != aoba.RoleOwner {
		t.Fatalf("alice's role %q, want owner", r)
	}
}
