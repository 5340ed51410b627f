package hub

import (
	"context"
	"sync"
	"time"

	"github.com/aoba-chat/aoba"
)

var _ aoba.SessionRevoker = (*MemoryRevoker)(nil)

// MemoryRevoker is the in-process SessionRevoker: two maps behind a mutex,
// with expired entries purged now and then. From NewMemoryRevoker it lives
// as long as the process; from OpenFileRevoker it is also saved to a file
// at each revocation, so that the single-binary mode keeps it across
// restarts.
type MemoryRevoker struct {
	mu        sync.Mutex
	sessions  map[string]time.Time // session id -> until
	users     map[string]memoryCutoff
	lastPurge time.Time
	path      string // the snapshot file, empty for none
}

type memoryCutoff struct {
	userCutoff
	until time.Time
}

// NewMemoryRevoker returns an empty MemoryRevoker. It never fails.
func NewMemoryRevoker() *MemoryRevoker {
	return &MemoryRevoker{
		sessions:  make(map[string]time.Time),
		users:     make(map[string]memoryCutoff),
		lastPurge: time.Now(),
	}
}

// RevokeSession revokes one session until expiresAt; a session already
// expired needs nothing. It returns an EINTERNAL error when the snapshot
// file cannot be written (the revocation holds in memory all the same).
func (r *MemoryRevoker) RevokeSession(ctx context.Context, sessionID string, expiresAt time.Time) error {
	if !expiresAt.After(time.Now()) {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maybePurge()
	if expiresAt.After(r.sessions[sessionID]) {
		r.sessions[sessionID] = expiresAt
	}
	return r.save()
}

// RevokeUserSessions revokes the sessions of userID issued at or before
// before, except keepSession, for ttl; it replaces the user's previous
// order. It returns an EINTERNAL error when the snapshot file cannot be
// written (the revocation holds in memory all the same).
func (r *MemoryRevoker) RevokeUserSessions(ctx context.Context, userID string, before time.Time, keepSession string, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maybePurge()
	r.users[userID] = memoryCutoff{
		userCutoff: userCutoff{Before: before.UnixMilli(), Keep: keepSession},
		until:      time.Now().Add(ttl),
	}
	return r.save()
}

// IsRevoked reports whether the session of c was revoked, alone or with
// its user's sessions. It never fails.
func (r *MemoryRevoker) IsRevoked(ctx context.Context, c aoba.Claims) (bool, error) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if until, ok := r.sessions[c.SessionID]; ok && until.After(now) {
		return true, nil
	}
	if u, ok := r.users[c.UserID]; ok && u.until.After(now) && u.revokes(c) {
		return true, nil
	}
	return false, nil
}

// maybePurge drops expired entries once per purgeEvery; r.mu is held.
func (r *MemoryRevoker) maybePurge() {
	now := time.Now()
	if now.Sub(r.lastPurge) < purgeEvery {
		return
	}
	r.lastPurge = now
	for id, until := range r.sessions {
		if !until.After(now) {
			delete(r.sessions, id)
		}
	}
	for id, u := range r.users {
		if !u.until.After(now) {
			delete(r.users, id)
		}
	}
}
