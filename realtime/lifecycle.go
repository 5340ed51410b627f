package realtime

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/aoba-chat/aoba"
)

// lifecycle is the set of open sockets and the node's shutdown state.
//
// mu guards closing, conns and stopPings, and is taken with no other lock
// held or taken under it.
type lifecycle struct {
	mu      sync.Mutex
	closing bool
	conns   map[*conn]struct{}
	// stopPings stops the pinger, which the first socket starts; nil
	// until then.
	stopPings chan struct{}
	handlers  sync.WaitGroup // one per socket, done when its goroutines have ended
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
		cfg.IdleTimeout = max(DefaultIdleTimeout, 2*cfg.PingInterval)
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.RateStandard <= 0 {
		cfg.RateStandard = aoba.DefaultRates.Standard
	}
	if cfg.RateBatch <= 0 {
		cfg.RateBatch = aoba.DefaultRates.Batch
	}
	if cfg.MaxSockets <= 0 {
		cfg.MaxSockets = aoba.DefaultMaxSocketsPerUser
	}
	n := &Node{
		cfg: cfg, svc: cfg.Service, presence: cfg.Presence, limiter: cfg.Limiter, log: cfg.Logger,
		origins: aoba.NewOriginPolicy(cfg.AllowedOrigins), metrics: newMetrics(),
		topics: newRefTopics(cfg.Broker, cfg.Logger), idleWriters: make(chan *conn),
		life: lifecycle{conns: make(map[*conn]struct{})}, epoch: time.Now(),
	}
	for i := range n.shards {
		n.shards[i].users = make(map[string]*localUser)
		n.shards[i].watchers = make(map[string]map[*conn]struct{})
		n.groups[i].conns = make(map[string]map[*conn]struct{})
	}
	return n
}

// Shutdown stops accepting sockets, closes every open one with
// aoba.CloseGoingAway after its queued frames, and waits until every socket
// is gone. It returns ctx's error if ctx ends first.
func (n *Node) Shutdown(ctx context.Context) error {
	l := &n.life
	l.mu.Lock()
	l.closing = true
	if l.stopPings != nil {
		close(l.stopPings)
		l.stopPings = nil
	}
	for c := range l.conns {
		c.closeWith(aoba.CloseGoingAway, "server shutting down", true)
	}
	l.mu.Unlock()
	done := make(chan struct{})
	go func() {
		l.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Drain stops accepting sockets (an upgrade then gets 503) and closes every
// open one with aoba.CloseGoingAway after its queued frames, spread evenly
// over spread: of n sockets, the i-th is closed at i*spread/n, so that their
// clients do not all reconnect in the same second. When ctx ends first, the
// rest are closed at once. It returns the number of sockets it closed, once
// it has asked each to close; Shutdown then waits for them to be gone.
func (n *Node) Drain(ctx context.Context, spread time.Duration) int {
	l := &n.life
	l.mu.Lock()
	l.closing = true
	conns := make([]*conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i, c := range conns {
		if wait := time.Until(start.Add(spread * time.Duration(i) / time.Duration(len(conns)))); wait > 0 && ctx.Err() == nil {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		c.closeWith(aoba.CloseGoingAway, "server shutting down", true)
	}
	return len(conns)
}

// track registers c as open and queues its `hello` frame, or reports false
// once Shutdown has begun. Hello is queued under the lifecycle lock before c
// is among the open sockets, so no ping, no shutdown close and no delivery
// (the socket joins its user's topic only after track) can come before it.
func (n *Node) track(c *conn) bool {
	l := &n.life
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	c.send(aoba.FrameHello, "", aoba.Hello{
		SessionID: c.claims.SessionID,
		Sync:      aoba.SyncCursorAt(time.Now()),
		Heartbeat: int((n.cfg.PingInterval + time.Second - 1) / time.Second),
	})
	if l.stopPings == nil {
		l.stopPings = make(chan struct{})
		go n.pinger(l.stopPings)
	}
	l.conns[c] = struct{}{}
	l.handlers.Add(1)
	return true
}

// untrack undoes track once c's goroutines have ended.
func (n *Node) untrack(c *conn) {
	l := &n.life
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.handlers.Done()
}

func (n *Node) isClosing() bool {
	n.life.mu.Lock()
	defer n.life.mu.Unlock()
	return n.life.closing
}
