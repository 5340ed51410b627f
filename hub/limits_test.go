package hub_test

import (
	"context"
	"testing"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/hubtest"
	"github.com/aoba-chat/aoba/internal/redistest"
)

func TestMemoryWatches(t *testing.T) {
	hubtest.RunWatchRegistryTests(t, func(t *testing.T) aoba.WatchRegistry {
		return hub.NewMemoryWatches(hubtest.WatchLimit)
	})
}

func TestMemorySockets(t *testing.T) {
	hubtest.RunSocketRegistryTests(t, func(t *testing.T) aoba.SocketRegistry {
		return hub.NewMemorySockets()
	})
}

func TestRedisWatches(t *testing.T) {
	srv := redistest.Shared(t)
	client := newClient(t, srv)
	hubtest.RunWatchRegistryTests(t, func(t *testing.T) aoba.WatchRegistry {
		return hub.NewRedisWatches(client, redistest.Prefix(t), hubtest.WatchLimit)
	})

	t.Run("PodsShareTheLimit", func(t *testing.T) {
		ctx := context.Background()
		prefix := redistest.Prefix(t)
		a := hub.NewRedisWatches(client, prefix, 3)
		b := hub.NewRedisWatches(newClient(t, srv), prefix, 3)
		if _, err := a.Watch(ctx, "u", []string{"x", "y"}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Watch(ctx, "u", []string{"y", "z"}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Watch(ctx, "u", []string{"w"}); aoba.ErrorCode(err) != aoba.EINVALID {
			t.Fatalf("a 4th distinct id across pods: %v, want %s", err, aoba.EINVALID)
		}
		if ttl := client.PTTL(ctx, prefix+"watch:u").Val(); ttl <= 0 {
			t.Fatalf("the watch key has no expiry (%v)", ttl)
		}
	})

	t.Run("Unavailable", func(t *testing.T) {
		own := redistest.Start(t)
		w := hub.NewRedisWatches(newClient(t, own), "", 0)
		own.Stop()
		if _, err := w.Watch(context.Background(), "u", []string{"x"}); aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
			t.Fatalf("watch with Redis down: %v, want %s", err, aoba.EUNAVAILABLE)
		}
	})
}

func TestRedisSockets(t *testing.T) {
	srv := redistest.Shared(t)
	client := newClient(t, srv)
	hubtest.RunSocketRegistryTests(t, func(t *testing.T) aoba.SocketRegistry {
		return hub.NewRedisSockets(client, redistest.Prefix(t))
	})

	t.Run("PodsShareTheOrder", func(t *testing.T) {
		ctx := context.Background()
		prefix := redistest.Prefix(t)
		a := hub.NewRedisSockets(client, prefix)
		b := hub.NewRedisSockets(newClient(t, srv), prefix)
		if _, err := a.Open(ctx, "u", "c1", 2); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Open(ctx, "u", "c2", 2); err != nil {
			t.Fatal(err)
		}
		ev, err := b.Open(ctx, "u", "c3", 2)
		if err != nil || len(ev) != 1 || ev[0] != "c1" {
			t.Fatalf("evicted %v, %v; want [c1]", ev, err)
		}
	})
}
