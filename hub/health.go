package hub

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
)

var (
	_ aoba.Pinger           = (*RedisHealth)(nil)
	_ aoba.DegradedReporter = (*RedisHealth)(nil)
)

var (
	metricRedisUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "aoba",
		Subsystem: "hub",
		Name:      "redis_up",
		Help:      "1 while this pod reaches Redis, 0 while it serves degraded without it.",
	})
	metricRedisOutages = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "aoba",
		Subsystem: "hub",
		Name:      "redis_outages_total",
		Help:      "Times this pod lost Redis and went on serving degraded.",
	})
)

// RedisHealth follows whether this pod reaches Redis, so that the hub can
// serve degraded rather than fail when it does not: the rate limiter falls
// back to a per-pod one (FallbackLimiter), authentication to the store
// (the session cache is only a cache), and /health reports "degraded"
// while staying 200, since taking every pod out of the load balancer at
// once would turn a partial outage into a full one.
//
// Its own PING decides, every UpProbe, every DownProbe while Redis is
// down, and at once when a command of the client fails to reach Redis (a
// hook sees each one); it logs each outage once, when it starts and when it
// ends. While Redis is down, the client's commands fail at once instead of
// waiting for dial retries (one Redis or Sentinel; on a Cluster, where one
// shard may fail while the others serve, commands always go through).
type RedisHealth struct {
	client   redis.UniversalClient
	log      *slog.Logger
	failFast bool

	down      atomic.Bool
	outage    atomic.Uint64 // number of the current or last outage
	lastAlive atomic.Int64  // unix ns: Redis answered elsewhere (alive)

	mu        sync.Mutex
	since     time.Time // start of the current outage
	onRecover []func(since time.Time)

	wake       chan struct{} // a command failed: probe now
	stop, done chan struct{}
}

// errRedisDown fails a command while Redis is known to be down.
var errRedisDown = errors.New("redis: unreachable (failing fast until the next probe answers)")

// Probe intervals of RedisHealth.
const (
	UpProbe   = 5 * time.Second
	DownProbe = 500 * time.Millisecond
	// probeTimeout bounds each probe.
	probeTimeout = time.Second
)

// NewRedisHealth watches client, logging to log, and starts its probe
// loop, which Close stops. It adds a hook to client.
func NewRedisHealth(client redis.UniversalClient, log *slog.Logger) *RedisHealth {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &RedisHealth{
		client: client, log: log, failFast: !isCluster(client),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	metricRedisUp.Set(1)
	client.AddHook(healthHook{h})
	go h.run()
	return h
}

// Up reports whether Redis was reachable at the last command or probe.
func (h *RedisHealth) Up() bool { return !h.down.Load() }

// Outage returns the number of the current outage while Redis is down
// (it grows with each one), and 0 while it is up.
func (h *RedisHealth) Outage() uint64 {
	if !h.down.Load() {
		return 0
	}
	return h.outage.Load()
}

// Degraded returns why the pod serves degraded while Redis is down, and ""
// while it is up. It implements aoba.DegradedReporter.
func (h *RedisHealth) Degraded() string {
	if h.Up() {
		return ""
	}
	return "Redis is unreachable: messages are stored and acknowledged, but live delivery across pods, presence and WebSocket tickets wait for it to return; rate limits are per pod."
}

// Ping returns an EUNAVAILABLE error when Redis (on a Cluster, any
// master) cannot be reached, and records the answer.
func (h *RedisHealth) Ping(ctx context.Context) error {
	ctx = withProbe(ctx)
	start := time.Now()
	var err error
	if cc, ok := h.client.(*redis.ClusterClient); ok {
		// Every shard must answer: a PING would go to any one node.
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.Ping(ctx).Err()
		})
	} else {
		err = h.client.Ping(ctx).Err()
	}
	h.record(err, start)
	return redisError(err, "message broker")
}

