package realtime

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/aoba-chat/aoba"
)

// recordingBroker stands in for the broker in the unit tests of refTopics:
// it counts the Subscribe and Unsubscribe calls per topic and tracks which
// topics are subscribed. The rest of the suite runs on the real hub.
type recordingBroker struct {
	aoba.Broker // nil: only Subscribe and Unsubscribe are called

	mu          sync.Mutex
	subs, unsub map[string]int
	subscribed  map[string]bool
}

func newRecordingBroker() *recordingBroker {
	return &recordingBroker{subs: map[string]int{}, unsub: map[string]int{}, subscribed: map[string]bool{}}
}

func (b *recordingBroker) Subscribe(_ context.Context, topics ...string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range topics {
		b.subs[t]++
		b.subscribed[t] = true
	}
	return nil
}

func (b *recordingBroker) Unsubscribe(_ context.Context, topics ...string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range topics {
		b.unsub[t]++
		delete(b.subscribed, t)
	}
	return nil
}

func (b *recordingBroker) calls(topic string) (subs, unsubs int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subs[topic], b.unsub[topic]
}

func newTestRefTopics() (*refTopics, *recordingBroker) {
	b := newRecordingBroker()
	return newRefTopics(b, slog.New(slog.NewTextHandler(io.Discard, nil))), b
}

func TestRefTopics(t *testing.T) {
	ctx := context.Background()
	const topic = "g:1"

	t.Run("SubscribesOnceOnFirst", func(t *testing.T) {
		r, b := newTestRefTopics()
		r.acquire(ctx, topic, 1)
		r.acquire(ctx, topic, 2)
		r.acquire(ctx, topic, 0)
		if s, u := b.calls(topic); s != 1 || u != 0 {
			t.Fatalf("after 3 references: %d subscribes, %d unsubscribes; want 1, 0", s, u)
		}
		if n := r.count(topic); n != 3 {
			t.Fatalf("count = %d, want 3", n)
		}
	})

	t.Run("UnsubscribesOnceOnLast", func(t *testing.T) {
		r, b := newTestRefTopics()
		r.acquire(ctx, topic, 3)
		r.release(ctx, topic, 1)
		r.release(ctx, topic, 1)
		if _, u := b.calls(topic); u != 0 {
			t.Fatalf("%d unsubscribes with a reference left, want 0", u)
		}
		r.release(ctx, topic, 1)
		r.release(ctx, topic, 1) // never acquired: ignored
		if s, u := b.calls(topic); s != 1 || u != 1 {
			t.Fatalf("%d subscribes, %d unsubscribes; want 1, 1", s, u)
		}
		r.acquire(ctx, topic, 1)
		if s, _ := b.calls(topic); s != 2 {
			t.Fatalf("a reference after the last: %d subscribes, want 2", s)
		}
	})

	t.Run("ReleaseUnknown", func(t *testing.T) {
		r, b := newTestRefTopics()
		r.release(ctx, topic, 1)
		if s, u := b.calls(topic); s != 0 || u != 0 {
			t.Fatalf("%d subscribes, %d unsubscribes; want none", s, u)
		}
	})

	t.Run("ConcurrentAddRemove", func(t *testing.T) {
		// Workers each hold references on a few topics, taking and giving
		// them back in random order, as sockets do; some keep theirs at
		// the end. The broker must be subscribed to exactly the topics
		// with references, and calls must alternate per topic.
		r, b := newTestRefTopics()
		topics := []string{"u:a", "u:b", "p:a", "g:x", "g:y"}
		const workers, rounds = 16, 300
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				held := map[string]int{}
				for range rounds {
					tp := topics[rng.IntN(len(topics))]
					if held[tp] > 0 && rng.IntN(2) == 0 {
						n := 1 + rng.IntN(held[tp])
						held[tp] -= n
						r.release(ctx, tp, n)
					} else {
						n := 1 + rng.IntN(3)
						held[tp] += n
						r.acquire(ctx, tp, n)
					}
				}
				if w%2 == 0 { // half the workers give everything back
					for tp, n := range held {
						r.release(ctx, tp, n)
					}
				}
			}()
		}
		wg.Wait()
		for _, tp := range topics {
			s, u := b.calls(tp)
			b.mu.Lock()
			sub := b.subscribed[tp]
			b.mu.Unlock()
			if n := r.count(tp); sub != (n > 0) {
				t.Errorf("%s: %d references, subscribed %v", tp, n, sub)
			}
			if d := s - u; (d != 0 && d != 1) || (d == 1) != sub {
				t.Errorf("%s: %d subscribes, %d unsubscribes, subscribed %v", tp, s, u, sub)
			}
		}
	})
}
