package aoba

import (
	"context"
	"strings"
)

// memberViews turns memberships into Members with current usernames, and
// with presence as the user viewerID sees it when withStatus is set (a
// member who blocks the viewer is offline). Memberships of deleted users
// are left out. It returns the store's error when names or blocks cannot be
// read.
func (s *Service) memberViews(ctx context.Context, g *Group, ms []*Membership, withStatus bool, viewerID string) ([]*Member, error) {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.UserID
	}
	names, err := s.usernames(ctx, ids)
	if err != nil {
		return nil, err
	}
	var pres map[string]Presence
	blockers := map[string]bool{}
	if withStatus && len(ids) > 0 {
		if pres, err = s.presence.FindPresence(ctx, ids); err != nil {
			s.log.Warn("presence lookup failed", "err", err)
			pres = nil
		}
		if blockers, err = s.blockersOf(ctx, viewerID, ids); err != nil {
			return nil, err
		}
	}
	out := make([]*Member, 0, len(ms))
	for _, m := range ms {
		name, ok := names[m.UserID]
		if !ok {
			continue
		}
		mv := &Member{UserID: m.UserID, Username: name, Role: EffectiveRole(g, m), JoinedAt: m.JoinedAt}
		if withStatus {
			mv.Status = StatusOffline
			if p, ok := pres[m.UserID]; ok && p.Status == StatusOnline && !blockers[m.UserID] {
				mv.Status = StatusOnline
			}
		}
		out = append(out, mv)
	}
	return out, nil
}

// groupView returns the client view of g with its members.
func (s *Service) groupView(ctx context.Context, g *Group, withStatus bool) (*GroupView, []*Membership, error) {
	ms, err := s.store.FindMembershipsByGroup(ctx, g.ID)
	if err != nil {
		return nil, nil, err
	}
	members, err := s.memberViews(ctx, g, ms, withStatus, "")
	if err != nil {
		return nil, nil, err
	}
	v := &GroupView{ID: g.ID, Name: g.Name, OwnerID: g.OwnerID, Members: members, CreatedAt: g.CreatedAt}
	for _, m := range members {
		if m.UserID == g.OwnerID {
			v.OwnerUsername = m.Username
		}
	}
	return v, ms, nil
}

// memberIDs returns the user ids of ms.
func memberIDs(ms []*Membership) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.UserID
	}
	return ids
}

// publishGroupEvent stores a `group` event for every current member of the
// group and for extra users (a removed member, say), then sends them the
// frame (see publishEvent).
func (s *Service) publishGroupEvent(ctx context.Context, ev GroupEvent, extra ...string) {
	ms, err := s.store.FindMembershipsByGroup(ctx, ev.GroupID)
	if err != nil {
		s.log.Warn("group event: members lookup failed", "group", ev.GroupID, "err", err)
	}
	s.publishEvent(ctx, FrameGroup, ev, append(memberIDs(ms), extra...))
}

// CreateGroupResult is the outcome of CreateGroup.
type CreateGroupResult struct {
	Group        *GroupView        `json:"group"`
	Invitations  []*InvitationView `json:"invitations_sent"`
	UnknownUsers []string          `json:"unknown_users"`
}

