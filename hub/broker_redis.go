package hub

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
)

var _ aoba.Broker = (*RedisBroker)(nil)

// RedisBroker is the Broker of many pods, on Redis PUBLISH/SUBSCRIBE. Each
// pod holds ONE pub/sub connection carrying a channel (prefix + topic) per
// subscribed topic; one goroutine reads it and calls the registered
// DeliverFunc, so delivery is ordered per topic. That goroutine drops what
// it reads while no DeliverFunc is registered. When Redis restarts, go-redis reconnects the
// pub/sub connection and subscribes its channels again; envelopes published
// meanwhile are lost, which the Broker contract allows.
type RedisBroker struct {
	client  *redis.Client
	prefix  string
	deliver atomic.Pointer[aoba.DeliverFunc] // nil until RegisterDeliver
	pubsub  *redis.PubSub

	mu     sync.Mutex // serializes Subscribe, Unsubscribe and Close
	topics map[string]struct{}
	closed atomic.Bool

	wmu     sync.Mutex
	waiters map[string][]chan struct{} // by channel: Subscribe calls awaiting Redis's confirmation

	done chan struct{} // closed when the reading goroutine has returned
}

// receiveBuffer is the size of the channel between go-redis's reader and
// the delivering goroutine.
const receiveBuffer = 1024

// NewRedisBroker returns a RedisBroker on client whose channels start with
// prefix (DefaultPrefix when empty); RegisterDeliver must follow before the
// first Subscribe. It connects lazily, so it never fails: Ping tells
// whether Redis can be reached.
func NewRedisBroker(client *redis.Client, prefix string) *RedisBroker {
	b := &RedisBroker{
		client:  client,
		prefix:  prefixOr(prefix),
		topics:  make(map[string]struct{}),
		waiters: make(map[string][]chan struct{}),
		done:    make(chan struct{}),
	}
	b.pubsub = client.Subscribe(context.Background())
	go b.run(b.pubsub.ChannelWithSubscriptions(redis.WithChannelSize(receiveBuffer)))
	return b
}

// RegisterDeliver sets the function that receives every envelope read from
// the pub/sub connection; what is read before it is dropped. It panics
// when called twice or with nil.
func (b *RedisBroker) RegisterDeliver(fn aoba.DeliverFunc) {
	if fn == nil || !b.deliver.CompareAndSwap(nil, &fn) {
		panic("hub: RedisBroker.RegisterDeliver called twice or with nil")
	}
}

// handOver passes env to the registered DeliverFunc, or drops it when none
// is registered yet.
func (b *RedisBroker) handOver(topic string, env aoba.Envelope) {
	if d := b.deliver.Load(); d != nil {
		(*d)(topic, env)
	}
}

func (b *RedisBroker) run(ch <-chan any) {
	defer close(b.done)
	for m := range ch {
		switch m := m.(type) {
		case *redis.Message:
			b.handle(m)
		case *redis.Subscription:
			if m.Kind == "subscribe" && !b.confirm(m.Channel) {
				b.resubscribed(m.Channel)
			}
		}
	}
}

// confirm wakes the Subscribe calls waiting for channel. It reports
// whether any was waiting: a confirmation nobody waits for is go-redis
// subscribing again after a reconnect.
func (b *RedisBroker) confirm(channel string) bool {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	ws, ok := b.waiters[channel]
	for _, w := range ws {
		close(w)
	}
	delete(b.waiters, channel)
	return ok
}

// resubscribed handles a channel subscribed again after the pub/sub
// connection was lost: whatever was published on it meanwhile is gone, so
// the sockets of a user topic are told to reconnect and catch up from
// history, and the Service empties the cache that aoba.DirectoryTopic keeps
// fresh (both by a CloseOrder with aoba.CloseResync).
func (b *RedisBroker) resubscribed(channel string) {
	topic, ok := strings.CutPrefix(channel, b.prefix)
	if !ok || (!strings.HasPrefix(topic, aoba.UserTopic("")) && topic != aoba.DirectoryTopic) {
		return
	}
	metricResyncs.Inc()
	b.handOver(topic, aoba.Envelope{Close: &aoba.CloseOrder{Code: aoba.CloseResync, Reason: "events may have been missed"}})
}

// wait registers a waiter for the confirmation of each channel.
func (b *RedisBroker) wait(channels []string) map[string]chan struct{} {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	ws := make(map[string]chan struct{}, len(channels))
	for _, c := range channels {
		w := make(chan struct{})
		ws[c] = w
		b.waiters[c] = append(b.waiters[c], w)
	}
	return ws
}

// forget removes the waiters of ws still registered.
func (b *RedisBroker) forget(ws map[string]chan struct{}) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	for c, w := range ws {
		list := b.waiters[c]
		for i := range list {
			if list[i] == w {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(b.waiters, c)
		} else {
			b.waiters[c] = list
		}
	}
}

func (b *RedisBroker) handle(msg *redis.Message) {
	topic, ok := strings.CutPrefix(msg.Channel, b.prefix)
	if !ok {
		return
	}
	env, err := decodeEnvelope(msg.Payload)
	if err != nil {
		metricDecodeFailures.Inc()
		return
	}
	metricDeliveries.WithLabelValues(implRedis).Inc()
	b.handOver(topic, env)
}

