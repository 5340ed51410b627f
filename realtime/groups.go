package realtime

import (
	"context"
	"sync"

	"github.com/aoba-chat/aoba"
)

// groupShard is one part of the group index, sharded by a hash of the
// group id: from each group with a member here to the local sockets of its
// members. mu guards conns (see userShard for the lock order); a socket is
// added to or removed from a group only under its user's userShard.subMu.
type groupShard struct {
	mu    sync.RWMutex
	conns map[string]map[*conn]struct{} // group id → local sockets of its members
}

// groupShardOf returns the group index shard of a group id.
func (n *Node) groupShardOf(groupID string) *groupShard { return &n.groups[hash(groupID)%shardCount] }

// deliverGroup queues a group topic's frame on the local sockets of the
// group's members.
func (n *Node) deliverGroup(groupID string, env aoba.Envelope) {
	g := n.groupShardOf(groupID)
	g.mu.RLock()
	if env.Close != nil {
		closeAll(g.conns[groupID], env.Close)
	} else {
		fanout(g.conns[groupID], env)
	}
	g.mu.RUnlock()
}

// groupAdd adds cs to the group's local sockets, with a reference to the
// group's topic for each socket not there yet.
func (n *Node) groupAdd(ctx context.Context, groupID string, cs []*conn) {
	if len(cs) == 0 {
		return
	}
	g := n.groupShardOf(groupID)
	g.mu.Lock()
	set := g.conns[groupID]
	if set == nil {
		set = make(map[*conn]struct{}, len(cs))
		g.conns[groupID] = set
	}
	added := 0
	for _, c := range cs {
		if _, ok := set[c]; !ok {
			set[c] = struct{}{}
			added++
		}
	}
	g.mu.Unlock()
	n.topics.acquire(ctx, aoba.GroupTopic(groupID), added)
}

// groupRemove undoes groupAdd.
func (n *Node) groupRemove(ctx context.Context, groupID string, cs []*conn) {
	g := n.groupShardOf(groupID)
	g.mu.Lock()
	set := g.conns[groupID]
	removed := 0
	for _, c := range cs {
		if _, ok := set[c]; ok {
			delete(set, c)
			removed++
		}
	}
	if set != nil && len(set) == 0 {
		delete(g.conns, groupID)
	}
	g.mu.Unlock()
	n.topics.release(ctx, aoba.GroupTopic(groupID), removed)
}
