package aoba

import (
	"context"
	"time"
)

// Claims are the verified contents of a session token. SessionID names the
// signed-in device (it survives a refresh); TokenID names the one token of
// it that is current (a refresh replaces it, so the previous token stops
// working).
type Claims struct {
	UserID    string
	SessionID string
	TokenID   string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// TokenAuthority issues and verifies session tokens.
type TokenAuthority interface {
	// Issue returns a signed token of session sessionID of userID, with a
	// new token id. It returns an EINTERNAL error when signing fails.
	Issue(userID, sessionID string) (string, Claims, error)
	// Verify returns the claims of a valid, unexpired token, or an
	// EUNAUTHORIZED error.
	Verify(token string) (Claims, error)
}

// Session is one signed-in device of a user, from login to logout: the
// durable record that decides whether its token still opens anything. It
// lives in the primary store, so no restart or loss of a cache brings a
// revoked session back.
type Session struct {
	ID     string
	UserID string
	// TokenID is the id of the only token that opens the session now.
	TokenID    string
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the expiry of the current token.
	ExpiresAt time.Time
	UserAgent string
	IP        string
	// RevokedAt is set once the session is revoked; it never changes after.
	RevokedAt *time.Time
}

// Active reports whether the session is neither revoked nor expired at now.
func (s *Session) Active(now time.Time) bool {
	return s.RevokedAt == nil && now.Before(s.ExpiresAt)
}

// SessionStore persists sessions: one row or document per session.
type SessionStore interface {
	// CreateSession stores s. It returns ECONFLICT when the id exists.
	CreateSession(ctx context.Context, s *Session) error
	// FindSessionByID returns ENOTFOUND when no session has that id.
	FindSessionByID(ctx context.Context, id string) (*Session, error)
	// FindSessionsByUser returns every stored session of the user, revoked
	// and expired ones included, oldest first.
	FindSessionsByUser(ctx context.Context, userID string) ([]*Session, error)
	// RotateSession makes toTokenID the session's token, expiring at
	// expiresAt, if fromTokenID is its token now and it is not revoked. It
	// returns ENOTFOUND for an unknown session and ECONFLICT when the
	// session is revoked or its token is no longer fromTokenID.
	RotateSession(ctx context.Context, id, fromTokenID, toTokenID string, expiresAt time.Time) error
	// TouchSession sets the session's LastSeenAt to at. An unknown id is
	// not an error.
	TouchSession(ctx context.Context, id string, at time.Time) error
	// RevokeSession sets RevokedAt to at unless it is set already. It
	// returns ENOTFOUND for an unknown session.
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// RevokeUserSessions revokes, at at, every unrevoked session of the
	// user except keepID (when not empty).
	RevokeUserSessions(ctx context.Context, userID, keepID string, at time.Time) error
	// DeleteExpiredSessions removes the sessions that expired before t and
	// returns how many.
	DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error)
}

// SessionVerdict is what a SessionCache knows of a token.
type SessionVerdict int

// Verdicts of SessionCache.Check.
const (
	// SessionUnknown: nothing is cached; ask the store.
	SessionUnknown SessionVerdict = iota
	// SessionValid: the token is its session's current one, not revoked.
	SessionValid
	// SessionRevoked: the session is revoked, or the token is not its
	// current one.
	SessionRevoked
)

// SessionCache keeps, in front of the SessionStore, what every pod needs to
// check a token in microseconds: the current token of recently used
// sessions and the revocations. It is only a cache: anything it loses (a
// Redis restart) is read again from the store, which is written first.
type SessionCache interface {
	// Check returns what is cached about the token of c: SessionRevoked
	// when its session or a cutoff of its user revokes it, or the session's
	// cached token is another one; SessionValid when the cached token is
	// c's; SessionUnknown otherwise. It returns an EUNAVAILABLE error when
	// the cache cannot be reached, so that callers can fail closed.
	Check(ctx context.Context, c Claims) (SessionVerdict, error)
	// Remember caches tokenID as the current token of sessionID until
	// `until`, unless something is already cached for the session (so that
	// a late fill never overwrites a revocation or a rotation).
	Remember(ctx context.Context, sessionID, tokenID string, until time.Time) error
	// Rotate caches tokenID as the current token of sessionID until
	// `until`, replacing a cached token, but never a cached revocation: a
	// refresh whose cache write lands after a logout must not bring the
	// session back.
	Rotate(ctx context.Context, sessionID, tokenID string, until time.Time) error
	// RevokeSession caches the session's revocation until `until` (the
	// expiry of its token), replacing what was cached.
	RevokeSession(ctx context.Context, sessionID string, until time.Time) error
	// RevokeUserSessions revokes every session of the user whose token was
	// issued at or before `before`, except keepSession when it is not
	// empty, for ttl (the longest token lifetime).
	RevokeUserSessions(ctx context.Context, userID string, before time.Time, keepSession string, ttl time.Duration) error
}

// TicketStore keeps the single-use tickets that open a WebSocket without
// putting a long-lived token in a URL, shared by every pod.
type TicketStore interface {
	// IssueTicket stores ticket for the session of c for ttl.
	IssueTicket(ctx context.Context, ticket string, c Claims, ttl time.Duration) error
	// RedeemTicket returns the claims of ticket and deletes it, atomically:
	// of concurrent calls, one wins. It returns EUNAUTHORIZED for an unknown,
	// used or expired ticket and EUNAVAILABLE when the store is unreachable.
	RedeemTicket(ctx context.Context, ticket string) (Claims, error)
}

// PasswordHasher hashes and checks passwords.
type PasswordHasher interface {
	// Hash returns an encoded hash of pw with its parameters and salt.
	Hash(pw string) (string, error)
	// Verify reports whether pw matches hash.
	Verify(hash, pw string) (bool, error)
	// NeedsRehash reports whether hash was made with weaker parameters
	// than the hasher's own (or cannot be read), so that a successful
	// login should store a new hash.
	NeedsRehash(hash string) bool
	// Dummy runs a verification that always fails, taking as long as a
	// real one, for unknown users. It hashes a fixed input, never the
	// client's.
	Dummy()
}
