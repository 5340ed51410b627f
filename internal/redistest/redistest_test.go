package redistest_test

import (
	"context"
	"os"
	"testing"
	"time"

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

func TestClusterFailover(t *testing.T) {
	ctx := context.Background()
	c := redistest.StartCluster(t)
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer cl.Close()
	if err := cl.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("set: %v", err)
	}
	m := c.MasterOf("k")
	m.Stop()
	c.WaitFailover("k", m, 30*time.Second)
	if n := c.MasterOf("k"); n == m {
		t.Fatalf("the stopped node %s still serves the key's slot", m.Addr())
	}
	if err := cl.Set(ctx, "k2", "v", 0).Err(); err != nil {
		t.Fatalf("set after failover: %v", err)
	}
}

func TestSentinelFailover(t *testing.T) {
	ctx := context.Background()
	st := redistest.StartSentinel(t)
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: redistest.MasterName, SentinelAddrs: st.Addrs()})
	defer fc.Close()
	if err := fc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("set: %v", err)
	}
	old := st.CurrentMaster()
	if old != st.Master.Addr() {
		t.Fatalf("master is %s, want %s", old, st.Master.Addr())
	}
	st.Master.Stop()
	st.WaitFailover(old, 30*time.Second)
	if m := st.CurrentMaster(); m != st.Replica.Addr() {
		t.Fatalf("new master %s, want the replica %s", m, st.Replica.Addr())
	}
	if err := fc.Set(ctx, "k2", "v", 0).Err(); err != nil {
		t.Fatalf("set after failover: %v", err)
	}
}
