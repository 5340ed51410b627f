package hub

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
)

var _ aoba.PresenceRegistry = (*RedisPresence)(nil)

// RedisPresence is the PresenceRegistry of many pods. Keys (after the
// prefix):
//
//	presence:c:<userID>  sorted set of the user's connections, member
//	                     "<podID>/<connID>", score = expiry (unix ms)
//	presence:users       sorted set of online users, score = the highest
//	                     expiry of their connections
//	presence:seen        hash userID -> lastSeen (unix ms), persistent
//
// On a Redis Cluster the users are spread over PresenceBuckets buckets, and
// each key carries its bucket's hash tag after "presence:" (for instance
// "presence:{p7}:users" and "presence:{p7}:c:<userID>"), so that every
// script finds its keys in one slot while the buckets spread over the
// shards.
//
// A pod refreshes the expiry of its open connections every
// HeartbeatInterval to now+TTL; Disconnect sets it to now+Grace. Every pod
// sweeps every SweepInterval: one script per user whose highest expiry
// passed removes the expired connections and, when none remain, the user,
// stores lastSeen and reports the change, so exactly one pod emits each
// offline event. Connect emits the online event on the pod where the
// user's first connection arrives. Expiries use the pods' clocks, which
// must agree to well within Grace.
type RedisPresence struct {
	client  redis.UniversalClient
	prefix  string
	podID   string
	buckets int // 1 (no hash tags) unless on a Cluster
	opts    PresenceOptions
	emit    *emitter

	mu     sync.Mutex
	conns  map[string]string // connID -> userID, this pod's open connections
	closed bool

	stop chan struct{}
	done chan struct{}
}

