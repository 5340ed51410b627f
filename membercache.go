package aoba

import (
	"context"
	"sync"
	"time"
)

// memberCacheMax bounds the entries of a memberCache; one more empties it.
const memberCacheMax = 1 << 16

// memberCache remembers that a user is a member of a group, so that the
// send path (memberOf) reads the group and the membership from the store
// once per sender and group instead of once per message: any member may
// send (ActionRead), whatever their role. It only ever learns what the
// store said. Only a removal makes a member a non-member (a membership,
// a group or a user deleted), and every removal is announced on
// DirectoryTopic before the request that made it returns (see
// announcingStore); each pod forgets the entries it names (apply). A new
// member is not in it until their first send.
//
// Like the directory cache it is only consulted while armed, that is while
// this pod is known to receive every DirectoryChange (CacheDirectory, and
// a resync order, which also empties it), and an entry is used for
// DirectoryCacheTTL at most, which bounds how long a removal whose
// announcement was lost can go unnoticed. Every change bumps gen; a lookup
// that straddles one (the store said "member" before a removal was
// stored) remembers nothing. The zero memberCache is unarmed. All methods
// are safe for concurrent use; mu guards every field.
type memberCache struct {
	mu    sync.RWMutex
	armed bool
	gen   uint64
	n     int                             // entries in known
	known map[string]map[string]time.Time // group id → member id → when read
}

// lookup reports whether user is known to be a member of group, and
// returns the generation to hand to remember after reading the store
// otherwise.
func (m *memberCache) lookup(group, user string) (gen uint64, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	at, ok := m.known[group][user]
	return m.gen, m.armed && ok && time.Since(at) < DirectoryCacheTTL
}

// remember records that user is a member of group, as read from the store
// after lookup returned gen, unless a change came between.
func (m *memberCache) remember(group, user string, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.armed || gen != m.gen {
		return
	}
	if m.n >= memberCacheMax {
		m.known, m.n = nil, 0
	}
	if m.known == nil {
		m.known = make(map[string]map[string]time.Time)
	}
	members := m.known[group]
	if members == nil {
		members = make(map[string]time.Time)
		m.known[group] = members
	}
	if _, ok := members[user]; !ok {
		m.n++
	}
	members[user] = time.Now()
}

// apply forgets the memberships that ch may have removed: ch.Member's in
// ch.Group, or every membership of ch.Group when ch.Member is empty (the
// group was deleted), and every membership of ch.UserID (a deleted
// account; a renamed user's are merely read again).
func (m *memberCache) apply(ch DirectoryChange) {
	if ch.Group == "" && ch.UserID == "" {
		return // a block: no membership changed
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	if ch.Group != "" {
		if ch.Member != "" {
			m.forget(ch.Group, ch.Member)
		} else {
			m.n -= len(m.known[ch.Group])
			delete(m.known, ch.Group)
		}
	}
	if ch.UserID != "" {
		for group := range m.known {
			m.forget(group, ch.UserID)
		}
	}
}

// forget drops the entry of user in group; m.mu is held.
func (m *memberCache) forget(group, user string) {
	members := m.known[group]
	if _, ok := members[user]; !ok {
		return
	}
	m.n--
	if delete(members, user); len(members) == 0 {
		delete(m.known, group)
	}
}

// reset empties the cache and arms it: from now on this pod hears every
// change.
func (m *memberCache) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	m.armed = true
	m.known, m.n = nil, 0
}

// announcingStore is the Service's store: each removal of a membership, a
// group or a user is announced on DirectoryTopic (announceDirectory: this
// pod's caches forget it at once, the other pods' when they hear it) once
// the store has applied it, or failed to (it may have applied part of it).
// The announcement is published before the store call returns, so before
// the request that made the change answers.
type announcingStore struct {
	Store
	svc *Service
}

func (s announcingStore) DeleteMembership(ctx context.Context, groupID, userID string) error {
	defer s.svc.announceDirectory(ctx, DirectoryChange{Group: groupID, Member: userID})
	return s.Store.DeleteMembership(ctx, groupID, userID)
}

func (s announcingStore) DeleteGroup(ctx context.Context, id string) error {
	defer s.svc.announceDirectory(ctx, DirectoryChange{Group: id})
	return s.Store.DeleteGroup(ctx, id)
}

func (s announcingStore) DeleteUser(ctx context.Context, id string) error {
	defer s.svc.announceDirectory(ctx, DirectoryChange{UserID: id})
	return s.Store.DeleteUser(ctx, id)
}
