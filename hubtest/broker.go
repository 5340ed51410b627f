package hubtest

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// NewBrokerFunc returns a new, empty broker with no DeliverFunc registered
// (the suite registers one). It closes the broker in t.Cleanup, ignoring
// the error of a second Close.
type NewBrokerFunc func(t *testing.T) aoba.Broker

// Delivery is one call of a DeliverFunc.
type Delivery struct {
	Topic    string
	Envelope aoba.Envelope
}

// Recorder records deliveries; its Deliver method is an aoba.DeliverFunc.
type Recorder struct {
	mu   sync.Mutex
	got  []Delivery
	wake chan struct{}
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{wake: make(chan struct{}, 1)} }

// Deliver records one delivery.
func (r *Recorder) Deliver(topic string, env aoba.Envelope) {
	r.mu.Lock()
	r.got = append(r.got, Delivery{Topic: topic, Envelope: env})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// All returns a copy of the deliveries so far.
func (r *Recorder) All() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.got...)
}

// WaitFor waits until n deliveries were recorded and returns them all; it
// fails the test after timeout.
func (r *Recorder) WaitFor(t testing.TB, n int, timeout time.Duration) []Delivery {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		if got := r.All(); len(got) >= n {
			return got
		}
		select {
		case <-r.wake:
		case <-timer.C:
			got := r.All()
			t.Fatalf("got %d deliveries within %v, want %d: %v", len(got), timeout, n, got)
			return nil
		}
	}
}

// deliveryTimeout bounds every wait for a delivery.
const deliveryTimeout = 5 * time.Second

func frame(s string) []byte { return []byte(fmt.Sprintf(`{"type":"message","data":{"text":%q}}`, s)) }

// sameEnvelope reports whether a delivered envelope carries what was
// published.
func sameEnvelope(got, want aoba.Envelope) bool {
	return bytes.Equal(got.Frame, want.Frame) && got.ExceptConn == want.ExceptConn && got.ExceptUser == want.ExceptUser &&
		got.Join == want.Join && got.Leave == want.Leave && reflect.DeepEqual(got.Close, want.Close)
}

