package redistest_test

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

func TestStart(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	t.Run("Ping", func(t *testing.T) {
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatalf("ping: %v", err)
		}
	})
	t.Run("RestartEmptiesData", func(t *testing.T) {
		if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		srv.Restart()
		n, err := c.Exists(ctx, "k").Result()
		if err != nil {
			t.Fatalf("exists after restart: %v", err)
		}
		if n != 0 {
			t.Fatalf("key survived restart with persistence off")
		}
	})
	t.Run("Stop", func(t *testing.T) {
		srv.Stop()
		if err := c.Ping(ctx).Err(); err == nil {
			t.Fatal("ping succeeded after Stop")
		}
	})
}

func TestShared(t *testing.T) {
	a, b := redistest.Shared(t), redistest.Shared(t)
	if a != b {
		t.Fatal("Shared returned two servers")
	}
	c := redis.NewClient(&redis.Options{Addr: a.Addr()})
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if p, q := redistest.Prefix(t), redistest.Prefix(t); p == q {
		t.Fatalf("Prefix returned %q twice", p)
	}
}
