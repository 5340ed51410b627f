package aoba

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"
	"unicode/utf8"
)

// Session and login limits.
const (
	// DefaultLoginFailures is the failed-login budget of one account per
	// LoginFailureWindow (AOBA_LOGIN_FAILURES).
	DefaultLoginFailures = 10
	// LoginFailureWindow is the window of the failed-login budget.
	LoginFailureWindow = 15 * time.Minute
	// TicketTTL is how long a WebSocket ticket stays valid.
	TicketTTL = 30 * time.Second
	// sessionCacheTTL bounds how long a SessionCache trusts a session
	// without reading the store again; each read also refreshes the
	// session's LastSeenAt, so it is that field's precision too.
	sessionCacheTTL = 5 * time.Minute
	// userAgentMaxLen bounds the user agent kept with a session.
	userAgentMaxLen = 256
)

// errBadCredentials is the one answer to a failed login, whatever failed.
var errBadCredentials = &Error{Code: EUNAUTHORIZED, Message: "Invalid username or password"}

// errRevoked answers a token whose session was revoked or rotated away.
var errRevoked = &Error{Code: EUNAUTHORIZED, Message: "The session has been revoked."}

// errSessionsUnavailable answers when neither the cache nor the store can
// say whether a session is valid.
var errSessionsUnavailable = &Error{Code: EUNAVAILABLE, Message: "The session store is unavailable."}

// Device describes where a login comes from, kept with its session.
type Device struct {
	UserAgent string
	IP        string
}

// SessionView is a session as its user sees it in the session list.
type SessionView struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	Current    bool      `json:"current"`
}

// loginKey is the key of an account's failed-login budget.
func loginKey(username string) string { return "login:" + strings.ToLower(username) }

// Login checks credentials and opens a new session on dev, returning its
// token, the token's claims and the user. An unknown user and a wrong
// password get the same EUNAUTHORIZED error after the same amount of
// hashing work; an account over its failed-login budget gets an
// ERATELIMIT *RetryError before any hashing. A disabled account with the
// right password gets EFORBIDDEN.
func (s *Service) Login(ctx context.Context, username, password string, dev Device) (string, Claims, *User, error) {
	key := loginKey(username)
	if s.limiter != nil && ValidateUsername(username) == nil {
		res, err := s.limiter.Peek(ctx, key, s.failures, LoginFailureWindow)
		if err != nil {
			return "", Claims{}, nil, Errorf(EUNAVAILABLE, "The rate limiter is unavailable.")
		} else if !res.Allowed {
			return "", Claims{}, nil, tooManyFailures(res.RetryAfter)
		}
	}
	u, err := s.checkPassword(ctx, username, password)
	if err == errBadCredentials && s.limiter != nil && ValidateUsername(username) == nil {
		if _, lerr := s.limiter.Allow(ctx, key, s.failures, LoginFailureWindow); lerr != nil {
			s.log.Warn("count failed login", "err", lerr)
		}
	}
	if err != nil {
		return "", Claims{}, nil, err
	}
	if u.DisabledAt != nil {
		return "", Claims{}, nil, errDisabled
	}
	if s.hasher.NeedsRehash(u.PasswordHash) {
		if hash, err := s.hasher.Hash(password); err != nil {
			s.log.Warn("rehash password", "user_id", u.ID, "err", err)
		} else if err := s.store.UpdatePasswordHash(ctx, u.ID, hash); err != nil {
			s.log.Warn("store rehashed password", "user_id", u.ID, "err", err)
		}
	}
	token, c, err := s.openSession(ctx, u.ID, dev)
	if err != nil {
		return "", Claims{}, nil, err
	}
	return token, c, u, nil
}

// tooManyFailures is the answer to a login over its account's budget.
func tooManyFailures(retry time.Duration) error {
	return &RetryError{Err: Errorf(ERATELIMIT, "Too many failed logins for this account; try again later."), RetryAfter: retry}
}

// checkPassword returns the user named username if password is theirs,
// and errBadCredentials otherwise, after the same hashing work either way.
// A password over the length limit never reaches the hasher's input.
func (s *Service) checkPassword(ctx context.Context, username, password string) (*User, error) {
	if password == "" || utf8.RuneCountInString(password) > PasswordMaxLen || ValidateUsername(username) != nil {
		s.hasher.Dummy()
		return nil, errBadCredentials
	}
	u, err := s.store.FindUserByUsername(ctx, username)
	if ErrorCode(err) == ENOTFOUND {
		s.hasher.Dummy()
		return nil, errBadCredentials
	} else if err != nil {
		return nil, err
	}
	ok, err := s.hasher.Verify(u.PasswordHash, password)
	if err != nil {
		return nil, err
	} else if !ok {
		return nil, errBadCredentials
	}
	return u, nil
}

