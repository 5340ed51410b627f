package aoba_test

import (
	"context"
	"testing"

	"github.com/aoba-chat/aoba"
)

func TestService_Invitations(t *testing.T) {
	t.Parallel()
	ts := newService(t)
	ctx := context.Background()
	owner := ts.MustRegister(t, "owner")
	admin := ts.MustRegister(t, "admin")
	member := ts.MustRegister(t, "member")
	outsider := ts.MustRegister(t, "outsider")
	g := ts.MustCreateGroup(t, owner, "club", admin.As(aoba.RoleAdmin), member.As(aoba.RoleMember))

	// invite has inviter invite a new user named name and returns the new
	// user and the invitation.
	invite := func(t *testing.T, inviter Account, name string) (Account, *aoba.InvitationView) {
		t.Helper()
		a := ts.MustRegister(t, name)
		inv, err := ts.Invite(ctx, inviter.Claims, g.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		return a, inv
	}

	t.Run("Invite", func(t *testing.T) {
		t.Run("OK", func(t *testing.T) {
			// Any member may invite.
			guest := ts.MustRegister(t, "guest")
			ts.Subscribe(t, aoba.UserTopic(guest.ID))
			inv, err := ts.Invite(ctx, member.Claims, g.ID, "GUEST")
			if err != nil {
				t.Fatal(err)
			}
			if !aoba.IsValidID(inv.ID) || inv.GroupID != g.ID || inv.GroupName != "club" || inv.InviterUsername != "member" ||
				inv.InviteeUsername != "guest" || inv.Status != aoba.InvitationPending || inv.RespondedAt != nil {
				t.Fatalf("invitation %+v", inv)
			}
			envs := ts.Published(t, aoba.UserTopic(guest.ID))
			if len(envs) != 1 {
				t.Fatalf("%d envelopes on the invitee's topic, want one invitation", len(envs))
			}
			if got := dataOf[aoba.InvitationView](t, envs[0], aoba.FrameInvitation); got.ID != inv.ID {
				t.Fatalf("invitation frame %+v, want %s", got, inv.ID)
			}
			invs, err := ts.ListInvitations(ctx, guest.Claims)
			if err != nil || len(invs) != 1 || invs[0].ID != inv.ID || invs[0].InviterUsername != "member" || invs[0].GroupName != "club" {
				t.Fatalf("ListInvitations = %+v, %v", invs, err)
			}
		})
		t.Run("ErrAlreadyMember", func(t *testing.T) {
			for _, name := range []string{"owner", "Admin", "member"} {
				_, err := ts.Invite(ctx, member.Claims, g.ID, name)
				wantCode(t, err, aoba.ECONFLICT)
			}
		})
		t.Run("ErrAlreadyInvited", func(t *testing.T) {
			// By anyone: one pending invitation per user and group.
			for _, a := range []Account{member, owner} {
				_, err := ts.Invite(ctx, a.Claims, g.ID, "guest")
				wantCode(t, err, aoba.ECONFLICT)
			}
		})
		t.Run("ErrUserUnknown", func(t *testing.T) {
			for _, name := range []string{"nobody", "no one"} {
				_, err := ts.Invite(ctx, member.Claims, g.ID, name)
				wantCode(t, err, aoba.ENOTFOUND)
			}
		})
		t.Run("ErrUsernameRequired", func(t *testing.T) {
			_, err := ts.Invite(ctx, member.Claims, g.ID, "")
			wantCode(t, err, aoba.EINVALID)
		})
		t.Run("ErrGroup", func(t *testing.T) {
			_, err := ts.Invite(ctx, outsider.Claims, g.ID, "guest")
			wantCode(t, err, aoba.ENOTFOUND)
			_, err = ts.Invite(ctx, member.Claims, aoba.NewID(), "guest")
			wantCode(t, err, aoba.ENOTFOUND)
			_, err = ts.Invite(ctx, member.Claims, "club", "guest")
			wantCode(t, err, aoba.EINVALID)
		})
	})

	t.Run("AcceptInvitation", func(t *testing.T) {
		t.Run("OK", func(t *testing.T) {
			joiner, inv := invite(t, admin, "joiner")
			ts.Subscribe(t, aoba.UserTopic(joiner.ID), aoba.UserTopic(member.ID))
			ts.Forget(t)
			res, err := ts.AcceptInvitation(ctx, joiner.Claims, inv.ID)
			if err != nil {
				t.Fatal(err)
			}
			if res.Group.ID != g.ID || res.Membership.Username != "joiner" || res.Membership.Role != aoba.RoleMember {
				t.Fatalf("accepted %+v, membership %+v", res.Group, res.Membership)
			}
			if roles(res.Group.Members)["joiner"] != aoba.RoleMember {
				t.Fatalf("the group view leaves the new member out: %v", roles(res.Group.Members))
			}
			ev := wantOrderThenEvent(t, ts.Published(t, aoba.UserTopic(joiner.ID)), g.ID, true, aoba.GroupMemberAdded)
			if ev.Username != "joiner" || ev.Role != aoba.RoleMember {
				t.Fatalf("member_added %+v", ev)
			}
			wantEvent(t, ts.Published(t, aoba.UserTopic(member.ID)), aoba.GroupMemberAdded)
			if invs, err := ts.ListInvitations(ctx, joiner.Claims); err != nil || len(invs) != 0 {
				t.Fatalf("ListInvitations after accepting = %d, %v; want none pending", len(invs), err)
			}
			if _, err := ts.GetGroup(ctx, joiner.Claims, g.ID); err != nil {
				t.Fatal(err)
			}

			t.Run("ErrNotPending", func(t *testing.T) {
				_, err := ts.AcceptInvitation(ctx, joiner.Claims, inv.ID)
				wantCode(t, err, aoba.ECONFLICT)
				wantCode(t, ts.DenyInvitation(ctx, joiner.Claims, inv.ID), aoba.ECONFLICT)
			})
		})
		t.Run("ErrDenied", func(t *testing.T) {
			decliner, inv := invite(t, admin, "decliner")
			if err := ts.DenyInvitation(ctx, decliner.Claims, inv.ID); err != nil {
				t.Fatal(err)
			}
			_, err := ts.AcceptInvitation(ctx, decliner.Claims, inv.ID)
			wantCode(t, err, aoba.ECONFLICT)
		})
		t.Run("ErrSomeoneElses", func(t *testing.T) {
			_, inv := invite(t, admin, "addressee")
			for _, a := range []Account{outsider, admin, owner} {
				_, err := ts.AcceptInvitation(ctx, a.Claims, inv.ID)
				wantCode(t, err, aoba.ENOTFOUND)
				wantCode(t, ts.DenyInvitation(ctx, a.Claims, inv.ID), aoba.ENOTFOUND)
			}
		})
		t.Run("ErrUnknown", func(t *testing.T) {
			_, err := ts.AcceptInvitation(ctx, outsider.Claims, aoba.NewID())
			wantCode(t, err, aoba.ENOTFOUND)
		})
		t.Run("ErrIDInvalid", func(t *testing.T) {
			_, err := ts.AcceptInvitation(ctx, outsider.Claims, "invitation")
			wantCode(t, err, aoba.EINVALID)
			wantCode(t, ts.DenyInvitation(ctx, outsider.Claims, "invitation"), aoba.EINVALID)
		})
	})

	t.Run("DenyInvitation", func(t *testing.T) {
		t.Run("OK", func(t *testing.T) {
			refuser, inv := invite(t, member, "refuser")
			if err := ts.DenyInvitation(ctx, refuser.Claims, inv.ID); err != nil {
				t.Fatal(err)
			}
			if invs, err := ts.ListInvitations(ctx, refuser.Claims); err != nil || len(invs) != 0 {
				t.Fatalf("ListInvitations after denying = %d, %v; want none pending", len(invs), err)
			}
			if _, err := ts.GetGroup(ctx, refuser.Claims, g.ID); aoba.ErrorCode(err) != aoba.ENOTFOUND {
				t.Fatalf("a denied invitation made a member: %v", err)
			}
			wantCode(t, ts.DenyInvitation(ctx, refuser.Claims, inv.ID), aoba.ECONFLICT)
			// A denied invitation frees the pair for a new one.
			if _, err := ts.Invite(ctx, member.Claims, g.ID, "refuser"); err != nil {
				t.Fatalf("inviting again after a denial: %v", err)
			}
		})
	})

	// An invitation speaks for its inviter's membership: it goes when they
	// do, and its invitee no longer sees it.
	wantCancelled := func(t *testing.T, invitee Account, inv *aoba.InvitationView) {
		t.Helper()
		if invs, err := ts.ListInvitations(ctx, invitee.Claims); err != nil || len(invs) != 0 {
			t.Fatalf("ListInvitations = %d, %v; want none pending", len(invs), err)
		}
		_, err := ts.AcceptInvitation(ctx, invitee.Claims, inv.ID)
		wantCode(t, err, aoba.ENOTFOUND)
		wantCode(t, ts.DenyInvitation(ctx, invitee.Claims, inv.ID), aoba.ENOTFOUND)
		got, err := ts.Store.FindInvitationByID(ctx, inv.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != aoba.InvitationCancelled {
			t.Fatalf("invitation is %s, want cancelled", got.Status)
		}
		if _, err := ts.GetGroup(ctx, invitee.Claims, g.ID); aoba.ErrorCode(err) != aoba.ENOTFOUND {
			t.Fatalf("a cancelled invitation made a member: %v", err)
		}
	}
	t.Run("InviterLeft", func(t *testing.T) {
		inviter := ts.MustRegister(t, "leaver")
		if _, err := ts.AddMember(ctx, owner.Claims, g.ID, "leaver", "member"); err != nil {
			t.Fatal(err)
		}
		invitee, inv := invite(t, inviter, "leavers_guest")
		if err := ts.LeaveGroup(ctx, inviter.Claims, g.ID); err != nil {
			t.Fatal(err)
		}
		wantCancelled(t, invitee, inv)
	})
	t.Run("InviterRemoved", func(t *testing.T) {
		inviter := ts.MustRegister(t, "removed")
		if _, err := ts.AddMember(ctx, owner.Claims, g.ID, "removed", "member"); err != nil {
			t.Fatal(err)
		}
		invitee, inv := invite(t, inviter, "removeds_guest")
		if err := ts.RemoveMember(ctx, admin.Claims, g.ID, "removed"); err != nil {
			t.Fatal(err)
		}
		wantCancelled(t, invitee, inv)
	})
	t.Run("InviterGoneBeforeAccept", func(t *testing.T) {
		// An invitation stored while its inviter was leaving escapes the
		// cancellation on leave; AcceptInvitation checks the inviter again.
		invitee := ts.MustRegister(t, "late_guest")
		inv := &aoba.Invitation{ID: aoba.NewID(), GroupID: g.ID, InviterID: outsider.ID, InviteeID: invitee.ID,
			Status: aoba.InvitationPending, CreatedAt: aoba.Now()}
		if err := ts.Store.CreateInvitation(ctx, inv); err != nil {
			t.Fatal(err)
		}
		_, err := ts.AcceptInvitation(ctx, invitee.Claims, inv.ID)
		wantCode(t, err, aoba.ENOTFOUND)
		wantCancelled(t, invitee, &aoba.InvitationView{ID: inv.ID})
	})
	t.Run("GroupDeleted", func(t *testing.T) {
		g2 := ts.MustCreateGroup(t, owner, "ephemeral")
		invitee := ts.MustRegister(t, "orphan")
		inv, err := ts.Invite(ctx, owner.Claims, g2.ID, "orphan")
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.DeleteGroup(ctx, owner.Claims, g2.ID); err != nil {
			t.Fatal(err)
		}
		_, err = ts.AcceptInvitation(ctx, invitee.Claims, inv.ID)
		wantCode(t, err, aoba.ENOTFOUND)
		if invs, err := ts.ListInvitations(ctx, invitee.Claims); err != nil || len(invs) != 0 {
			t.Fatalf("ListInvitations = %d, %v; want none", len(invs), err)
		}
	})
	t.Run("ListInvitationsOldestFirst", func(t *testing.T) {
		invitee := ts.MustRegister(t, "popular")
		var want []string
		for _, name := range []string{"first", "second"} {
			g := ts.MustCreateGroup(t, owner, name)
			inv, err := ts.Invite(ctx, owner.Claims, g.ID, "popular")
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, inv.ID)
		}
		invs, err := ts.ListInvitations(ctx, invitee.Claims)
		if err != nil || len(invs) != 2 || invs[0].ID != want[0] || invs[1].ID != want[1] {
			t.Fatalf("ListInvitations = %+v, %v; want %v", invs, err, want)
		}
	})
}