// CreateGroup creates a group owned by the caller and invites the known
// users among initialMembers; unknown names are reported, not fatal, and
// users who block the caller are left out without a word. It
// returns EINVALID for a bad name or more than 100 initial members.
func (s *Service) CreateGroup(ctx context.Context, c Claims, name string, initialMembers []string) (*CreateGroupResult, error) {
	if err := ValidateGroupName(name); err != nil {
		return nil, err
	} else if len(initialMembers) > MaxBatchIDs {
		return nil, Errorf(EINVALID, "At most 100 initial members may be invited.")
	}
	owner, err := s.Me(ctx, c)
	if err != nil {
		return nil, err
	}
	now := Now()
	g := &Group{ID: NewID(), Name: name, OwnerID: owner.ID, CreatedAt: now}
	if err := s.store.CreateGroup(ctx, g, &Membership{GroupID: g.ID, UserID: owner.ID, Role: RoleOwner, JoinedAt: now}); err != nil {
		return nil, err
	}
	s.publishMembership(ctx, g.ID, true, owner.ID)
	res := &CreateGroupResult{Invitations: []*InvitationView{}, UnknownUsers: []string{}}
	for _, name := range uniqFold(initialMembers) {
		if strings.EqualFold(name, owner.Username) {
			continue
		}
		inv, err := s.invite(ctx, g, owner, name)
		switch ErrorCode(err) {
		case "":
			res.Invitations = append(res.Invitations, inv)
		case ENOTFOUND, EINVALID:
			res.UnknownUsers = append(res.UnknownUsers, name)
		case ECONFLICT, EFORBIDDEN:
			// Already invited, or the user blocks the owner: left
			// out without saying so.
		default:
			return nil, err
		}
	}
	if res.Group, _, err = s.groupView(ctx, g, false); err != nil {
		return nil, err
	}
	return res, nil
}

// ListGroups returns the groups the caller is a member of, oldest
// membership first.
func (s *Service) ListGroups(ctx context.Context, c Claims) ([]*GroupView, error) {
	ms, err := s.store.FindMembershipsByUser(ctx, c.UserID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.GroupID
	}
	groups, err := s.store.FindGroupsByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*Group, len(groups))
	for _, g := range groups {
		byID[g.ID] = g
	}
	out := make([]*GroupView, 0, len(groups))
	for _, id := range ids {
		g, ok := byID[id]
		if !ok {
			continue
		}
		v, _, err := s.groupView(ctx, g, false)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// GetGroup returns a group the caller is a member of.
func (s *Service) GetGroup(ctx context.Context, c Claims, groupID string) (*GroupView, error) {
	acc, err := s.authorize(ctx, c, groupID, ActionRead)
	if err != nil {
		return nil, err
	}
	v, _, err := s.groupView(ctx, acc.group, false)
	return v, err
}

// DeleteGroup deletes a group, its memberships and invitations. Only the
// owner may.
func (s *Service) DeleteGroup(ctx context.Context, c Claims, groupID string) error {
	acc, err := s.authorize(ctx, c, groupID, ActionDelete)
	if err != nil {
		return err
	}
	ms, err := s.store.FindMembershipsByGroup(ctx, groupID)
	if err != nil {
		return err
	}
	if err := s.store.DeleteGroup(ctx, groupID); err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return errGroupNotFound()
		}
		return err
	}
	s.publishMembership(ctx, groupID, false, memberIDs(ms)...)
	me, _ := s.usernames(ctx, []string{c.UserID})
	ev := GroupEvent{Event: GroupDeleted, GroupID: groupID, GroupName: acc.group.Name, By: me[c.UserID]}
	s.publishEvent(ctx, FrameGroup, ev, memberIDs(ms))
	return nil
}

// GroupAdmin returns the administration view of a group to its admins and
// owner.
func (s *Service) GroupAdmin(ctx context.Context, c Claims, groupID string) (*GroupAdminView, error) {
	acc, err := s.authorize(ctx, c, groupID, ActionAdminInfo)
	if err != nil {
		return nil, err
	}
	v, ms, err := s.groupView(ctx, acc.group, false)
	if err != nil {
		return nil, err
	}
	members, err := s.memberViews(ctx, acc.group, ms, true, c.UserID)
	if err != nil {
		return nil, err
	}
	out := &GroupAdminView{Group: v, Members: members, CurrentUserRole: acc.role}
	for _, m := range v.Members {
		switch m.Role {
		case RoleOwner:
			out.OwnerCount++
		case RoleAdmin:
			out.AdminCount++
		}
	}
	return out, nil
}

