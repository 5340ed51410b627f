package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/internal/redistest"
)

// TestRedisHealth stops a real redis-server under a RedisHealth and a
// FallbackLimiter: the outage is seen, commands then fail at once, the
// limiter keeps limiting on its own, and Redis's return is seen too.
func TestRedisHealth(t *testing.T) {
	ctx := context.Background()
	own := redistest.Start(t)
	client := newClient(t, own)
	h := hub.NewRedisHealth(client, nil)
	defer h.Close()
	recovered := make(chan time.Time, 1)
	h.OnRecover(func(since time.Time) { recovered <- since })
	l := hub.NewFallbackLimiter(hub.NewRedisRateLimiter(client, ""), h, nil)
	if err := h.Ping(ctx); err != nil || !h.Up() || h.Degraded() != "" {
		t.Fatalf("with Redis up: ping %v, up %v, degraded %q", err, h.Up(), h.Degraded())
	}

	own.Stop()
	// A failing command wakes the probe, which sees the outage.
	_ = client.Get(ctx, "k").Err()
	for deadline := time.Now().Add(5 * time.Second); h.Up(); {
		if time.Now().After(deadline) {
			t.Fatal("the outage was not seen within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h.Degraded() == "" || h.Outage() == 0 {
		t.Fatalf("degraded %q, outage %d while Redis is down", h.Degraded(), h.Outage())
	}
	start := time.Now()
	if err := client.Get(ctx, "k").Err(); err == nil {
		t.Fatal("a command succeeded with Redis down")
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("a command took %v with Redis known down, want it to fail at once", d)
	}
	for i := 0; i < 3; i++ {
		res, err := l.Allow(ctx, "k", 2, time.Minute)
		if err != nil {
			t.Fatalf("allow with Redis down: %v", err)
		}
		if res.Allowed != (i < 2) {
			t.Fatalf("request %d allowed = %v with a limit of 2", i+1, res.Allowed)
		}
	}

	own.Restart()
	select {
	case <-recovered:
	case <-time.After(5 * time.Second):
		t.Fatal("Redis's return was not seen within 5s")
	}
	if !h.Up() || h.Degraded() != "" || h.Outage() != 0 {
		t.Fatalf("after Redis returned: up %v, degraded %q", h.Up(), h.Degraded())
	}
	// The shared limiter counts again (the restarted Redis is empty).
	if res, err := l.Allow(ctx, "k", 2, time.Minute); err != nil || !res.Allowed || res.Remaining != 1 {
		t.Fatalf("allow after Redis returned = %+v, %v; want the first of 2 in Redis", res, err)
	}
	if aoba.ErrorCode(client.Ping(ctx).Err()) != "" {
		t.Fatal("ping after Redis returned failed")
	}
}
