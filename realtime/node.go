// Package realtime is the WebSocket channel of one pod: it holds this pod's
// sockets only, each with one reader goroutine and a bounded queue of
// pre-encoded frames. A socket has a writer goroutine, the only one that
// writes to it, only while it has something to write: the node keeps
// finished writers a short while for the next socket that needs one, and a
// single pinger goroutine queues every socket's pings.
//
// The broker hands envelopes to Node.Deliver, which never blocks: it copies
// a frame reference into the queue of every local socket on the topic, and a
// socket whose queue is full is closed with aoba.CloseTooSlow (the client
// reconnects and catches up from history). The local index is sharded by a
// hash of the user id; the node subscribes the broker to a user's topic while
// that user has at least one socket here, and to a presence topic while at
// least one local socket watches that user.
//
// Group messages travel once per group on the group's topic (aoba.GroupTopic).
// The node subscribes to the topic of every group that at least one of its
// local users belongs to, and keeps a second index, sharded by group id,
// from each such group to the local sockets of its members: Deliver on a
// group topic queues the frame once on each of them, allocating nothing per
// recipient. The node learns a user's groups from the Service when the
// user's first socket opens, then from the Join and Leave orders the Service
// publishes on the user's topic. Those orders need broker calls, which
// Deliver must not make, so they are applied by one goroutine in the order
// received; the user's later envelopes wait behind them, so a socket that
// receives the `group` event of a change already follows the new
// membership. A member who joins may miss the group's live messages of
// about one broker round trip before the order is applied (at-most-once,
// like every broker delivery); history has them.
package realtime

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aoba-chat/aoba"
)

// Defaults of Config.
const (
	DefaultSendQueue     = 128
	DefaultPingInterval  = 25 * time.Second
	DefaultIdleTimeout   = 60 * time.Second
	DefaultMaxFrameBytes = 64 << 10
	DefaultWriteTimeout  = 10 * time.Second
	DefaultRateStandard  = 100
)

// MaxWatched is the largest number of users one socket may watch the
// presence of at a time.
const MaxWatched = 1000

// Config holds the Node's dependencies and settings. Zero values take the
// defaults above.
type Config struct {
	// Broker carries the node's topics between pods; the node subscribes
	// it to the topics of its sockets. Required. The caller registers
	// Node.Deliver on it (Broker.RegisterDeliver) before the node serves
	// its first socket.
	Broker   aoba.Broker
	Service  *aoba.Service
	Presence aoba.PresenceRegistry
	Limiter  aoba.RateLimiter
	// RateStandard is the `standard` budget per minute; each message.send
	// frame counts against it under the same key as POST /api/messages
	// ("standard:" + user id).
	RateStandard int
	Logger       *slog.Logger
	// SendQueue is the number of frames a socket may have waiting for its
	// writer; one more closes the socket with aoba.CloseTooSlow.
	SendQueue int
	// PingInterval is the time between two pings from the server.
	PingInterval time.Duration
	// IdleTimeout closes a socket with aoba.CloseIdle when nothing (frame or
	// pong) was read from it for that long.
	IdleTimeout time.Duration
	// MaxFrameBytes is the largest frame read; a larger one closes the
	// socket with aoba.CloseTooLarge.
	MaxFrameBytes int
	// WriteTimeout bounds every write to a socket; a client that does not
	// read for that long loses its connection.
	WriteTimeout time.Duration
	// AllowedOrigins are the origins, besides the server's own, from which
	// a browser may open a cookie-authenticated socket.
	AllowedOrigins []string
}

// Node is this pod's WebSocket hub. It is safe for concurrent use.
type Node struct {
	cfg      Config
	svc      *aoba.Service
	presence aoba.PresenceRegistry
	limiter  aoba.RateLimiter
	log      *slog.Logger
	origins  aoba.OriginPolicy
	broker   aoba.Broker
	metrics  *metrics

	// detach says whether sockets outlive the upgrade handler (the app's
	// server keeps hijacked connections); set at the first request.
	detachOnce sync.Once
	detach     bool

	shards [shardCount]shard
	groups [shardCount]groupShard

	omu      sync.Mutex // guards orders and ordering
	orders   []order    // Join/Leave orders and the envelopes queued behind them
	ordering bool       // a goroutine is applying orders

	// idleWriters hands a socket to a writer goroutine waiting for one
	// (see startWriter); unbuffered.
	idleWriters chan *conn

	mu      sync.Mutex // guards closing, conns and stopPings
	closing bool
	conns   map[*conn]struct{}
	// stopPings stops the pinger, which the first socket starts; nil
	// until then.
	stopPings chan struct{}
	handlers  sync.WaitGroup // one per socket, done when its goroutines have ended
}

const shardCount = 16

