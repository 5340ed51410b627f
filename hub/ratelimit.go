package hub

import (
	"time"

	"github.com/aoba-chat/aoba"
)

// checkRateArgs returns an EINTERNAL error for a window that is not
// positive: a misconfiguration, not a client's fault.
func checkRateArgs(key string, window time.Duration) error {
	if window <= 0 {
		return aoba.Errorf(aoba.EINTERNAL, "rate limit %q: window %v is not positive", key, window)
	}
	return nil
}

// rateResult builds a RateResult from a check at now: count requests are
// counted in the window, the oldest at oldest.
func rateResult(allowed bool, limit, count int, oldest, now time.Time, window time.Duration) aoba.RateResult {
	r := aoba.RateResult{Allowed: allowed, Limit: limit, Remaining: max(limit-count, 0)}
	if count == 0 {
		oldest = now
	}
	r.Reset = oldest.Add(window)
	if !allowed {
		r.RetryAfter = max(r.Reset.Sub(now), time.Millisecond)
	}
	return r
}

// peekResult builds the RateResult that Allow would return at now when
// count requests are counted in the window, the oldest at oldest (now when
// there is none): as if the request were added when under the limit.
func peekResult(limit, count int, oldest, now time.Time, window time.Duration) aoba.RateResult {
	allowed := count < limit
	if allowed {
		count++
	}
	return rateResult(allowed, limit, count, oldest, now, window)
}
