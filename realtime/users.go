package realtime

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/aoba-chat/aoba"
)

// userShard is one part of the user and presence index, sharded by a hash
// of the user id: the users with a socket here and the sockets watching
// each user's presence.
//
// Locks, in the order they may be taken (every other lock of the node is
// taken alone):
//   - subMu serializes the changes of a user's sockets and groups (addUser,
//     removeUser, and the orders' join and leave) with the references they
//     take and give back in refTopics, so that a socket's reference to a
//     topic is always taken before it is given back. It is held across
//     Service and broker calls.
//   - then refTopics' shard lock, held across the broker call (see
//     refTopics).
//   - mu, of this shard or of a groupShard, guards the maps that Deliver
//     reads. It is held only to read or change them, never across a
//     Service or broker call, so Deliver never waits for the network;
//     Deliver may queue an order (orderLoop.mu) under it.
type userShard struct {
	subMu sync.Mutex

	mu       sync.RWMutex
	users    map[string]*localUser         // user id → its sockets here
	watchers map[string]map[*conn]struct{} // user id → sockets watching their presence
}

// localUser is a user with at least one socket on this pod.
type localUser struct {
	// conns are the user's sockets here; changed under the shard's subMu
	// and mu, so either lock is enough to read them.
	conns map[*conn]struct{}
	// groups are the ids of the user's groups, and loaded tells whether
	// they were read from the Service; both guarded by the shard's subMu.
	groups map[string]struct{}
	loaded bool
	// queued counts the user's envelopes waiting in the order loop: while
	// some are, later ones queue behind them to keep the topic's order.
	queued atomic.Int32
}

// shardOf returns the shard of a user id.
func (n *Node) shardOf(userID string) *userShard { return &n.shards[hash(userID)%shardCount] }

// connsOf returns the sockets of u; the caller holds the shard's subMu.
func connsOf(u *localUser) []*conn {
	cs := make([]*conn, 0, len(u.conns))
	for c := range u.conns {
		cs = append(cs, c)
	}
	return cs
}

// addUser indexes c under its user, with a reference to the user's topic;
// it then reads the user's groups from the Service, unless known, and adds
// c to them. A broker failure is logged: the broker subscribes the topic
// again when it reconnects. It returns the Service's error when the groups
// cannot be read; c is indexed all the same, and removeUser must follow.
func (n *Node) addUser(ctx context.Context, c *conn) error {
	uid := c.claims.UserID
	s := n.shardOf(uid)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.mu.Lock()
	u := s.users[uid]
	if u == nil {
		u = &localUser{conns: make(map[*conn]struct{}, 1)}
		s.users[uid] = u
	}
	u.conns[c] = struct{}{}
	s.mu.Unlock()
	n.topics.acquire(ctx, aoba.UserTopic(uid), 1)
	if !u.loaded && n.svc != nil {
		// Read after the user topic is subscribed: an order published
		// after this read is applied after it; one published before is
		// already reflected in it.
		ids, err := n.svc.UserGroupIDs(ctx, uid)
		if err != nil {
			return err
		}
		now := make(map[string]struct{}, len(ids))
		for _, id := range ids {
			now[id] = struct{}{}
		}
		// Orders applied before a failed earlier read left u.groups
		// partial: the read is authoritative.
		others := connsOf(u)
		for id := range u.groups {
			if _, ok := now[id]; !ok {
				n.groupRemove(ctx, id, others)
			}
		}
		for id := range now {
			if _, ok := u.groups[id]; !ok {
				n.groupAdd(ctx, id, others)
			}
		}
		u.groups, u.loaded = now, true
	}
	for id := range u.groups {
		n.groupAdd(ctx, id, []*conn{c})
	}
	return nil
}

// removeUser undoes addUser.
func (n *Node) removeUser(ctx context.Context, c *conn) {
	uid := c.claims.UserID
	s := n.shardOf(uid)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.mu.Lock()
	u := s.users[uid]
	if u == nil {
		s.mu.Unlock()
		return
	}
	_, had := u.conns[c]
	delete(u.conns, c)
	if len(u.conns) == 0 {
		delete(s.users, uid)
	}
	s.mu.Unlock()
	for id := range u.groups {
		n.groupRemove(ctx, id, []*conn{c})
	}
	if had {
		n.topics.release(ctx, aoba.UserTopic(uid), 1)
	}
}

// watch makes c receive the presence events of userID, with a reference to
// the user's presence topic. A socket's watch and unwatch calls come one
// after the other, from its reading goroutine then its cleanup.
func (n *Node) watch(ctx context.Context, c *conn, userID string) {
	s := n.shardOf(userID)
	s.mu.Lock()
	set := s.watchers[userID]
	if set == nil {
		set = make(map[*conn]struct{})
		s.watchers[userID] = set
	}
	_, had := set[c]
	set[c] = struct{}{}
	s.mu.Unlock()
	if !had {
		n.topics.acquire(ctx, aoba.PresenceTopic(userID), 1)
	}
}

// unwatch undoes watch.
func (n *Node) unwatch(ctx context.Context, c *conn, userID string) {
	s := n.shardOf(userID)
	s.mu.Lock()
	set := s.watchers[userID]
	_, had := set[c]
	delete(set, c)
	if set != nil && len(set) == 0 {
		delete(s.watchers, userID)
	}
	s.mu.Unlock()
	if had {
		n.topics.release(ctx, aoba.PresenceTopic(userID), 1)
	}
}