// ListMembers returns the members of a group with their roles and presence,
// to its members.
func (s *Service) ListMembers(ctx context.Context, c Claims, groupID string) ([]*Member, error) {
	acc, err := s.authorize(ctx, c, groupID, ActionRead)
	if err != nil {
		return nil, err
	}
	ms, err := s.store.FindMembershipsByGroup(ctx, groupID)
	if err != nil {
		return nil, err
	}
	return s.memberViews(ctx, acc.group, ms, true, c.UserID)
}

// LeaveGroup removes the caller from a group. The owner gets ECONFLICT until
// ownership is transferred.
func (s *Service) LeaveGroup(ctx context.Context, c Claims, groupID string) error {
	acc, err := s.authorize(ctx, c, groupID, ActionLeave)
	if err != nil {
		return err
	}
	errOwner := Errorf(ECONFLICT, "The owner cannot leave; transfer ownership first.")
	if acc.role == RoleOwner {
		return errOwner
	}
	if err := s.deleteMembership(ctx, acc.self); ErrorCode(err) == ENOTFOUND {
		return errGroupNotFound()
	} else if ErrorCode(err) == ECONFLICT {
		return errOwner
	} else if err != nil {
		return err
	}
	s.cancelInvitationsFrom(ctx, groupID, c.UserID)
	s.publishMembership(ctx, groupID, false, c.UserID)
	names, _ := s.usernames(ctx, []string{c.UserID})
	s.publishGroupEvent(ctx, GroupEvent{Event: GroupMemberLeft, GroupID: groupID, Username: names[c.UserID]}, c.UserID)
	return nil
}

// TransferResult is the outcome of TransferOwnership.
type TransferResult struct {
	Message       string `json:"message"`
	PreviousOwner string `json:"previousOwner"`
	NewOwner      string `json:"newOwner"`
}

// TransferOwnership makes another member the owner; the caller becomes an
// admin. Only the owner may. It returns ENOTFOUND when the new owner is not
// a member, EINVALID when it is the caller, and ECONFLICT when ownership
// changed meanwhile.
func (s *Service) TransferOwnership(ctx context.Context, c Claims, groupID, newOwner string) (*TransferResult, error) {
	if newOwner == "" {
		return nil, Errorf(EINVALID, "newOwner is required.")
	}
	acc, err := s.authorize(ctx, c, groupID, ActionTransfer)
	if err != nil {
		return nil, err
	}
	target, _, err := s.findMember(ctx, groupID, newOwner)
	if err != nil {
		return nil, err
	}
	if target.ID == c.UserID {
		return nil, Errorf(EINVALID, "You already own this group.")
	}
	if err := s.store.TransferGroupOwnership(ctx, groupID, c.UserID, target.ID); err != nil {
		if ErrorCode(err) == ECONFLICT {
			return nil, Errorf(ECONFLICT, "Ownership changed meanwhile; reload the group.")
		}
		return nil, err
	}
	// The new owner may have left between the check and the transfer: an
	// owner must be a member, so put ownership back.
	if _, err := s.store.FindMembership(ctx, groupID, target.ID); ErrorCode(err) == ENOTFOUND {
		if err := s.store.TransferGroupOwnership(ctx, groupID, target.ID, c.UserID); err != nil {
			s.log.Error("transfer rollback failed", "group", groupID, "err", err)
		} else if err := s.restoreOwner(ctx, acc.self); err != nil {
			s.log.Error("transfer rollback: owner membership not restored", "group", groupID, "err", err)
		}
		return nil, Errorf(ECONFLICT, "%s left the group meanwhile.", target.Username)
	}
	if _, err := s.store.UpdateMembershipRole(ctx, groupID, target.ID, RoleOwner); err != nil {
		s.log.Warn("transfer: new owner role not stored", "group", groupID, "err", err)
	}
	if _, err := s.store.UpdateMembershipRole(ctx, groupID, c.UserID, RoleAdmin); err != nil {
		s.log.Warn("transfer: previous owner role not stored", "group", groupID, "err", err)
	}
	me, err := s.Me(ctx, c)
	if err != nil {
		return nil, err
	}
	res := &TransferResult{Message: "Ownership transferred successfully", PreviousOwner: me.Username, NewOwner: target.Username}
	s.publishGroupEvent(ctx, GroupEvent{Event: GroupOwnerTransferred, GroupID: acc.group.ID, PreviousOwner: res.PreviousOwner, NewOwner: res.NewOwner})
	return res, nil
}

