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
// Redis. The Redis implementations never close the *redis.Client they are
// given: the caller owns it and closes it after them.
package hub

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
)

// DefaultPrefix is the prefix of every Redis key and channel when the
// constructor is given an empty one.
const DefaultPrefix = "aoba:"

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
	return []prometheus.Collector{metricPublications, metricPublishFailures, metricDeliveries, metricDecodeFailures, metricResyncs}
}

// Envelope wire format on Redis, chosen so that the frame, already JSON,
// is carried as is instead of being re-encoded (and base64'd) inside JSON:
//
//	byte     version (envelopeV2; envelopeV1 is still read)
//	uvarint  len(ExceptConn), then ExceptConn
//	uvarint  len(ExceptUser), then ExceptUser   (v2 only)
//	uvarint  len(Join), then Join               (v2 only)
//	uvarint  len(Leave), then Leave             (v2 only)
//	uvarint  len(close order JSON) (0: no close order), then the JSON
//	rest     Frame
//
// A pod of the previous version drops a v2 envelope as malformed (counted
// by aoba_hub_decode_failures_total) during a rolling upgrade.
const (
	envelopeV1 = 1
	envelopeV2 = 2
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
	b := make([]byte, 0, 1+5*binary.MaxVarintLen64+len(env.ExceptConn)+len(env.ExceptUser)+
		len(env.Join)+len(env.Leave)+len(closeJSON)+len(env.Frame))
	b = append(b, envelopeV2)
	for _, f := range [...]string{env.ExceptConn, env.ExceptUser, env.Join, env.Leave} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
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
	if len(s) == 0 || (s[0] != envelopeV1 && s[0] != envelopeV2) {
		return env, errBadEnvelope
	}
	v2 := s[0] == envelopeV2
	s = s[1:]
	field := func() (string, error) {
		var n uint64
		for i, shift := 0, uint(0); ; i, shift = i+1, shift+7 {
			if i >= len(s) || i == binary.MaxVarintLen64 {
				return "", errBadEnvelope
			}
			c := s[i]
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return "", errBadEnvelope // overflows 64 bits
			}
			n |= uint64(c&0x7f) << shift
			if c < 0x80 {
				s = s[i+1:]
				break
			}
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
