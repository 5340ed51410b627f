package sqlitestore

import (
	"context"
	"database/sql"
	"time"

	"github.com/aoba-chat/aoba"
)

const sessionColumns = "id, user_id, token_id, created_at, last_seen_at, expires_at, user_agent, ip, revoked_at"

const (
	msgSessionNotFound = "Session not found."
	msgSessionExists   = "A session with this id already exists."
	msgSessionRevoked  = "The session is revoked."
	msgSessionRotated  = "The session's token has been replaced."
)

// sessionRetention is how long after its expiry a session stays stored:
// Open and the purge loop delete the sessions expired longer ago.
const sessionRetention = 24 * time.Hour

// scanSession reads one row of sessionColumns.
func scanSession(r rowScanner) (*aoba.Session, error) {
	var ss aoba.Session
	var created, lastSeen, expires int64
	var revoked sql.NullInt64
	if err := r.Scan(&ss.ID, &ss.UserID, &ss.TokenID, &created, &lastSeen, &expires,
		&ss.UserAgent, &ss.IP, &revoked); err != nil {
		return nil, err
	}
	ss.CreatedAt, ss.LastSeenAt, ss.ExpiresAt = fromMillis(created), fromMillis(lastSeen), fromMillis(expires)
	if revoked.Valid {
		t := fromMillis(revoked.Int64)
		ss.RevokedAt = &t
	}
	return &ss, nil
}

// nullMillis returns t as unix milliseconds, or NULL when t is nil.
func nullMillis(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: millis(*t), Valid: true}
}

// CreateSession stores ss. It returns ECONFLICT when the id exists,
// EINTERNAL on any other failure.
func (s *Store) CreateSession(ctx context.Context, ss *aoba.Session) error {
	_, err := s.write.ExecContext(ctx,
		"INSERT INTO sessions ("+sessionColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		ss.ID, ss.UserID, ss.TokenID, millis(ss.CreatedAt), millis(ss.LastSeenAt), millis(ss.ExpiresAt),
		ss.UserAgent, ss.IP, nullMillis(ss.RevokedAt))
	return translate(err, "create session", "", msgSessionExists)
}

// FindSessionByID returns the session with that id. It returns ENOTFOUND
// when no session has that id, EINTERNAL on any other failure.
func (s *Store) FindSessionByID(ctx context.Context, id string) (*aoba.Session, error) {
	ss, err := scanSession(s.read.QueryRowContext(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE id = ?", id))
	if err != nil {
		return nil, translate(err, "find session", msgSessionNotFound, "")
	}
	return ss, nil
}

// FindSessionsByUser returns every stored session of the user, revoked and
// expired ones included, oldest first (ties broken by id). It returns
// EINTERNAL when the query fails.
func (s *Store) FindSessionsByUser(ctx context.Context, userID string) ([]*aoba.Session, error) {
	return queryAll(ctx, s.read, "find sessions by user", scanSession,
		"SELECT "+sessionColumns+" FROM sessions WHERE user_id = ? ORDER BY created_at, id", userID)
}

// RotateSession makes toTokenID the session's token, expiring at
// expiresAt, if fromTokenID is its token now and it is not revoked: one
// conditional UPDATE on the writer connection, so that of concurrent
// rotations from the same token exactly one succeeds. It returns ENOTFOUND
// for an unknown session, ECONFLICT when the session is revoked or its
// token is no longer fromTokenID, EINTERNAL on any other failure.
func (s *Store) RotateSession(ctx context.Context, id, fromTokenID, toTokenID string, expiresAt time.Time) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			"UPDATE sessions SET token_id = ?, expires_at = ? WHERE id = ? AND token_id = ? AND revoked_at IS NULL",
			toTokenID, millis(expiresAt), id, fromTokenID)
		if err != nil {
			return internal("rotate session", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return internal("rotate session", err)
		} else if n > 0 {
			return nil
		}
		// Nothing matched: tell an unknown session from a refused one, in
		// the same transaction.
		var revoked bool
		err = tx.QueryRowContext(ctx, "SELECT revoked_at IS NOT NULL FROM sessions WHERE id = ?", id).Scan(&revoked)
		switch {
		case err != nil:
			return translate(err, "rotate session", msgSessionNotFound, "")
		case revoked:
			return aoba.Errorf(aoba.ECONFLICT, "%s", msgSessionRevoked)
		default:
			return aoba.Errorf(aoba.ECONFLICT, "%s", msgSessionRotated)
		}
	})
}

// TouchSession sets the session's LastSeenAt to at. An unknown id is not
// an error. It returns EINTERNAL when the write fails.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	if _, err := s.write.ExecContext(ctx, "UPDATE sessions SET last_seen_at = ? WHERE id = ?", millis(at), id); err != nil {
		return internal("touch session", err)
	}
	return nil
}

// RevokeSession sets the session's RevokedAt to at unless it is set
// already (revoking a revoked session changes nothing and succeeds). It
// returns ENOTFOUND for an unknown session, EINTERNAL on any other failure.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time) error {
	// SQLite counts every row that the WHERE clause matches as changed,
	// so an already revoked session is found, and keeps its RevokedAt.
	res, err := s.write.ExecContext(ctx,
		"UPDATE sessions SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", millis(at), id)
	return affectedOne(res, err, "revoke session", msgSessionNotFound)
}

// RevokeUserSessions revokes, at at, every unrevoked session of the user
// except keepID (when not empty), in one statement. It returns EINTERNAL
// when the write fails.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, keepID string, at time.Time) error {
	if _, err := s.write.ExecContext(ctx,
		"UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND (? = '' OR id <> ?)",
		millis(at), userID, keepID, keepID); err != nil {
		return internal("revoke user sessions", err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions that expired before `before`
// (to the millisecond) and returns how many. It returns EINTERNAL when the
// write fails.
func (s *Store) DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error) {
	res, err := s.write.ExecContext(ctx, "DELETE FROM sessions WHERE expires_at < ?", millis(before))
	if err != nil {
		return 0, internal("delete expired sessions", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, internal("delete expired sessions", err)
	}
	return int(n), nil
}