// restoreOwner makes sure the owner whose ownership a failed transfer put
// back is still a member: while the group named another owner, the caller
// counted as an admin and may have left (deleteMembership saw no owner in
// it). An owner always stays a member, so the membership is stored again.
func (s *Service) restoreOwner(ctx context.Context, m *Membership) error {
	if _, err := s.store.FindMembership(ctx, m.GroupID, m.UserID); ErrorCode(err) != ENOTFOUND {
		return err
	}
	restored := *m
	restored.Role = RoleOwner
	if err := s.store.CreateMembership(ctx, &restored); err != nil && ErrorCode(err) != ECONFLICT {
		return err
	}
	s.log.Warn("transfer rollback: the owner had left meanwhile; membership restored", "group", m.GroupID, "user", m.UserID)
	return nil
}

// deleteMembership deletes m unless its user owns the group. Ownership may
// be transferred to that user while the deletion runs (no transaction spans
// the two documents), so the group is read again afterwards and the
// membership restored if its user became the owner: an owner always stays a
// member. It returns ECONFLICT in that case and ENOTFOUND when m is gone.
func (s *Service) deleteMembership(ctx context.Context, m *Membership) error {
	if err := s.store.DeleteMembership(ctx, m.GroupID, m.UserID); err != nil {
		return err
	}
	g, err := s.store.FindGroupByID(ctx, m.GroupID)
	if err != nil || g.OwnerID != m.UserID {
		return nil
	}
	if err := s.store.CreateMembership(ctx, m); err != nil && ErrorCode(err) != ECONFLICT {
		return err
	}
	return Errorf(ECONFLICT, "The owner cannot leave the group.")
}

// findMember resolves username to a user who is a member of the group. It
// returns ENOTFOUND when the user does not exist or is not a member.
func (s *Service) findMember(ctx context.Context, groupID, username string) (*User, *Membership, error) {
	u, err := s.FindUserByUsername(ctx, username)
	if err != nil {
		return nil, nil, err
	}
	m, err := s.store.FindMembership(ctx, groupID, u.ID)
	if ErrorCode(err) == ENOTFOUND {
		return nil, nil, Errorf(ENOTFOUND, "%s is not a member of this group.", u.Username)
	} else if err != nil {
		return nil, nil, err
	}
	return u, m, nil
}

// AddMember adds a user to a group directly with role (default member).
// Admins add members; only the owner adds admins. It returns EINVALID for a
// bad role, ENOTFOUND for an unknown user and ECONFLICT for a member.
func (s *Service) AddMember(ctx context.Context, c Claims, groupID, username, role string) (*Member, error) {
	if role == "" {
		role = string(RoleMember)
	}
	r, err := ParseSettableRole(role)
	if err != nil {
		return nil, err
	} else if username == "" {
		return nil, Errorf(EINVALID, "username is required.")
	}
	action := ActionAddMember
	if r == RoleAdmin {
		action = ActionAddAdmin
	}
	acc, err := s.authorize(ctx, c, groupID, action)
	if err != nil {
		return nil, err
	}
	u, err := s.FindUserByUsername(ctx, username)
	if err != nil {
		return nil, err
	}
	m := &Membership{GroupID: groupID, UserID: u.ID, Role: r, JoinedAt: Now()}
	if err := s.store.CreateMembership(ctx, m); err != nil {
		if ErrorCode(err) == ECONFLICT {
			return nil, Errorf(ECONFLICT, "%s is already a member of this group.", u.Username)
		}
		return nil, err
	}
	s.cancelPendingInvitations(ctx, groupID, u.ID)
	s.publishMembership(ctx, groupID, true, u.ID)
	s.publishGroupEvent(ctx, GroupEvent{Event: GroupMemberAdded, GroupID: groupID, GroupName: acc.group.Name, Username: u.Username, Role: r})
	return &Member{UserID: u.ID, Username: u.Username, Role: r, JoinedAt: m.JoinedAt}, nil
}

