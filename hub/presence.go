package hub

import (
	"sync"
	"time"

	"github.com/aoba-chat/aoba"
)

// PresenceOptions tunes a presence registry. Zero fields take the defaults.
type PresenceOptions struct {
	// Grace is how long a user stays online after their last connection
	// closes; a reconnect within it emits no event. Default 5 s.
	Grace time.Duration
	// HeartbeatInterval is how often a pod refreshes the expiry of its open
	// connections in Redis. Default 10 s.
	HeartbeatInterval time.Duration
	// TTL is how long a connection counts without a heartbeat: the
	// connections of a pod that died without cleanup stop counting within
	// TTL + SweepInterval. Default 30 s.
	TTL time.Duration
	// SweepInterval is how often each pod looks for expired connections.
	// Default 5 s.
	SweepInterval time.Duration
}

// Default presence options.
const (
	DefaultPresenceGrace     = 5 * time.Second
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultPresenceTTL       = 30 * time.Second
	DefaultSweepInterval     = 5 * time.Second
)

func (o PresenceOptions) withDefaults() PresenceOptions {
	if o.Grace <= 0 {
		o.Grace = DefaultPresenceGrace
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.TTL <= 0 {
		o.TTL = DefaultPresenceTTL
	}
	if o.TTL <= o.HeartbeatInterval {
		// A connection must outlive at least one missed heartbeat.
		o.TTL = 3 * o.HeartbeatInterval
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	return o
}

// emitter calls the registered PresenceChangeFunc from one goroutine, in
// the order the changes were queued, so that the callback never runs under
// a registry's lock and may call the registry back. Changes emitted before
// a function is registered are dropped.
type emitter struct {
	mu     sync.Mutex
	fn     aoba.PresenceChangeFunc // nil until register
	queue  []aoba.Presence
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

func newEmitter() *emitter {
	e := &emitter{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go e.run()
	return e
}

// register sets the function changes go to; it panics when called twice or
// with nil.
func (e *emitter) register(fn aoba.PresenceChangeFunc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if fn == nil || e.fn != nil {
		panic("hub: RegisterChangeHandler called twice or with nil")
	}
	e.fn = fn
}

// emit queues p; it is dropped before register and after close.
func (e *emitter) emit(p aoba.Presence) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.fn == nil {
		return
	}
	e.queue = append(e.queue, p)
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// close delivers the queued changes and stops the goroutine.
func (e *emitter) close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	close(e.wake)
	e.mu.Unlock()
	<-e.done
}

func (e *emitter) run() {
	defer close(e.done)
	for range e.wake {
		e.drain()
	}
	e.drain()
}

func (e *emitter) drain() {
	for {
		e.mu.Lock()
		batch, fn := e.queue, e.fn
		e.queue = nil
		e.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, p := range batch {
			fn(p)
		}
	}
}

func online(userID string) aoba.Presence {
	return aoba.Presence{UserID: userID, Status: aoba.StatusOnline}
}

func offline(userID string, lastSeen time.Time) aoba.Presence {
	t := lastSeen.UTC().Truncate(time.Millisecond)
	return aoba.Presence{UserID: userID, Status: aoba.StatusOffline, LastSeen: &t}
}
