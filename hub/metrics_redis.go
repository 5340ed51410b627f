package hub

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
)

var (
	metricRedisLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "aoba",
		Subsystem: "redis",
		Name:      "command_duration_seconds",
		Help:      "Latency of Redis commands, by command (lower case; a pipeline or transaction is one, named \"pipeline:\" and its distinct commands).",
		Buckets:   []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"command"})
	metricRedisErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "aoba",
		Subsystem: "redis",
		Name:      "command_errors_total",
		Help:      "Redis commands that failed, by command and code: unavailable (Redis could not be reached in time) or internal (an error reply).",
	}, []string{"command", "code"})
)

// InstrumentRedis adds to client (a *redis.Client, a cluster or failover
// client) the hook that times its commands and pipelines in
// aoba_redis_command_duration_seconds and counts their failures in
// aoba_redis_command_errors_total (registered by Collectors). A nil reply
// (redis.Nil), a script not cached yet (NOSCRIPT, which go-redis follows
// with EVAL) and a canceled caller are not failures. Add it once per
// client, before use.
func InstrumentRedis(client interface{ AddHook(redis.Hook) }) {
	client.AddHook(metricsHook{})
}

// metricsHook is the go-redis hook of InstrumentRedis.
type metricsHook struct{}

func (metricsHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (metricsHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		observeRedis(cmd.Name(), start, err)
		return err
	}
}

func (metricsHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		observeRedis(pipelineName(cmds), start, err)
		return err
	}
}

// pipelineName names a pipeline by its distinct commands in order of first
// appearance: "pipeline:publish", "pipeline:multi,incr,pexpire,exec". The
// code sends a few shapes, so the label stays bounded.
func pipelineName(cmds []redis.Cmder) string {
	var b strings.Builder
	b.WriteString("pipeline:")
	var seen []string
next:
	for _, c := range cmds {
		name := c.Name()
		for _, s := range seen {
			if s == name {
				continue next
			}
		}
		if len(seen) > 0 {
			b.WriteByte(',')
		}
		seen = append(seen, name)
		b.WriteString(name)
	}
	return b.String()
}

// observeRedis records command begun at start and its failure.
func observeRedis(command string, start time.Time, err error) {
	metricRedisLatency.WithLabelValues(command).Observe(time.Since(start).Seconds())
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return
	}
	var rerr redis.Error
	var nerr net.Error
	code := aoba.EUNAVAILABLE
	if errors.As(err, &rerr) && !errors.As(err, &nerr) && !errors.Is(err, redis.ErrClosed) {
		if strings.HasPrefix(rerr.Error(), "NOSCRIPT") {
			return
		}
		code = aoba.EINTERNAL
	}
	metricRedisErrors.WithLabelValues(command, code).Inc()
}
