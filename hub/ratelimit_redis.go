package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
)

var _ aoba.RateLimiter = (*RedisRateLimiter)(nil)

// RedisRateLimiter is the RateLimiter shared by many pods: a sorted set of
// request times per key (prefix + "rl:" + key) checked and updated by one
// Lua script per request. Times come from the Redis server's clock, so
// pods with skewed clocks share one window.
type RedisRateLimiter struct {
	client redis.UniversalClient
	prefix string
	id     string // makes this instance's set members unique among pods
	seq    atomic.Uint64
}

// rateScript drops the entries that left the window, counts the rest, adds
// one (with a unique member) if under the limit, and refreshes the key's
// expiry. It returns {allowed, count, oldest ms, now ms}.
//
//	KEYS: the set    ARGV: window ms, limit, member
var rateScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local win = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  count = count + 1
  allowed = 1
end
if count > 0 then
  redis.call('PEXPIRE', KEYS[1], win)
end
local oldest = now
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first > 0 then oldest = tonumber(first[2]) end
return {allowed, count, oldest, now}
`)

// peekScript counts the entries of the set still in the window, without
// changing it. It returns {count, oldest ms, now ms}, oldest being now when
// the window is empty.
//
//	KEYS: the set    ARGV: window ms
var peekScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local low = '(' .. (now - tonumber(ARGV[1]))
local count = redis.call('ZCOUNT', KEYS[1], low, '+inf')
local oldest = now
local first = redis.call('ZRANGEBYSCORE', KEYS[1], low, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #first > 0 then oldest = tonumber(first[2]) end
return {count, oldest, now}
`)

// NewRedisRateLimiter returns a RedisRateLimiter on client with keys
// starting with prefix (DefaultPrefix when empty). It never fails.
func NewRedisRateLimiter(client redis.UniversalClient, prefix string) *RedisRateLimiter {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &RedisRateLimiter{client: client, prefix: prefixOr(prefix), id: hex.EncodeToString(b[:])}
}

// Allow counts one request for key if fewer than limit were counted in the
// last window, atomically across pods. It returns an EUNAVAILABLE error
// when Redis cannot be reached and an EINTERNAL error for a window that is
// not positive.
func (l *RedisRateLimiter) Allow(ctx context.Context, key string, limit int, window time.Duration) (aoba.RateResult, error) {
	if err := checkRateArgs(key, window); err != nil {
		return aoba.RateResult{}, err
	}
	winMs := max(window.Milliseconds(), 1)
	member := l.id + ":" + strconv.FormatUint(l.seq.Add(1), 36)
	vals, err := rateScript.Run(ctx, l.client, []string{l.prefix + "rl:" + key}, winMs, limit, member).Int64Slice()
	if err != nil {
		return aoba.RateResult{}, redisError(err, "rate limiter")
	}
	if len(vals) != 4 {
		return aoba.RateResult{}, aoba.Errorf(aoba.EINTERNAL, "rate limit script returned %d values", len(vals))
	}
	// Express the server's times relative to this pod's clock.
	now := time.Now()
	oldest := now.Add(time.Duration(vals[2]-vals[3]) * time.Millisecond)
	return rateResult(vals[0] == 1, limit, int(vals[1]), oldest, now, time.Duration(winMs)*time.Millisecond), nil
}

// Peek reports what Allow would answer for key now, without counting a
// request, by the Redis server's clock. It returns an EUNAVAILABLE error
// when Redis cannot be reached and an EINTERNAL error for a window that is
// not positive.
func (l *RedisRateLimiter) Peek(ctx context.Context, key string, limit int, window time.Duration) (aoba.RateResult, error) {
	if err := checkRateArgs(key, window); err != nil {
		return aoba.RateResult{}, err
	}
	winMs := max(window.Milliseconds(), 1)
	vals, err := peekScript.Run(ctx, l.client, []string{l.prefix + "rl:" + key}, winMs).Int64Slice()
	if err != nil {
		return aoba.RateResult{}, redisError(err, "rate limiter")
	}
	if len(vals) != 3 {
		return aoba.RateResult{}, aoba.Errorf(aoba.EINTERNAL, "rate peek script returned %d values", len(vals))
	}
	now := time.Now()
	oldest := now.Add(time.Duration(vals[1]-vals[2]) * time.Millisecond)
	return peekResult(limit, int(vals[0]), oldest, now, time.Duration(winMs)*time.Millisecond), nil
}
