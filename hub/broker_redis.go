package hub

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
)

var _ aoba.Broker = (*RedisBroker)(nil)

// RedisBroker is the Broker of many pods, on Redis pub/sub. One goroutine
// per pub/sub connection reads it and calls the registered DeliverFunc, so
// delivery is ordered per topic; it drops what it reads while no
// DeliverFunc is registered.
//
// On one Redis (or a Sentinel-managed master) each pod holds ONE pub/sub
// connection carrying a channel (prefix + topic) per subscribed topic,
// with PUBLISH and SUBSCRIBE. On a Redis Cluster it uses sharded pub/sub:
// every topic falls in one of ShardBuckets buckets, whose channels share a
// hash tag (prefix + "{s<bucket>}" + topic) and so one slot, and the pod
// holds one pub/sub connection per bucket it uses, to the master of that
// slot (SSUBSCRIBE; SSUBSCRIBE of several channels needs them in one
// slot, also when go-redis subscribes them again after a reconnect).
// SPUBLISH reaches only the shard that owns the channel, so the cluster's
// fan-out capacity grows with its shards, up to ShardBuckets of them.
//
// When the connection is lost (Redis restarts, a master fails over), go-redis
// reconnects (to the new master) and subscribes its channels again;
// envelopes published meanwhile are lost, which the Broker contract
// allows: each topic subscribed again is handed a CloseOrder with
// aoba.CloseResync so that the sockets that may have missed them reconnect
// and catch up.
type RedisBroker struct {
	client  redis.UniversalClient
	prefix  string
	sharded bool
	deliver atomic.Pointer[aoba.DeliverFunc] // nil until RegisterDeliver

	mu      sync.Mutex // serializes Subscribe, Unsubscribe and Close
	topics  map[string]struct{}
	pubsubs map[int]*redis.PubSub // by bucket (sharded), or the one connection at 0
	// bucketTopics counts the subscribed topics of each bucket (sharded).
	bucketTopics map[int]int
	closed       atomic.Bool

	wmu     sync.Mutex
	waiters map[string][]chan struct{} // by channel: Subscribe calls awaiting Redis's confirmation

	readers sync.WaitGroup
	done    chan struct{} // closed when Close has stopped every reading goroutine
	stop    chan struct{} // closed by Close: ends reloadLoop

	health    atomic.Pointer[RedisHealth] // set by WatchHealth
	lastResub atomic.Int64                // unix ns of the last resubscription
}

// clusterReload is how often a sharded broker has its client reload the
// cluster's slot map. go-redis reloads it on its own only every minute or
// after a command meets a moved slot, and a pub/sub connection that lost
// its master reconnects where that map says: without this, a pod that
// publishes nothing to a failed-over shard would stay deaf to it.
const clusterReload = 2 * time.Second

// ShardBuckets is the number of hash-tagged buckets, and so of slots and
// pub/sub connections per pod at most, among which a Cluster's broker
// spreads its topics.
const ShardBuckets = 32

// receiveBuffer is the size of the channel between go-redis's reader and
// the delivering goroutine. go-redis drops a message that waits a minute
// for room in it; the DeliverFunc only queues, so that never happens short
// of a stuck pod.
const receiveBuffer = 1024

// NewRedisBroker returns a RedisBroker on client whose channels start with
// prefix (DefaultPrefix when empty); RegisterDeliver must follow before the
// first Subscribe. On a *redis.ClusterClient it uses sharded pub/sub. It
// connects lazily, so it never fails: Ping tells whether Redis can be
// reached.
func NewRedisBroker(client redis.UniversalClient, prefix string) *RedisBroker {
	b := &RedisBroker{
		client:       client,
		prefix:       prefixOr(prefix),
		sharded:      isCluster(client),
		topics:       make(map[string]struct{}),
		pubsubs:      make(map[int]*redis.PubSub),
		bucketTopics: make(map[int]int),
		waiters:      make(map[string][]chan struct{}),
		done:         make(chan struct{}),
		stop:         make(chan struct{}),
	}
	if cc, ok := client.(*redis.ClusterClient); ok {
		b.readers.Add(1)
		go b.reloadLoop(cc)
	} else {
		ps := client.Subscribe(context.Background())
		b.pubsubs[0] = ps
		b.start(ps)
	}
	return b
}

