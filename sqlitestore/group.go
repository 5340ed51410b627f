package sqlitestore

import (
	"context"
	"database/sql"

	"github.com/aoba-chat/aoba"
)

const groupColumns = "id, name, owner_id, created_at"

const membershipColumns = "group_id, user_id, role, joined_at"

const (
	msgGroupNotFound      = "Group not found."
	msgGroupExists        = "Group already exists."
	msgMembershipNotFound = "Membership not found."
	msgAlreadyMember      = "User is already a member of the group."
	msgOwnerChanged       = "Group owner has changed."
)

// scanGroup reads one row of groupColumns.
func scanGroup(r rowScanner) (*aoba.Group, error) {
	var g aoba.Group
	var created int64
	if err := r.Scan(&g.ID, &g.Name, &g.OwnerID, &created); err != nil {
		return nil, err
	}
	g.CreatedAt = fromMillis(created)
	return &g, nil
}

// scanMembership reads one row of membershipColumns.
func scanMembership(r rowScanner) (*aoba.Membership, error) {
	var m aoba.Membership
	var role string
	var joined int64
	if err := r.Scan(&m.GroupID, &m.UserID, &role, &joined); err != nil {
		return nil, err
	}
	m.Role = aoba.Role(role)
	m.JoinedAt = fromMillis(joined)
	return &m, nil
}

// CreateGroup stores g and the owner's membership owner in one
// transaction. It returns ECONFLICT when a group with that id exists,
// EINTERNAL on any other failure.
func (s *Store) CreateGroup(ctx context.Context, g *aoba.Group, owner *aoba.Membership) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO chat_groups (id, name, owner_id, created_at) VALUES (?, ?, ?, ?)",
			g.ID, g.Name, g.OwnerID, millis(g.CreatedAt)); err != nil {
			return translate(err, "create group", "", msgGroupExists)
		}
		if owner == nil {
			return nil
		}
		return insertMembership(ctx, tx, owner)
	})
}

// FindGroupByID returns the group with that id. It returns ENOTFOUND when
// no group has that id, EINTERNAL on any other failure.
func (s *Store) FindGroupByID(ctx context.Context, id string) (*aoba.Group, error) {
	g, err := scanGroup(s.read.QueryRowContext(ctx, "SELECT "+groupColumns+" FROM chat_groups WHERE id = ?", id))
	if err != nil {
		return nil, translate(err, "find group by id", msgGroupNotFound, "")
	}
	return g, nil
}

// FindGroupsByIDs returns the groups among ids that exist, ordered by id.
// It returns EINTERNAL when the query fails.
func (s *Store) FindGroupsByIDs(ctx context.Context, ids []string) ([]*aoba.Group, error) {
	if len(ids) == 0 {
		return []*aoba.Group{}, nil
	}
	return queryAll(ctx, s.read, "find groups by ids", scanGroup,
		"SELECT "+groupColumns+" FROM chat_groups WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id", jsonList(ids))
}

// DeleteGroup removes the group, its memberships and its invitations in
// one transaction. It returns ENOTFOUND when no group has that id,
// EINTERNAL on any other failure.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM chat_groups WHERE id = ?", id)
		if err := affectedOne(res, err, "delete group", msgGroupNotFound); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM memberships WHERE group_id = ?", id); err != nil {
			return internal("delete group memberships", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM invitations WHERE group_id = ?", id); err != nil {
			return internal("delete group invitations", err)
		}
		return nil
	})
}

// TransferGroupOwnership sets the group's owner to toUserID if and only if
// it is fromUserID now. It returns ENOTFOUND for an unknown group, ECONFLICT
// when the owner is no longer fromUserID, EINTERNAL on any other failure.
func (s *Store) TransferGroupOwnership(ctx context.Context, groupID, fromUserID, toUserID string) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE chat_groups SET owner_id = ? WHERE id = ? AND owner_id = ?", toUserID, groupID, fromUserID)
		if err != nil {
			return internal("transfer group ownership", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return internal("transfer group ownership", err)
		} else if n == 1 {
			return nil
		}
		var exists int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM chat_groups WHERE id = ?", groupID).Scan(&exists); err != nil {
			return internal("transfer group ownership", err)
		} else if exists == 0 {
			return aoba.Errorf(aoba.ENOTFOUND, msgGroupNotFound)
		}
		return aoba.Errorf(aoba.ECONFLICT, msgOwnerChanged)
	})
}

// insertMembership inserts m with q.
func insertMembership(ctx context.Context, q interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}, m *aoba.Membership) error {
	_, err := q.ExecContext(ctx,
		"INSERT INTO memberships (group_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)",
		m.GroupID, m.UserID, string(m.Role), millis(m.JoinedAt))
	return translate(err, "create membership", "", msgAlreadyMember)
}

// CreateMembership stores m. It returns ECONFLICT when the user is already
// a member of the group, EINTERNAL on any other failure.
func (s *Store) CreateMembership(ctx context.Context, m *aoba.Membership) error {
	return insertMembership(ctx, s.write, m)
}

// FindMembership returns the user's membership of the group. It returns
// ENOTFOUND when the user is not a member, EINTERNAL on any other failure.
func (s *Store) FindMembership(ctx context.Context, groupID, userID string) (*aoba.Membership, error) {
	m, err := scanMembership(s.read.QueryRowContext(ctx,
		"SELECT "+membershipColumns+" FROM memberships WHERE group_id = ? AND user_id = ?", groupID, userID))
	if err != nil {
		return nil, translate(err, "find membership", msgMembershipNotFound, "")
	}
	return m, nil
}

// FindMembershipsByGroup returns the group's memberships, oldest first
// (ties broken by user id). It returns EINTERNAL when the query fails.
func (s *Store) FindMembershipsByGroup(ctx context.Context, groupID string) ([]*aoba.Membership, error) {
	return queryAll(ctx, s.read, "find memberships by group", scanMembership,
		"SELECT "+membershipColumns+" FROM memberships WHERE group_id = ? ORDER BY joined_at, user_id", groupID)
}

// FindMembershipsByUser returns the user's memberships, oldest first (ties
// broken by group id). It returns EINTERNAL when the query fails.
func (s *Store) FindMembershipsByUser(ctx context.Context, userID string) ([]*aoba.Membership, error) {
	return queryAll(ctx, s.read, "find memberships by user", scanMembership,
		"SELECT "+membershipColumns+" FROM memberships WHERE user_id = ? ORDER BY joined_at, group_id", userID)
}

// UpdateMembershipRole sets the stored role and returns the updated
// membership. It returns ENOTFOUND when the user is not a member, EINTERNAL
// on any other failure.
func (s *Store) UpdateMembershipRole(ctx context.Context, groupID, userID string, role aoba.Role) (*aoba.Membership, error) {
	m, err := scanMembership(s.write.QueryRowContext(ctx,
		"UPDATE memberships SET role = ? WHERE group_id = ? AND user_id = ? RETURNING "+membershipColumns,
		string(role), groupID, userID))
	if err != nil {
		return nil, translate(err, "update membership role", msgMembershipNotFound, "")
	}
	return m, nil
}

// DeleteMembership removes the user's membership of the group. It returns
// ENOTFOUND when the user is not a member, EINTERNAL on any other failure.
func (s *Store) DeleteMembership(ctx context.Context, groupID, userID string) error {
	res, err := s.write.ExecContext(ctx, "DELETE FROM memberships WHERE group_id = ? AND user_id = ?", groupID, userID)
	return affectedOne(res, err, "delete membership", msgMembershipNotFound)
}