// cancelPendingInvitations cancels the user's pending invitations to the
// group, which a direct add made pointless.
func (s *Service) cancelPendingInvitations(ctx context.Context, groupID, userID string) {
	invs, err := s.store.FindInvitations(ctx, InvitationFilter{GroupID: groupID, InviteeID: userID, Status: InvitationPending})
	if err != nil {
		s.log.Warn("pending invitations lookup failed", "err", err)
		return
	}
	for _, inv := range invs {
		if _, err := s.store.RespondInvitation(ctx, inv.ID, InvitationCancelled, Now()); err != nil && ErrorCode(err) != ECONFLICT {
			s.log.Warn("invitation cancel failed", "err", err)
		}
	}
}

// cancelInvitationsFrom cancels the pending invitations to the group sent by
// a member who is no longer one: an invitation speaks for its inviter's
// membership. AcceptInvitation checks the inviter again, for invitations
// sent while the inviter was leaving.
func (s *Service) cancelInvitationsFrom(ctx context.Context, groupID, inviterID string) {
	invs, err := s.store.FindInvitations(ctx, InvitationFilter{GroupID: groupID, Status: InvitationPending})
	if err != nil {
		s.log.Warn("pending invitations lookup failed", "err", err)
		return
	}
	for _, inv := range invs {
		if inv.InviterID != inviterID {
			continue
		}
		if _, err := s.store.RespondInvitation(ctx, inv.ID, InvitationCancelled, Now()); err != nil && ErrorCode(err) != ECONFLICT {
			s.log.Warn("invitation cancel failed", "err", err)
		}
	}
}

// RemoveMember removes a member from a group. Admins remove plain members;
// the owner removes members and admins; nobody removes the owner.
func (s *Service) RemoveMember(ctx context.Context, c Claims, groupID, username string) error {
	acc, err := s.authorize(ctx, c, groupID, ActionRemoveMember)
	if err != nil {
		return err
	}
	u, m, err := s.findMember(ctx, groupID, username)
	if err != nil {
		return err
	}
	switch EffectiveRole(acc.group, m) {
	case RoleOwner:
		return Errorf(EFORBIDDEN, "The owner cannot be removed.")
	case RoleAdmin:
		if !Allowed(acc.role, ActionRemoveAdmin) {
			return Errorf(EFORBIDDEN, "Only the owner can remove an admin.")
		}
	}
	if err := s.deleteMembership(ctx, m); ErrorCode(err) == ENOTFOUND {
		return Errorf(ENOTFOUND, "%s is not a member of this group.", u.Username)
	} else if ErrorCode(err) == ECONFLICT {
		return Errorf(EFORBIDDEN, "The owner cannot be removed.")
	} else if err != nil {
		return err
	}
	s.cancelInvitationsFrom(ctx, groupID, u.ID)
	s.publishMembership(ctx, groupID, false, u.ID)
	s.publishGroupEvent(ctx, GroupEvent{Event: GroupMemberRemoved, GroupID: groupID, GroupName: acc.group.Name, Username: u.Username}, u.ID)
	return nil
}