// reloadLoop reloads the cluster's slot map every clusterReload until
// Close.
func (b *RedisBroker) reloadLoop(cc *redis.ClusterClient) {
	defer b.readers.Done()
	t := time.NewTicker(clusterReload)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			cc.ReloadState(context.Background())
		}
	}
}

// start runs the reading goroutine of ps.
func (b *RedisBroker) start(ps *redis.PubSub) {
	b.readers.Add(1)
	go func() {
		defer b.readers.Done()
		b.run(ps.ChannelWithSubscriptions(redis.WithChannelSize(receiveBuffer)))
	}()
}

// bucket returns the shard bucket of topic (FNV-1a).
func bucket(topic string) int {
	h := uint32(2166136261)
	for i := 0; i < len(topic); i++ {
		h ^= uint32(topic[i])
		h *= 16777619
	}
	return int(h % ShardBuckets)
}

// Channel returns the Redis channel of topic: prefix + topic, or on a
// Cluster prefix + "{s<bucket>}" + topic. Operators may watch it with
// redis-cli SUBSCRIBE (SSUBSCRIBE on a Cluster).
func (b *RedisBroker) Channel(topic string) string {
	if !b.sharded {
		return b.prefix + topic
	}
	return b.prefix + "{s" + strconv.Itoa(bucket(topic)) + "}" + topic
}

// topicOf returns the topic of a channel, false for a channel that is not
// this broker's.
func (b *RedisBroker) topicOf(channel string) (string, bool) {
	rest, ok := strings.CutPrefix(channel, b.prefix)
	if !ok || !b.sharded {
		return rest, ok
	}
	if !strings.HasPrefix(rest, "{s") {
		return "", false
	}
	_, topic, ok := strings.Cut(rest, "}")
	return topic, ok
}