// NewRedisPresence returns a RedisPresence for the pod podID (unique per
// process) on client with keys starting with prefix (DefaultPrefix when
// empty), and starts the heartbeat and sweep loops that Close stops; the
// changes this pod detects go to the function RegisterChangeHandler sets,
// and are dropped until then. It never fails: Redis errors surface from
// the methods.
func NewRedisPresence(client redis.UniversalClient, prefix, podID string, opts PresenceOptions) *RedisPresence {
	p := &RedisPresence{
		client:  client,
		prefix:  prefixOr(prefix),
		podID:   podID,
		buckets: 1,
		opts:    opts.withDefaults(),
		emit:    newEmitter(),
		conns:   make(map[string]string),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if isCluster(client) {
		p.buckets = PresenceBuckets
	}
	go p.run()
	return p
}

// RegisterChangeHandler sets the function called, on this pod, for each
// change this pod detects; changes detected before it are dropped. It
// panics when called twice or with nil.
func (p *RedisPresence) RegisterChangeHandler(fn aoba.PresenceChangeFunc) { p.emit.register(fn) }

// PresenceBuckets is the number of hash-tagged buckets among which the
// presence keys of a Cluster are spread.
const PresenceBuckets = 16

// bucketOf returns the bucket of userID.
func (p *RedisPresence) bucketOf(userID string) int {
	if p.buckets == 1 {
		return 0
	}
	return bucket(userID) % p.buckets
}

// keys returns the prefix of the keys of bucket b.
func (p *RedisPresence) keys(b int) string {
	if p.buckets == 1 {
		return p.prefix + "presence:"
	}
	return p.prefix + "presence:{p" + strconv.Itoa(b) + "}:"
}

func (p *RedisPresence) connsKey(userID string) string {
	return p.keys(p.bucketOf(userID)) + "c:" + userID
}

// usersKey and seenKey return the keys of the bucket of userID.
func (p *RedisPresence) usersKey(userID string) string { return p.keys(p.bucketOf(userID)) + "users" }
func (p *RedisPresence) seenKey(userID string) string  { return p.keys(p.bucketOf(userID)) + "seen" }
func (p *RedisPresence) member(connID string) string   { return p.podID + "/" + connID }

func unixMs(t time.Time) int64 { return t.UnixMilli() }

// connectScript adds a connection and the user; it returns 1 when the user
// was not online before. Expired connections of the user are dropped on
// the way (without an offline event: the user never looked offline).
//
//	KEYS: conns, users    ARGV: member, now, expiry, userID
var connectScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local was = redis.call('ZSCORE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[2], 'GT', ARGV[3], ARGV[4])
if was then return 0 end
return 1
`)

// disconnectScript starts the grace period of a connection: its expiry
// becomes now+grace, the user's score the highest remaining expiry, and
// the user's last close time now. It returns 0 for an unknown connection.
//
//	KEYS: conns, users, seen    ARGV: member, now, expiry, userID
var disconnectScript = redis.NewScript(`
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('ZADD', KEYS[2], top[2], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[2])
return 1
`)

// sweepScript removes the user's expired connections. When some remain it
// moves the user's score to their highest expiry and returns -1; when none
// do, it removes the user, stores and returns lastSeen: the time the last
// connection closed if it was closed (its expiry is close time + grace),
// else now, when it was found dead. It returns -1 for a user already
// removed by another pod.
//
//	KEYS: conns, users, seen    ARGV: userID, now, grace (ms)
var sweepScript = redis.NewScript(`
local now = tonumber(ARGV[2])
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return -1 end
local removed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #top > 0 then
  redis.call('ZADD', KEYS[2], top[2], ARGV[1])
  return -1
end
redis.call('ZREM', KEYS[2], ARGV[1])
local maxRemoved = 0
for i = 2, #removed, 2 do
  local s = tonumber(removed[i])
  if s > maxRemoved then maxRemoved = s end
end
local seen = now
local closed = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if closed > 0 and closed >= maxRemoved - tonumber(ARGV[3]) then seen = closed end
redis.call('HSET', KEYS[3], ARGV[1], seen)
return seen
`)

// Connect records an open connection of this pod and keeps it alive with
// heartbeats until Disconnect; the user's first connection on any pod makes
// them go online. It returns an EUNAVAILABLE error when Redis cannot be
// reached or the registry is closed.
func (p *RedisPresence) Connect(ctx context.Context, userID, connID string) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errClosed("presence service")
	}
	p.conns[connID] = userID
	p.mu.Unlock()
	if err := p.connect(ctx, userID, connID); err != nil {
		p.mu.Lock()
		delete(p.conns, connID)
		p.mu.Unlock()
		return err
	}
	return nil
}

func (p *RedisPresence) connect(ctx context.Context, userID, connID string) error {
	now := time.Now()
	wentOnline, err := connectScript.Run(ctx, p.client,
		[]string{p.connsKey(userID), p.usersKey(userID)},
		p.member(connID), unixMs(now), unixMs(now.Add(p.opts.TTL)), userID,
	).Int()
	if err != nil {
		return redisError(err, "presence service")
	}
	if wentOnline == 1 {
		p.emit.emit(online(userID))
	}
	return nil
}

// Disconnect records that a connection of this pod closed: it stops its
// heartbeats and lets it count for the grace period. Unknown connections
// are ignored. It returns an EUNAVAILABLE error when Redis cannot be
// reached (the connection then expires after TTL) or the registry is
// closed.
func (p *RedisPresence) Disconnect(ctx context.Context, userID, connID string) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errClosed("presence service")
	}
	delete(p.conns, connID)
	p.mu.Unlock()
	now := time.Now()
	err := disconnectScript.Run(ctx, p.client,
		[]string{p.connsKey(userID), p.usersKey(userID), p.seenKey(userID)},
		p.member(connID), unixMs(now), unixMs(now.Add(p.opts.Grace)), userID,
	).Err()
	return redisError(err, "presence service")
}

// FindPresence returns the presence of each id in one round trip. A user
// is online from their first connection until their last one's grace
// period ends (or, for a dead pod, until it is swept); LastSeen is the
// last time one of their connections closed, nil if never. It returns an
// EUNAVAILABLE error when Redis cannot be reached or the registry is
// closed.
func (p *RedisPresence) FindPresence(ctx context.Context, userIDs []string) (map[string]aoba.Presence, error) {
	if p.isClosed() {
		return nil, errClosed("presence service")
	}
	m := make(map[string]aoba.Presence, len(userIDs))
	if len(userIDs) == 0 {
		return m, nil
	}
	// One ZMSCORE and one HMGET per bucket, in one round trip.
	type bucketCmds struct {
		ids    []string
		scores *redis.FloatSliceCmd
		seen   *redis.SliceCmd
	}
	groups := make(map[int]*bucketCmds)
	for _, id := range userIDs {
		b := p.bucketOf(id)
		if groups[b] == nil {
			groups[b] = &bucketCmds{}
		}
		groups[b].ids = append(groups[b].ids, id)
	}
	_, err := p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, g := range groups {
			g.scores = pipe.ZMScore(ctx, p.usersKey(g.ids[0]), g.ids...)
			g.seen = pipe.HMGet(ctx, p.seenKey(g.ids[0]), g.ids...)
		}
		return nil
	})
	if err != nil {
		return nil, redisError(err, "presence service")
	}
	for _, g := range groups {
		// ZMSCORE answers nil for absent members, which go-redis reads as 0.
		onlineScores := g.scores.Val()
		seenVals := g.seen.Val()
		for i, id := range g.ids {
			pr := aoba.Presence{UserID: id, Status: aoba.StatusOffline}
			if i < len(onlineScores) && onlineScores[i] != 0 {
				pr.Status = aoba.StatusOnline
			}
			if i < len(seenVals) {
				if s, ok := seenVals[i].(string); ok {
					if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
						t := time.UnixMilli(ms).UTC()
						pr.LastSeen = &t
					}
				}
			}
			m[id] = pr
		}
	}
	return m, nil
}

// Close stops the heartbeats and sweeps and delivers the changes already
// queued. It does not remove this pod's connections: the caller disconnects
// its sockets first when shutting down gracefully, and those left behind
// expire after TTL as if the pod had died. It leaves the client open.
// Closing twice returns an EUNAVAILABLE error.
func (p *RedisPresence) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errClosed("presence service")
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	p.emit.close()
	return nil
}

func (p *RedisPresence) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// loopTimeout bounds each heartbeat and sweep round.
const loopTimeout = 10 * time.Second

func (p *RedisPresence) run() {
	defer close(p.done)
	heartbeat := time.NewTicker(p.opts.HeartbeatInterval)
	defer heartbeat.Stop()
	sweep := time.NewTicker(p.opts.SweepInterval)
	defer sweep.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-p.stop
		cancel()
	}()
	for {
		select {
		case <-p.stop:
			return
		case <-heartbeat.C:
			rctx, rcancel := context.WithTimeout(ctx, loopTimeout)
			_ = p.heartbeat(rctx)
			rcancel()
		case <-sweep.C:
			rctx, rcancel := context.WithTimeout(ctx, loopTimeout)
			_ = p.sweep(rctx)
			rcancel()
		}
	}
}

// heartbeat moves the expiry of this pod's open connections to now+TTL in
// one round trip. A connection missing from Redis (swept while this pod was
// unreachable, or lost in a Redis restart) is connected again.
func (p *RedisPresence) heartbeat(ctx context.Context) error {
	p.mu.Lock()
	conns := make(map[string]string, len(p.conns))
	for c, u := range p.conns {
		conns[c] = u
	}
	p.mu.Unlock()
	if len(conns) == 0 {
		return nil
	}
	now := time.Now()
	exp := float64(unixMs(now.Add(p.opts.TTL)))
	type pending struct {
		userID, connID string
		cmd            *redis.IntCmd
	}
	list := make([]pending, 0, len(conns))
	_, err := p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for connID, userID := range conns {
			cmd := pipe.ZAddArgs(ctx, p.connsKey(userID), redis.ZAddArgs{
				XX: true, Ch: true, Members: []redis.Z{{Score: exp, Member: p.member(connID)}},
			})
			pipe.ZAddArgs(ctx, p.usersKey(userID), redis.ZAddArgs{
				XX: true, GT: true, Members: []redis.Z{{Score: exp, Member: userID}},
			})
			list = append(list, pending{userID, connID, cmd})
		}
		return nil
	})
	if err != nil {
		return redisError(err, "presence service")
	}
	var firstErr error
	for _, c := range list {
		if c.cmd.Val() != 0 {
			continue
		}
		p.mu.Lock()
		_, open := p.conns[c.connID]
		p.mu.Unlock()
		if !open {
			continue // disconnected meanwhile
		}
		if err := p.connect(ctx, c.userID, c.connID); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// sweepBatch is the most users one sweep round looks at per bucket.
const sweepBatch = 1000

// sweep runs the sweep script, pipelined, for every user whose highest
// expiry passed, and emits the offline events it reports.
func (p *RedisPresence) sweep(ctx context.Context) error {
	now := time.Now()
	ranges := make([]*redis.StringSliceCmd, p.buckets)
	_, err := p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for b := range ranges {
			ranges[b] = pipe.ZRangeArgs(ctx, redis.ZRangeArgs{
				Key: p.keys(b) + "users", Start: "-inf", Stop: strconv.FormatInt(unixMs(now), 10),
				ByScore: true, Count: sweepBatch,
			})
		}
		return nil
	})
	if err != nil {
		return redisError(err, "presence service")
	}
	var due []string
	for _, r := range ranges {
		due = append(due, r.Val()...)
	}
	if len(due) == 0 {
		return nil
	}
	cmds, err := runScriptPipelined(ctx, p.client, sweepScript, len(due), func(i int) ([]string, []any) {
		return []string{p.connsKey(due[i]), p.usersKey(due[i]), p.seenKey(due[i])},
			[]any{due[i], unixMs(now), p.opts.Grace.Milliseconds()}
	})
	// Even when some calls failed, those that ran must report their users.
	for i, cmd := range cmds {
		if seen, err := cmd.Int64(); err == nil && seen >= 0 {
			p.emit.emit(offline(due[i], time.UnixMilli(seen)))
		}
	}
	return err
}

// runScriptPipelined runs script n times in one round trip, with the keys
// and arguments that args returns for each call. When Redis lost its
// scripts (a restart), it loads the script and tries once more. On other
// failures it returns the commands too, since some may have run.
func runScriptPipelined(ctx context.Context, client redis.UniversalClient, script *redis.Script, n int, args func(i int) ([]string, []any)) ([]*redis.Cmd, error) {
	for attempt := 0; ; attempt++ {
		cmds := make([]*redis.Cmd, n)
		_, err := client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i := 0; i < n; i++ {
				keys, argv := args(i)
				cmds[i] = script.EvalSha(ctx, pipe, keys, argv...)
			}
			return nil
		})
		if err != nil && isNoScript(err) && attempt == 0 {
			if err := script.Load(ctx, client).Err(); err != nil {
				return nil, redisError(err, "presence service")
			}
			continue
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			return cmds, redisError(err, "presence service")
		}
		return cmds, nil
	}
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}
