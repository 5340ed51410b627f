package hub

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aoba-chat/aoba"
)

var _ aoba.RateLimiter = (*FallbackLimiter)(nil)

var metricRateFallbacks = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: "aoba",
	Subsystem: "hub",
	Name:      "rate_limit_fallbacks_total",
	Help:      "Rate limit checks answered by this pod's own limiter because Redis was unreachable.",
})

// FallbackLimiter is the RateLimiter of the scaled-out mode: the shared
// Redis one while Redis answers, and a per-pod in-process one while it
// does not (each pod then allows the full limit on its own: with N pods a
// client may get up to N times the limit during an outage). Each check it
// answers itself is counted in aoba_hub_rate_limit_fallbacks_total; the
// first of each outage is logged.
type FallbackLimiter struct {
	redis    aoba.RateLimiter
	local    *MemoryRateLimiter
	health   *RedisHealth
	log      *slog.Logger
	reported atomic.Uint64 // the last outage logged
}

// NewFallbackLimiter returns a FallbackLimiter over primary, watched by
// health.
func NewFallbackLimiter(primary aoba.RateLimiter, health *RedisHealth, log *slog.Logger) *FallbackLimiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FallbackLimiter{redis: primary, local: NewMemoryRateLimiter(), health: health, log: log}
}

// Allow asks Redis, or this pod's limiter while Redis is down or when
// Redis fails to answer. It returns an error only for a bad window.
func (l *FallbackLimiter) Allow(ctx context.Context, key string, limit int, window time.Duration) (aoba.RateResult, error) {
	if l.health.Up() {
		res, err := l.redis.Allow(ctx, key, limit, window)
		if aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
			return res, err
		}
	}
	l.fellBack()
	return l.local.Allow(ctx, key, limit, window)
}

// Peek is Allow without counting a request.
func (l *FallbackLimiter) Peek(ctx context.Context, key string, limit int, window time.Duration) (aoba.RateResult, error) {
	if l.health.Up() {
		res, err := l.redis.Peek(ctx, key, limit, window)
		if aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
			return res, err
		}
	}
	l.fellBack()
	return l.local.Peek(ctx, key, limit, window)
}

// fellBack counts a check answered locally and logs the first of each
// outage.
func (l *FallbackLimiter) fellBack() {
	metricRateFallbacks.Inc()
	n := l.health.Outage()
	if old := l.reported.Load(); n != old && l.reported.CompareAndSwap(old, n) {
		l.log.Warn("rate limits fall back to a per-pod limiter while Redis is unreachable", "outage", n)
	}
}