// envelopeKey identifies an envelope within one Publish call: the same
// frame bytes (by address and length, as the Service shares one encoded
// frame among its publications), the same close order (by address) and the
// same small fields.
type envelopeKey struct {
	frame                               *byte
	frameLen                            int
	close                               *aoba.CloseOrder
	exceptConn, exceptUser, join, leave string
	onlyUser, exceptUsers               string
}

func keyOf(env aoba.Envelope) envelopeKey {
	k := envelopeKey{frameLen: len(env.Frame), close: env.Close, exceptConn: env.ExceptConn,
		exceptUser: env.ExceptUser, join: env.Join, leave: env.Leave,
		onlyUser: env.OnlyUser, exceptUsers: strings.Join(env.ExceptUsers, "\x00")}
	if len(env.Frame) > 0 {
		k.frame = &env.Frame[0]
	}
	return k
}

// Publish sends every publication in one pipelined round trip, encoding
// each distinct envelope once however many topics it goes to. It returns
// an EUNAVAILABLE error when Redis cannot be reached or the broker is
// closed.
func (b *RedisBroker) Publish(ctx context.Context, pubs ...aoba.Publication) error {
	if len(pubs) == 0 {
		return nil
	}
	if b.isClosed() {
		metricPublishFailures.WithLabelValues(implRedis).Inc()
		return errClosed("message broker")
	}
	payloads := make([][]byte, len(pubs))
	var seen map[envelopeKey][]byte // identical envelopes are encoded once
	if len(pubs) > 1 {
		seen = make(map[envelopeKey][]byte)
	}
	for i, p := range pubs {
		k := keyOf(p.Envelope)
		if b, ok := seen[k]; ok {
			payloads[i] = b
			continue
		}
		b, err := encodeEnvelope(p.Envelope)
		if err != nil {
			metricPublishFailures.WithLabelValues(implRedis).Inc()
			return err
		}
		payloads[i] = b
		if seen != nil {
			seen[k] = b
		}
	}
	_, err := b.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, p := range pubs {
			pipe.Publish(ctx, b.prefix+p.Topic, payloads[i])
		}
		return nil
	})
	if err != nil {
		metricPublishFailures.WithLabelValues(implRedis).Inc()
		return redisError(err, "message broker")
	}
	metricPublications.WithLabelValues(implRedis).Add(float64(len(pubs)))
	return nil
}

// subscribeTimeout bounds the wait for Redis to confirm a subscription.
const subscribeTimeout = 5 * time.Second

// Subscribe subscribes the pub/sub connection to the topics not subscribed
// yet and waits until Redis confirms, so that everything published after
// Subscribe returns is delivered. It returns an EUNAVAILABLE error when
// Redis cannot be reached or does not confirm within a few seconds (the
// topics are then subscribed again when the connection comes back), the
// context's error when it ends first, and an EUNAVAILABLE error when the
// broker is closed.
func (b *RedisBroker) Subscribe(ctx context.Context, topics ...string) error {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return errClosed("message broker")
	}
	var channels []string
	for _, t := range topics {
		if _, ok := b.topics[t]; !ok {
			b.topics[t] = struct{}{}
			channels = append(channels, b.prefix+t)
		}
	}
	if len(channels) == 0 {
		b.mu.Unlock()
		return nil
	}
	ws := b.wait(channels)
	err := b.pubsub.Subscribe(ctx, channels...)
	b.mu.Unlock()
	if err != nil {
		b.forget(ws)
		return redisError(err, "message broker")
	}
	timer := time.NewTimer(subscribeTimeout)
	defer timer.Stop()
	for _, w := range ws {
		select {
		case <-w:
		case <-ctx.Done():
			b.forget(ws)
			return ctx.Err()
		case <-timer.C:
			b.forget(ws)
			return aoba.Errorf(aoba.EUNAVAILABLE, "The message broker is temporarily unavailable.")
		case <-b.done:
			return errClosed("message broker")
		}
	}
	return nil
}

// Unsubscribe unsubscribes the pub/sub connection from the subscribed
// topics among topics. It returns an EUNAVAILABLE error when Redis cannot
// be reached or the broker is closed.
func (b *RedisBroker) Unsubscribe(ctx context.Context, topics ...string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return errClosed("message broker")
	}
	var channels []string
	for _, t := range topics {
		if _, ok := b.topics[t]; ok {
			delete(b.topics, t)
			channels = append(channels, b.prefix+t)
		}
	}
	// Never call Unsubscribe without channels: it would drop them all.
	if len(channels) == 0 {
		return nil
	}
	return redisError(b.pubsub.Unsubscribe(ctx, channels...), "message broker")
}

// Ping returns an EUNAVAILABLE error when Redis cannot be reached or the
// broker is closed.
func (b *RedisBroker) Ping(ctx context.Context) error {
	if b.isClosed() {
		return errClosed("message broker")
	}
	return redisError(b.client.Ping(ctx).Err(), "message broker")
}

// Close closes the pub/sub connection and waits for the delivering
// goroutine to return (so it must not be called from the DeliverFunc). It leaves
// the client open. Closing twice returns an EUNAVAILABLE error.
func (b *RedisBroker) Close() error {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return errClosed("message broker")
	}
	b.closed.Store(true)
	b.mu.Unlock()
	err := b.pubsub.Close()
	<-b.done
	if err != nil {
		return redisError(err, "message broker")
	}
	return nil
}

func (b *RedisBroker) isClosed() bool { return b.closed.Load() }