// RunBrokerTests runs the aoba.Broker contract against the brokers that
// newBroker returns.
func RunBrokerTests(t *testing.T, newBroker NewBrokerFunc) {
	ctx := context.Background()
	setup := func(t *testing.T) (aoba.Broker, *Recorder) {
		rec := NewRecorder()
		b := newBroker(t)
		b.RegisterDeliver(rec.Deliver)
		return b, rec
	}
	// marker publishes a last envelope on a subscribed topic and waits for
	// it: everything published before it on this pod was delivered by then,
	// since one Publish call reaches the broker before the next.
	marker := func(t *testing.T, b aoba.Broker, rec *Recorder, want int) []Delivery {
		t.Helper()
		if err := b.Subscribe(ctx, "u:marker"); err != nil {
			t.Fatalf("subscribe marker: %v", err)
		}
		if err := b.Publish(ctx, aoba.Publication{Topic: "u:marker", Envelope: aoba.Envelope{Frame: frame("marker")}}); err != nil {
			t.Fatalf("publish marker: %v", err)
		}
		got := rec.WaitFor(t, want+1, deliveryTimeout)
		if last := got[len(got)-1]; last.Topic != "u:marker" {
			t.Fatalf("last delivery on %q, want the marker", last.Topic)
		}
		return got[:len(got)-1]
	}

	t.Run("RegisterTwicePanics", func(t *testing.T) {
		b, _ := setup(t)
		defer func() {
			if recover() == nil {
				t.Error("a second RegisterDeliver did not panic")
			}
		}()
		b.RegisterDeliver(func(string, aoba.Envelope) {})
	})

	t.Run("DeliversEnvelope", func(t *testing.T) {
		b, rec := setup(t)
		if err := b.Subscribe(ctx, aoba.UserTopic("alice")); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		envs := []aoba.Envelope{
			{Frame: frame("hello"), ExceptConn: "conn-1"},
			{Close: &aoba.CloseOrder{Code: aoba.CloseSessionRevoked, Reason: "logout", Session: "s1", KeepSession: "s2"}},
			{Frame: frame("ünïcödé \u2028 \x00 bytes")},
			{Frame: frame("typing"), ExceptUser: "alice-id", ExceptConn: "conn-2"},
			{Join: "group-1"},
			{Leave: "group-2"},
		}
		for _, e := range envs {
			if err := b.Publish(ctx, aoba.Publication{Topic: aoba.UserTopic("alice"), Envelope: e}); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
		got := rec.WaitFor(t, len(envs), deliveryTimeout)
		for i, d := range got {
			if d.Topic != aoba.UserTopic("alice") {
				t.Errorf("delivery %d on topic %q", i, d.Topic)
			}
			if !sameEnvelope(d.Envelope, envs[i]) {
				t.Errorf("delivery %d = %+v, want %+v", i, d.Envelope, envs[i])
			}
		}
	})

	t.Run("SharedFrameManyTopics", func(t *testing.T) {
		// One frame shared by many publications, as the Service publishes
		// a group event: envelopes that differ only in a small field must
		// each arrive as published.
		b, rec := setup(t)
		shared := frame("shared")
		sameLen := frame("SHARED") // same length, other bytes
		var pubs []aoba.Publication
		for i := 0; i < 6; i++ {
			env := aoba.Envelope{Frame: shared}
			switch i {
			case 2:
				env.ExceptConn = "conn-2"
			case 3:
				env.ExceptUser = "user-3"
			case 4:
				env.Frame = sameLen
			case 5:
				env.Frame = shared[:len(shared)-1]
			}
			pubs = append(pubs, aoba.Publication{Topic: aoba.UserTopic(fmt.Sprint("m", i)), Envelope: env})
		}
		pubs = append(pubs, aoba.Publication{Topic: aoba.GroupTopic("g1"), Envelope: aoba.Envelope{Frame: shared, ExceptUser: "user-3"}})
		for _, p := range pubs {
			if err := b.Subscribe(ctx, p.Topic); err != nil {
				t.Fatalf("subscribe: %v", err)
			}
		}
		if err := b.Publish(ctx, pubs...); err != nil {
			t.Fatalf("publish: %v", err)
		}
		// Delivery is ordered per topic only: a sharded broker carries
		// topics on several connections.
		got := rec.WaitFor(t, len(pubs), deliveryTimeout)
		byTopic := make(map[string][]Delivery)
		for _, d := range got {
			byTopic[d.Topic] = append(byTopic[d.Topic], d)
		}
		for _, p := range pubs {
			if ds := byTopic[p.Topic]; len(ds) != 1 || !sameEnvelope(ds[0].Envelope, p.Envelope) {
				t.Errorf("deliveries on %s = %+v, want one of %+v", p.Topic, ds, p.Envelope)
			}
		}
	})

	t.Run("OrderedPerTopic", func(t *testing.T) {
		b, rec := setup(t)
		topics := []string{aoba.UserTopic("a"), aoba.UserTopic("b"), aoba.PresenceTopic("a")}
		if err := b.Subscribe(ctx, topics...); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		const rounds = 40
		var pubs []aoba.Publication
		for i := 0; i < rounds; i++ {
			for _, tp := range topics {
				pubs = append(pubs, aoba.Publication{Topic: tp, Envelope: aoba.Envelope{Frame: frame(fmt.Sprint(i))}})
			}
		}
		// Half in one call, the rest one call each.
		half := len(pubs) / 2
		if err := b.Publish(ctx, pubs[:half]...); err != nil {
			t.Fatalf("publish batch: %v", err)
		}
		for _, p := range pubs[half:] {
			if err := b.Publish(ctx, p); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
		got := rec.WaitFor(t, len(pubs), deliveryTimeout)
		next := map[string]int{}
		for _, d := range got {
			want := frame(fmt.Sprint(next[d.Topic]))
			if !bytes.Equal(d.Envelope.Frame, want) {
				t.Fatalf("topic %s: got %s, want %s", d.Topic, d.Envelope.Frame, want)
			}
			next[d.Topic]++
		}
		for _, tp := range topics {
			if next[tp] != rounds {
				t.Errorf("topic %s: %d deliveries, want %d", tp, next[tp], rounds)
			}
		}
	})

	t.Run("OnlySubscribedTopics", func(t *testing.T) {
		b, rec := setup(t)
		if err := b.Subscribe(ctx, aoba.UserTopic("alice")); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		err := b.Publish(ctx,
			aoba.Publication{Topic: aoba.UserTopic("bob"), Envelope: aoba.Envelope{Frame: frame("for bob")}},
			aoba.Publication{Topic: aoba.UserTopic("alice"), Envelope: aoba.Envelope{Frame: frame("for alice")}},
			aoba.Publication{Topic: aoba.PresenceTopic("alice"), Envelope: aoba.Envelope{Frame: frame("presence")}},
		)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		got := marker(t, b, rec, 1)
		if len(got) != 1 || got[0].Topic != aoba.UserTopic("alice") {
			t.Fatalf("deliveries = %v, want only the one on u:alice", got)
		}
	})

	t.Run("SubscribeTwiceDeliversOnce", func(t *testing.T) {
		b, rec := setup(t)
		for i := 0; i < 2; i++ {
			if err := b.Subscribe(ctx, aoba.UserTopic("alice"), aoba.UserTopic("alice")); err != nil {
				t.Fatalf("subscribe %d: %v", i, err)
			}
		}
		if err := b.Publish(ctx, aoba.Publication{Topic: aoba.UserTopic("alice"), Envelope: aoba.Envelope{Frame: frame("x")}}); err != nil {
			t.Fatalf("publish: %v", err)
		}
		if got := marker(t, b, rec, 1); len(got) != 1 {
			t.Fatalf("got %d deliveries, want 1: %v", len(got), got)
		}
	})

	t.Run("Unsubscribe", func(t *testing.T) {
		b, rec := setup(t)
		if err := b.Subscribe(ctx, aoba.UserTopic("alice"), aoba.UserTopic("bob")); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		if err := b.Unsubscribe(ctx, aoba.UserTopic("alice"), "u:never-subscribed"); err != nil {
			t.Fatalf("unsubscribe: %v", err)
		}
		if err := b.Unsubscribe(ctx); err != nil {
			t.Fatalf("unsubscribe nothing: %v", err)
		}
		err := b.Publish(ctx,
			aoba.Publication{Topic: aoba.UserTopic("alice"), Envelope: aoba.Envelope{Frame: frame("gone")}},
			aoba.Publication{Topic: aoba.UserTopic("bob"), Envelope: aoba.Envelope{Frame: frame("still here")}},
		)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		got := marker(t, b, rec, 1)
		if len(got) != 1 || got[0].Topic != aoba.UserTopic("bob") {
			t.Fatalf("deliveries = %v, want only the one on u:bob", got)
		}
	})

	t.Run("PublishNothing", func(t *testing.T) {
		b, _ := setup(t)
		if err := b.Publish(ctx); err != nil {
			t.Fatalf("publish of nothing: %v", err)
		}
	})

	t.Run("DeliverMayCallBroker", func(t *testing.T) {
		// A DeliverFunc that subscribes or publishes must not deadlock.
		b := newBroker(t)
		rec := NewRecorder()
		b.RegisterDeliver(func(topic string, env aoba.Envelope) {
			rec.Deliver(topic, env)
			if topic == aoba.UserTopic("first") {
				_ = b.Publish(ctx, aoba.Publication{Topic: aoba.UserTopic("second"), Envelope: env})
			}
		})
		if err := b.Subscribe(ctx, aoba.UserTopic("first"), aoba.UserTopic("second")); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		if err := b.Publish(ctx, aoba.Publication{Topic: aoba.UserTopic("first"), Envelope: aoba.Envelope{Frame: frame("x")}}); err != nil {
			t.Fatalf("publish: %v", err)
		}
		got := rec.WaitFor(t, 2, deliveryTimeout)
		if got[1].Topic != aoba.UserTopic("second") {
			t.Fatalf("deliveries = %v", got)
		}
	})

	t.Run("Close", func(t *testing.T) {
		b, _ := setup(t)
		if err := b.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		pub := aoba.Publication{Topic: aoba.UserTopic("a"), Envelope: aoba.Envelope{Frame: frame("x")}}
		if err := b.Publish(ctx, pub); aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
			t.Errorf("publish after close: %v, want %s", err, aoba.EUNAVAILABLE)
		}
		if err := b.Subscribe(ctx, "u:a"); err == nil {
			t.Error("subscribe after close succeeded")
		}
		if err := b.Ping(ctx); err == nil {
			t.Error("ping after close succeeded")
		}
	})
}
