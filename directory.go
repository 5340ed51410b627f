package aoba

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"
)

// DirectoryTopic is the broker topic on which every pod hears of the
// changes that make the caches of its send path stale: a user renamed or
// deleted, a block created or removed (the directory cache), a membership
// or a group deleted (the member cache). Its envelopes never reach a
// socket; the server hands them to Service.DirectoryChanged.
const DirectoryTopic = "directory"

// frameDirectory is the type of the frames published on DirectoryTopic,
// with a DirectoryChange as data.
const frameDirectory = "directory.change"

// DirectoryChange is what a pod announces on DirectoryTopic after changing
// the store: UserID, when set, was renamed or deleted; Pair, when set, names
// two users between whom a block was created or removed; Group, when set,
// lost Member (removed, left, or gone with their account) or, without
// Member, was deleted with all its memberships.
type DirectoryChange struct {
	UserID string    `json:"user_id,omitempty"`
	Pair   [2]string `json:"pair,omitempty"`
	Group  string    `json:"group,omitempty"`
	Member string    `json:"member,omitempty"`
}

// Directory cache bounds.
const (
	// DirectoryCacheTTL is the longest time a pod uses a cached user,
	// block state or membership without reading the store again. Changes are announced
	// on DirectoryTopic and applied at once; the TTL only bounds how long
	// a change whose announcement was lost (the announcing pod could not
	// reach the broker) can go unnoticed.
	DirectoryCacheTTL = time.Minute
	// directoryCacheMax bounds the entries of each map of the cache; a
	// full map drops an arbitrary tenth of its entries.
	directoryCacheMax = 100_000
)

// directoryUser is what the send path needs of a user: their id and
// current username (no password hash: the cache never serves
// authentication).
type directoryUser struct {
	ID       string
	Username string
}

// cached is a value of the directory cache and when it was read.
type cached[T any] struct {
	v  T
	at time.Time
}

// directoryCache keeps, for the message send path, the users looked up by
// name and by id and the blocks between two users, so that a send reads
// nothing from the store in the common case. It is only consulted while
// armed, that is while this pod is known to receive every DirectoryChange:
// the Service arms it once subscribed to DirectoryTopic (and again after a
// broker resubscription, which also clears it). Every invalidation bumps
// gen; a value read from the store is stored only when gen has not moved
// since the read started, so a read that raced a change never brings the
// old value back. Lookups of unknown users are not cached, so a new account
// or a new name is seen at once. All methods are safe for concurrent use;
// mu guards every field.
//
// A user is cached by id; the name index only points to an id, and a
// lookup by name is a hit only when the user cached under that id still
// has that name, so dropping the id entry is enough to forget a renamed or
// deleted user under every name.
type directoryCache struct {
	mu     sync.Mutex
	armed  bool
	gen    uint64
	byID   map[string]cached[directoryUser]
	byName map[string]string              // lower-case username -> id
	blocks map[[2]string]cached[[]*Block] // by pairKey
}

// pairKey returns the key of the pair of users a and b, in either order.
func pairKey(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// fresh reports whether c, read at c.at, may still be used.
func fresh[T any](c cached[T], ok bool) bool {
	return ok && time.Since(c.at) < DirectoryCacheTTL
}

// start returns the generation to pass to the fill methods after a store
// read.
func (d *directoryCache) start() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen
}

// userByName returns the cached user named name (any case).
func (d *directoryCache) userByName(name string) (directoryUser, bool) {
	lower := strings.ToLower(name)
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.byID[d.byName[lower]]
	return c.v, d.armed && fresh(c, ok) && strings.ToLower(c.v.Username) == lower
}

// userByID returns the cached user with id.
func (d *directoryCache) userByID(id string) (directoryUser, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.byID[id]
	return c.v, d.armed && fresh(c, ok)
}

// blocksBetween returns the cached blocks between a and b.
func (d *directoryCache) blocksBetween(a, b string) ([]*Block, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.blocks[pairKey(a, b)]
	return c.v, d.armed && fresh(c, ok)
}

// putUser caches u, read from the store at generation gen.
func (d *directoryCache) putUser(gen uint64, u directoryUser) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.armed || gen != d.gen {
		return
	}
	d.byID = put(d.byID, u.ID, cached[directoryUser]{v: u, at: time.Now()})
	d.byName = put(d.byName, strings.ToLower(u.Username), u.ID)
}

// putBlocks caches the blocks between a and b, read at generation gen.
func (d *directoryCache) putBlocks(gen uint64, a, b string, bs []*Block) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.armed || gen != d.gen {
		return
	}
	d.blocks = put(d.blocks, pairKey(a, b), cached[[]*Block]{v: bs, at: time.Now()})
}

// put sets m[k] = v, making m first and thinning it when full.
func put[K comparable, V any](m map[K]V, k K, v V) map[K]V {
	if m == nil {
		m = make(map[K]V)
	}
	if len(m) >= directoryCacheMax {
		n := 0
		for k := range m { // map order: an arbitrary tenth
			delete(m, k)
			if n++; n >= directoryCacheMax/10 {
				break
			}
		}
	}
	m[k] = v
	return m
}

