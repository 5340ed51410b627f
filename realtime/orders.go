package realtime

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/aoba-chat/aoba"
)

// orderLoop holds the Join and Leave orders of the user topics, and the
// envelopes queued behind them, until one goroutine applies them in the
// order received: they need broker calls, which Deliver must not make.
// mu guards queue and running; nothing else is locked under it.
type orderLoop struct {
	mu      sync.Mutex
	queue   []order
	running bool // a goroutine is applying orders
}

// order is an envelope of a user topic applied by the order goroutine.
type order struct {
	userID string
	u      *localUser // whose queued count it holds
	env    aoba.Envelope
}

// deliverUser hands an envelope of a user topic to the user's sockets. A
// Join or Leave order, and any envelope arriving while one is waiting
// (queued), go to the order goroutine instead, unless ordered is set: the
// order goroutine itself is delivering.
func (n *Node) deliverUser(userID string, env aoba.Envelope, ordered bool) {
	s := n.shardOf(userID)
	s.mu.RLock()
	u := s.users[userID]
	if u == nil {
		s.mu.RUnlock()
		return
	}
	if !ordered && (env.Join != "" || env.Leave != "" || u.queued.Load() > 0) {
		u.queued.Add(1)
		s.mu.RUnlock()
		n.queueOrder(order{userID: userID, u: u, env: env})
		return
	}
	defer s.mu.RUnlock()
	if o := env.Close; o != nil {
		for c := range u.conns {
			if (o.Session != "" && c.claims.SessionID != o.Session) ||
				(o.KeepSession != "" && c.claims.SessionID == o.KeepSession) ||
				(len(o.Conns) > 0 && !slices.Contains(o.Conns, c.id)) {
				continue
			}
			c.closeWith(o.Code, o.Reason, false)
		}
		return
	}
	fanout(u.conns, env)
}

// queueOrder appends o to the orders and starts the order goroutine unless
// it runs.
func (n *Node) queueOrder(o order) {
	l := &n.orders
	l.mu.Lock()
	l.queue = append(l.queue, o)
	start := !l.running
	l.running = true
	l.mu.Unlock()
	if start {
		go n.applyOrders()
	}
}

// orderTimeout bounds the broker calls of one order.
const orderTimeout = 10 * time.Second

// applyOrders applies the queued orders, in order, until none is left.
func (n *Node) applyOrders() {
	l := &n.orders
	for {
		l.mu.Lock()
		batch := l.queue
		l.queue = nil
		if len(batch) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
		for _, o := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), orderTimeout)
			if o.env.Join != "" {
				n.join(ctx, o.userID, o.env.Join)
			}
			if o.env.Leave != "" {
				n.leave(ctx, o.userID, o.env.Leave)
			}
			cancel()
			n.deliverUser(o.userID, o.env, true)
			o.u.queued.Add(-1)
		}
	}
}

// join makes the local sockets of userID receive the group's topic.
func (n *Node) join(ctx context.Context, userID, groupID string) {
	s := n.shardOf(userID)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	u := s.users[userID] // users changes only under subMu
	if u == nil {
		return
	}
	if _, ok := u.groups[groupID]; ok {
		return
	}
	if u.groups == nil {
		u.groups = make(map[string]struct{})
	}
	u.groups[groupID] = struct{}{}
	n.groupAdd(ctx, groupID, connsOf(u))
}

// leave undoes join.
func (n *Node) leave(ctx context.Context, userID, groupID string) {
	s := n.shardOf(userID)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	u := s.users[userID]
	if u == nil {
		return
	}
	if _, ok := u.groups[groupID]; !ok {
		return
	}
	delete(u.groups, groupID)
	n.groupRemove(ctx, groupID, connsOf(u))
}