// openSession stores a new session of userID on dev and returns its first
// token and claims.
func (s *Service) openSession(ctx context.Context, userID string, dev Device) (string, Claims, error) {
	token, c, err := s.tokens.Issue(userID, NewID())
	if err != nil {
		return "", Claims{}, err
	}
	ua := dev.UserAgent
	if len(ua) > userAgentMaxLen {
		ua = ua[:userAgentMaxLen]
	}
	if !utf8.ValidString(ua) {
		ua = strings.ToValidUTF8(ua, "")
	}
	now := Now()
	sess := &Session{
		ID: c.SessionID, UserID: userID, TokenID: c.TokenID, CreatedAt: now, LastSeenAt: now,
		ExpiresAt: c.ExpiresAt, UserAgent: ua, IP: dev.IP,
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return "", Claims{}, err
	}
	return token, c, nil
}

// Authenticate verifies a session token and checks that its session is
// still open, through the session cache and, when the cache does not know
// it, the store. It returns EUNAUTHORIZED for an invalid, expired, revoked
// or rotated token and for a token of an account that no longer exists or
// is disabled, and EUNAVAILABLE when neither the cache nor the store can
// answer.
func (s *Service) Authenticate(ctx context.Context, token string) (Claims, error) {
	c, err := s.tokens.Verify(token)
	if err != nil {
		return Claims{}, err
	}
	return c, s.checkSession(ctx, c)
}

// checkSession returns nil when c's session is open and c holds its
// current token, reading the store (and filling the cache) on a cache miss.
func (s *Service) checkSession(ctx context.Context, c Claims) error {
	v, err := s.sessions.Check(ctx, c)
	cacheDown := err != nil
	if cacheDown {
		// The cache is only a cache, and revocations are durable in the
		// store: without it (Redis down) the store answers, slower. Every
		// request then reads the store, so it writes nothing more there
		// (no LastSeenAt) and tries no cache fill.
		s.log.Debug("session cache check failed; asking the store", "err", err)
		v = SessionUnknown
	}
	switch v {
	case SessionValid:
		return nil
	case SessionRevoked:
		return errRevoked
	}
	sess, err := s.store.FindSessionByID(ctx, c.SessionID)
	if ErrorCode(err) == ENOTFOUND {
		return errRevoked
	} else if err != nil {
		s.log.Warn("find session", "err", err)
		return errSessionsUnavailable
	}
	now := time.Now()
	if sess.UserID != c.UserID || !sess.Active(now) {
		if err := s.sessions.RevokeSession(ctx, sess.ID, sess.ExpiresAt); err != nil {
			s.log.Warn("cache session revocation", "err", err)
		}
		return errRevoked
	}
	if u, err := s.store.FindUserByID(ctx, c.UserID); ErrorCode(err) == ENOTFOUND {
		return Errorf(EUNAUTHORIZED, "The account no longer exists.")
	} else if err != nil {
		s.log.Warn("find session user", "err", err)
		return errSessionsUnavailable
	} else if u.DisabledAt != nil {
		return errDisabledSession
	}
	if !cacheDown {
		if err := s.sessions.Remember(ctx, sess.ID, sess.TokenID, minTime(sess.ExpiresAt, now.Add(sessionCacheTTL))); err != nil {
			s.log.Warn("cache session", "err", err)
		}
		if err := s.store.TouchSession(ctx, sess.ID, Now()); err != nil {
			s.log.Warn("touch session", "err", err)
		}
	}
	if sess.TokenID != c.TokenID {
		return errRevoked
	}
	return nil
}

// minTime returns the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Logout revokes the caller's session on every pod, durably, and closes its
// sockets with CloseSessionRevoked.
func (s *Service) Logout(ctx context.Context, c Claims) error {
	return s.endSession(ctx, c.UserID, c.SessionID, "logged out", false)
}

// endSession revokes the session id of userID in the store, then in the
// cache, and closes its sockets. It returns ENOTFOUND when the user has no
// such session, or, with activeOnly, no such open session.
func (s *Service) endSession(ctx context.Context, userID, id, reason string, activeOnly bool) error {
	sess, err := s.store.FindSessionByID(ctx, id)
	if ErrorCode(err) == ENOTFOUND || (err == nil && (sess.UserID != userID || (activeOnly && !sess.Active(time.Now())))) {
		return Errorf(ENOTFOUND, "Session not found.")
	} else if err != nil {
		return err
	}
	if err := s.store.RevokeSession(ctx, id, Now()); err != nil {
		return err
	}
	if err := s.sessions.RevokeSession(ctx, id, sess.ExpiresAt); err != nil {
		s.log.Warn("cache session revocation", "err", err)
		return errSessionsUnavailable
	}
	s.closeSessions(ctx, userID, CloseOrder{Code: CloseSessionRevoked, Reason: reason, Session: id})
	return nil
}