// apply drops what ch makes stale.
func (d *directoryCache) apply(ch DirectoryChange) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if ch.UserID != "" {
		delete(d.byID, ch.UserID)
	}
	if ch.Pair != [2]string{} {
		delete(d.blocks, pairKey(ch.Pair[0], ch.Pair[1]))
	}
}

// reset empties the cache and arms it: from now on this pod hears every
// change.
func (d *directoryCache) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	d.armed = true
	d.byID, d.byName, d.blocks = nil, nil, nil
}

// CacheDirectory subscribes the broker to DirectoryTopic and, once
// subscribed, lets the Service cache the users, blocks and memberships
// that a message send reads (see directoryCache and memberCache). The
// server must hand every envelope of DirectoryTopic to DirectoryChanged.
// Until this succeeds the send path reads the store. It returns the
// broker's error; the Redis broker still subscribes once Redis is back, and
// its resubscription arms the caches (DirectoryChanged).
func (s *Service) CacheDirectory(ctx context.Context) error {
	if err := s.broker.Subscribe(ctx, DirectoryTopic); err != nil {
		return err
	}
	s.resetCaches()
	return nil
}

// resetCaches empties and arms the directory and member caches.
func (s *Service) resetCaches() {
	s.dir.reset()
	s.members.reset()
}

// DirectoryChanged applies an envelope of DirectoryTopic: a change drops
// the cached values (users, blocks, memberships) it makes stale; a resync
// order (the broker subscribed again after losing its connection, so
// changes may have been missed) empties the caches and arms them. A
// malformed envelope empties them too. It never blocks on I/O.
func (s *Service) DirectoryChanged(env Envelope) {
	if env.Close != nil {
		s.resetCaches()
		return
	}
	var f struct {
		Type string          `json:"type"`
		Data DirectoryChange `json:"data"`
	}
	if err := json.Unmarshal(env.Frame, &f); err != nil || f.Type != frameDirectory {
		s.log.Warn("malformed directory change: caches emptied", "err", err, "type", f.Type)
		s.resetCaches()
		return
	}
	s.dir.apply(f.Data)
	s.members.apply(f.Data)
}

// announceDirectory applies ch to this pod's caches and publishes it to
// the others. It runs after the store changed, so that no pod can read the old
// value once it has dropped its copy. A publication failure is logged: the
// other pods then notice within DirectoryCacheTTL.
func (s *Service) announceDirectory(ctx context.Context, ch DirectoryChange) {
	s.dir.apply(ch)
	s.members.apply(ch)
	frame, err := EncodeFrame(frameDirectory, "", ch)
	if err != nil {
		s.log.Error("encode directory change", "err", err)
		return
	}
	s.publish(ctx, Publication{Topic: DirectoryTopic, Envelope: Envelope{Frame: frame}})
}

// sendingUser returns the id and username of the caller, for a send. It
// returns EUNAUTHORIZED when the account no longer exists, as Me does, and
// the store's error.
func (s *Service) sendingUser(ctx context.Context, c Claims) (directoryUser, error) {
	if u, ok := s.dir.userByID(c.UserID); ok {
		return u, nil
	}
	gen := s.dir.start()
	u, err := s.Me(ctx, c)
	if err != nil {
		return directoryUser{}, err
	}
	du := directoryUser{ID: u.ID, Username: u.Username}
	s.dir.putUser(gen, du)
	return du, nil
}

// userNamed returns the id and current username of the user named name
// (any case). It returns ENOTFOUND for an unknown or malformed name, as
// FindUserByUsername does, and the store's error.
func (s *Service) userNamed(ctx context.Context, name string) (directoryUser, error) {
	if u, ok := s.dir.userByName(name); ok {
		return u, nil
	}
	gen := s.dir.start()
	u, err := s.FindUserByUsername(ctx, name)
	if err != nil {
		return directoryUser{}, err
	}
	du := directoryUser{ID: u.ID, Username: u.Username}
	s.dir.putUser(gen, du)
	return du, nil
}

// blocksBetween returns the blocks, in either direction, between a and b.
// It returns the store's error.
func (s *Service) blocksBetween(ctx context.Context, a, b string) ([]*Block, error) {
	if bs, ok := s.dir.blocksBetween(a, b); ok {
		return bs, nil
	}
	gen := s.dir.start()
	bs, err := s.store.FindBlocksBetween(ctx, a, []string{b})
	if err != nil {
		return nil, err
	}
	s.dir.putBlocks(gen, a, b, bs)
	return bs, nil
}

// LookupUser returns the id and current username of the user ref names: a
// user id, or a username in any case. It reads through the directory
// cache, as the send path does, so a transport that addresses users by id
// (XMPP JIDs) reads the store once per user rather than once per message.
// It returns ENOTFOUND for an unknown user and the store's error.
func (s *Service) LookupUser(ctx context.Context, ref string) (id, username string, err error) {
	if !IsValidID(ref) {
		u, err := s.userNamed(ctx, ref)
		return u.ID, u.Username, err
	}
	if u, ok := s.dir.userByID(ref); ok {
		return u.ID, u.Username, nil
	}
	gen := s.dir.start()
	u, err := s.findUserByID(ctx, ref)
	if err != nil {
		return "", "", err
	}
	s.dir.putUser(gen, directoryUser{ID: u.ID, Username: u.Username})
	return u.ID, u.Username, nil
}
