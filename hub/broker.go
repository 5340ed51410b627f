// Package hub implements the parts of Aoba that pods share: the broker that
// fans envelopes out to the pods holding a user's sockets, the presence
// registry, the sliding-window rate limiter, the session revocation list and
// the per-user limits (watched users, open sockets: limits_*.go).
//
// Each has an in-process implementation for the single-binary mode
// (broker_memory.go, presence_memory.go, ratelimit_memory.go,
// revoke_memory.go) and a Redis one for many pods (broker_redis.go,
// presence_redis.go, ratelimit_redis.go, revoke_redis.go). The hubtest
// package holds one contract suite per interface, run against both.
//
// Every Redis key and channel starts with a configurable prefix (DefaultPrefix
// when empty), so that several deployments, or several tests, can share one
// Redis. The Redis implementations never close the redis.UniversalClient
// they are given: the caller owns it and closes it after them.
//
// The client may be one Redis (*redis.Client), a Sentinel-managed master
// (*redis.Client from redis.NewFailoverClient) or a Redis Cluster
// (*redis.ClusterClient). On a Cluster every Lua script and multi-key
// command keeps its keys in one slot with hash tags, and the broker uses
// sharded pub/sub (SPUBLISH, SSUBSCRIBE) so that fan-out capacity grows
// with the shards. A key prefix must therefore not contain '{' or '}'
// (CheckPrefix).
package hub

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
)

// DefaultPrefix is the prefix of every Redis key and channel when the
// constructor is given an empty one.
const DefaultPrefix = "aoba:"

// CheckPrefix returns an error for a key prefix that holds '{' or '}': on a
// Cluster, the hub's keys place their own hash tags after the prefix, and a
// brace in it would move every key to one slot or split what must share
// one.
func CheckPrefix(prefix string) error {
	if strings.ContainsAny(prefix, "{}") {
		return fmt.Errorf("must not contain '{' or '}' (Redis Cluster hash tags), got %q", prefix)
	}
	return nil
}

// isCluster reports whether client talks to a Redis Cluster.
func isCluster(client redis.UniversalClient) bool {
	_, ok := client.(*redis.ClusterClient)
	return ok
}

func prefixOr(prefix string) string {
	if prefix == "" {
		return DefaultPrefix
	}
	return prefix
}

// Implementation labels of the metrics.
const (
	implMemory = "memory"
	implRedis  = "redis"
)

var (
	metricPublications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "aoba",
		Subsystem: "hub",
		Name:      "publications_total",
		Help:      "Publications sent to the broker, by implementation.",
	}, []string{"impl"})
	metricPublishFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "aoba",
		Subsystem: "hub",
		Name:      "publish_failures_total",
		Help:      "Publish calls that failed, by implementation.",
	}, []string{"impl"})
	metricDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "aoba",
		Subsystem: "hub",
		Name:      "deliveries_total",
		Help:      "Envelopes received from the broker and handed to this pod, by implementation.",
	}, []string{"impl"})
	metricDecodeFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "aoba",
		Subsystem: "hub",
		Name:      "decode_failures_total",
		Help:      "Envelopes received from Redis that could not be decoded and were dropped.",
	})
	metricResyncs = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "aoba",
		Subsystem: "hub",
		Name:      "resubscriptions_total",
		Help:      "User topics subscribed again after the Redis pub/sub connection was lost; their sockets are closed with 4004 to catch up.",
	})
)

// Collectors returns the Prometheus collectors of the hub package. They are
// not registered anywhere: the server registers them on its registry. It
// never fails.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{metricPublications, metricPublishFailures, metricDeliveries, metricDecodeFailures, metricResyncs,
		metricRedisUp, metricRedisOutages, metricRateFallbacks, metricRedisLatency, metricRedisErrors}
}

// Envelope wire format on Redis, chosen so that the frame, already JSON,
// is carried as is instead of being re-encoded (and base64'd) inside JSON:
//
//	byte     version (envelopeV2, or envelopeV3 when OnlyUser or ExceptUsers is set; envelopeV1 is still read)
//	uvarint  len(ExceptConn), then ExceptConn
//	uvarint  len(ExceptUser), then ExceptUser   (v2 and v3)
//	uvarint  len(Join), then Join               (v2 and v3)
//	uvarint  len(Leave), then Leave             (v2 and v3)
//	uvarint  len(OnlyUser), then OnlyUser       (v3 only)
//	uvarint  len(ExceptUsers), then each one as uvarint len, bytes (v3 only)
//	uvarint  len(close order JSON) (0: no close order), then the JSON
//	rest     Frame
//
// A pod of the previous version drops an envelope of a version it does not
// know as malformed (counted by aoba_hub_decode_failures_total) during a
// rolling upgrade. Only the presence events that a block narrows are v3:
// an older pod drops them rather than showing them to a blocked user.
const (
	envelopeV1 = 1
	envelopeV2 = 2
	envelopeV3 = 3
)