// shard is one part of the local connection index.
type shard struct {
	// subMu serializes the broker (un)subscriptions of the shard's topics
	// with the changes of the counts below that cause them, so that the
	// broker's state always matches the index. It is held across broker
	// calls; mu is not, so Deliver never waits for the network.
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
	// queued counts the user's envelopes waiting in Node.orders: while
	// some are, later ones queue behind them to keep the topic's order.
	queued atomic.Int32
}

// groupShard is one part of the group index, sharded by group id.
type groupShard struct {
	// subMu serializes the broker (un)subscriptions of the shard's group
	// topics with the changes of conns that cause them; held across broker
	// calls, while mu is not.
	subMu sync.Mutex

	mu    sync.RWMutex
	conns map[string]map[*conn]struct{} // group id → local sockets of its members
}

// order is an envelope of a user topic applied by the order goroutine.
type order struct {
	userID string
	u      *localUser // whose queued count it holds
	env    aoba.Envelope
}

// New returns a Node with cfg. It panics when cfg.Broker is nil, and
// never fails otherwise.
func New(cfg Config) *Node {
	if cfg.Broker == nil {
		panic("realtime: New without a Broker")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = DefaultSendQueue
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.RateStandard <= 0 {
		cfg.RateStandard = DefaultRateStandard
	}
	n := &Node{
		cfg: cfg, broker: cfg.Broker, svc: cfg.Service, presence: cfg.Presence, limiter: cfg.Limiter, log: cfg.Logger,
		origins: aoba.NewOriginPolicy(cfg.AllowedOrigins), metrics: newMetrics(), conns: make(map[*conn]struct{}),
		idleWriters: make(chan *conn),
	}
	for i := range n.shards {
		n.shards[i].users = make(map[string]*localUser)
		n.shards[i].watchers = make(map[string]map[*conn]struct{})
		n.groups[i].conns = make(map[string]map[*conn]struct{})
	}
	return n
}

// hash is FNV-1a, without allocating.
func hash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// shardOf returns the shard of a user id.
func (n *Node) shardOf(userID string) *shard { return &n.shards[hash(userID)%shardCount] }

// groupShardOf returns the group index shard of a group id.
func (n *Node) groupShardOf(groupID string) *groupShard { return &n.groups[hash(groupID)%shardCount] }

// Deliver hands an envelope received on topic to the local sockets. On a
// user or presence topic the frame is queued on every socket of the topic;
// on a group topic, on every local socket of the group's members. Sockets
// env.ExceptConn and those of the user env.ExceptUser are skipped. A close
// order closes the matching sockets of the topic's user; a Join or Leave
// order is handed to the order goroutine. It never blocks: a socket whose
// queue is full is closed with aoba.CloseTooSlow.
func (n *Node) Deliver(topic string, env aoba.Envelope) {
	if len(topic) < 2 || topic[1] != ':' {
		return
	}
	id := topic[2:]
	switch topic[0] {
	case 'u':
		n.deliverUser(id, env, false)
	case 'g':
		n.deliverGroup(id, env)
	case 'p':
		s := n.shardOf(id)
		s.mu.RLock()
		if env.Close == nil {
			fanout(s.watchers[id], env)
		}
		s.mu.RUnlock()
	}
}

// fanout queues env's frame on the sockets of set that env does not except.
// It allocates one item, whatever the number of sockets.
func fanout(set map[*conn]struct{}, env aoba.Envelope) {
	if len(set) == 0 || len(env.Frame) == 0 {
		return
	}
	it := &item{frame: env.Frame, at: time.Now()}
	for c := range set {
		if c.id == env.ExceptConn || (env.ExceptUser != "" && c.claims.UserID == env.ExceptUser) {
			continue
		}
		c.enqueue(it)
	}
}

// deliverGroup queues a group topic's frame on the local sockets of the
// group's members.
func (n *Node) deliverGroup(groupID string, env aoba.Envelope) {
	g := n.groupShardOf(groupID)
	g.mu.RLock()
	fanout(g.conns[groupID], env)
	g.mu.RUnlock()
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
				(o.KeepSession != "" && c.claims.SessionID == o.KeepSession) {
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
	n.omu.Lock()
	n.orders = append(n.orders, o)
	start := !n.ordering
	n.ordering = true
	n.omu.Unlock()
	if start {
		go n.applyOrders()
	}
}

// orderTimeout bounds the broker calls of one order.
const orderTimeout = 10 * time.Second

// applyOrders applies the queued orders, in order, until none is left.
func (n *Node) applyOrders() {
	for {
		n.omu.Lock()
		batch := n.orders
		n.orders = nil
		if len(batch) == 0 {
			n.ordering = false
			n.omu.Unlock()
			return
		}
		n.omu.Unlock()
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

// connsOf returns the sockets of u; the caller holds the shard's subMu.
func connsOf(u *localUser) []*conn {
	cs := make([]*conn, 0, len(u.conns))
	for c := range u.conns {
		cs = append(cs, c)
	}
	return cs
}

// groupAdd adds cs to the group's local sockets and subscribes the group
// topic when they are its first.
func (n *Node) groupAdd(ctx context.Context, groupID string, cs []*conn) {
	if len(cs) == 0 {
		return
	}
	g := n.groupShardOf(groupID)
	g.subMu.Lock()
	defer g.subMu.Unlock()
	g.mu.Lock()
	set := g.conns[groupID]
	first := set == nil
	if first {
		set = make(map[*conn]struct{}, len(cs))
		g.conns[groupID] = set
	}
	for _, c := range cs {
		set[c] = struct{}{}
	}
	g.mu.Unlock()
	if first {
		n.subscribe(ctx, aoba.GroupTopic(groupID))
	}
}

// groupRemove undoes groupAdd, unsubscribing the group topic when no local
// socket is left on it.
func (n *Node) groupRemove(ctx context.Context, groupID string, cs []*conn) {
	g := n.groupShardOf(groupID)
	g.subMu.Lock()
	defer g.subMu.Unlock()
	g.mu.Lock()
	set := g.conns[groupID]
	if set == nil {
		g.mu.Unlock()
		return
	}
	for _, c := range cs {
		delete(set, c)
	}
	last := len(set) == 0
	if last {
		delete(g.conns, groupID)
	}
	g.mu.Unlock()
	if last {
		n.unsubscribe(ctx, aoba.GroupTopic(groupID))
	}
}

// addUser indexes c under its user and subscribes the user's topic when c
// is the user's first local socket; it then reads the user's groups from
// the Service, unless known, and adds c to them. A broker failure is
// logged: the broker subscribes the topic again when it reconnects. It
// returns the Service's error when the groups cannot be read; c is indexed
// all the same, and removeUser must follow.
func (n *Node) addUser(ctx context.Context, c *conn) error {
	uid := c.claims.UserID
	s := n.shardOf(uid)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.mu.Lock()
	u := s.users[uid]
	first := u == nil
	if first {
		u = &localUser{conns: make(map[*conn]struct{}, 1)}
		s.users[uid] = u
	}
	u.conns[c] = struct{}{}
	s.mu.Unlock()
	if first {
		n.subscribe(ctx, aoba.UserTopic(uid))
	}
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
	delete(u.conns, c)
	last := len(u.conns) == 0
	if last {
		delete(s.users, uid)
	}
	s.mu.Unlock()
	for id := range u.groups {
		n.groupRemove(ctx, id, []*conn{c})
	}
	if last {
		n.unsubscribe(ctx, aoba.UserTopic(uid))
	}
}

// watch makes c receive the presence events of userID, subscribing the
// presence topic when c is its first local watcher.
func (n *Node) watch(ctx context.Context, c *conn, userID string) {
	s := n.shardOf(userID)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.mu.Lock()
	set := s.watchers[userID]
	if set == nil {
		set = make(map[*conn]struct{})
		s.watchers[userID] = set
	}
	set[c] = struct{}{}
	first := len(set) == 1
	s.mu.Unlock()
	if first {
		n.subscribe(ctx, aoba.PresenceTopic(userID))
	}
}

// unwatch undoes watch.
func (n *Node) unwatch(ctx context.Context, c *conn, userID string) {
	s := n.shardOf(userID)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.mu.Lock()
	set := s.watchers[userID]
	delete(set, c)
	last := set != nil && len(set) == 0
	if last {
		delete(s.watchers, userID)
	}
	s.mu.Unlock()
	if last {
		n.unsubscribe(ctx, aoba.PresenceTopic(userID))
	}
}

func (n *Node) subscribe(ctx context.Context, topic string) {
	if err := n.broker.Subscribe(ctx, topic); err != nil {
		n.log.Warn("realtime: subscribe failed", "topic", topic, "err", err)
	}
}

func (n *Node) unsubscribe(ctx context.Context, topic string) {
	if err := n.broker.Unsubscribe(ctx, topic); err != nil {
		n.log.Warn("realtime: unsubscribe failed", "topic", topic, "err", err)
	}
}

// Shutdown stops accepting sockets, closes every open one with
// aoba.CloseGoingAway after its queued frames, and waits until every socket
// is gone. It returns ctx's error if ctx ends first.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	n.closing = true
	if n.stopPings != nil {
		close(n.stopPings)
		n.stopPings = nil
	}
	for c := range n.conns {
		c.closeWith(aoba.CloseGoingAway, "server shutting down", true)
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		n.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// track registers c as open, or reports false once Shutdown has begun.
func (n *Node) track(c *conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		return false
	}
	if n.stopPings == nil {
		n.stopPings = make(chan struct{})
		go n.pinger(n.stopPings)
	}
	n.conns[c] = struct{}{}
	n.handlers.Add(1)
	return true
}

func (n *Node) untrack(c *conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
	n.handlers.Done()
}

func (n *Node) isClosing() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closing
}
