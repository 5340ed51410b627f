package hub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/hubtest"
	"github.com/aoba-chat/aoba/internal/redistest"
)

func TestSharedBrokerMemory(t *testing.T) {
	testSharedBroker(t, func(t *testing.T) aoba.Broker {
		b := hub.NewMemoryBroker()
		t.Cleanup(func() { b.Close() })
		return b
	})
}

func TestSharedBrokerRedis(t *testing.T) {
	srv := redistest.Shared(t)
	testSharedBroker(t, func(t *testing.T) aoba.Broker {
		b := hub.NewRedisBroker(newClient(t, srv), redistest.Prefix(t))
		t.Cleanup(func() { b.Close() })
		return b
	})
}

// testSharedBroker: two consumers subscribe a topic through a
// SharedBroker; the topic stays subscribed until both have unsubscribed.
// Whether a publication was delivered is decided by a marker published
// after it on a control topic that stays subscribed: the brokers deliver a
// subscriber's envelopes in publication order, so once the marker is in,
// an envelope of the topic is in too or never comes.
func testSharedBroker(t *testing.T, newBroker func(t *testing.T) aoba.Broker) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := newBroker(t)
	rec := hubtest.NewRecorder()
	b.RegisterDeliver(rec.Deliver)
	shared := hub.NewSharedBroker(b)
	topic, control := aoba.UserTopic("alice"), aoba.UserTopic("control")
	if err := shared.Subscribe(ctx, control); err != nil {
		t.Fatal(err)
	}

	round := 0
	// delivered publishes one envelope on topic, then a marker on the
	// control topic, and reports whether the envelope arrived.
	delivered := func(t *testing.T) bool {
		t.Helper()
		round++
		body := fmt.Sprintf(`{"round":%d}`, round)
		if err := b.Publish(ctx, aoba.Publication{Topic: topic, Envelope: aoba.Envelope{Frame: []byte(body)}}); err != nil {
			t.Fatal(err)
		}
		if err := b.Publish(ctx, aoba.Publication{Topic: control, Envelope: aoba.Envelope{Frame: []byte(body)}}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			var got, marker bool
			for _, d := range rec.All() {
				if string(d.Envelope.Frame) == body {
					got = got || d.Topic == topic
					marker = marker || d.Topic == control
				}
			}
			if marker {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the control marker was not delivered within 10s", round)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	if delivered(t) {
		t.Fatal("delivered before any subscription")
	}
	// Two consumers (the JSON socket's node and the XMPP server).
	if err := shared.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := shared.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if !delivered(t) {
		t.Fatal("not delivered with two subscriptions")
	}
	if err := shared.Unsubscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if !delivered(t) {
		t.Fatal("not delivered after one of two subscriptions ended")
	}
	if !delivered(t) {
		t.Fatal("not delivered the second time after one of two subscriptions ended")
	}
	if err := shared.Unsubscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	// Redis may still deliver a publication that overtook the UNSUBSCRIBE
	// it was sent after; deliveries stop within a few rounds.
	stopped := false
	for i := 0; i < 5 && !stopped; i++ {
		stopped = !delivered(t)
		if !stopped {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !stopped {
		t.Fatal("still delivered after both subscriptions ended")
	}
	// An unsubscription too many is ignored: the count does not go
	// negative, and the next subscription subscribes the broker again.
	if err := shared.Unsubscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := shared.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if !delivered(t) {
		t.Fatal("not delivered after subscribing again")
	}
	// Several topics at once count each topic.
	if err := shared.Subscribe(ctx, topic, aoba.UserTopic("bob")); err != nil {
		t.Fatal(err)
	}
	if err := shared.Unsubscribe(ctx, topic, aoba.UserTopic("bob")); err != nil {
		t.Fatal(err)
	}
	if !delivered(t) {
		t.Fatal("not delivered with one subscription left after a batch")
	}
}