// encodeEnvelope returns the wire form of env. It fails only when the close
// order cannot be encoded, which cannot happen for its field types.
func encodeEnvelope(env aoba.Envelope) ([]byte, error) {
	var closeJSON []byte
	if env.Close != nil {
		var err error
		if closeJSON, err = json.Marshal(env.Close); err != nil {
			return nil, aoba.Errorf(aoba.EINTERNAL, "encode close order: %v", err)
		}
	}
	v3 := env.OnlyUser != "" || len(env.ExceptUsers) > 0
	n := 1 + 7*binary.MaxVarintLen64 + len(env.ExceptConn) + len(env.ExceptUser) +
		len(env.Join) + len(env.Leave) + len(env.OnlyUser) + len(closeJSON) + len(env.Frame)
	for _, u := range env.ExceptUsers {
		n += binary.MaxVarintLen64 + len(u)
	}
	b := make([]byte, 0, n)
	b = append(b, envelopeV2)
	if v3 {
		b[0] = envelopeV3
	}
	for _, f := range [...]string{env.ExceptConn, env.ExceptUser, env.Join, env.Leave} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	if v3 {
		b = binary.AppendUvarint(b, uint64(len(env.OnlyUser)))
		b = append(b, env.OnlyUser...)
		b = binary.AppendUvarint(b, uint64(len(env.ExceptUsers)))
		for _, u := range env.ExceptUsers {
			b = binary.AppendUvarint(b, uint64(len(u)))
			b = append(b, u...)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(closeJSON)))
	b = append(b, closeJSON...)
	b = append(b, env.Frame...)
	return b, nil
}

var errBadEnvelope = errors.New("malformed envelope")

// decodeEnvelope parses the wire form of an envelope, copying the frame
// once out of s.
func decodeEnvelope(s string) (aoba.Envelope, error) {
	var env aoba.Envelope
	if len(s) == 0 || (s[0] != envelopeV1 && s[0] != envelopeV2 && s[0] != envelopeV3) {
		return env, errBadEnvelope
	}
	v2, v3 := s[0] >= envelopeV2, s[0] == envelopeV3
	s = s[1:]
	uvarint := func() (uint64, error) {
		var n uint64
		for i, shift := 0, uint(0); ; i, shift = i+1, shift+7 {
			if i >= len(s) || i == binary.MaxVarintLen64 {
				return 0, errBadEnvelope
			}
			c := s[i]
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, errBadEnvelope // overflows 64 bits
			}
			n |= uint64(c&0x7f) << shift
			if c < 0x80 {
				s = s[i+1:]
				return n, nil
			}
		}
	}
	field := func() (string, error) {
		n, err := uvarint()
		if err != nil {
			return "", err
		}
		if n > uint64(len(s)) {
			return "", errBadEnvelope
		}
		v := s[:n]
		s = s[n:]
		return v, nil
	}
	var err error
	if env.ExceptConn, err = field(); err != nil {
		return env, err
	}
	if v2 {
		for _, f := range [...]*string{&env.ExceptUser, &env.Join, &env.Leave} {
			if *f, err = field(); err != nil {
				return env, err
			}
		}
	}
	if v3 {
		if env.OnlyUser, err = field(); err != nil {
			return env, err
		}
		n, err := uvarint()
		if err != nil || n > uint64(len(s)) { // each one takes a byte at least
			return env, errBadEnvelope
		}
		for ; n > 0; n-- {
			u, err := field()
			if err != nil {
				return env, err
			}
			env.ExceptUsers = append(env.ExceptUsers, u)
		}
	}
	closeJSON, err := field()
	if err != nil {
		return env, err
	}
	if len(closeJSON) > 0 {
		env.Close = new(aoba.CloseOrder)
		if err := json.Unmarshal([]byte(closeJSON), env.Close); err != nil {
			return env, errBadEnvelope
		}
	}
	if len(s) > 0 {
		env.Frame = []byte(s)
	}
	return env, nil
}

// errClosed is returned by every call on a closed hub component.
func errClosed(what string) *aoba.Error {
	return aoba.Errorf(aoba.EUNAVAILABLE, "The %s is shut down.", what)
}

// redisError translates an error of a Redis call into an *aoba.Error: a
// reply error of the server (a bug in a script, a wrong type) is EINTERNAL
// with the cause kept; anything else (refused or broken connection,
// timeout, closed client) means Redis cannot be reached: EUNAVAILABLE with
// a message safe for clients. Context cancellation is returned as is.
func redisError(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var rerr redis.Error
	var nerr net.Error
	if errors.As(err, &rerr) && !errors.As(err, &nerr) && !errors.Is(err, redis.ErrClosed) {
		return aoba.Errorf(aoba.EINTERNAL, "redis %s: %v", what, err)
	}
	return aoba.Errorf(aoba.EUNAVAILABLE, "The %s is temporarily unavailable.", what)
}
