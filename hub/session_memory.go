package hub

import (
	"context"
	"sync"
	"time"

	"github.com/aoba-chat/aoba"
)

var (
	_ aoba.SessionCache = (*MemorySessions)(nil)
	_ aoba.TicketStore  = (*MemorySessions)(nil)
)

// MemorySessions is the in-process SessionCache and TicketStore of the
// single-binary mode: maps behind mutexes. It runs no goroutine: expired
// entries are swept by the writes, once per purgeEvery or once the writes
// since the last sweep outnumber the entries it left (at least
// sweepMinWrites), so that the maps hold at most about twice the live
// entries and a sweep costs each write O(1) on average.
type MemorySessions struct {
	mu       sync.RWMutex
	sessions map[string]memorySession // session id ->
	users    map[string]memoryCutoff  // user id ->
	sweep    sweeper

	tmu     sync.Mutex
	tickets map[string]memoryTicket
	tsweep  sweeper
}

type memorySession struct {
	value string // sessionTokenTag + token id, or sessionRevoked
	until time.Time
}

type memoryCutoff struct {
	userCutoff
	until time.Time
}

type memoryTicket struct {
	claims aoba.Claims
	until  time.Time
}

// sweepMinWrites is the fewest writes between two sweeps of a map.
const sweepMinWrites = 1024

// sweeper decides when the writes to a map should sweep it.
type sweeper struct {
	writes int       // since the last sweep
	left   int       // entries the last sweep left
	last   time.Time // of the last sweep
}

// due counts one write at now and reports whether the map should be swept.
func (s *sweeper) due(now time.Time) bool {
	s.writes++
	return s.writes >= max(sweepMinWrites, s.left) || now.Sub(s.last) >= purgeEvery
}

// done records a sweep at now that left n entries.
func (s *sweeper) done(now time.Time, n int) {
	*s = sweeper{left: n, last: now}
}

// NewMemorySessions returns an empty MemorySessions. It never fails.
func NewMemorySessions() *MemorySessions {
	now := time.Now()
	return &MemorySessions{
		sessions: make(map[string]memorySession),
		users:    make(map[string]memoryCutoff),
		sweep:    sweeper{last: now},
		tickets:  make(map[string]memoryTicket),
		tsweep:   sweeper{last: now},
	}
}

// Check returns SessionRevoked when the session of c, or a cutoff of its
// user, revokes it or another token is cached for the session,
// SessionValid when c's token is the cached one and SessionUnknown when
// nothing is cached. It never fails.
func (m *MemorySessions) Check(ctx context.Context, c aoba.Claims) (aoba.SessionVerdict, error) {
	now := time.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	if u, ok := m.users[c.UserID]; ok && u.until.After(now) && u.revokes(c) {
		return aoba.SessionRevoked, nil
	}
	s, ok := m.sessions[c.SessionID]
	return sessionVerdict(s.value, ok && s.until.After(now), c), nil
}

// Remember caches tokenID as the current token of sessionID until `until`,
// unless an unexpired entry is cached for the session. It never fails.
func (m *MemorySessions) Remember(ctx context.Context, sessionID, tokenID string, until time.Time) error {
	now := time.Now()
	if !until.After(now) {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[sessionID]; ok && s.until.After(now) {
		return nil
	}
	m.setSession(now, sessionID, memorySession{value: sessionTokenTag + tokenID, until: until})
	return nil
}

// Rotate caches tokenID as the current token of sessionID until `until`,
// replacing the cached token; an `until` already past drops it. A cached
// revocation stays: a revoked session never opens again, and a rotation
// that lost a race with a logout must not undo it. It never fails.
func (m *MemorySessions) Rotate(ctx context.Context, sessionID, tokenID string, until time.Time) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[sessionID]; ok && s.value == sessionRevoked && s.until.After(now) {
		return nil
	}
	m.setSession(now, sessionID, memorySession{value: sessionTokenTag + tokenID, until: until})
	return nil
}

// RevokeSession caches the revocation of sessionID until `until`,
// replacing what was cached; an `until` already past drops the entry (the
// store knows the session is over). It never fails.
func (m *MemorySessions) RevokeSession(ctx context.Context, sessionID string, until time.Time) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setSession(now, sessionID, memorySession{value: sessionRevoked, until: until})
	return nil
}

// setSession stores s, or deletes the entry when s is already expired, and
// sweeps when due; m.mu is held.
func (m *MemorySessions) setSession(now time.Time, id string, s memorySession) {
	if s.until.After(now) {
		m.sessions[id] = s
	} else {
		delete(m.sessions, id)
	}
	m.maybeSweep(now)
}

// RevokeUserSessions revokes the sessions of userID issued at or before
// `before` (to the millisecond), except keepSession, for ttl; it replaces
// the user's previous cutoff. A ttl that is not positive does nothing. It
// never fails.
func (m *MemorySessions) RevokeUserSessions(ctx context.Context, userID string, before time.Time, keepSession string, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users[userID] = memoryCutoff{
		userCutoff: userCutoff{Before: before.UnixMilli(), Keep: keepSession},
		until:      now.Add(ttl),
	}
	m.maybeSweep(now)
	return nil
}

// maybeSweep drops the expired sessions and cutoffs when due; m.mu is held.
func (m *MemorySessions) maybeSweep(now time.Time) {
	if !m.sweep.due(now) {
		return
	}
	for id, s := range m.sessions {
		if !s.until.After(now) {
			delete(m.sessions, id)
		}
	}
	for id, u := range m.users {
		if !u.until.After(now) {
			delete(m.users, id)
		}
	}
	m.sweep.done(now, len(m.sessions)+len(m.users))
}

// IssueTicket stores ticket with the claims of c (times to the millisecond)
// for ttl. It returns an EINTERNAL error for a ttl that is not positive.
func (m *MemorySessions) IssueTicket(ctx context.Context, ticket string, c aoba.Claims, ttl time.Duration) error {
	if err := checkTicketTTL(ttl); err != nil {
		return err
	}
	c.IssuedAt = time.UnixMilli(c.IssuedAt.UnixMilli()).UTC()
	c.ExpiresAt = time.UnixMilli(c.ExpiresAt.UnixMilli()).UTC()
	now := time.Now()
	m.tmu.Lock()
	defer m.tmu.Unlock()
	m.tickets[ticket] = memoryTicket{claims: c, until: now.Add(ttl)}
	if m.tsweep.due(now) {
		for t, e := range m.tickets {
			if !e.until.After(now) {
				delete(m.tickets, t)
			}
		}
		m.tsweep.done(now, len(m.tickets))
	}
	return nil
}

// RedeemTicket returns the claims of ticket and deletes it; of concurrent
// calls, one wins. It returns an EUNAUTHORIZED error for an unknown, used
// or expired ticket.
func (m *MemorySessions) RedeemTicket(ctx context.Context, ticket string) (aoba.Claims, error) {
	m.tmu.Lock()
	e, ok := m.tickets[ticket]
	delete(m.tickets, ticket)
	m.tmu.Unlock()
	if !ok || !e.until.After(time.Now()) {
		return aoba.Claims{}, errBadTicket()
	}
	return e.claims, nil
}
