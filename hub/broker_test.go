package hub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/hubtest"
	"github.com/aoba-chat/aoba/internal/redistest"
)

func TestMemoryBroker(t *testing.T) {
	hubtest.RunBrokerTests(t, func(t *testing.T) aoba.Broker {
		b := hub.NewMemoryBroker()
		t.Cleanup(func() { b.Close() })
		return b
	})
}

func TestRedisBroker(t *testing.T) {
	srv := redistest.Shared(t)
	client := newClient(t, srv)
	hubtest.RunBrokerTests(t, func(t *testing.T) aoba.Broker {
		b := hub.NewRedisBroker(client, redistest.Prefix(t))
		t.Cleanup(func() { b.Close() })
		return b
	})

	t.Run("TwoPods", func(t *testing.T) {
		ctx := context.Background()
		prefix := redistest.Prefix(t)
		recA, recB := hubtest.NewRecorder(), hubtest.NewRecorder()
		a := hub.NewRedisBroker(newClient(t, srv), prefix)
		a.RegisterDeliver(recA.Deliver)
		defer a.Close()
		b := hub.NewRedisBroker(newClient(t, srv), prefix)
		b.RegisterDeliver(recB.Deliver)
		defer b.Close()
		other := hub.NewRedisBroker(client, redistest.Prefix(t))
		other.RegisterDeliver(func(string, aoba.Envelope) {
			t.Error("a broker with another prefix received an envelope")
		})
		defer other.Close()
		if err := a.Subscribe(ctx, aoba.UserTopic("alice")); err != nil {
			t.Fatal(err)
		}
		if err := b.Subscribe(ctx, aoba.UserTopic("alice"), aoba.UserTopic("bob")); err != nil {
			t.Fatal(err)
		}
		if err := other.Subscribe(ctx, aoba.UserTopic("alice"), aoba.UserTopic("bob")); err != nil {
			t.Fatal(err)
		}
		err := a.Publish(ctx,
			aoba.Publication{Topic: aoba.UserTopic("alice"), Envelope: aoba.Envelope{Frame: []byte(`{"n":1}`)}},
			aoba.Publication{Topic: aoba.UserTopic("bob"), Envelope: aoba.Envelope{Frame: []byte(`{"n":2}`)}},
		)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		gotB := recB.WaitFor(t, 2, 5*time.Second)
		gotA := recA.WaitFor(t, 1, 5*time.Second)
		if gotA[0].Topic != aoba.UserTopic("alice") || string(gotA[0].Envelope.Frame) != `{"n":1}` {
			t.Errorf("pod A got %v", gotA)
		}
		if gotB[0].Topic != aoba.UserTopic("alice") || gotB[1].Topic != aoba.UserTopic("bob") {
			t.Errorf("pod B got %v", gotB)
		}
		// Let a stray delivery to the other prefix surface before the end.
		time.Sleep(50 * time.Millisecond)
		if n := len(recA.All()); n != 1 {
			t.Errorf("pod A got %d deliveries, want 1", n)
		}
	})

	t.Run("RedisRestart", func(t *testing.T) {
		ctx := context.Background()
		own := redistest.Start(t)
		rec := hubtest.NewRecorder()
		pub := hub.NewRedisBroker(newClient(t, own), "")
		pub.RegisterDeliver(func(string, aoba.Envelope) {})
		defer pub.Close()
		sub := hub.NewRedisBroker(newClient(t, own), "")
		sub.RegisterDeliver(rec.Deliver)
		defer sub.Close()
		if err := sub.Subscribe(ctx, aoba.UserTopic("alice"), aoba.DirectoryTopic, aoba.GroupTopic("g1")); err != nil {
			t.Fatal(err)
		}
		send := func(s string) error {
			return pub.Publish(ctx, aoba.Publication{Topic: aoba.UserTopic("alice"), Envelope: aoba.Envelope{Frame: []byte(s)}})
		}
		if err := send("before"); err != nil {
			t.Fatal(err)
		}
		rec.WaitFor(t, 1, 5*time.Second)

		own.Stop()
		down, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		err := pub.Publish(down, aoba.Publication{Topic: aoba.UserTopic("alice"), Envelope: aoba.Envelope{Frame: []byte("down")}})
		if aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
			t.Fatalf("publish with Redis down: %v, want %s", err, aoba.EUNAVAILABLE)
		}
		if err := sub.Ping(down); aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
			t.Fatalf("ping with Redis down: %v, want %s", err, aoba.EUNAVAILABLE)
		}
		own.Restart()

		// The subscriber resubscribes on its own, tells the followers of
		// every topic it held to catch up (the user's and the group's
		// sockets) and the directory cache to empty, once each, and hears
		// new publications; publish until it does.
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; ; i++ {
			resync := map[string]int{}
			var frames int
			for _, d := range rec.All() {
				if d.Envelope.Close != nil && d.Envelope.Close.Code == aoba.CloseResync {
					resync[d.Topic]++
				} else if d.Envelope.Frame != nil {
					frames++
				}
			}
			if resync[aoba.UserTopic("alice")] > 1 || resync[aoba.DirectoryTopic] > 1 || resync[aoba.GroupTopic("g1")] > 1 {
				t.Fatalf("resync orders after one restart: %v, want one on each of the user, group and directory topics", resync)
			}
			if resync[aoba.UserTopic("alice")] == 1 && resync[aoba.DirectoryTopic] == 1 && resync[aoba.GroupTopic("g1")] == 1 && frames > 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no resync orders and delivery within 20s of the Redis restart: resync orders %v, %d frames", resync, frames)
			}
			_ = send(fmt.Sprintf("after %d", i))
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func TestEnvelopeRoundTripAcrossPods(t *testing.T) {
	// Frames are opaque bytes: anything, including invalid UTF-8, survives.
	ctx := context.Background()
	srv := redistest.Shared(t)
	rec := hubtest.NewRecorder()
	b := hub.NewRedisBroker(newClient(t, srv), redistest.Prefix(t))
	b.RegisterDeliver(rec.Deliver)
	defer b.Close()
	if err := b.Subscribe(ctx, "u:x"); err != nil {
		t.Fatal(err)
	}
	frames := [][]byte{{0xff, 0xfe, 0x00, 0x01}, nil, []byte(`{}`)}
	for _, f := range frames {
		if err := b.Publish(ctx, aoba.Publication{Topic: "u:x", Envelope: aoba.Envelope{Frame: f}}); err != nil {
			t.Fatal(err)
		}
	}
	got := rec.WaitFor(t, len(frames), 5*time.Second)
	for i, f := range frames {
		if string(got[i].Envelope.Frame) != string(f) {
			t.Errorf("frame %d = %q, want %q", i, got[i].Envelope.Frame, f)
		}
	}
}

func TestCollectors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for _, c := range hub.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatalf("register: %v", err)
		}
	}
	count := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "aoba_hub_publications_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "impl" && l.GetValue() == "memory" {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	b := hub.NewMemoryBroker()
	defer b.Close()
	b.RegisterDeliver(func(string, aoba.Envelope) {})
	before := count()
	pubs := []aoba.Publication{{Topic: "u:a"}, {Topic: "u:b"}, {Topic: "u:c"}}
	if err := b.Publish(context.Background(), pubs...); err != nil {
		t.Fatal(err)
	}
	if got := count() - before; got != 3 {
		t.Fatalf("publications counter grew by %v, want 3", got)
	}
}
