package aoba

import "context"

// invitationViews resolves the names in invitations for clients.
func (s *Service) invitationViews(ctx context.Context, invs []*Invitation) ([]*InvitationView, error) {
	var userIDs, groupIDs []string
	for _, inv := range invs {
		userIDs = append(userIDs, inv.InviterID, inv.InviteeID)
		groupIDs = append(groupIDs, inv.GroupID)
	}
	names, err := s.usernames(ctx, userIDs)
	if err != nil {
		return nil, err
	}
	groups, err := s.store.FindGroupsByIDs(ctx, uniq(groupIDs))
	if err != nil {
		return nil, err
	}
	groupNames := make(map[string]string, len(groups))
	for _, g := range groups {
		groupNames[g.ID] = g.Name
	}
	out := make([]*InvitationView, 0, len(invs))
	for _, inv := range invs {
		out = append(out, &InvitationView{
			ID: inv.ID, GroupID: inv.GroupID, GroupName: groupNames[inv.GroupID],
			InviterUsername: names[inv.InviterID], InviteeUsername: names[inv.InviteeID],
			Status: inv.Status, CreatedAt: inv.CreatedAt, RespondedAt: inv.RespondedAt,
		})
	}
	return out, nil
}

// invite creates a pending invitation of username to g from inviter and
// pushes it to the invitee, through an event stored for GET /api/sync. It
// returns ENOTFOUND for an unknown user, EFORBIDDEN for a user who blocks
// the inviter and ECONFLICT for a member or a user already invited.
func (s *Service) invite(ctx context.Context, g *Group, inviter *User, username string) (*InvitationView, error) {
	u, err := s.FindUserByUsername(ctx, username)
	if err != nil {
		return nil, err
	}
	if blockers, err := s.blockersOf(ctx, inviter.ID, []string{u.ID}); err != nil {
		return nil, err
	} else if blockers[u.ID] {
		return nil, Errorf(EFORBIDDEN, "You cannot invite this user.")
	}
	if _, err := s.store.FindMembership(ctx, g.ID, u.ID); err == nil {
		return nil, Errorf(ECONFLICT, "%s is already a member of this group.", u.Username)
	} else if ErrorCode(err) != ENOTFOUND {
		return nil, err
	}
	inv := &Invitation{ID: NewID(), GroupID: g.ID, InviterID: inviter.ID, InviteeID: u.ID, Status: InvitationPending, CreatedAt: Now()}
	if err := s.store.CreateInvitation(ctx, inv); err != nil {
		if ErrorCode(err) == ECONFLICT {
			return nil, Errorf(ECONFLICT, "%s already has a pending invitation to this group.", u.Username)
		}
		return nil, err
	}
	v := &InvitationView{ID: inv.ID, GroupID: g.ID, GroupName: g.Name, InviterUsername: inviter.Username,
		InviteeUsername: u.Username, Status: inv.Status, CreatedAt: inv.CreatedAt}
	s.publishEvent(ctx, FrameInvitation, v, []string{u.ID})
	return v, nil
}

// Invite invites a user into a group; any member may. It returns ENOTFOUND
// for an unknown user, EFORBIDDEN for a user who blocks the caller and
// ECONFLICT for a member or a pending invitation.
func (s *Service) Invite(ctx context.Context, c Claims, groupID, username string) (*InvitationView, error) {
	if username == "" {
		return nil, Errorf(EINVALID, "username is required.")
	}
	acc, err := s.authorize(ctx, c, groupID, ActionInvite)
	if err != nil {
		return nil, err
	}
	me, err := s.Me(ctx, c)
	if err != nil {
		return nil, err
	}
	return s.invite(ctx, acc.group, me, username)
}

// ListInvitations returns the caller's pending invitations, oldest first.
func (s *Service) ListInvitations(ctx context.Context, c Claims) ([]*InvitationView, error) {
	invs, err := s.store.FindInvitations(ctx, InvitationFilter{InviteeID: c.UserID, Status: InvitationPending})
	if err != nil {
		return nil, err
	}
	return s.invitationViews(ctx, invs)
}

