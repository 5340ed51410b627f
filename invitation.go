package aoba

import (
	"context"
	"time"
)

// InvitationStatus is the state of an invitation.
type InvitationStatus string

// Invitation states. Only a pending invitation may change, and only once.
const (
	InvitationPending   InvitationStatus = "pending"
	InvitationAccepted  InvitationStatus = "accepted"
	InvitationDenied    InvitationStatus = "denied"
	InvitationCancelled InvitationStatus = "cancelled"
)

// Invitation invites InviteeID into GroupID, sent by InviterID.
type Invitation struct {
	ID          string
	GroupID     string
	InviterID   string
	InviteeID   string
	Status      InvitationStatus
	CreatedAt   time.Time
	RespondedAt *time.Time
}

// InvitationFilter selects invitations; empty fields match anything.
type InvitationFilter struct {
	GroupID   string
	InviteeID string
	Status    InvitationStatus
}

// InvitationStore persists invitations.
type InvitationStore interface {
	// CreateInvitation stores inv (status pending). It returns ECONFLICT
	// when a pending invitation of the same invitee to the same group
	// exists, even under concurrent calls.
	CreateInvitation(ctx context.Context, inv *Invitation) error
	// FindInvitationByID returns ENOTFOUND when no invitation has that id.
	FindInvitationByID(ctx context.Context, id string) (*Invitation, error)
	// FindInvitations returns the invitations matching f, oldest first.
	FindInvitations(ctx context.Context, f InvitationFilter) ([]*Invitation, error)
	// RespondInvitation moves a pending invitation to status (accepted,
	// denied or cancelled) at time at, atomically: of concurrent calls on
	// one invitation exactly one succeeds. It returns ENOTFOUND for an
	// unknown id and ECONFLICT when the invitation is no longer pending.
	// A responded invitation frees its (group, invitee) pair for a new one.
	RespondInvitation(ctx context.Context, id string, status InvitationStatus, at time.Time) (*Invitation, error)
}
