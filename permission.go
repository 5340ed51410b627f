package aoba

import (
	"context"
	"strings"
	"unicode/utf8"
)

// Action is something a member may try to do in a group. The table in
// Allowed is the one place where group permissions are written.
type Action int

// Group actions.
const (
	ActionRead          Action = iota // read the group, its members and history; send messages
	ActionInvite                      // invite a user
	ActionLeave                       // leave the group
	ActionAdminInfo                   // read the administration view
	ActionAddMember                   // add a member directly
	ActionAddAdmin                    // add an admin directly
	ActionRemoveMember                // remove a plain member
	ActionRemoveAdmin                 // remove an admin
	ActionChangeRole                  // change a member's role
	ActionTransfer                    // transfer ownership
	ActionDelete                      // delete the group
	ActionDeleteMessage               // delete another member's message
)

// minimumRole is the least role that may perform each action.
var minimumRole = map[Action]Role{
	ActionRead:          RoleMember,
	ActionInvite:        RoleMember,
	ActionLeave:         RoleMember,
	ActionAdminInfo:     RoleAdmin,
	ActionAddMember:     RoleAdmin,
	ActionAddAdmin:      RoleOwner,
	ActionRemoveMember:  RoleAdmin,
	ActionRemoveAdmin:   RoleOwner,
	ActionChangeRole:    RoleOwner,
	ActionTransfer:      RoleOwner,
	ActionDelete:        RoleOwner,
	ActionDeleteMessage: RoleAdmin,
}

// rank orders roles: owner > admin > member.
func rank(r Role) int {
	switch r {
	case RoleOwner:
		return 3
	case RoleAdmin:
		return 2
	case RoleMember:
		return 1
	}
	return 0
}

// Allowed reports whether a member with role r may perform a.
func Allowed(r Role, a Action) bool {
	min, ok := minimumRole[a]
	return ok && rank(r) >= rank(min)
}

// ParseSettableRole returns the role named s when it may be set on a member
// (admin or member). It returns EINVALID for "owner" or any other value.
func ParseSettableRole(s string) (Role, error) {
	switch Role(s) {
	case RoleAdmin, RoleMember:
		return Role(s), nil
	case RoleOwner:
		return "", Errorf(EINVALID, "The owner role cannot be set; transfer ownership instead.")
	}
	return "", Errorf(EINVALID, "Role must be admin or member.")
}

// ValidateGroupName returns EINVALID unless name has 1 to 100 characters and
// is not blank.
func ValidateGroupName(name string) error {
	if n := utf8.RuneCountInString(name); n < GroupNameMinLen || n > GroupNameMaxLen || strings.TrimSpace(name) == "" {
		return Errorf(EINVALID, "Group name must be 1 to 100 characters long.")
	}
	return nil
}

// access is a caller's standing in a group.
type access struct {
	group *Group
	self  *Membership
	role  Role
}

// errGroupNotFound is returned for unknown groups and for groups the caller
// is not a member of alike.
func errGroupNotFound() error { return Errorf(ENOTFOUND, "Group not found.") }

// authorize loads the group and the caller's membership and checks that the
// caller may perform a. A malformed id is EINVALID; an unknown group or a
// caller who is not a member is ENOTFOUND; a member without the role is
// EFORBIDDEN.
func (s *Service) authorize(ctx context.Context, c Claims, groupID string, a Action) (*access, error) {
	if !IsValidID(groupID) {
		return nil, Errorf(EINVALID, "Group id must be a UUID.")
	}
	g, err := s.store.FindGroupByID(ctx, groupID)
	if ErrorCode(err) == ENOTFOUND {
		return nil, errGroupNotFound()
	} else if err != nil {
		return nil, err
	}
	m, err := s.store.FindMembership(ctx, groupID, c.UserID)
	if ErrorCode(err) == ENOTFOUND {
		return nil, errGroupNotFound()
	} else if err != nil {
		return nil, err
	}
	acc := &access{group: g, self: m, role: EffectiveRole(g, m)}
	if !Allowed(acc.role, a) {
		return nil, Errorf(EFORBIDDEN, "Your role in this group does not allow this.")
	}
	return acc, nil
}
