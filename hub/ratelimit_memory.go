package hub

import (
	"context"
	"sync"
	"time"

	"github.com/aoba-chat/aoba"
)

var _ aoba.RateLimiter = (*MemoryRateLimiter)(nil)

// MemoryRateLimiter is the in-process RateLimiter of the single-binary
// mode: a sliding log of request times per key, behind one mutex. Keys idle
// for longer than their window are purged now and then.
type MemoryRateLimiter struct {
	mu        sync.Mutex
	keys      map[string]*rateLog
	lastPurge time.Time
}

type rateLog struct {
	times  []time.Time // counted requests, oldest first
	window time.Duration
}

// purgeEvery is how often Allow drops idle keys.
const purgeEvery = time.Minute

// NewMemoryRateLimiter returns an empty MemoryRateLimiter. It never fails.
func NewMemoryRateLimiter() *MemoryRateLimiter {
	return &MemoryRateLimiter{keys: make(map[string]*rateLog), lastPurge: time.Now()}
}

// Allow counts one request for key if fewer than limit were counted in the
// last window. It returns an EINTERNAL error for a window that is not
// positive.
func (l *MemoryRateLimiter) Allow(ctx context.Context, key string, limit int, window time.Duration) (aoba.RateResult, error) {
	if err := checkRateArgs(key, window); err != nil {
		return aoba.RateResult{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.lastPurge) >= purgeEvery {
		l.purge(now)
	}
	lg := l.keys[key]
	if lg == nil {
		lg = &rateLog{}
		l.keys[key] = lg
	}
	lg.window = window
	// Drop what left the window (now-window, now].
	cut := 0
	for cut < len(lg.times) && !lg.times[cut].After(now.Add(-window)) {
		cut++
	}
	lg.times = lg.times[cut:]
	allowed := len(lg.times) < limit
	if allowed {
		lg.times = append(lg.times, now)
	}
	var oldest time.Time
	if len(lg.times) > 0 {
		oldest = lg.times[0]
	}
	return rateResult(allowed, limit, len(lg.times), oldest, now, window), nil
}

// purge drops the keys whose newest request left their window.
func (l *MemoryRateLimiter) purge(now time.Time) {
	l.lastPurge = now
	for k, lg := range l.keys {
		if len(lg.times) == 0 || !lg.times[len(lg.times)-1].After(now.Add(-lg.window)) {
			delete(l.keys, k)
		}
	}
}

// Peek reports what Allow would answer for key now, without counting a
// request. It returns an EINTERNAL error for a window that is not
// positive.
func (l *MemoryRateLimiter) Peek(ctx context.Context, key string, limit int, window time.Duration) (aoba.RateResult, error) {
	if err := checkRateArgs(key, window); err != nil {
		return aoba.RateResult{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	var inWindow []time.Time
	if lg := l.keys[key]; lg != nil {
		cut := 0
		for cut < len(lg.times) && !lg.times[cut].After(now.Add(-window)) {
			cut++
		}
		inWindow = lg.times[cut:]
	}
	return peekResult(limit, len(inWindow), firstOr(inWindow, now), now, window), nil
}

// firstOr returns the first of times, or t when there is none.
func firstOr(times []time.Time, t time.Time) time.Time {
	if len(times) == 0 {
		return t
	}
	return times[0]
}
