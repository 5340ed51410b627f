package aoba

import (
	"context"
	"math"
	"time"
)

// RateWindow is the length of the sliding window of every rate limit.
const RateWindow = time.Minute

// Rate-limit classes of the contract. A request counts against one class's
// budget, per user (per client IP before login).
const (
	ClassStandard = "standard"
	ClassBatch    = "batch"
	ClassSearch   = "search"
	// ClassTyping is the budget of typing frames: AOBA_RATE_STANDARD per
	// minute per user, apart from the standard budget that messages spend.
	ClassTyping = "typing"
)

// Rates are the per-minute budgets of the rate-limit classes.
type Rates struct {
	Standard int
	Batch    int
	Search   int
}

// DefaultRates are the contract's budgets: 100, 10 and 30 per minute.
var DefaultRates = Rates{Standard: 100, Batch: 10, Search: 30}

// WithDefaults returns r with every budget that is not positive set to its
// default.
func (r Rates) WithDefaults() Rates {
	if r.Standard <= 0 {
		r.Standard = DefaultRates.Standard
	}
	if r.Batch <= 0 {
		r.Batch = DefaultRates.Batch
	}
	if r.Search <= 0 {
		r.Search = DefaultRates.Search
	}
	return r
}

// UserRateKey is the key of a user's budget in class: REST requests and
// WebSocket frames of the same class count against the same key.
func UserRateKey(class, userID string) string { return class + ":" + userID }

// IPRateKey is the key of a client IP's budget in class, for requests made
// before login.
func IPRateKey(class, ip string) string { return class + ":ip:" + ip }

// Limit counts one request against key's budget of limit per RateWindow.
// It returns the limiter's result and, when the request is refused, an
// ERATELIMIT *RetryError saying when to retry (at least one second); it
// returns an EUNAVAILABLE error when the limiter cannot be reached.
func Limit(ctx context.Context, l RateLimiter, key string, limit int) (RateResult, error) {
	res, err := l.Allow(ctx, key, limit, RateWindow)
	if err != nil {
		return res, Errorf(EUNAVAILABLE, "The rate limiter is unavailable.")
	}
	if !res.Allowed {
		retry := time.Duration(max(1, int(math.Ceil(res.RetryAfter.Seconds())))) * time.Second
		return res, &RetryError{
			Err:        Errorf(ERATELIMIT, "Too many requests; try again in %d seconds.", int(retry.Seconds())),
			RetryAfter: retry,
		}
	}
	return res, nil
}

// RateResult is the outcome of one rate-limit check.
type RateResult struct {
	Allowed    bool
	Limit      int
	Remaining  int
	Reset      time.Time     // when the oldest counted request leaves the window
	RetryAfter time.Duration // zero when allowed
}

// RateLimiter counts requests in a sliding window shared by every pod.
type RateLimiter interface {
	// Allow counts one request for key if fewer than limit were counted in
	// the last window, atomically. A refused request is not counted.
	Allow(ctx context.Context, key string, limit int, window time.Duration) (RateResult, error)
	// Peek reports what Allow would answer for key now, without counting
	// anything: a budget that only failures spend (failed logins) is
	// checked with Peek before the attempt and spent with Allow after a
	// failure.
	Peek(ctx context.Context, key string, limit int, window time.Duration) (RateResult, error)
}

// AuthCookie is the name of the cookie that carries a browser's session
// token.
const AuthCookie = "auth_token"

// ClaimsLocal is the key under which the HTTP layer leaves an authenticated
// request's Claims for the handlers after it (a Fiber Locals key: the REST
// handlers and the WebSocket upgrade read it).
const ClaimsLocal = "aoba.claims"

// ClientIPLocal is the key under which the HTTP layer leaves a request's
// client IP (a string; X-Forwarded-For resolved through trusted proxies).
const ClientIPLocal = "aoba.client_ip"