// RegisterDeliver sets the function that receives every envelope read from
// the pub/sub connections; what is read before it is dropped. It panics
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
	for m := range ch {
		switch m := m.(type) {
		case *redis.Message:
			b.handle(m)
		case *redis.Subscription:
			if (m.Kind == "subscribe" || m.Kind == "ssubscribe") && !b.confirm(m.Channel) {
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
// the sockets that follow the topic (a user's own, a group's members', a
// user's presence watchers) are told to reconnect and catch up from
// history, and on aoba.DirectoryTopic the Service empties the cache that
// topic keeps fresh (both by a CloseOrder with aoba.CloseResync). On a
// Cluster, a failover moves only some buckets: the topics of the others
// keep their sockets.
func (b *RedisBroker) resubscribed(channel string) {
	topic, ok := b.topicOf(channel)
	if !ok {
		return
	}
	b.lastResub.Store(time.Now().UnixNano())
	// Redis answers again on this connection: let the health watcher see
	// it before the sockets reconnect, so that their pod publishes again
	// (it fails fast while it believes Redis down).
	if h := b.health.Load(); h != nil {
		h.alive()
	}
	metricResyncs.Inc()
	b.handOver(topic, aoba.Envelope{Close: &aoba.CloseOrder{Code: aoba.CloseResync, Reason: "events may have been missed"}})
}

// WatchHealth makes the broker work with h, the health watcher of its
// client: when h sees one Redis (or Sentinel's master) return after an
// outage that no resubscription followed (the pub/sub connection held
// while commands failed fast, and the publications of the outage were
// dropped), every subscribed topic is handed a resync order, as after a
// resubscription.
func (b *RedisBroker) WatchHealth(h *RedisHealth) {
	if !b.health.CompareAndSwap(nil, h) {
		panic("hub: RedisBroker.WatchHealth called twice")
	}
	h.OnRecover(func(since time.Time) {
		// On a Cluster nothing fails fast: a publication lost with a
		// failed shard is covered by the resubscription of its buckets.
		if !h.failFast {
			return
		}
		go b.resyncUnlessResubscribed(since)
	})
}

// resyncGrace is how long a broker waits, after Redis returns, for its
// pub/sub connection to resubscribe (which hands out the resync orders)
// before it hands them out itself.
const resyncGrace = 5 * time.Second

// resyncUnlessResubscribed hands every subscribed topic a resync order
// unless a resubscription since `since` did, or does within resyncGrace.
func (b *RedisBroker) resyncUnlessResubscribed(since time.Time) {
	select {
	case <-time.After(resyncGrace):
	case <-b.stop:
		return
	}
	if b.lastResub.Load() >= since.UnixNano() {
		return
	}
	b.mu.Lock()
	topics := make([]string, 0, len(b.topics))
	for t := range b.topics {
		topics = append(topics, t)
	}
	b.mu.Unlock()
	for _, t := range topics {
		metricResyncs.Inc()
		b.handOver(t, aoba.Envelope{Close: &aoba.CloseOrder{Code: aoba.CloseResync, Reason: "events may have been missed"}})
	}
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
	topic, ok := b.topicOf(msg.Channel)
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
			if b.sharded {
				pipe.SPublish(ctx, b.Channel(p.Topic), payloads[i])
			} else {
				pipe.Publish(ctx, b.Channel(p.Topic), payloads[i])
			}
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
			channels = append(channels, b.Channel(t))
		}
	}
	if len(channels) == 0 {
		b.mu.Unlock()
		return nil
	}
	ws := b.wait(channels)
	err := b.subscribe(ctx, channels)
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

// subscribe sends the (S)SUBSCRIBE of channels, on a Cluster one per
// bucket on that bucket's connection, opened (and given its reading
// goroutine) on first use. Even when it fails, go-redis keeps the channels
// and subscribes them once the connection comes back. b.mu is held.
func (b *RedisBroker) subscribe(ctx context.Context, channels []string) error {
	if !b.sharded {
		return b.pubsubs[0].Subscribe(ctx, channels...)
	}
	var firstErr error
	for bk, chans := range b.byBucket(channels) {
		ps := b.pubsubs[bk]
		fresh := ps == nil
		if fresh {
			// No channel yet, so no connection: the first SSUBSCRIBE
			// opens it to the master of the bucket's slot.
			ps = b.client.SSubscribe(context.Background())
			b.pubsubs[bk] = ps
		}
		b.bucketTopics[bk] += len(chans)
		if err := ps.SSubscribe(ctx, chans...); err != nil && firstErr == nil {
			firstErr = err
		}
		if fresh {
			b.start(ps)
		}
	}
	return firstErr
}

// byBucket groups channels (of this broker) by shard bucket.
func (b *RedisBroker) byBucket(channels []string) map[int][]string {
	m := make(map[int][]string)
	for _, c := range channels {
		t, _ := b.topicOf(c)
		m[bucket(t)] = append(m[bucket(t)], c)
	}
	return m
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
			channels = append(channels, b.Channel(t))
		}
	}
	// Never call Unsubscribe without channels: it would drop them all.
	if len(channels) == 0 {
		return nil
	}
	if !b.sharded {
		return redisError(b.pubsubs[0].Unsubscribe(ctx, channels...), "message broker")
	}
	var firstErr error
	for bk, chans := range b.byBucket(channels) {
		ps := b.pubsubs[bk]
		if ps == nil {
			continue
		}
		b.bucketTopics[bk] -= len(chans)
		var err error
		if b.bucketTopics[bk] <= 0 {
			// An empty connection would reconnect to any node, where a
			// later SSUBSCRIBE of the bucket would be refused (MOVED):
			// close it, and open a new one when the bucket is used again.
			delete(b.bucketTopics, bk)
			delete(b.pubsubs, bk)
			err = ps.Close()
		} else {
			err = ps.SUnsubscribe(ctx, chans...)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return redisError(firstErr, "message broker")
}

// Ping returns an EUNAVAILABLE error when Redis cannot be reached or the
// broker is closed.
func (b *RedisBroker) Ping(ctx context.Context) error {
	if b.isClosed() {
		return errClosed("message broker")
	}
	return redisError(b.client.Ping(ctx).Err(), "message broker")
}

// Close closes the pub/sub connections and waits for the delivering
// goroutines to return (so it must not be called from the DeliverFunc). It leaves
// the client open. Closing twice returns an EUNAVAILABLE error.
func (b *RedisBroker) Close() error {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return errClosed("message broker")
	}
	b.closed.Store(true)
	close(b.stop)
	var err error
	for _, ps := range b.pubsubs {
		if cerr := ps.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	b.mu.Unlock()
	b.readers.Wait()
	close(b.done)
	if err != nil {
		return redisError(err, "message broker")
	}
	return nil
}

func (b *RedisBroker) isClosed() bool { return b.closed.Load() }
