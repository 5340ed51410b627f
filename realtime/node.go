// Package realtime is the WebSocket channel of one pod: it holds this pod's
// sockets only, each with one reader goroutine, one writer goroutine that
// owns every write, and a bounded queue of pre-encoded frames.
//
// The broker hands envelopes to Node.Deliver, which never blocks: it copies
// a frame reference into the queue of every local socket on the topic, and a
// socket whose queue is full is closed with aoba.CloseTooSlow (the client
// reconnects and catches up from history). The local index is sharded by a
// hash of the user id; the node subscribes the broker to a user's topic while
// that user has at least one socket here, and to a presence topic while at
// least one local socket watches that user.
package realtime

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aoba-chat/aoba"
)

// Defaults of Config.
const (
	DefaultSendQueue     = 256
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
	origins  map[string]bool
	broker   atomic.Pointer[brokerRef]
	metrics  *metrics

	shards [shardCount]shard

	mu       sync.Mutex // guards closing and conns
	closing  bool
	conns    map[*conn]struct{}
	handlers sync.WaitGroup // one per socket, done when its goroutines have ended
}

type brokerRef struct{ b aoba.Broker }

const shardCount = 16

// shard is one part of the local connection index.
type shard struct {
	// subMu serializes the broker (un)subscriptions of the shard's topics
	// with the changes of the counts below that cause them, so that the
	// broker's state always matches the index. It is held across broker
	// calls; mu is not, so Deliver never waits for the network.
	subMu sync.Mutex

	mu       sync.RWMutex
	users    map[string]map[*conn]struct{} // user id → its sockets here
	watchers map[string]map[*conn]struct{} // user id → sockets watching their presence
}

// New returns a Node with cfg; SetBroker must be called before the handler
// serves its first socket. It never fails.
func New(cfg Config) *Node {
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
		cfg: cfg, svc: cfg.Service, presence: cfg.Presence, limiter: cfg.Limiter, log: cfg.Logger,
		origins: make(map[string]bool), metrics: newMetrics(), conns: make(map[*conn]struct{}),
	}
	for _, o := range cfg.AllowedOrigins {
		if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
			n.origins[strings.ToLower(o)] = true
		}
	}
	for i := range n.shards {
		n.shards[i].users = make(map[string]map[*conn]struct{})
		n.shards[i].watchers = make(map[string]map[*conn]struct{})
	}
	return n
}

// SetBroker sets the broker the node subscribes topics on. The broker is
// built with Deliver as its DeliverFunc, hence after New.
func (n *Node) SetBroker(b aoba.Broker) {
	n.broker.Store(&brokerRef{b: b})
}

func (n *Node) getBroker() aoba.Broker {
	if r := n.broker.Load(); r != nil {
		return r.b
	}
	return nil
}

// shardOf returns the shard of a user id (FNV-1a, without allocating).
func (n *Node) shardOf(userID string) *shard {
	h := uint32(2166136261)
	for i := 0; i < len(userID); i++ {
		h ^= uint32(userID[i])
		h *= 16777619
	}
	return &n.shards[h%shardCount]
}

// Deliver hands an envelope received on topic to the local sockets: the
// frame is queued on every socket of the topic except env.ExceptConn, and a
// close order closes the matching sockets of the topic's user. It never
// blocks: a socket whose queue is full is closed with aoba.CloseTooSlow.
func (n *Node) Deliver(topic string, env aoba.Envelope) {
	var watchers bool
	uid, ok := strings.CutPrefix(topic, "u:")
	if !ok {
		if uid, ok = strings.CutPrefix(topic, "p:"); !ok {
			return
		}
		watchers = true
	}
	s := n.shardOf(uid)
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := s.users[uid]
	if watchers {
		set = s.watchers[uid]
	}
	if len(set) == 0 {
		return
	}
	if env.Close != nil {
		if watchers {
			return
		}
		o := env.Close
		for c := range set {
			if (o.Session != "" && c.claims.SessionID != o.Session) ||
				(o.KeepSession != "" && c.claims.SessionID == o.KeepSession) {
				continue
			}
			c.closeWith(o.Code, o.Reason, false)
		}
		return
	}
	if len(env.Frame) == 0 {
		return
	}
	it := &item{frame: env.Frame, at: time.Now()}
	for c := range set {
		if env.ExceptConn != "" && c.id == env.ExceptConn {
			continue
		}
		c.enqueue(it)
	}
}

// addUser indexes c under its user and subscribes the user's topic when c
// is the user's first local socket. A broker failure is logged: the broker
// subscribes the topic again when it reconnects.
func (n *Node) addUser(ctx context.Context, c *conn) {
	s := n.shardOf(c.claims.UserID)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.mu.Lock()
	set := s.users[c.claims.UserID]
	if set == nil {
		set = make(map[*conn]struct{})
		s.users[c.claims.UserID] = set
	}
	set[c] = struct{}{}
	first := len(set) == 1
	s.mu.Unlock()
	if first {
		n.subscribe(ctx, aoba.UserTopic(c.claims.UserID))
	}
}

// removeUser undoes addUser.
func (n *Node) removeUser(ctx context.Context, c *conn) {
	s := n.shardOf(c.claims.UserID)
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.mu.Lock()
	set := s.users[c.claims.UserID]
	delete(set, c)
	last := set != nil && len(set) == 0
	if last {
		delete(s.users, c.claims.UserID)
	}
	s.mu.Unlock()
	if last {
		n.unsubscribe(ctx, aoba.UserTopic(c.claims.UserID))
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
	b := n.getBroker()
	if b == nil {
		n.log.Error("realtime: no broker set", "topic", topic)
		return
	}
	if err := b.Subscribe(ctx, topic); err != nil {
		n.log.Warn("realtime: subscribe failed", "topic", topic, "err", err)
	}
}

func (n *Node) unsubscribe(ctx context.Context, topic string) {
	b := n.getBroker()
	if b == nil {
		return
	}
	if err := b.Unsubscribe(ctx, topic); err != nil {
		n.log.Warn("realtime: unsubscribe failed", "topic", topic, "err", err)
	}
}

// Shutdown stops accepting sockets, closes every open one with
// aoba.CloseGoingAway after its queued frames, and waits until every socket
// is gone. It returns ctx's error if ctx ends first.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	n.closing = true
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
