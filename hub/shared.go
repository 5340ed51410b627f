package hub

import (
	"context"
	"sync"

	"github.com/aoba-chat/aoba"
)

// SharedBroker lets several consumers of one pod (the JSON socket's node
// and the XMPP server) subscribe the same topics independently: it counts
// the subscriptions of each topic and subscribes the broker at the first,
// unsubscribes it at the last. Every other method is the broker's.
type SharedBroker struct {
	aoba.Broker
	mu   sync.Mutex
	refs map[string]int
}

var _ aoba.Broker = (*SharedBroker)(nil)

// NewSharedBroker returns a SharedBroker over b.
func NewSharedBroker(b aoba.Broker) *SharedBroker {
	return &SharedBroker{Broker: b, refs: make(map[string]int)}
}

// Subscribe counts one more subscription of each topic and subscribes the
// broker to those that had none. It returns the broker's error; the counts
// stand either way (the broker resubscribes its topics when it reconnects).
func (s *SharedBroker) Subscribe(ctx context.Context, topics ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var fresh []string
	for _, t := range topics {
		if s.refs[t]++; s.refs[t] == 1 {
			fresh = append(fresh, t)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	return s.Broker.Subscribe(ctx, fresh...)
}

// Unsubscribe counts one subscription less of each topic and unsubscribes
// the broker from those left with none. Topics never subscribed are
// ignored.
func (s *SharedBroker) Unsubscribe(ctx context.Context, topics ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []string
	for _, t := range topics {
		n, ok := s.refs[t]
		if !ok {
			continue
		}
		if n <= 1 {
			delete(s.refs, t)
			gone = append(gone, t)
		} else {
			s.refs[t] = n - 1
		}
	}
	if len(gone) == 0 {
		return nil
	}
	return s.Broker.Unsubscribe(ctx, gone...)
}
