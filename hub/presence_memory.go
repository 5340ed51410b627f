package hub

import (
	"context"
	"sync"
	"time"

	"github.com/aoba-chat/aoba"
)

var _ aoba.PresenceRegistry = (*MemoryPresence)(nil)

// MemoryPresence is the in-process PresenceRegistry of the single-binary
// mode: connections are counted in memory and a timer per user runs the
// grace period. Heartbeats and TTLs are not needed, since every connection
// lives in this process.
type MemoryPresence struct {
	grace time.Duration
	emit  *emitter

	mu       sync.Mutex
	users    map[string]*memoryUser
	lastSeen map[string]time.Time
	closed   bool
}

type memoryUser struct {
	conns  map[string]struct{}
	closed time.Time   // when the last connection closed, during the grace period
	timer  *time.Timer // the grace period's, nil while connections are open
	gen    uint64      // counts grace periods, so that a stale timer does nothing
}

// NewMemoryPresence returns a MemoryPresence; the changes go to the function
// RegisterChangeHandler sets, and are dropped until then. Only opts.Grace
// is used. It never fails.
func NewMemoryPresence(opts PresenceOptions) *MemoryPresence {
	return &MemoryPresence{
		grace:    opts.withDefaults().Grace,
		emit:     newEmitter(),
		users:    make(map[string]*memoryUser),
		lastSeen: make(map[string]time.Time),
	}
}

// RegisterChangeHandler sets the function called each time a user goes
// online or offline; changes before it are dropped. It panics when called
// twice or with nil.
func (p *MemoryPresence) RegisterChangeHandler(fn aoba.PresenceChangeFunc) { p.emit.register(fn) }

// Connect records an open connection; the user's first one makes them go
// online. It returns an EUNAVAILABLE error once the registry is closed.
func (p *MemoryPresence) Connect(ctx context.Context, userID, connID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errClosed("presence service")
	}
	u := p.users[userID]
	if u == nil {
		u = &memoryUser{conns: make(map[string]struct{})}
		p.users[userID] = u
		p.emit.emit(online(userID))
	}
	if u.timer != nil {
		u.timer.Stop()
		u.timer = nil
	}
	u.conns[connID] = struct{}{}
	return nil
}

// Disconnect records that a connection closed; after the last one, the user
// goes offline once the grace period passes without a reconnect. Unknown
// connections are ignored. It returns an EUNAVAILABLE error once the
// registry is closed.
func (p *MemoryPresence) Disconnect(ctx context.Context, userID, connID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errClosed("presence service")
	}
	u := p.users[userID]
	if u == nil {
		return nil
	}
	if _, ok := u.conns[connID]; !ok {
		return nil
	}
	delete(u.conns, connID)
	if len(u.conns) > 0 {
		return nil
	}
	u.closed = time.Now()
	u.gen++
	gen := u.gen
	u.timer = time.AfterFunc(p.grace, func() { p.expire(userID, u, gen) })
	return nil
}

// expire ends grace period gen of u, unless a reconnect cancelled it
// meanwhile.
func (p *MemoryPresence) expire(userID string, u *memoryUser, gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.users[userID] != u || u.timer == nil || u.gen != gen {
		return
	}
	delete(p.users, userID)
	p.lastSeen[userID] = u.closed
	p.emit.emit(offline(userID, u.closed))
}

// FindPresence returns the presence of each id: online from the first
// connection until the grace period after the last one ends. It returns an
// EUNAVAILABLE error once the registry is closed.
func (p *MemoryPresence) FindPresence(ctx context.Context, userIDs []string) (map[string]aoba.Presence, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed("presence service")
	}
	m := make(map[string]aoba.Presence, len(userIDs))
	for _, id := range userIDs {
		pr := aoba.Presence{UserID: id, Status: aoba.StatusOffline}
		if _, ok := p.users[id]; ok {
			pr.Status = aoba.StatusOnline
		}
		if t, ok := p.lastSeen[id]; ok {
			t = t.UTC().Truncate(time.Millisecond)
			pr.LastSeen = &t
		}
		m[id] = pr
	}
	return m, nil
}

// Close stops the grace timers (no offline event follows) and delivers the
// changes already queued. Closing twice returns an EUNAVAILABLE error.
func (p *MemoryPresence) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errClosed("presence service")
	}
	p.closed = true
	for _, u := range p.users {
		if u.timer != nil {
			u.timer.Stop()
		}
	}
	p.mu.Unlock()
	p.emit.close()
	return nil
}
