package hub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/hubtest"
	"github.com/aoba-chat/aoba/internal/redistest"
)

// runContractSuites runs every hub contract suite on the Redis
// implementations over the clients newClient returns.
func runContractSuites(t *testing.T, newClient func(t testing.TB) redis.UniversalClient) {
	client := newClient(t)
	t.Run("Broker", func(t *testing.T) {
		hubtest.RunBrokerTests(t, func(t *testing.T) aoba.Broker {
			b := hub.NewRedisBroker(client, redistest.Prefix(t))
			t.Cleanup(func() { b.Close() })
			return b
		})
	})
	t.Run("Presence", func(t *testing.T) {
		hubtest.RunPresenceTests(t, func(t *testing.T) aoba.PresenceRegistry {
			p := hub.NewRedisPresence(client, redistest.Prefix(t), "pod-1", testPresenceOptions)
			t.Cleanup(func() { p.Close() })
			return p
		})
	})
	t.Run("RateLimiter", func(t *testing.T) {
		hubtest.RunRateLimiterTests(t, func(t *testing.T) aoba.RateLimiter {
			return hub.NewRedisRateLimiter(client, redistest.Prefix(t))
		})
	})
	t.Run("Sessions", func(t *testing.T) {
		hubtest.RunSessionCacheTests(t, func(t *testing.T) aoba.SessionCache {
			return hub.NewRedisSessions(client, redistest.Prefix(t))
		})
	})
	t.Run("Tickets", func(t *testing.T) {
		hubtest.RunTicketTests(t, func(t *testing.T) aoba.TicketStore {
			return hub.NewRedisSessions(client, redistest.Prefix(t))
		})
	})
	t.Run("Watches", func(t *testing.T) {
		hubtest.RunWatchRegistryTests(t, func(t *testing.T) aoba.WatchRegistry {
			return hub.NewRedisWatches(client, redistest.Prefix(t), hubtest.WatchLimit)
		})
	})
	t.Run("Sockets", func(t *testing.T) {
		hubtest.RunSocketRegistryTests(t, func(t *testing.T) aoba.SocketRegistry {
			return hub.NewRedisSockets(client, redistest.Prefix(t))
		})
	})
	t.Run("PresenceTwoPods", func(t *testing.T) {
		// Users in many buckets, seen from the other pod in one call.
		ctx := context.Background()
		prefix := redistest.Prefix(t)
		rec := &hubtest.PresenceRecorder{}
		a := hub.NewRedisPresence(client, prefix, "pod-a", testPresenceOptions)
		a.RegisterChangeHandler(rec.OnChange)
		defer a.Close()
		b := hub.NewRedisPresence(newClient(t), prefix, "pod-b", testPresenceOptions)
		b.RegisterChangeHandler(rec.OnChange)
		defer b.Close()
		var ids []string
		for i := 0; i < 40; i++ {
			id := fmt.Sprintf("user-%d", i)
			ids = append(ids, id)
			if i%2 == 0 {
				if err := a.Connect(ctx, id, "c1"); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, err := b.FindPresence(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			want := aoba.StatusOffline
			if i%2 == 0 {
				want = aoba.StatusOnline
			}
			if got[id].Status != want {
				t.Errorf("%s is %s, want %s", id, got[id].Status, want)
			}
		}
		// A connection that disconnects is swept, by one of the pods,
		// whichever bucket its user is in.
		if err := a.Disconnect(ctx, "user-38", "c1"); err != nil {
			t.Fatal(err)
		}
		rec.WaitStatuses(t, "user-38", aoba.StatusOnline, aoba.StatusOffline)
	})
}

func TestRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	newClient := func(t testing.TB) redis.UniversalClient {
		cl := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: c.Addrs()})
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	runContractSuites(t, newClient)

	t.Run("ShardedChannels", func(t *testing.T) {
		// Topics spread over the buckets, and so over the shards: each
		// bucket's channels share a slot, and the buckets use every master.
		b := hub.NewRedisBroker(newClient(t), "")
		defer b.Close()
		masters := map[string]bool{}
		for i := 0; i < 200; i++ {
			masters[c.MasterOf(b.Channel(aoba.UserTopic(fmt.Sprint(i)))).Addr()] = true
		}
		if len(masters) != 3 {
			t.Errorf("200 topics use %d masters, want 3", len(masters))
		}
	})

	t.Run("BucketEmptiedAndUsedAgain", func(t *testing.T) {
		// The last topic of a bucket leaves: its connection closes, and a
		// new one opens, to the bucket's master, when a topic comes back.
		ctx := context.Background()
		b := hub.NewRedisBroker(newClient(t), redistest.Prefix(t))
		rec := hubtest.NewRecorder()
		b.RegisterDeliver(rec.Deliver)
		defer b.Close()
		topic := aoba.UserTopic("alice")
		for i := 0; i < 2; i++ {
			if err := b.Subscribe(ctx, topic); err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(ctx, aoba.Publication{Topic: topic, Envelope: aoba.Envelope{Frame: []byte(fmt.Sprint(i))}}); err != nil {
				t.Fatal(err)
			}
			rec.WaitFor(t, i+1, 5*time.Second)
			if err := b.Unsubscribe(ctx, topic); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("Failover", func(t *testing.T) {
		testBrokerFailover(t, newClient, func(t *testing.T, channel string) {
			m := c.MasterOf(channel)
			m.Stop()
			c.WaitFailover(channel, m, 30*time.Second)
		})
	})
}

func TestRedisSentinel(t *testing.T) {
	st := redistest.StartSentinel(t)
	newClient := func(t testing.TB) redis.UniversalClient {
		cl := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: st.Addrs(), MasterName: redistest.MasterName})
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	runContractSuites(t, newClient)

	t.Run("Failover", func(t *testing.T) {
		testBrokerFailover(t, newClient, func(t *testing.T, channel string) {
			old := st.CurrentMaster()
			st.Master.Stop()
			st.WaitFailover(old, 30*time.Second)
		})
	})
}

// testBrokerFailover subscribes a broker to topics of every bucket, lets
// kill stop the master serving channel (the channel of the first topic),
// and checks that the subscriber is handed a resync order for that topic,
// and only for topics that lost their connection, and then hears new
// publications on every topic.
func testBrokerFailover(t *testing.T, newClient func(t testing.TB) redis.UniversalClient, kill func(t *testing.T, channel string)) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	pub := hub.NewRedisBroker(newClient(t), prefix)
	pub.RegisterDeliver(func(string, aoba.Envelope) {})
	defer pub.Close()
	subClient := newClient(t)
	health := hub.NewRedisHealth(subClient, nil)
	defer health.Close()
	sub := hub.NewRedisBroker(subClient, prefix)
	sub.WatchHealth(health)
	rec := hubtest.NewRecorder()
	sub.RegisterDeliver(rec.Deliver)
	defer sub.Close()
	var topics []string
	for i := 0; i < 64; i++ {
		topics = append(topics, aoba.UserTopic(fmt.Sprint("user-", i)), aoba.GroupTopic(fmt.Sprint("group-", i)))
	}
	if err := sub.Subscribe(ctx, topics...); err != nil {
		t.Fatal(err)
	}
	target := topics[1] // a group topic
	kill(t, sub.Channel(target))

	// Publish on every topic until each one delivers again (the pods'
	// clients find the new master on their own, with some retries).
	heard := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; len(heard) < len(topics); n++ {
		if time.Now().After(deadline) {
			for _, tp := range topics {
				if !heard[tp] {
					t.Logf("silent: channel %s", sub.Channel(tp))
				}
			}
			t.Fatalf("after the failover, %d of %d topics deliver again", len(heard), len(topics))
		}
		for _, tp := range topics {
			if !heard[tp] {
				pctx, cancel := context.WithTimeout(ctx, time.Second)
				_ = pub.Publish(pctx, aoba.Publication{Topic: tp, Envelope: aoba.Envelope{Frame: []byte(fmt.Sprintf(`{"n":%d}`, n))}})
				cancel()
			}
		}
		time.Sleep(100 * time.Millisecond)
		for _, d := range rec.All() {
			if d.Envelope.Frame != nil {
				heard[d.Topic] = true
			}
		}
	}
	// The health watcher sees the outage end too (on a Cluster, once the
	// slot map names the new master).
	for deadline := time.Now().Add(10 * time.Second); ; {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := health.Ping(pctx)
		cancel()
		if err == nil && health.Up() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health after the failover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resync := map[string]int{}
	for _, d := range rec.All() {
		if d.Envelope.Close != nil && d.Envelope.Close.Code == aoba.CloseResync {
			resync[d.Topic]++
		}
	}
	if resync[target] != 1 {
		t.Errorf("the topic whose master failed got %d resync orders, want 1", resync[target])
	}
	for tp, n := range resync {
		if n > 1 {
			t.Errorf("topic %s got %d resync orders, want at most 1", tp, n)
		}
	}
	t.Logf("%d of %d topics were resubscribed", len(resync), len(topics))
}
