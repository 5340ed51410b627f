package sqlitestore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/aoba-chat/aoba"
)

const userColumns = "id, username, password_hash, created_at, disabled_at"

const (
	msgUserNotFound  = "User not found."
	msgUsernameTaken = "Username is already taken."
)

// scanUser reads one row of userColumns.
func scanUser(r rowScanner) (*aoba.User, error) {
	var u aoba.User
	var created int64
	var disabled sql.NullInt64
	if err := r.Scan(&u.ID, &u.Username, &u.PasswordHash, &created, &disabled); err != nil {
		return nil, err
	}
	u.CreatedAt = fromMillis(created)
	if disabled.Valid {
		t := fromMillis(disabled.Int64)
		u.DisabledAt = &t
	}
	return &u, nil
}

// CreateUser stores u. It returns ECONFLICT when the username is taken in
// any case (or the id exists), EINTERNAL on any other failure.
func (s *Store) CreateUser(ctx context.Context, u *aoba.User) error {
	_, err := s.write.ExecContext(ctx,
		"INSERT INTO users (id, username, username_lower, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
		u.ID, u.Username, strings.ToLower(u.Username), u.PasswordHash, millis(u.CreatedAt))
	return translate(err, "create user", "", msgUsernameTaken)
}

// FindUserByID returns the user with that id. It returns ENOTFOUND when no
// user has that id, EINTERNAL on any other failure.
func (s *Store) FindUserByID(ctx context.Context, id string) (*aoba.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE id = ?", id))
	if err != nil {
		return nil, translate(err, "find user by id", msgUserNotFound, "")
	}
	return u, nil
}

// FindUserByUsername looks the name up case-insensitively. It returns
// ENOTFOUND when no user has that name, EINTERNAL on any other failure.
func (s *Store) FindUserByUsername(ctx context.Context, username string) (*aoba.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx,
		"SELECT "+userColumns+" FROM users WHERE username_lower = ?", strings.ToLower(username)))
	if err != nil {
		return nil, translate(err, "find user by username", msgUserNotFound, "")
	}
	return u, nil
}

// FindUsersByIDs returns the users among ids that exist, ordered by id. It
// returns EINTERNAL when the query fails.
func (s *Store) FindUsersByIDs(ctx context.Context, ids []string) ([]*aoba.User, error) {
	if len(ids) == 0 {
		return []*aoba.User{}, nil
	}
	return queryAll(ctx, s.read, "find users by ids", scanUser,
		"SELECT "+userColumns+" FROM users WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id", jsonList(ids))
}

// FindUsersByUsernames returns the users among usernames
// (case-insensitive) that exist, ordered by lowercase username. It returns
// EINTERNAL when the query fails.
func (s *Store) FindUsersByUsernames(ctx context.Context, usernames []string) ([]*aoba.User, error) {
	if len(usernames) == 0 {
		return []*aoba.User{}, nil
	}
	lower := make([]string, len(usernames))
	for i, n := range usernames {
		lower[i] = strings.ToLower(n)
	}
	return queryAll(ctx, s.read, "find users by usernames", scanUser,
		"SELECT "+userColumns+" FROM users WHERE username_lower IN (SELECT value FROM json_each(?)) ORDER BY username_lower",
		jsonList(lower))
}

// FindUsers returns one page of the users whose username contains f.Query
// (case-insensitive, taken literally: no wildcard), none of f.Exclude,
// ordered by lowercase username, skipping f.Offset and returning at most
// f.Limit (no limit when f.Limit <= 0), and the total number of matches. It
// returns EINTERNAL when the query fails.
func (s *Store) FindUsers(ctx context.Context, f aoba.UserFilter) ([]*aoba.User, int, error) {
	where := "instr(username_lower, ?) > 0 AND id NOT IN (SELECT value FROM json_each(?))"
	args := []any{strings.ToLower(f.Query), jsonList(f.Exclude)}
	limit := f.Limit
	if limit <= 0 {
		limit = -1
	}
	var users []*aoba.User
	var total int
	err := s.withReadTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE "+where, args...).Scan(&total); err != nil {
			return internal("count users", err)
		}
		var err error
		users, err = queryAll(ctx, tx, "find users", scanUser,
			"SELECT "+userColumns+" FROM users WHERE "+where+" ORDER BY username_lower LIMIT ? OFFSET ?",
			append(args, limit, max(f.Offset, 0))...)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return users, total, nil
}

// UpdateUsername renames the user and returns it. It returns ENOTFOUND for
// an unknown id, ECONFLICT when another user holds the name in any case,
// EINTERNAL on any other failure.
func (s *Store) UpdateUsername(ctx context.Context, id, username string) (*aoba.User, error) {
	u, err := scanUser(s.write.QueryRowContext(ctx,
		"UPDATE users SET username = ?, username_lower = ? WHERE id = ? RETURNING "+userColumns,
		username, strings.ToLower(username), id))
	if err != nil {
		return nil, translate(err, "update username", msgUserNotFound, msgUsernameTaken)
	}
	return u, nil
}

// UpdatePasswordHash replaces the stored hash. It returns ENOTFOUND for an
// unknown id, EINTERNAL on any other failure.
func (s *Store) UpdatePasswordHash(ctx context.Context, id, hash string) error {
	res, err := s.write.ExecContext(ctx, "UPDATE users SET password_hash = ? WHERE id = ?", hash, id)
	return affectedOne(res, err, "update password hash", msgUserNotFound)
}

// UpdateUserDisabled sets disabled_at to at (NULL when at is nil) and
// returns the user. It returns ENOTFOUND for an unknown id, EINTERNAL on
// any other failure.
func (s *Store) UpdateUserDisabled(ctx context.Context, id string, at *time.Time) (*aoba.User, error) {
	var ms sql.NullInt64
	if at != nil {
		ms = sql.NullInt64{Int64: millis(*at), Valid: true}
	}
	u, err := scanUser(s.write.QueryRowContext(ctx,
		"UPDATE users SET disabled_at = ? WHERE id = ? RETURNING "+userColumns, ms, id))
	if err != nil {
		return nil, translate(err, "update user disabled", msgUserNotFound, "")
	}
	return u, nil
}

// DeleteUser removes the account, which frees its username, and the roster
// items it owns or is the contact of, in one transaction. It returns
// ENOTFOUND for an unknown id, EINTERNAL on any other failure.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM users WHERE id = ?", id)
		if err := affectedOne(res, err, "delete user", msgUserNotFound); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM roster_items WHERE user_id = ?", id); err != nil {
			return internal("delete user's roster items", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM roster_items WHERE contact_id = ?", id); err != nil {
			return internal("delete roster items of user", err)
		}
		return nil
	})
}
