package sqlitestore_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/sqlitestore"
)

// reportBatching reports the mean number of messages per commit since
// taken and commits were read from s.
func reportBatching(b *testing.B, s *sqlitestore.Store, taken, commits int64) {
	if n := sqlitestore.MessageCommits(s) - commits; n > 0 {
		b.ReportMetric(float64(sqlitestore.MessagesTaken(s)-taken)/float64(n), "msgs/commit")
	}
}

// benchMessage returns a message of ordinary length in conversation conv.
func benchMessage(conv string) *aoba.Message {
	return &aoba.Message{ID: aoba.NewID(), Conversation: conv, FromID: "u1", ToID: "u2", FromName: "one", ToName: "two",
		Content: "hello, this is a message of ordinary length", Type: aoba.MessageChat, Timestamp: aoba.Now()}
}

// BenchmarkCreateMessageParallel stores messages from 32 goroutines per
// GOMAXPROCS (run with -cpu 1,2): the throughput of concurrent senders.
func BenchmarkCreateMessageParallel(b *testing.B) {
	s := mustOpen(b, b.TempDir())
	conv := aoba.DirectConversation("u1", "u2")
	b.ReportAllocs()
	b.SetParallelism(32)
	taken, commits := sqlitestore.MessagesTaken(s), sqlitestore.MessageCommits(s)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.CreateMessage(context.Background(), benchMessage(conv)); err != nil {
				b.Errorf("CreateMessage: %v", err)
				return
			}
		}
	})
	b.StopTimer()
	reportBatching(b, s, taken, commits)
}

// BenchmarkCreateMessageBurst starts 1,000 concurrent CreateMessage calls
// per iteration and reports the latency of each call (from the burst's start
// to its return) as p50-ms and p99-ms over all iterations.
func BenchmarkCreateMessageBurst(b *testing.B) {
	const burst = 1000
	s := mustOpen(b, b.TempDir())
	conv := aoba.DirectConversation("u1", "u2")
	lat := make([]time.Duration, 0, burst*b.N)
	var mu sync.Mutex
	taken, commits := sqlitestore.MessagesTaken(s), sqlitestore.MessageCommits(s)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msgs := make([]*aoba.Message, burst)
		for j := range msgs {
			msgs[j] = benchMessage(conv)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		var t0 time.Time
		for _, m := range msgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := s.CreateMessage(context.Background(), m)
				d := time.Since(t0)
				if err != nil {
					b.Errorf("CreateMessage: %v", err)
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}()
		}
		t0 = time.Now()
		close(start)
		wg.Wait()
	}
	b.StopTimer()
	reportBatching(b, s, taken, commits)
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(burst*b.N), "ns/msg")
}
