package hub

import (
	"context"
	"sync"

	"github.com/aoba-chat/aoba"
)

var _ aoba.Broker = (*MemoryBroker)(nil)

// MemoryBroker is the in-process Broker of the single-binary mode. One
// goroutine delivers the envelopes in the order Publish queued them, so
// the registered DeliverFunc is never called concurrently and may itself
// call the broker without deadlocking.
type MemoryBroker struct {
	mu      sync.Mutex
	deliver aoba.DeliverFunc // nil until RegisterDeliver
	topics  map[string]struct{}
	queue   []aoba.Publication
	closed  bool

	wake chan struct{} // has a value when queue may be non-empty
	done chan struct{} // closed when the delivery goroutine has returned
}

// NewMemoryBroker returns a MemoryBroker; RegisterDeliver must follow
// before the first Subscribe. Close stops it. It never fails.
func NewMemoryBroker() *MemoryBroker {
	b := &MemoryBroker{
		topics: make(map[string]struct{}),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	go b.run()
	return b
}

// RegisterDeliver sets the function that receives every envelope published
// on a subscribed topic; envelopes queued before it are dropped. It panics
// when called twice or with nil.
func (b *MemoryBroker) RegisterDeliver(fn aoba.DeliverFunc) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if fn == nil || b.deliver != nil {
		panic("hub: MemoryBroker.RegisterDeliver called twice or with nil")
	}
	b.deliver = fn
}

// Publish queues each publication whose topic is subscribed for delivery;
// the others are dropped, as no pod listens to them. It returns an
// EUNAVAILABLE error once the broker is closed.
func (b *MemoryBroker) Publish(ctx context.Context, pubs ...aoba.Publication) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		metricPublishFailures.WithLabelValues(implMemory).Inc()
		return errClosed("message broker")
	}
	queued := false
	for _, p := range pubs {
		if _, ok := b.topics[p.Topic]; ok {
			b.queue = append(b.queue, p)
			queued = true
		}
	}
	if queued {
		// Under the lock, so that Close cannot close wake meanwhile.
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	b.mu.Unlock()
	metricPublications.WithLabelValues(implMemory).Add(float64(len(pubs)))
	return nil
}

// Subscribe makes the broker deliver the topics' envelopes. It returns an
// EUNAVAILABLE error once the broker is closed.
func (b *MemoryBroker) Subscribe(ctx context.Context, topics ...string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed("message broker")
	}
	for _, t := range topics {
		b.topics[t] = struct{}{}
	}
	return nil
}

// Unsubscribe stops delivering the topics; envelopes already queued for
// them are still delivered. It returns an EUNAVAILABLE error once the
// broker is closed.
func (b *MemoryBroker) Unsubscribe(ctx context.Context, topics ...string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed("message broker")
	}
	for _, t := range topics {
		delete(b.topics, t)
	}
	return nil
}

// Ping returns an EUNAVAILABLE error once the broker is closed.
func (b *MemoryBroker) Ping(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed("message broker")
	}
	return nil
}

// Close stops the broker, dropping undelivered envelopes, and waits for the
// delivery goroutine to return (so it must not be called from the DeliverFunc).
// Closing twice returns an EUNAVAILABLE error.
func (b *MemoryBroker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errClosed("message broker")
	}
	b.closed = true
	b.queue = nil
	b.mu.Unlock()
	close(b.wake)
	<-b.done
	return nil
}

func (b *MemoryBroker) run() {
	defer close(b.done)
	for range b.wake {
		for {
			b.mu.Lock()
			batch := b.queue
			b.queue = nil
			closed, deliver := b.closed, b.deliver
			b.mu.Unlock()
			if closed || len(batch) == 0 {
				break
			}
			if deliver == nil {
				continue // not registered yet: dropped
			}
			for _, p := range batch {
				deliver(p.Topic, p.Envelope)
			}
			metricDeliveries.WithLabelValues(implMemory).Add(float64(len(batch)))
		}
	}
}
