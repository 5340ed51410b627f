package hub

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
)

var (
	_ aoba.SessionCache = (*RedisSessions)(nil)
	_ aoba.TicketStore  = (*RedisSessions)(nil)
)

// RedisSessions is the SessionCache and TicketStore shared by many pods.
// Keys (after the prefix): "sess:<sessionID>" holds "t:<tokenID>", the
// session's current token, or "r" while it is revoked, until the `until`
// it was written with; "revoked:u:<userID>" holds a user's cutoff,
// "<before ms>|<keep session>", for the token lifetime; "ticket:<ticket>"
// holds the ticket's claims as compact JSON until the ticket expires. Check
// reads the session and user keys in one round trip. Everything it holds may
// be lost (a Redis restart): Check then answers SessionUnknown and the
// caller reads the store again.
type RedisSessions struct {
	client  redis.UniversalClient
	prefix  string
	cluster bool
}

// NewRedisSessions returns a RedisSessions on client with keys starting
// with prefix (DefaultPrefix when empty). It never fails.
func NewRedisSessions(client redis.UniversalClient, prefix string) *RedisSessions {
	return &RedisSessions{client: client, prefix: prefixOr(prefix), cluster: isCluster(client)}
}

func (r *RedisSessions) sessionKey(id string) string { return r.prefix + "sess:" + id }
func (r *RedisSessions) userKey(id string) string    { return r.prefix + "revoked:u:" + id }
func (r *RedisSessions) ticketKey(t string) string   { return r.prefix + "ticket:" + t }

// Check returns, in one round trip, SessionRevoked when the session of c,
// or a cutoff of its user, revokes it or another token is cached for the
// session, SessionValid when c's token is the cached one and SessionUnknown
// when nothing is cached. It returns an EUNAVAILABLE error when Redis
// cannot be reached, so that callers can fail closed.
func (r *RedisSessions) Check(ctx context.Context, c aoba.Claims) (aoba.SessionVerdict, error) {
	sess, user, err := r.get2(ctx, r.sessionKey(c.SessionID), r.userKey(c.UserID))
	if err != nil {
		return aoba.SessionUnknown, redisError(err, "session service")
	}
	if s, ok := user.(string); ok {
		if u, ok := decodeCutoff(s); ok && u.revokes(c) {
			return aoba.SessionRevoked, nil
		}
	}
	s, ok := sess.(string)
	return sessionVerdict(s, ok, c), nil
}

// get2 reads two keys in one round trip: one MGET, or on a Cluster, where
// they may live on two shards, two pipelined GETs. A missing key reads as
// nil.
func (r *RedisSessions) get2(ctx context.Context, a, b string) (any, any, error) {
	if !r.cluster {
		vals, err := r.client.MGet(ctx, a, b).Result()
		if err != nil {
			return nil, nil, err
		}
		return vals[0], vals[1], nil
	}
	var ca, cb *redis.StringCmd
	_, err := r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		ca, cb = pipe.Get(ctx, a), pipe.Get(ctx, b)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	val := func(c *redis.StringCmd) any {
		if s, err := c.Result(); err == nil {
			return s
		}
		return nil
	}
	return val(ca), val(cb), nil
}

// Remember caches tokenID as the current token of sessionID until `until`
// (SET NX), unless something is cached for the session. It returns an
// EUNAVAILABLE error when Redis cannot be reached.
func (r *RedisSessions) Remember(ctx context.Context, sessionID, tokenID string, until time.Time) error {
	ttl := ttlUntil(until)
	if ttl <= 0 {
		return nil
	}
	return redisError(r.client.SetNX(ctx, r.sessionKey(sessionID), sessionTokenTag+tokenID, ttl).Err(), "session service")
}

// rotateScript sets the session key to ARGV[1] for ARGV[2] ms, or deletes
// it when ARGV[2] is not positive, unless it holds a revocation.
//
//	KEYS: the session key    ARGV: value, ttl ms
var rotateScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == '` + sessionRevoked + `' then return 0 end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  redis.call('DEL', KEYS[1])
end
return 1
`)

// Rotate caches tokenID as the current token of sessionID until `until`,
// replacing the cached token; an `until` already past drops it. A cached
// revocation stays: a revoked session never opens again, and a rotation
// that lost a race with a logout must not undo it. It returns an
// EUNAVAILABLE error when Redis cannot be reached.
func (r *RedisSessions) Rotate(ctx context.Context, sessionID, tokenID string, until time.Time) error {
	err := rotateScript.Run(ctx, r.client, []string{r.sessionKey(sessionID)},
		sessionTokenTag+tokenID, ttlUntil(until).Milliseconds()).Err()
	return redisError(err, "session service")
}

// RevokeSession caches the revocation of sessionID until `until`,
// replacing what was cached; an `until` already past drops the entry (the
// store knows the session is over). It returns an EUNAVAILABLE error when
// Redis cannot be reached.
func (r *RedisSessions) RevokeSession(ctx context.Context, sessionID string, until time.Time) error {
	ttl := ttlUntil(until)
	if ttl <= 0 {
		return redisError(r.client.Del(ctx, r.sessionKey(sessionID)).Err(), "session service")
	}
	return redisError(r.client.Set(ctx, r.sessionKey(sessionID), sessionRevoked, ttl).Err(), "session service")
}

// RevokeUserSessions revokes the sessions of userID issued at or before
// `before` (to the millisecond), except keepSession, for ttl; it replaces
// the user's previous cutoff. A ttl that is not positive does nothing. It
// returns an EUNAVAILABLE error when Redis cannot be reached.
func (r *RedisSessions) RevokeUserSessions(ctx context.Context, userID string, before time.Time, keepSession string, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	v := userCutoff{Before: before.UnixMilli(), Keep: keepSession}.encode()
	return redisError(r.client.Set(ctx, r.userKey(userID), v, max(ttl, time.Millisecond)).Err(), "session service")
}

// IssueTicket stores ticket with the claims of c (times to the millisecond)
// for ttl. It returns an EUNAVAILABLE error when Redis cannot be reached
// and an EINTERNAL error for a ttl that is not positive.
func (r *RedisSessions) IssueTicket(ctx context.Context, ticket string, c aoba.Claims, ttl time.Duration) error {
	if err := checkTicketTTL(ttl); err != nil {
		return err
	}
	b, err := encodeTicket(c)
	if err != nil {
		return err
	}
	return redisError(r.client.Set(ctx, r.ticketKey(ticket), b, max(ttl, time.Millisecond)).Err(), "ticket service")
}

// RedeemTicket returns the claims of ticket and deletes it, atomically
// across pods (GETDEL). It returns an EUNAUTHORIZED error for an unknown,
// used or expired ticket, an EUNAVAILABLE error when Redis cannot be
// reached and an EINTERNAL error for a stored value it cannot read.
func (r *RedisSessions) RedeemTicket(ctx context.Context, ticket string) (aoba.Claims, error) {
	s, err := r.client.GetDel(ctx, r.ticketKey(ticket)).Result()
	if errors.Is(err, redis.Nil) {
		return aoba.Claims{}, errBadTicket()
	} else if err != nil {
		return aoba.Claims{}, redisError(err, "ticket service")
	}
	return decodeTicket(s)
}
