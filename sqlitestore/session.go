package sqlitestore

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/aoba-chat/aoba"
)

// revocations is the in-memory copy of the revocation tables that
// IsRevoked reads; it changes only after the database has committed.
type revocations struct {
	mu       sync.RWMutex
	sessions map[string]int64    // session id -> expires at (unix ms)
	cutoffs  map[string][]cutoff // user id -> cutoffs
}

// cutoff revokes every session of a user issued at or before beforeMS,
// except keep when it is not empty, until expiresMS.
type cutoff struct {
	beforeMS  int64
	keep      string
	expiresMS int64
}

// covers reports whether c revokes everything that o revokes: every
// session o revokes is issued at or before c.beforeMS and is not c's kept
// session, for at least as long.
func (c cutoff) covers(o cutoff) bool {
	return o.beforeMS <= c.beforeMS && (c.keep == "" || c.keep == o.keep) && o.expiresMS <= c.expiresMS
}

// revokes reports whether c revokes the session of claims issued at
// issuedMS, at time nowMS.
func (c cutoff) revokes(sessionID string, issuedMS, nowMS int64) bool {
	return nowMS < c.expiresMS && issuedMS <= c.beforeMS && (c.keep == "" || sessionID != c.keep)
}

// RevokeSession revokes one session (token id) until expiresAt, durably
// before it returns. It returns EINTERNAL when the database write fails.
func (s *Store) RevokeSession(ctx context.Context, sessionID string, expiresAt time.Time) error {
	exp := millis(expiresAt)
	if _, err := s.write.ExecContext(ctx, `INSERT INTO revoked_sessions (session_id, expires_at) VALUES (?, ?)
ON CONFLICT (session_id) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)`, sessionID, exp); err != nil {
		return internal("revoke session", err)
	}
	r := &s.revoked
	r.mu.Lock()
	r.sessions[sessionID] = max(r.sessions[sessionID], exp)
	r.mu.Unlock()
	return nil
}

// RevokeUserSessions revokes every session of the user issued at or before
// `before` (to the millisecond), except keepSession when it is not empty,
// for ttl from now, durably before it returns. Earlier cutoffs of the user
// that the new one covers are dropped; the others stay. It returns
// EINTERNAL when the database write fails.
func (s *Store) RevokeUserSessions(ctx context.Context, userID string, before time.Time, keepSession string, ttl time.Duration) error {
	c := cutoff{beforeMS: millis(before), keep: keepSession, expiresMS: millis(time.Now().Add(ttl))}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM revoked_user_sessions
WHERE user_id = ? AND before_ms <= ? AND (? = '' OR keep_session = ?) AND expires_at <= ?`,
			userID, c.beforeMS, c.keep, c.keep, c.expiresMS); err != nil {
			return internal("revoke user sessions", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO revoked_user_sessions (user_id, before_ms, keep_session, expires_at)
VALUES (?, ?, ?, ?)
ON CONFLICT (user_id, before_ms, keep_session) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)`,
			userID, c.beforeMS, c.keep, c.expiresMS); err != nil {
			return internal("revoke user sessions", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r := &s.revoked
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := r.cutoffs[userID][:0:0]
	for _, o := range r.cutoffs[userID] {
		if o.beforeMS == c.beforeMS && o.keep == c.keep {
			c.expiresMS = max(c.expiresMS, o.expiresMS)
		} else if !c.covers(o) {
			kept = append(kept, o)
		}
	}
	r.cutoffs[userID] = append(kept, c)
	return nil
}

// IsRevoked reports whether the session of c is revoked: its session id
// was revoked and has not expired, or an unexpired cutoff of its user was
// set at or after its issue time (to the millisecond) and does not keep
// it. It reads only memory and never fails.
func (s *Store) IsRevoked(_ context.Context, c aoba.Claims) (bool, error) {
	now := time.Now().UnixMilli()
	issued := millis(c.IssuedAt)
	r := &s.revoked
	r.mu.RLock()
	defer r.mu.RUnlock()
	if exp, ok := r.sessions[c.SessionID]; ok && c.SessionID != "" && now < exp {
		return true, nil
	}
	for _, cut := range r.cutoffs[c.UserID] {
		if cut.revokes(c.SessionID, issued, now) {
			return true, nil
		}
	}
	return false, nil
}

// loadRevocations purges expired revocations and loads the others into
// memory. It returns an EINTERNAL error when the database fails.
func (s *Store) loadRevocations(ctx context.Context) error {
	now := time.Now()
	if err := s.purgeRevocations(ctx, now); err != nil {
		return err
	}
	r := &s.revoked
	r.sessions = make(map[string]int64)
	r.cutoffs = make(map[string][]cutoff)
	return s.withReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT session_id, expires_at FROM revoked_sessions")
		if err != nil {
			return internal("load revoked sessions", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var exp int64
			if err := rows.Scan(&id, &exp); err != nil {
				return internal("load revoked sessions", err)
			}
			r.sessions[id] = exp
		}
		if err := rows.Err(); err != nil {
			return internal("load revoked sessions", err)
		}

		rows, err = tx.QueryContext(ctx, "SELECT user_id, before_ms, keep_session, expires_at FROM revoked_user_sessions")
		if err != nil {
			return internal("load revoked user sessions", err)
		}
		defer rows.Close()
		for rows.Next() {
			var user string
			var c cutoff
			if err := rows.Scan(&user, &c.beforeMS, &c.keep, &c.expiresMS); err != nil {
				return internal("load revoked user sessions", err)
			}
			r.cutoffs[user] = append(r.cutoffs[user], c)
		}
		if err := rows.Err(); err != nil {
			return internal("load revoked user sessions", err)
		}
		return nil
	})
}

// purgeRevocations deletes the revocations expired at now from the
// database and from memory. It returns an EINTERNAL error when the
// database fails.
func (s *Store) purgeRevocations(ctx context.Context, now time.Time) error {
	ms := now.UnixMilli()
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM revoked_sessions WHERE expires_at <= ?", ms); err != nil {
			return internal("purge revoked sessions", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM revoked_user_sessions WHERE expires_at <= ?", ms); err != nil {
			return internal("purge revoked user sessions", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r := &s.revoked
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, exp := range r.sessions {
		if exp <= ms {
			delete(r.sessions, id)
		}
	}
	for user, cuts := range r.cutoffs {
		kept := cuts[:0]
		for _, c := range cuts {
			if c.expiresMS > ms {
				kept = append(kept, c)
			}
		}
		if len(kept) == 0 {
			delete(r.cutoffs, user)
		} else {
			r.cutoffs[user] = kept
		}
	}
	return nil
}
