package hub_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/internal/redistest"
)

func BenchmarkRateLimit(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, l aoba.RateLimiter) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				// 1000 keys, each under its limit most of the time.
				if _, err := l.Allow(ctx, "user:"+strconv.Itoa(i%1000), 100, time.Minute); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("Memory", func(b *testing.B) { run(b, hub.NewMemoryRateLimiter()) })
	b.Run("Redis", func(b *testing.B) {
		client := newClient(b, redistest.Shared(b))
		run(b, hub.NewRedisRateLimiter(client, redistest.Prefix(b)))
	})
}

// BenchmarkSessionCheck checks a cached token of a user with a cutoff in
// force: the cost of every authenticated request.
func BenchmarkSessionCheck(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, s aoba.SessionCache) {
		now := aoba.Now()
		if err := s.RevokeUserSessions(ctx, "user-1", now.Add(-time.Hour), "", time.Hour); err != nil {
			b.Fatal(err)
		}
		if err := s.Remember(ctx, "s1", "t1", now.Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
		c := aoba.Claims{UserID: "user-1", SessionID: "s1", TokenID: "t1", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if v, err := s.Check(ctx, c); err != nil || v != aoba.SessionValid {
					b.Errorf("Check = %d, %v, want SessionValid", v, err)
					return
				}
			}
		})
	}
	b.Run("Memory", func(b *testing.B) { run(b, hub.NewMemorySessions()) })
	b.Run("Redis", func(b *testing.B) {
		client := newClient(b, redistest.Shared(b))
		run(b, hub.NewRedisSessions(client, redistest.Prefix(b)))
	})
}

// BenchmarkPublish500 publishes one message envelope to 500 user topics in
// one call, as a message to a 500-member group does.
func BenchmarkPublish500(b *testing.B) {
	ctx := context.Background()
	frame, err := aoba.EncodeFrame(aoba.FrameMessage, "", map[string]string{"text": "hello, everyone in this group"})
	if err != nil {
		b.Fatal(err)
	}
	pubs := make([]aoba.Publication, 500)
	for i := range pubs {
		pubs[i] = aoba.Publication{Topic: aoba.UserTopic(fmt.Sprintf("user-%d", i)), Envelope: aoba.Envelope{Frame: frame, ExceptConn: "conn-1"}}
	}
	run := func(b *testing.B, br aoba.Broker) {
		defer br.Close()
		br.RegisterDeliver(func(string, aoba.Envelope) {})
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := br.Publish(ctx, pubs...); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("Memory", func(b *testing.B) { run(b, hub.NewMemoryBroker()) })
	b.Run("Redis", func(b *testing.B) {
		client := newClient(b, redistest.Shared(b))
		run(b, hub.NewRedisBroker(client, redistest.Prefix(b)))
	})
	// SPUBLISH to a 3-master Cluster: the pipeline splits per master.
	b.Run("Cluster", func(b *testing.B) {
		c := redistest.StartCluster(b)
		client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
		defer client.Close()
		run(b, hub.NewRedisBroker(client, redistest.Prefix(b)))
	})
}
