package hubtest

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// NewRateLimiterFunc returns a new rate limiter with no requests counted.
type NewRateLimiterFunc func(t *testing.T) aoba.RateLimiter

// RunRateLimiterTests runs the aoba.RateLimiter contract against the
// limiters that newLimiter returns.
func RunRateLimiterTests(t *testing.T, newLimiter NewRateLimiterFunc) {
	ctx := context.Background()
	allow := func(t *testing.T, l aoba.RateLimiter, key string, limit int, window time.Duration) aoba.RateResult {
		t.Helper()
		r, err := l.Allow(ctx, key, limit, window)
		if err != nil {
			t.Fatalf("allow %s: %v", key, err)
		}
		return r
	}

	peek := func(t *testing.T, l aoba.RateLimiter, key string, limit int, window time.Duration) aoba.RateResult {
		t.Helper()
		r, err := l.Peek(ctx, key, limit, window)
		if err != nil {
			t.Fatalf("peek %s: %v", key, err)
		}
		return r
	}

	t.Run("ExactlyLimitInParallel", func(t *testing.T) {
		l := newLimiter(t)
		const calls, limit = 50, 10
		results := make([]aoba.RateResult, calls)
		var wg sync.WaitGroup
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := l.Allow(ctx, "ip:1.2.3.4", limit, time.Minute)
				if err != nil {
					t.Errorf("allow: %v", err)
				}
				results[i] = r
			}()
		}
		wg.Wait()
		var remaining []int
		for _, r := range results {
			if r.Limit != limit {
				t.Errorf("Limit = %d, want %d", r.Limit, limit)
			}
			if r.Allowed {
				remaining = append(remaining, r.Remaining)
				if r.RetryAfter != 0 {
					t.Errorf("allowed with RetryAfter %v", r.RetryAfter)
				}
				continue
			}
			if r.Remaining != 0 {
				t.Errorf("refused with Remaining %d", r.Remaining)
			}
			if r.RetryAfter <= 0 || r.RetryAfter > time.Minute+time.Second {
				t.Errorf("refused with RetryAfter %v, want within the window", r.RetryAfter)
			}
			if until := time.Until(r.Reset); until <= 0 || until > time.Minute+time.Second {
				t.Errorf("Reset in %v, want within the window", until)
			}
		}
		if len(remaining) != limit {
			t.Fatalf("%d of %d calls allowed, want exactly %d", len(remaining), calls, limit)
		}
		sort.Ints(remaining)
		for i, r := range remaining {
			if r != i {
				t.Fatalf("Remaining values of allowed calls = %v, want 0..%d once each", remaining, limit-1)
			}
		}
	})

	t.Run("KeysAreSeparate", func(t *testing.T) {
		l := newLimiter(t)
		if !allow(t, l, "a", 1, time.Minute).Allowed {
			t.Fatal("first request on a refused")
		}
		if allow(t, l, "a", 1, time.Minute).Allowed {
			t.Fatal("second request on a allowed over a limit of 1")
		}
		if !allow(t, l, "b", 1, time.Minute).Allowed {
			t.Fatal("first request on b refused because of a")
		}
	})

	t.Run("WindowSlides", func(t *testing.T) {
		l := newLimiter(t)
		const window = 400 * time.Millisecond
		first := allow(t, l, "k", 2, window)
		time.Sleep(window / 2)
		second := allow(t, l, "k", 2, window)
		if !first.Allowed || !second.Allowed {
			t.Fatal("requests under the limit refused")
		}
		third := allow(t, l, "k", 2, window)
		if third.Allowed {
			t.Fatal("request over the limit allowed")
		}
		if third.RetryAfter > window/2+50*time.Millisecond {
			t.Fatalf("RetryAfter = %v, want about the first request's age left (%v)", third.RetryAfter, window/2)
		}
		// Once the first leaves the window, one slot opens, not two.
		time.Sleep(third.RetryAfter + 20*time.Millisecond)
		if !allow(t, l, "k", 2, window).Allowed {
			t.Fatal("refused after the oldest request left the window")
		}
		if allow(t, l, "k", 2, window).Allowed {
			t.Fatal("allowed while the second request is still in the window")
		}
	})

	t.Run("RefusedNotCounted", func(t *testing.T) {
		l := newLimiter(t)
		const window = 300 * time.Millisecond
		if !allow(t, l, "k", 1, window).Allowed {
			t.Fatal("first request refused")
		}
		deadline := time.Now().Add(window + 100*time.Millisecond)
		refused := 0
		for time.Now().Before(deadline) {
			if r := allow(t, l, "k", 1, window); r.Allowed {
				break
			}
			refused++
			time.Sleep(20 * time.Millisecond)
		}
		if refused == 0 {
			t.Fatal("no request was refused within the window")
		}
		if time.Now().After(deadline) {
			t.Fatal("still refused after the window: refused requests were counted")
		}
	})

	t.Run("ZeroLimitRefuses", func(t *testing.T) {
		l := newLimiter(t)
		if r := allow(t, l, "k", 0, time.Minute); r.Allowed {
			t.Fatal("allowed with a limit of 0")
		}
	})

	t.Run("BadWindow", func(t *testing.T) {
		l := newLimiter(t)
		if _, err := l.Allow(ctx, "k", 1, 0); err == nil {
			t.Fatal("a zero window was accepted")
		}
		if _, err := l.Peek(ctx, "k", 1, 0); err == nil {
			t.Fatal("a zero window was accepted by Peek")
		}
	})

	t.Run("PeekDoesNotCount", func(t *testing.T) {
		l := newLimiter(t)
		const limit = 3
		for i := 0; i < 10; i++ {
			r := peek(t, l, "k", limit, time.Minute)
			if !r.Allowed || r.Remaining != limit-1 || r.Limit != limit || r.RetryAfter != 0 {
				t.Fatalf("peek %d on an empty key = %+v, want allowed with %d remaining", i, r, limit-1)
			}
		}
		for i := 0; i < limit; i++ {
			if !allow(t, l, "k", limit, time.Minute).Allowed {
				t.Fatalf("request %d refused after peeks: peeks were counted", i+1)
			}
		}
	})

	t.Run("PeekAnswersAsAllowWould", func(t *testing.T) {
		l := newLimiter(t)
		first := allow(t, l, "k", 3, time.Minute)
		p := peek(t, l, "k", 3, time.Minute)
		if !p.Allowed || p.Remaining != 1 {
			t.Fatalf("peek after one request of 3 = %+v, want allowed with 1 remaining", p)
		}
		if d := p.Reset.Sub(first.Reset); d < -50*time.Millisecond || d > 50*time.Millisecond {
			t.Fatalf("peek Reset %v, want the first request's %v", p.Reset, first.Reset)
		}
		if next := allow(t, l, "k", 3, time.Minute); next.Remaining != p.Remaining {
			t.Fatalf("allow after peek: Remaining %d, peek said %d", next.Remaining, p.Remaining)
		}
	})

	t.Run("PeekAtLimit", func(t *testing.T) {
		l := newLimiter(t)
		const window = 400 * time.Millisecond
		for i := 0; i < 2; i++ {
			allow(t, l, "k", 2, window)
		}
		p := peek(t, l, "k", 2, window)
		if p.Allowed || p.Remaining != 0 {
			t.Fatalf("peek at the limit = %+v, want refused with 0 remaining", p)
		}
		if p.RetryAfter <= 0 || p.RetryAfter > window+50*time.Millisecond {
			t.Fatalf("peek at the limit: RetryAfter %v, want within the window", p.RetryAfter)
		}
		if allow(t, l, "k", 2, window).Allowed {
			t.Fatal("allowed over the limit after a peek")
		}
		// Once the window has passed, Peek sees the budget again.
		time.Sleep(p.RetryAfter + 20*time.Millisecond)
		if p := peek(t, l, "k", 2, window); !p.Allowed || p.Remaining != 1 {
			t.Fatalf("peek after the window = %+v, want allowed with 1 remaining", p)
		}
		if r := peek(t, l, "k", 0, window); r.Allowed {
			t.Fatal("peek allowed with a limit of 0")
		}
	})
}