// alive records that Redis answered on another connection (the broker's
// pub/sub resubscribed): a probe that began before and fails afterwards
// is stale and starts no outage; while Redis is believed down, it probes
// at once, so that the pod stops failing fast before its sockets, told to
// resync, come back.
func (h *RedisHealth) alive() {
	h.lastAlive.Store(time.Now().UnixNano())
	if h.down.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		_ = h.Ping(ctx)
		cancel()
	}
}

// OnRecover registers fn to run, on the goroutine that saw it, each time
// Redis is reachable again after an outage that began at since.
func (h *RedisHealth) OnRecover(fn func(since time.Time)) {
	h.mu.Lock()
	h.onRecover = append(h.onRecover, fn)
	h.mu.Unlock()
}

// Close stops the probe loop. It leaves the client open.
func (h *RedisHealth) Close() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	<-h.done
}

func (h *RedisHealth) run() {
	defer close(h.done)
	timer := time.NewTimer(UpProbe)
	defer timer.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-timer.C:
		case <-h.wake:
		}
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		_ = h.Ping(ctx)
		cancel()
		next := UpProbe
		if h.down.Load() {
			next = DownProbe
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// failed wakes the probe after a command failed to reach Redis.
func (h *RedisHealth) failed(err error) {
	if unreachable(err) && !h.down.Load() {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// record notes the outcome of a probe: no answer within the probe's time
// starts an outage, a success ends one.
func (h *RedisHealth) record(err error, start time.Time) {
	if err == nil {
		if h.down.Load() {
			h.recovered()
		}
		return
	}
	var rerr redis.Error
	if errors.As(err, &rerr) || errors.Is(err, context.Canceled) || h.down.Load() {
		return // Redis answered (an error reply), or the caller gave up
	}
	if h.lastAlive.Load() > start.UnixNano() {
		h.failed(err) // stale: probe again
		return
	}
	h.mu.Lock()
	if h.down.Load() {
		h.mu.Unlock()
		return
	}
	n := h.outage.Add(1)
	h.since = time.Now()
	h.down.Store(true)
	h.mu.Unlock()
	metricRedisUp.Set(0)
	metricRedisOutages.Inc()
	h.log.Error("Redis unreachable: serving degraded (authentication from the store, per-pod rate limits, no live delivery across pods, presence or WebSocket tickets) until it returns",
		"outage", n, "err", err)
}

func (h *RedisHealth) recovered() {
	h.mu.Lock()
	if !h.down.Load() {
		h.mu.Unlock()
		return
	}
	h.down.Store(false)
	since := h.since
	fns := append([]func(time.Time){}, h.onRecover...)
	h.mu.Unlock()
	metricRedisUp.Set(1)
	h.log.Info("Redis reachable again: leaving degraded service", "outage", h.outage.Load(),
		"duration", time.Since(since).Milliseconds())
	for _, fn := range fns {
		fn(since)
	}
}

// unreachable reports whether err, from a Redis command, means Redis could
// not be reached (refused or broken connection, timeout, closed pool),
// rather than a reply error of the server or the caller giving up.
func unreachable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		return true
	}
	var rerr redis.Error
	return !errors.As(err, &rerr)
}

type probeKey struct{}

func withProbe(ctx context.Context) context.Context { return context.WithValue(ctx, probeKey{}, true) }

// healthHook reports the outcome of every command of the watched client.
type healthHook struct{ h *RedisHealth }

func (k healthHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (k healthHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if ctx.Value(probeKey{}) != nil {
			return next(ctx, cmd)
		}
		if k.h.failFast && k.h.down.Load() {
			cmd.SetErr(errRedisDown)
			return errRedisDown
		}
		err := next(ctx, cmd)
		k.h.failed(err)
		return err
	}
}

func (k healthHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if ctx.Value(probeKey{}) != nil {
			return next(ctx, cmds)
		}
		if k.h.failFast && k.h.down.Load() {
			for _, c := range cmds {
				c.SetErr(errRedisDown)
			}
			return errRedisDown
		}
		err := next(ctx, cmds)
		k.h.failed(err)
		return err
	}
}