// ChangeRole sets a member's role to admin or member. Only the owner may; the
// owner's own role changes only by transfer (ECONFLICT).
func (s *Service) ChangeRole(ctx context.Context, c Claims, groupID, username, role string) (*Member, error) {
	r, err := ParseSettableRole(role)
	if err != nil {
		return nil, err
	}
	acc, err := s.authorize(ctx, c, groupID, ActionChangeRole)
	if err != nil {
		return nil, err
	}
	u, m, err := s.findMember(ctx, groupID, username)
	if err != nil {
		return nil, err
	}
	if EffectiveRole(acc.group, m) == RoleOwner {
		return nil, Errorf(ECONFLICT, "The owner's role changes only by transferring ownership.")
	}
	m, err = s.store.UpdateMembershipRole(ctx, groupID, u.ID, r)
	if ErrorCode(err) == ENOTFOUND {
		return nil, Errorf(ENOTFOUND, "%s is not a member of this group.", u.Username)
	} else if err != nil {
		return nil, err
	}
	g, err := s.store.FindGroupByID(ctx, groupID)
	if err != nil {
		return nil, err
	}
	mv := &Member{UserID: u.ID, Username: u.Username, Role: EffectiveRole(g, m), JoinedAt: m.JoinedAt}
	s.publishGroupEvent(ctx, GroupEvent{Event: GroupRoleChanged, GroupID: groupID, Username: u.Username, Role: mv.Role})
	return mv, nil
}

// leaveAllGroups removes a departing user from every group. A group they own
// passes to its longest-standing admin, else its longest-standing member,
// else it is deleted. The pods holding the user's sockets are told to leave
// every group topic.
func (s *Service) leaveAllGroups(ctx context.Context, u *User) error {
	ms, err := s.store.FindMembershipsByUser(ctx, u.ID)
	if err != nil {
		return err
	}
	var left []Publication // a Leave order per group attempted, sent even when one fails
	defer func() { s.publish(ctx, left...) }()
	for _, m := range ms {
		left = append(left, Publication{Topic: UserTopic(u.ID), Envelope: Envelope{Leave: m.GroupID}})
		g, err := s.store.FindGroupByID(ctx, m.GroupID)
		if ErrorCode(err) == ENOTFOUND {
			_ = s.store.DeleteMembership(ctx, m.GroupID, u.ID)
			continue
		} else if err != nil {
			return err
		}
		if g.OwnerID == u.ID {
			if err := s.handOver(ctx, g, u); err != nil {
				return err
			}
			continue
		}
		if err := s.store.DeleteMembership(ctx, g.ID, u.ID); err != nil && ErrorCode(err) != ENOTFOUND {
			return err
		}
		s.cancelInvitationsFrom(ctx, g.ID, u.ID)
		s.publishGroupEvent(ctx, GroupEvent{Event: GroupMemberLeft, GroupID: g.ID, Username: u.Username})
	}
	return nil
}

// handOver passes a group owned by the departing user u to its successor, or
// deletes it when u is its last member.
func (s *Service) handOver(ctx context.Context, g *Group, u *User) error {
	ms, err := s.store.FindMembershipsByGroup(ctx, g.ID)
	if err != nil {
		return err
	}
	var successor *Membership
	for _, m := range ms { // oldest first: the first admin, else the first member
		if m.UserID == u.ID {
			continue
		}
		if EffectiveRole(g, m) == RoleAdmin {
			successor = m
			break
		}
		if successor == nil {
			successor = m
		}
	}
	if successor == nil {
		if err := s.store.DeleteGroup(ctx, g.ID); err != nil && ErrorCode(err) != ENOTFOUND {
			return err
		}
		return nil
	}
	if err := s.store.TransferGroupOwnership(ctx, g.ID, u.ID, successor.UserID); err != nil {
		return err
	}
	if _, err := s.store.UpdateMembershipRole(ctx, g.ID, successor.UserID, RoleOwner); err != nil {
		s.log.Warn("hand over: role not stored", "group", g.ID, "err", err)
	}
	if err := s.store.DeleteMembership(ctx, g.ID, u.ID); err != nil && ErrorCode(err) != ENOTFOUND {
		return err
	}
	s.cancelInvitationsFrom(ctx, g.ID, u.ID)
	names, _ := s.usernames(ctx, []string{successor.UserID})
	s.publishGroupEvent(ctx, GroupEvent{Event: GroupOwnerTransferred, GroupID: g.ID, PreviousOwner: u.Username, NewOwner: names[successor.UserID]})
	s.publishGroupEvent(ctx, GroupEvent{Event: GroupMemberLeft, GroupID: g.ID, Username: u.Username})
	return nil
}
