package realtime

import (
	"context"
	"log/slog"
	"sync"

	"github.com/aoba-chat/aoba"
)

// refTopics keeps the broker subscribed to a topic exactly while the topic
// has at least one reference: the first acquire subscribes it, the release
// of the last reference unsubscribes it. The node's indexes take one
// reference per local socket they list under a topic (users.go, groups.go),
// and release it when they unlist it, always after its acquire: the caller
// serializes the two (see userShard).
//
// Each refShard's mu guards its refs and is held across the broker call
// that a count change causes, so that the broker's subscriptions follow
// the counts in order. It is taken alone or after a userShard's subMu,
// never with a lock that Deliver takes.
type refTopics struct {
	broker aoba.Broker
	log    *slog.Logger
	shards [shardCount]refShard
}

type refShard struct {
	mu   sync.Mutex
	refs map[string]int // topic → references, none when absent
}

func newRefTopics(b aoba.Broker, log *slog.Logger) *refTopics {
	r := &refTopics{broker: b, log: log}
	for i := range r.shards {
		r.shards[i].refs = make(map[string]int)
	}
	return r
}

func (r *refTopics) shardOf(topic string) *refShard { return &r.shards[hash(topic)%shardCount] }

// acquire adds n references to topic and subscribes the broker to it when
// they are the first. A broker failure is logged, not returned: the
// references stand, and the broker subscribes the topic again when it
// reconnects.
func (r *refTopics) acquire(ctx context.Context, topic string, n int) {
	if n <= 0 {
		return
	}
	s := r.shardOf(topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs[topic] += n
	if s.refs[topic] != n {
		return
	}
	if err := r.broker.Subscribe(ctx, topic); err != nil {
		r.log.Warn("realtime: subscribe failed", "topic", topic, "err", err)
	}
}

// release removes n references to topic and unsubscribes the broker from
// it when none is left. References never acquired are ignored.
func (r *refTopics) release(ctx context.Context, topic string, n int) {
	if n <= 0 {
		return
	}
	s := r.shardOf(topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	held := s.refs[topic]
	if held > n {
		s.refs[topic] = held - n
		return
	}
	delete(s.refs, topic)
	if held == 0 {
		return
	}
	if err := r.broker.Unsubscribe(ctx, topic); err != nil {
		r.log.Warn("realtime: unsubscribe failed", "topic", topic, "err", err)
	}
}

// count returns the references to topic.
func (r *refTopics) count(topic string) int {
	s := r.shardOf(topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refs[topic]
}