// ownInvitation loads an invitation addressed to the caller. Anyone else's
// invitation is ENOTFOUND, like an unknown one, and so is a cancelled one:
// for its invitee it no longer exists.
func (s *Service) ownInvitation(ctx context.Context, c Claims, id string) (*Invitation, error) {
	if !IsValidID(id) {
		return nil, Errorf(EINVALID, "Invitation id must be a UUID.")
	}
	inv, err := s.store.FindInvitationByID(ctx, id)
	if ErrorCode(err) == ENOTFOUND || (err == nil && (inv.InviteeID != c.UserID || inv.Status == InvitationCancelled)) {
		return nil, errInvitationNotFound()
	}
	return inv, err
}

// errInvitationNotFound answers for an invitation the caller may not see.
func errInvitationNotFound() error { return Errorf(ENOTFOUND, "Invitation not found.") }

// AcceptResult is the outcome of AcceptInvitation.
type AcceptResult struct {
	Message    string     `json:"message"`
	Group      *GroupView `json:"group"`
	Membership *Member    `json:"membership"`
}

// AcceptInvitation makes the caller a member of the invitation's group. It
// returns ECONFLICT when the invitation is no longer pending and ENOTFOUND
// when the group is gone.
func (s *Service) AcceptInvitation(ctx context.Context, c Claims, id string) (*AcceptResult, error) {
	inv, err := s.ownInvitation(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if inv.Status != InvitationPending {
		return nil, Errorf(ECONFLICT, "The invitation is no longer pending.")
	}
	g, err := s.store.FindGroupByID(ctx, inv.GroupID)
	if ErrorCode(err) == ENOTFOUND {
		return nil, errGroupNotFound()
	} else if err != nil {
		return nil, err
	}
	// The inviter may have left after sending it (or while leaving):
	// the invitation went with their membership.
	if _, err := s.store.FindMembership(ctx, g.ID, inv.InviterID); ErrorCode(err) == ENOTFOUND {
		if _, err := s.store.RespondInvitation(ctx, inv.ID, InvitationCancelled, Now()); err != nil && ErrorCode(err) != ECONFLICT {
			return nil, err
		}
		return nil, errInvitationNotFound()
	} else if err != nil {
		return nil, err
	}
	if _, err := s.store.RespondInvitation(ctx, inv.ID, InvitationAccepted, Now()); err != nil {
		if ErrorCode(err) == ECONFLICT {
			return nil, Errorf(ECONFLICT, "The invitation is no longer pending.")
		}
		return nil, err
	}
	m := &Membership{GroupID: g.ID, UserID: c.UserID, Role: RoleMember, JoinedAt: Now()}
	if err := s.store.CreateMembership(ctx, m); err != nil && ErrorCode(err) != ECONFLICT {
		return nil, err
	} else if err != nil {
		if m, err = s.store.FindMembership(ctx, g.ID, c.UserID); err != nil {
			return nil, err
		}
	}
	s.publishMembership(ctx, g.ID, true, c.UserID)
	v, _, err := s.groupView(ctx, g, false)
	if err != nil {
		return nil, err
	}
	me, err := s.Me(ctx, c)
	if err != nil {
		return nil, err
	}
	mv := &Member{UserID: me.ID, Username: me.Username, Role: EffectiveRole(g, m), JoinedAt: m.JoinedAt}
	s.publishGroupEvent(ctx, GroupEvent{Event: GroupMemberAdded, GroupID: g.ID, GroupName: g.Name, Username: me.Username, Role: mv.Role})
	return &AcceptResult{Message: "Invitation accepted", Group: v, Membership: mv}, nil
}

// DenyInvitation declines a pending invitation of the caller. It returns
// ECONFLICT when the invitation is no longer pending.
func (s *Service) DenyInvitation(ctx context.Context, c Claims, id string) error {
	inv, err := s.ownInvitation(ctx, c, id)
	if err != nil {
		return err
	}
	if _, err := s.store.RespondInvitation(ctx, inv.ID, InvitationDenied, Now()); err != nil {
		if ErrorCode(err) == ECONFLICT {
			return Errorf(ECONFLICT, "The invitation is no longer pending.")
		}
		return err
	}
	return nil
}