// revokeUserSessions revokes every session of userID but keep (when not
// empty), in the store, then in the cache.
func (s *Service) revokeUserSessions(ctx context.Context, userID, keep string) error {
	now := Now()
	if err := s.store.RevokeUserSessions(ctx, userID, keep, now); err != nil {
		return err
	}
	if err := s.sessions.RevokeUserSessions(ctx, userID, now, keep, s.tokenTTL); err != nil {
		s.log.Warn("cache user revocation", "err", err)
		return errSessionsUnavailable
	}
	return nil
}

// Refresh replaces the caller's token by a new one of the same session,
// with a full lifetime; the presented token stops working at once. It
// returns EUNAUTHORIZED when the session was revoked or refreshed
// meanwhile.
func (s *Service) Refresh(ctx context.Context, c Claims) (string, Claims, *User, error) {
	u, err := s.Me(ctx, c)
	if err != nil {
		return "", Claims{}, nil, err
	}
	token, next, err := s.tokens.Issue(c.UserID, c.SessionID)
	if err != nil {
		return "", Claims{}, nil, err
	}
	err = s.store.RotateSession(ctx, c.SessionID, c.TokenID, next.TokenID, next.ExpiresAt)
	switch ErrorCode(err) {
	case "":
	case ENOTFOUND, ECONFLICT:
		return "", Claims{}, nil, errRevoked
	default:
		return "", Claims{}, nil, err
	}
	if err := s.sessions.Rotate(ctx, c.SessionID, next.TokenID, minTime(next.ExpiresAt, time.Now().Add(sessionCacheTTL))); err != nil {
		s.log.Warn("cache session rotation", "err", err)
		return "", Claims{}, nil, errSessionsUnavailable
	}
	return token, next, u, nil
}

// IssueTicket returns a single-use ticket, valid for TicketTTL, that opens
// one WebSocket for the caller's session, and its expiry.
func (s *Service) IssueTicket(ctx context.Context, c Claims) (string, time.Time, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", time.Time{}, Errorf(EINTERNAL, "ticket: %v", err)
	}
	ticket := base64.RawURLEncoding.EncodeToString(b[:])
	exp := Now().Add(TicketTTL)
	if err := s.tickets.IssueTicket(ctx, ticket, c, TicketTTL); err != nil {
		return "", time.Time{}, err
	}
	return ticket, exp, nil
}

// RedeemTicket returns the claims of the session a ticket was issued for,
// once, if that session is still open. It returns EUNAUTHORIZED for an
// unknown, used or expired ticket and for a session closed since.
func (s *Service) RedeemTicket(ctx context.Context, ticket string) (Claims, error) {
	if ticket == "" || len(ticket) > 128 {
		return Claims{}, Errorf(EUNAUTHORIZED, "Invalid or expired ticket.")
	}
	c, err := s.tickets.RedeemTicket(ctx, ticket)
	if err != nil {
		return Claims{}, err
	}
	return c, s.checkSession(ctx, c)
}

// Sessions returns the caller's open sessions, oldest first, the caller's
// own marked current.
func (s *Service) Sessions(ctx context.Context, c Claims) ([]SessionView, error) {
	all, err := s.store.FindSessionsByUser(ctx, c.UserID)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]SessionView, 0, len(all))
	for _, sess := range all {
		if !sess.Active(now) {
			continue
		}
		out = append(out, SessionView{
			ID: sess.ID, CreatedAt: sess.CreatedAt, LastSeenAt: sess.LastSeenAt, UserAgent: sess.UserAgent,
			IP: sess.IP, Current: sess.ID == c.SessionID,
		})
	}
	return out, nil
}

// EndSession revokes one of the caller's sessions and closes its sockets
// with CloseSessionRevoked. It returns EINVALID for a malformed id and
// ENOTFOUND for a session that is not the caller's or already ended.
func (s *Service) EndSession(ctx context.Context, c Claims, id string) error {
	if !IsValidID(id) {
		return Errorf(EINVALID, "Session id must be a UUID.")
	}
	return s.endSession(ctx, c.UserID, id, "session ended", true)
}
