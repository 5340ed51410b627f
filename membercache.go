package aoba

import (
	"context"
	"sync"
)

// memberCacheMax bounds the entries of a memberCache; one more empties it.
const memberCacheMax = 1 << 16

// memberCache remembers that a user is a member of a group, so that the
// send path (resolveTarget) reads the group and the membership from the
// store once per sender and group instead of once per message: any member
// may send (ActionRead), whatever their role. It only ever learns what the
// store said, and it forgets everything each time a membership, a group or
// a user is removed (see forgettingStore), the only changes that make a
// member a non-member; a new member is not in it until their first send.
// It is only correct while this Service makes every such change, which
// ServiceConfig.CacheMemberships states. A nil *memberCache remembers
// nothing. It is safe for concurrent use.
type memberCache struct {
	mu sync.RWMutex
	// gen counts the resets: a lookup that straddles one (the store said
	// "member" before a removal was stored) remembers nothing.
	gen   uint64
	known map[memberKey]string // → the group's id as stored
}

// memberKey is a group id as a caller gave it and a user id.
type memberKey struct{ group, user string }

func newMemberCache() *memberCache {
	return &memberCache{known: make(map[memberKey]string)}
}

// lookup returns the stored id of group when user is known to be one of
// its members, and the generation to hand to remember after reading the
// store otherwise.
func (m *memberCache) lookup(group, user string) (id string, gen uint64, ok bool) {
	if m == nil {
		return "", 0, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok = m.known[memberKey{group, user}]
	return id, m.gen, ok
}

// remember records that user is a member of group (stored id id), as read
// from the store after lookup returned gen, unless a reset came between.
func (m *memberCache) remember(group, user, id string, gen uint64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gen != gen {
		return
	}
	if len(m.known) >= memberCacheMax {
		clear(m.known)
	}
	m.known[memberKey{group, user}] = id
}

// reset forgets every membership.
func (m *memberCache) reset() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	clear(m.known)
}

// forgettingStore is the Service's store when it caches memberships: each
// removal of a membership, a group or a user resets the cache once the
// store has applied it (or failed to: it may have applied part of it).
type forgettingStore struct {
	Store
	members *memberCache
}

func (s forgettingStore) DeleteMembership(ctx context.Context, groupID, userID string) error {
	defer s.members.reset()
	return s.Store.DeleteMembership(ctx, groupID, userID)
}

func (s forgettingStore) DeleteGroup(ctx context.Context, id string) error {
	defer s.members.reset()
	return s.Store.DeleteGroup(ctx, id)
}

func (s forgettingStore) DeleteUser(ctx context.Context, id string) error {
	defer s.members.reset()
	return s.Store.DeleteUser(ctx, id)
}
