package aoba

import (
	"context"
	"time"
)

// Group name limits of the contract.
const (
	GroupNameMinLen = 1
	GroupNameMaxLen = 100
)

// Role is a member's role in a group.
type Role string

// Roles, from most to least powerful.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Group is a group chat. OwnerID is the single source of truth for
// ownership: it changes only through the store's compare-and-set
// TransferGroupOwnership, so a group never has zero or two owners.
type Group struct {
	ID        string
	Name      string
	OwnerID   string
	CreatedAt time.Time
}

// Membership is one user's membership of one group: one document or row per
// membership, never an array inside the group. The owner's membership is
// stored like any other; its effective role comes from Group.OwnerID (see
// EffectiveRole), whatever Role says.
type Membership struct {
	GroupID  string
	UserID   string
	Role     Role
	JoinedAt time.Time
}

// EffectiveRole returns the role of m in g: owner when g.OwnerID is m's user,
// otherwise m.Role, where a stale stored "owner" counts as admin.
func EffectiveRole(g *Group, m *Membership) Role {
	switch {
	case g.OwnerID == m.UserID:
		return RoleOwner
	case m.Role == RoleOwner || m.Role == RoleAdmin:
		return RoleAdmin
	default:
		return RoleMember
	}
}

// GroupStore persists groups and memberships. No method needs a
// multi-document transaction.
type GroupStore interface {
	// CreateGroup stores g and the owner's membership owner (Role owner).
	CreateGroup(ctx context.Context, g *Group, owner *Membership) error
	// FindGroupByID returns ENOTFOUND when no group has that id.
	FindGroupByID(ctx context.Context, id string) (*Group, error)
	// FindGroupsByIDs returns the groups among ids that exist, in any order.
	FindGroupsByIDs(ctx context.Context, ids []string) ([]*Group, error)
	// DeleteGroup removes the group, its memberships and its invitations.
	// It returns ENOTFOUND when no group has that id.
	DeleteGroup(ctx context.Context, id string) error
	// TransferGroupOwnership sets the group's OwnerID to toUserID if and
	// only if it is fromUserID now (an atomic compare-and-set on one
	// document or row). It returns ENOTFOUND for an unknown group and
	// ECONFLICT when the owner is no longer fromUserID. Membership roles are
	// the caller's business.
	TransferGroupOwnership(ctx context.Context, groupID, fromUserID, toUserID string) error

	// CreateMembership stores m. It returns ECONFLICT when the user is
	// already a member of the group.
	CreateMembership(ctx context.Context, m *Membership) error
	// FindMembership returns ENOTFOUND when the user is not a member.
	FindMembership(ctx context.Context, groupID, userID string) (*Membership, error)
	// FindMembershipsByGroup returns the group's memberships, oldest first
	// (ties broken by user id).
	FindMembershipsByGroup(ctx context.Context, groupID string) ([]*Membership, error)
	// FindMembershipsByUser returns the user's memberships, oldest first.
	FindMembershipsByUser(ctx context.Context, userID string) ([]*Membership, error)
	// UpdateMembershipRole sets the stored role and returns the updated
	// membership. It returns ENOTFOUND when the user is not a member.
	UpdateMembershipRole(ctx context.Context, groupID, userID string, role Role) (*Membership, error)
	// DeleteMembership returns ENOTFOUND when the user is not a member.
	DeleteMembership(ctx context.Context, groupID, userID string) error
}
