// Package hub implements the parts of Aoba that pods share: the broker that
// fans envelopes out to the pods holding a user's sockets, the presence
// registry, the sliding-window rate limiter and the session revocation list.
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
//	byte     version (envelopeV1)
//	uvarint  len(ExceptConn), then ExceptConn
//	uvarint  len(close order JSON) (0: no close order), then the JSON
//	rest     Frame
const envelopeV1 = 1

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
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(env.ExceptConn)+len(closeJSON)+len(env.Frame))
	b = append(b, envelopeV1)
	b = binary.AppendUvarint(b, uint64(len(env.ExceptConn)))
	b = append(b, env.ExceptConn...)
	b = binary.AppendUvarint(b, uint64(len(closeJSON)))
	b = append(b, closeJSON...)
	b = append(b, env.Frame...)
	return b, nil
}

var errBadEnvelope = errors.New("malformed envelope")

// decodeEnvelope parses the wire form of an envelope.
func decodeEnvelope(b []byte) (aoba.Envelope, error) {
	var env aoba.Envelope
	if len(b) == 0 || b[0] != envelopeV1 {
		return env, errBadEnvelope
	}
	b = b[1:]
	field := func() ([]byte, error) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, errBadEnvelope
		}
		v := b[k : k+int(n)]
		b = b[k+int(n):]
		return v, nil
	}
	except, err := field()
	if err != nil {
		return env, err
	}
	env.ExceptConn = string(except)
	closeJSON, err := field()
	if err != nil {
		return env, err
	}
	if len(closeJSON) > 0 {
		env.Close = new(aoba.CloseOrder)
		if err := json.Unmarshal(closeJSON, env.Close); err != nil {
			return env, errBadEnvelope
		}
	}
	if len(b) > 0 {
		env.Frame = append([]byte(nil), b...)
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
