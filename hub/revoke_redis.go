package hub

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
)

var _ aoba.SessionRevoker = (*RedisRevoker)(nil)

// RedisRevoker is the SessionRevoker shared by many pods. Keys (after the
// prefix): "revoked:s:<sessionID>" exists while the session is revoked, up
// to the token's expiry; "revoked:u:<userID>" holds "<before ms>|<keep
// session>" for the token lifetime. IsRevoked reads both with one MGET.
type RedisRevoker struct {
	client *redis.Client
	prefix string
}

// NewRedisRevoker returns a RedisRevoker on client with keys starting with
// prefix (DefaultPrefix when empty). It never fails.
func NewRedisRevoker(client *redis.Client, prefix string) *RedisRevoker {
	return &RedisRevoker{client: client, prefix: prefixOr(prefix)}
}

func (r *RedisRevoker) sessionKey(id string) string { return r.prefix + "revoked:s:" + id }
func (r *RedisRevoker) userKey(id string) string    { return r.prefix + "revoked:u:" + id }

// RevokeSession revokes one session until expiresAt; a session already
// expired needs nothing. It returns an EUNAVAILABLE error when Redis cannot
// be reached.
func (r *RedisRevoker) RevokeSession(ctx context.Context, sessionID string, expiresAt time.Time) error {
	ttl := ttlUntil(expiresAt)
	if ttl <= 0 {
		return nil
	}
	return redisError(r.client.Set(ctx, r.sessionKey(sessionID), "1", ttl).Err(), "session service")
}

// RevokeUserSessions revokes the sessions of userID issued at or before
// before, except keepSession, for ttl; it replaces the user's previous
// order. It returns an EUNAVAILABLE error when Redis cannot be reached.
func (r *RedisRevoker) RevokeUserSessions(ctx context.Context, userID string, before time.Time, keepSession string, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	v := userCutoff{Before: before.UnixMilli(), Keep: keepSession}.encode()
	return redisError(r.client.Set(ctx, r.userKey(userID), v, ttl).Err(), "session service")
}

// IsRevoked reports, in one round trip, whether the session of c was
// revoked, alone or with its user's sessions. It returns an EUNAVAILABLE
// error when Redis cannot be reached, so that callers can fail closed.
func (r *RedisRevoker) IsRevoked(ctx context.Context, c aoba.Claims) (bool, error) {
	vals, err := r.client.MGet(ctx, r.sessionKey(c.SessionID), r.userKey(c.UserID)).Result()
	if err != nil {
		return false, redisError(err, "session service")
	}
	if vals[0] != nil {
		return true, nil
	}
	if s, ok := vals[1].(string); ok {
		if u, ok := decodeCutoff(s); ok && u.revokes(c) {
			return true, nil
		}
	}
	return false, nil
}
