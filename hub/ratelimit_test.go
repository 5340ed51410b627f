package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/hubtest"
	"github.com/aoba-chat/aoba/internal/redistest"
)

func TestMemoryRateLimiter(t *testing.T) {
	hubtest.RunRateLimiterTests(t, func(t *testing.T) aoba.RateLimiter {
		return hub.NewMemoryRateLimiter()
	})
}

func TestRedisRateLimiter(t *testing.T) {
	srv := redistest.Shared(t)
	client := newClient(t, srv)
	hubtest.RunRateLimiterTests(t, func(t *testing.T) aoba.RateLimiter {
		return hub.NewRedisRateLimiter(client, redistest.Prefix(t))
	})

	ctx := context.Background()
	t.Run("PodsShareTheBudget", func(t *testing.T) {
		prefix := redistest.Prefix(t)
		a := hub.NewRedisRateLimiter(client, prefix)
		b := hub.NewRedisRateLimiter(newClient(t, srv), prefix)
		allowed := 0
		for i := 0; i < 10; i++ {
			l := a
			if i%2 == 1 {
				l = b
			}
			r, err := l.Allow(ctx, "user:1", 6, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if r.Allowed {
				allowed++
			}
		}
		if allowed != 6 {
			t.Fatalf("%d requests allowed across two pods, want 6", allowed)
		}
	})

	t.Run("KeyExpires", func(t *testing.T) {
		prefix := redistest.Prefix(t)
		l := hub.NewRedisRateLimiter(client, prefix)
		if _, err := l.Allow(ctx, "k", 5, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, err := client.Exists(ctx, prefix+"rl:k").Result()
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the key of an idle limit never expired")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("Unavailable", func(t *testing.T) {
		own := redistest.Start(t)
		l := hub.NewRedisRateLimiter(newClient(t, own), "")
		own.Stop()
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := l.Allow(cctx, "k", 5, time.Minute); aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
			t.Fatalf("allow with Redis down: %v, want %s", err, aoba.EUNAVAILABLE)
		}
	})
}
