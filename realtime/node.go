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
	"log/slog"
	"slices"
	"sync"
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
)

// MaxWatched is the largest number of users one socket may watch the
// presence of at a time when the node has no Config.Watches (which counts
// them per user across pods instead).
const MaxWatched = aoba.MaxWatchedPerUser

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
	// RateBatch is the `batch` budget per minute; each presence.subscribe
	// frame counts against it under the same key as the REST batch routes
	// ("batch:" + user id).
	RateBatch int
	// Watches counts the distinct users each user watches across their
	// sockets and pods; a presence.subscribe past its limit gets `invalid`.
	// Nil limits each socket to MaxWatched users instead.
	Watches aoba.WatchRegistry
	// Sockets orders each user's sockets across pods; a socket that takes
	// its user past MaxSockets closes their oldest ones with
	// aoba.CloseTooManySockets. Nil: no limit.
	Sockets aoba.SocketRegistry
	// MaxSockets is the number of sockets a user may hold open across pods
	// (aoba.DefaultMaxSocketsPerUser when zero).
	MaxSockets int
	Logger     *slog.Logger
	// SendQueue is the number of frames a socket may have waiting for its
	// writer; one more closes the socket with aoba.CloseTooSlow.
	SendQueue int
	// PingInterval is the time between two pings from the server.
	PingInterval time.Duration
	// IdleTimeout closes a socket with aoba.CloseIdle when nothing (frame or
	// pong) was read from it for that long. Zero: DefaultIdleTimeout, or
	// twice PingInterval when that is longer, so that a socket answering
	// pings is never idle.
	IdleTimeout time.Duration
	// MaxFrameBytes is the largest frame read; a larger one closes the
	// socket with aoba.CloseTooLarge.
	MaxFrameBytes int
	// WriteTimeout bounds every write to a socket; a client that does not
	// read for that long loses its connection (a write gets between 7/8 of
	// it and all of it: the deadline is re-armed once an eighth has gone
	// by, not for every write).
	WriteTimeout time.Duration
	// WriteDelay, when positive, makes a socket that has something to
	// write wait up to that long before its writer starts (one window for
	// all sockets), so that the frames queued meanwhile go out in the same
	// write: less CPU per delivered frame under heavy fan-out, for up to
	// WriteDelay more latency on every frame. Zero: a writer starts at
	// once.
	WriteDelay time.Duration
	// AllowedOrigins are the origins, besides the server's own, from which
	// a browser may open a cookie-authenticated socket.
	AllowedOrigins []string
}

// Node is this pod's WebSocket hub. It is safe for concurrent use. Its
// state is split by job, each part with its own locks documented on its
// type: the user and presence index (userShard, users.go), the group index
// (groupShard, groups.go), the broker subscriptions (refTopics,
// subscriptions.go), the Join/Leave order loop (orderLoop, orders.go) and
// the open sockets (lifecycle, lifecycle.go).
type Node struct {
	cfg      Config
	svc      *aoba.Service
	presence aoba.PresenceRegistry
	limiter  aoba.RateLimiter
	log      *slog.Logger
	origins  aoba.OriginPolicy
	metrics  *metrics

	// detach says whether sockets outlive the upgrade handler (the app's
	// server keeps hijacked connections); set at the first request.
	detachOnce sync.Once
	detach     bool

	shards [shardCount]userShard
	groups [shardCount]groupShard
	topics *refTopics
	orders orderLoop
	life   lifecycle

	// idleWriters hands a socket to a writer goroutine waiting for one
	// (see startWriter); unbuffered.
	idleWriters chan *conn
	// delayed holds the sockets whose writer waits for the end of the
	// current WriteDelay window (see startWriter).
	delayed delayedWriters
	// epoch is the origin of conn.lastRead (monotonic).
	epoch time.Time
}

const shardCount = 16

// hash is FNV-1a, without allocating.
func hash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// Deliver hands an envelope received on topic to the local sockets. On a
// user or presence topic the frame is queued on every socket of the topic;
// on a group topic, on every local socket of the group's members. Sockets
// env.ExceptConn and those of the users env.ExceptUser and env.ExceptUsers
// are skipped; with env.OnlyUser, only that user's sockets get the frame. A close
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
		} else {
			closeAll(s.watchers[id], env.Close)
		}
		s.mu.RUnlock()
	}
}

// closeAll closes the sockets of set with the order's code: on a group or
// presence topic, the broker sends one only when it resubscribed the topic
// (aoba.CloseResync), and every socket that follows it may have missed
// events.
func closeAll(set map[*conn]struct{}, o *aoba.CloseOrder) {
	for c := range set {
		c.closeWith(o.Code, o.Reason, false)
	}
}

// fanout queues env's frame on the sockets of set that env does not except
// (ExceptConn, ExceptUser, ExceptUsers) and, with OnlyUser, on that user's
// sockets alone.
// It allocates one item, whatever the number of sockets.
func fanout(set map[*conn]struct{}, env aoba.Envelope) {
	if len(set) == 0 || len(env.Frame) == 0 {
		return
	}
	it := &item{frame: env.Frame, at: time.Now()}
	for c := range set {
		if c.id == env.ExceptConn || (env.ExceptUser != "" && c.claims.UserID == env.ExceptUser) ||
			(env.OnlyUser != "" && c.claims.UserID != env.OnlyUser) || slices.Contains(env.ExceptUsers, c.claims.UserID) {
			continue
		}
		c.enqueue(it)
	}
}
