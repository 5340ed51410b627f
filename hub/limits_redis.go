package hub

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
)

var (
	_ aoba.WatchRegistry  = (*RedisWatches)(nil)
	_ aoba.SocketRegistry = (*RedisSockets)(nil)
)

// LimitsTTL is how long the Redis keys of RedisWatches and RedisSockets
// live after the last change of the user's watches or sockets.
const LimitsTTL = 24 * time.Hour

// RedisWatches is the WatchRegistry shared by many pods. Key (after the
// prefix):
//
//	watch:<userID>  hash watched id → number of the user's sockets watching
//	                it, changed by one Lua script per call
//
// Limitation: a pod that dies without cleanup leaves its sockets'
// references behind. Every change refreshes the key's expiry to LimitsTTL,
// so they are forgotten only once the user changes nothing for LimitsTTL;
// until then they count against the user's limit. Conversely, the
// references of a user whose sockets stay open and change nothing for
// LimitsTTL are forgotten, and the user may then watch up to the limit
// again on top of them.
type RedisWatches struct {
	client redis.UniversalClient
	prefix string
	limit  int
}

// NewRedisWatches returns a RedisWatches on client with keys starting with
// prefix (DefaultPrefix when empty) that lets a user watch at most limit
// distinct users (aoba.MaxWatchedPerUser when limit is not positive). It
// never fails: Redis errors surface from the methods.
func NewRedisWatches(client redis.UniversalClient, prefix string, limit int) *RedisWatches {
	if limit <= 0 {
		limit = aoba.MaxWatchedPerUser
	}
	return &RedisWatches{client: client, prefix: prefixOr(prefix), limit: limit}
}

func (w *RedisWatches) key(userID string) string { return w.prefix + "watch:" + userID }

// watchScript counts the ids the hash lacks; when they would take it past
// the limit it returns -1 and changes nothing, else it adds one to each id,
// refreshes the expiry and returns the number of new ids.
//
//	KEYS: the hash    ARGV: limit, ttl ms, ids (distinct)...
var watchScript = redis.NewScript(`
local added = 0
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then added = added + 1 end
end
if redis.call('HLEN', KEYS[1]) + added > tonumber(ARGV[1]) then return -1 end
for i = 3, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return added
`)

// unwatchScript takes one from each id, deleting those left at zero, and
// refreshes the expiry of what remains.
//
//	KEYS: the hash    ARGV: ttl ms, ids (distinct)...
var unwatchScript = redis.NewScript(`
for i = 2, #ARGV do
  if redis.call('HINCRBY', KEYS[1], ARGV[i], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0
`)

// Watch adds one reference to each of watchedIDs for userID, all or none,
// atomically across pods. It returns the number of ids no socket of the
// user watched before, an EINVALID error naming the limit when the user's
// distinct watched ids would exceed it, and an EUNAVAILABLE error when
// Redis cannot be reached.
func (w *RedisWatches) Watch(ctx context.Context, userID string, watchedIDs []string) (int, error) {
	ids := dedupe(watchedIDs)
	if len(ids) == 0 {
		return 0, nil
	}
	args := make([]any, 0, len(ids)+2)
	args = append(args, w.limit, LimitsTTL.Milliseconds())
	for _, id := range ids {
		args = append(args, id)
	}
	n, err := watchScript.Run(ctx, w.client, []string{w.key(userID)}, args...).Int()
	if err != nil {
		return 0, redisError(err, "watch registry")
	}
	if n < 0 {
		return 0, aoba.ErrTooManyWatched(w.limit)
	}
	return n, nil
}

// Unwatch gives back one reference to each of watchedIDs for userID;
// unknown ids are ignored. It returns an EUNAVAILABLE error when Redis
// cannot be reached.
func (w *RedisWatches) Unwatch(ctx context.Context, userID string, watchedIDs []string) error {
	ids := dedupe(watchedIDs)
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, LimitsTTL.Milliseconds())
	for _, id := range ids {
		args = append(args, id)
	}
	return redisError(unwatchScript.Run(ctx, w.client, []string{w.key(userID)}, args...).Err(), "watch registry")
}

// RedisSockets is the SocketRegistry shared by many pods. Key (after the
// prefix):
//
//	sockets:<userID>  sorted set of the user's connection ids, score = when
//	                  the connection opened (Redis server time, µs)
//
// Limitation: a pod that dies without cleanup leaves its connections in
// the set. Being older than the sockets opened since, they are the first
// evicted when the user goes over the limit (the close order reaches no
// socket), and the key expires LimitsTTL after the user's last socket
// opened; until then a live socket older than them may be closed while
// they are kept, so a user may briefly hold fewer sockets than the limit.
type RedisSockets struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisSockets returns a RedisSockets on client with keys starting with
// prefix (DefaultPrefix when empty). It never fails: Redis errors surface
// from the methods.
func NewRedisSockets(client redis.UniversalClient, prefix string) *RedisSockets {
	return &RedisSockets{client: client, prefix: prefixOr(prefix)}
}

func (s *RedisSockets) key(userID string) string { return s.prefix + "sockets:" + userID }

// openScript adds the connection with the server's time, refreshes the
// expiry and, past the limit, removes and returns the oldest connections.
//
//	KEYS: the set    ARGV: conn id, limit, ttl ms
var openScript = redis.NewScript(`
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local limit = tonumber(ARGV[2])
local n = redis.call('ZCARD', KEYS[1])
if limit <= 0 or n <= limit then return {} end
local old = redis.call('ZRANGE', KEYS[1], 0, n - limit - 1)
redis.call('ZREM', KEYS[1], unpack(old))
return old
`)

// Open records connID as userID's newest socket and forgets and returns the
// oldest ones beyond limit, oldest first, atomically across pods. It
// returns an EUNAVAILABLE error when Redis cannot be reached.
func (s *RedisSockets) Open(ctx context.Context, userID, connID string, limit int) ([]string, error) {
	evicted, err := openScript.Run(ctx, s.client, []string{s.key(userID)}, connID, limit, LimitsTTL.Milliseconds()).StringSlice()
	if err != nil {
		return nil, redisError(err, "socket registry")
	}
	if len(evicted) == 0 {
		return nil, nil
	}
	return evicted, nil
}

// Close forgets connID; an unknown one is ignored. It returns an
// EUNAVAILABLE error when Redis cannot be reached.
func (s *RedisSockets) Close(ctx context.Context, userID, connID string) error {
	return redisError(s.client.ZRem(ctx, s.key(userID), connID).Err(), "socket registry")
}

// Count returns the number of sockets of each of userIDs in the registry,
// read in one pipelined round trip; a pod that died without cleanup may
// leave some counted (see RedisSockets). It returns an EUNAVAILABLE error
// when Redis cannot be reached.
func (s *RedisSockets) Count(ctx context.Context, userIDs []string) (map[string]int, error) {
	out := make(map[string]int, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	cmds := make([]*redis.IntCmd, len(userIDs))
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range userIDs {
			cmds[i] = p.ZCard(ctx, s.key(id))
		}
		return nil
	})
	if err != nil {
		return nil, redisError(err, "socket registry")
	}
	for i, id := range userIDs {
		out[id] = int(cmds[i].Val())
	}
	return out, nil
}
