package hub

import (
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

// ttlUntil returns how long a revocation that must last until t has to be
// kept, rounded up to the millisecond; zero or less means not at all.
func ttlUntil(t time.Time) time.Duration {
	d := time.Until(t)
	if d <= 0 {
		return 0
	}
	return d.Truncate(time.Millisecond) + time.Millisecond
}
