package sqlitestore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/aoba-chat/aoba"
)

const invitationColumns = "id, group_id, inviter_id, invitee_id, status, created_at, responded_at"

const (
	msgInvitationNotFound = "Invitation not found."
	msgInvitationPending  = "A pending invitation for this user to this group already exists."
	msgInvitationAnswered = "Invitation is no longer pending."
)

// scanInvitation reads one row of invitationColumns.
func scanInvitation(r rowScanner) (*aoba.Invitation, error) {
	var inv aoba.Invitation
	var status string
	var created int64
	var responded sql.NullInt64
	if err := r.Scan(&inv.ID, &inv.GroupID, &inv.InviterID, &inv.InviteeID, &status, &created, &responded); err != nil {
		return nil, err
	}
	inv.Status = aoba.InvitationStatus(status)
	inv.CreatedAt = fromMillis(created)
	if responded.Valid {
		t := fromMillis(responded.Int64)
		inv.RespondedAt = &t
	}
	return &inv, nil
}

// CreateInvitation stores inv; an empty Status is stored (and set) as
// pending. A partial unique index on (group, invitee) of pending
// invitations makes it return ECONFLICT when a pending invitation of the
// same invitee to the same group exists, even under concurrent calls (and
// when the id exists). It returns EINTERNAL on any other failure.
func (s *Store) CreateInvitation(ctx context.Context, inv *aoba.Invitation) error {
	if inv.Status == "" {
		inv.Status = aoba.InvitationPending
	}
	var responded any
	if inv.RespondedAt != nil {
		responded = millis(*inv.RespondedAt)
	}
	_, err := s.write.ExecContext(ctx,
		"INSERT INTO invitations ("+invitationColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		inv.ID, inv.GroupID, inv.InviterID, inv.InviteeID, string(inv.Status), millis(inv.CreatedAt), responded)
	return translate(err, "create invitation", "", msgInvitationPending)
}

// FindInvitationByID returns the invitation with that id. It returns
// ENOTFOUND when no invitation has that id, EINTERNAL on any other failure.
func (s *Store) FindInvitationByID(ctx context.Context, id string) (*aoba.Invitation, error) {
	inv, err := scanInvitation(s.read.QueryRowContext(ctx,
		"SELECT "+invitationColumns+" FROM invitations WHERE id = ?", id))
	if err != nil {
		return nil, translate(err, "find invitation by id", msgInvitationNotFound, "")
	}
	return inv, nil
}

// FindInvitations returns the invitations matching f, oldest first (ties
// broken by id). It returns EINTERNAL when the query fails.
func (s *Store) FindInvitations(ctx context.Context, f aoba.InvitationFilter) ([]*aoba.Invitation, error) {
	var where []string
	var args []any
	if f.GroupID != "" {
		where, args = append(where, "group_id = ?"), append(args, f.GroupID)
	}
	if f.InviteeID != "" {
		where, args = append(where, "invitee_id = ?"), append(args, f.InviteeID)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	query := "SELECT " + invitationColumns + " FROM invitations"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	return queryAll(ctx, s.read, "find invitations", scanInvitation, query+" ORDER BY created_at, id", args...)
}

// RespondInvitation moves a pending invitation to status at time at and
// returns it, atomically: the update is conditional on the pending status,
// so of concurrent calls exactly one succeeds. It returns EINVALID for a
// status other than accepted, denied or cancelled, ENOTFOUND for an unknown
// id, ECONFLICT when the invitation is no longer pending, EINTERNAL on any
// other failure.
func (s *Store) RespondInvitation(ctx context.Context, id string, status aoba.InvitationStatus, at time.Time) (*aoba.Invitation, error) {
	switch status {
	case aoba.InvitationAccepted, aoba.InvitationDenied, aoba.InvitationCancelled:
	default:
		return nil, aoba.Errorf(aoba.EINVALID, "Invitation status must be accepted, denied or cancelled.")
	}
	var inv *aoba.Invitation
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var err error
		inv, err = scanInvitation(tx.QueryRowContext(ctx,
			"UPDATE invitations SET status = ?, responded_at = ? WHERE id = ? AND status = 'pending' RETURNING "+invitationColumns,
			string(status), millis(at), id))
		if err == nil {
			return nil
		} else if err != sql.ErrNoRows {
			return internal("respond invitation", err)
		}
		var exists int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM invitations WHERE id = ?", id).Scan(&exists); err != nil {
			return internal("respond invitation", err)
		} else if exists == 0 {
			return aoba.Errorf(aoba.ENOTFOUND, msgInvitationNotFound)
		}
		return aoba.Errorf(aoba.ECONFLICT, msgInvitationAnswered)
	})
	if err != nil {
		return nil, err
	}
	return inv, nil
}
