package hub

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/aoba-chat/aoba"
)

// userCutoff is a RevokeUserSessions order: sessions issued at or before
// Before (unix ms) are revoked, except Keep.
type userCutoff struct {
	Before int64
	Keep   string
}

// revokes reports whether the cutoff revokes the session of c.
func (u userCutoff) revokes(c aoba.Claims) bool {
	return c.IssuedAt.UnixMilli() <= u.Before && (u.Keep == "" || c.SessionID != u.Keep)
}

// encode returns the stored form "<before ms>|<keep>".
func (u userCutoff) encode() string {
	return strconv.FormatInt(u.Before, 10) + "|" + u.Keep
}

func decodeCutoff(s string) (userCutoff, bool) {
	before, keep, ok := strings.Cut(s, "|")
	if !ok {
		return userCutoff{}, false
	}
	ms, err := strconv.ParseInt(before, 10, 64)
	if err != nil {
		return userCutoff{}, false
	}
	return userCutoff{Before: ms, Keep: keep}, true
}

// ttlUntil returns how long an entry that must last until t has to be
// kept, rounded up to the millisecond; zero or less means not at all.
func ttlUntil(t time.Time) time.Duration {
	d := time.Until(t)
	if d <= 0 {
		return 0
	}
	return d.Truncate(time.Millisecond) + time.Millisecond
}

// Stored forms of a session entry: the current token, or a revocation.
const (
	sessionTokenTag = "t:"
	sessionRevoked  = "r"
)

// sessionVerdict returns what the cached session entry v (ok false when
// nothing is cached) says of c, ignoring user cutoffs.
func sessionVerdict(v string, ok bool, c aoba.Claims) aoba.SessionVerdict {
	switch {
	case !ok:
		return aoba.SessionUnknown
	case v == sessionRevoked:
		return aoba.SessionRevoked
	case strings.HasPrefix(v, sessionTokenTag):
		if v[len(sessionTokenTag):] == c.TokenID {
			return aoba.SessionValid
		}
		return aoba.SessionRevoked
	}
	// An entry of an unknown form: let the store decide.
	return aoba.SessionUnknown
}

// ticketClaims is the stored form of the claims of a ticket, times in unix
// milliseconds.
type ticketClaims struct {
	UserID    string `json:"u"`
	SessionID string `json:"s"`
	TokenID   string `json:"t"`
	IssuedAt  int64  `json:"i"`
	ExpiresAt int64  `json:"e"`
}

func encodeTicket(c aoba.Claims) ([]byte, error) {
	b, err := json.Marshal(ticketClaims{
		UserID: c.UserID, SessionID: c.SessionID, TokenID: c.TokenID,
		IssuedAt: c.IssuedAt.UnixMilli(), ExpiresAt: c.ExpiresAt.UnixMilli(),
	})
	if err != nil {
		return nil, aoba.Errorf(aoba.EINTERNAL, "encode ticket: %v", err)
	}
	return b, nil
}

func decodeTicket(s string) (aoba.Claims, error) {
	var t ticketClaims
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return aoba.Claims{}, aoba.Errorf(aoba.EINTERNAL, "decode ticket: %v", err)
	}
	return aoba.Claims{
		UserID: t.UserID, SessionID: t.SessionID, TokenID: t.TokenID,
		IssuedAt: time.UnixMilli(t.IssuedAt).UTC(), ExpiresAt: time.UnixMilli(t.ExpiresAt).UTC(),
	}, nil
}

// errBadTicket is the answer to an unknown, used or expired ticket.
func errBadTicket() error { return aoba.Errorf(aoba.EUNAUTHORIZED, "Invalid or expired ticket.") }

// checkTicketTTL returns an EINTERNAL error for a ticket lifetime that is
// not positive: a misconfiguration, not a client's fault.
func checkTicketTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return aoba.Errorf(aoba.EINTERNAL, "ticket lifetime %v is not positive", ttl)
	}
	return nil
}
