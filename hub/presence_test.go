package hub_test

import (
	"context"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/hubtest"
	"github.com/aoba-chat/aoba/internal/redistest"
)

// testPresenceOptions are short durations for tests.
var testPresenceOptions = hub.PresenceOptions{
	Grace:             hubtest.PresenceGrace,
	HeartbeatInterval: 300 * time.Millisecond,
	TTL:               time.Second,
	SweepInterval:     100 * time.Millisecond,
}

func TestMemoryPresence(t *testing.T) {
	hubtest.RunPresenceTests(t, func(t *testing.T) aoba.PresenceRegistry {
		p := hub.NewMemoryPresence(testPresenceOptions)
		t.Cleanup(func() { p.Close() })
		return p
	})
}

func TestRedisPresence(t *testing.T) {
	srv := redistest.Shared(t)
	client := newClient(t, srv)
	hubtest.RunPresenceTests(t, func(t *testing.T) aoba.PresenceRegistry {
		p := hub.NewRedisPresence(client, redistest.Prefix(t), "pod-1", testPresenceOptions)
		t.Cleanup(func() { p.Close() })
		return p
	})

	ctx := context.Background()
	const on, off = aoba.StatusOnline, aoba.StatusOffline

	t.Run("TwoPods", func(t *testing.T) {
		prefix := redistest.Prefix(t)
		recA, recB := &hubtest.PresenceRecorder{}, &hubtest.PresenceRecorder{}
		a := hub.NewRedisPresence(client, prefix, "pod-a", testPresenceOptions)
		a.RegisterChangeHandler(recA.OnChange)
		defer a.Close()
		b := hub.NewRedisPresence(client, prefix, "pod-b", testPresenceOptions)
		b.RegisterChangeHandler(recB.OnChange)
		defer b.Close()

		// The same connection id on two pods is two connections.
		if err := a.Connect(ctx, "alice", "c1"); err != nil {
			t.Fatal(err)
		}
		if err := b.Connect(ctx, "alice", "c1"); err != nil {
			t.Fatal(err)
		}
		recA.WaitStatuses(t, "alice", on)
		if err := a.Disconnect(ctx, "alice", "c1"); err != nil {
			t.Fatal(err)
		}
		// Outlive the TTL: pod B's heartbeats keep alice online.
		time.Sleep(testPresenceOptions.TTL + 300*time.Millisecond)
		m, err := a.FindPresence(ctx, []string{"alice"})
		if err != nil {
			t.Fatal(err)
		}
		if m["alice"].Status != on {
			t.Fatalf("alice = %+v on pod A while connected on pod B, want online", m["alice"])
		}
		if err := b.Disconnect(ctx, "alice", "c1"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(hubtest.PresenceTimeout)
		for len(recA.Events("alice"))+len(recB.Events("alice")) < 2 {
			if time.Now().After(deadline) {
				t.Fatal("no offline event on either pod")
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(4 * hubtest.PresenceGrace)
		evs := append(recA.Events("alice"), recB.Events("alice")...)
		if len(evs) != 2 || evs[1].Status != off || evs[1].LastSeen == nil {
			t.Fatalf("events on both pods = %+v, want one online and one offline", evs)
		}
		if len(recB.Events("alice")) > 0 && recB.Events("alice")[0].Status == on {
			t.Fatal("pod B emitted online although pod A had the first connection")
		}
	})

	t.Run("DeadPodIsSwept", func(t *testing.T) {
		prefix := redistest.Prefix(t)
		deadClient := newClient(t, srv)
		recDead, recLive := &hubtest.PresenceRecorder{}, &hubtest.PresenceRecorder{}
		dead := hub.NewRedisPresence(deadClient, prefix, "pod-dead", testPresenceOptions)
		dead.RegisterChangeHandler(recDead.OnChange)
		defer dead.Close()
		live := hub.NewRedisPresence(client, prefix, "pod-live", testPresenceOptions)
		live.RegisterChangeHandler(recLive.OnChange)
		defer live.Close()

		if err := dead.Connect(ctx, "bob", "c1"); err != nil {
			t.Fatal(err)
		}
		if err := live.Connect(ctx, "carol", "c1"); err != nil {
			t.Fatal(err)
		}
		recDead.WaitStatuses(t, "bob", on)
		// The pod crashes: no Disconnect, no more heartbeats.
		crashed := time.Now()
		deadClient.Close()

		recLive.WaitStatuses(t, "bob", off)
		ev := recLive.Events("bob")[0]
		if took := time.Since(crashed); took < testPresenceOptions.TTL-testPresenceOptions.HeartbeatInterval {
			t.Fatalf("bob went offline %v after the crash, before the TTL", took)
		}
		if ev.LastSeen == nil || ev.LastSeen.Before(crashed) {
			t.Fatalf("LastSeen = %v, want the time the connection was found dead (after %v)", ev.LastSeen, crashed)
		}
		m, err := live.FindPresence(ctx, []string{"bob", "carol"})
		if err != nil {
			t.Fatal(err)
		}
		if m["bob"].Status != off || m["bob"].LastSeen == nil || m["carol"].Status != on {
			t.Fatalf("presence = %+v, want bob offline with LastSeen, carol online", m)
		}
		// carol's heartbeats kept her online all along.
		if got := recLive.Statuses("carol"); len(got) != 1 || got[0] != on {
			t.Fatalf("carol's events = %v, want only online", got)
		}
	})

	t.Run("RecoversAfterRedisRestart", func(t *testing.T) {
		own := redistest.Start(t)
		rec := &hubtest.PresenceRecorder{}
		p := hub.NewRedisPresence(newClient(t, own), "", "pod-1", testPresenceOptions)
		p.RegisterChangeHandler(rec.OnChange)
		defer p.Close()
		if err := p.Connect(ctx, "dave", "c1"); err != nil {
			t.Fatal(err)
		}
		rec.WaitStatuses(t, "dave", on)
		own.Restart() // an empty Redis: the heartbeat puts dave back
		rec.WaitStatuses(t, "dave", on, on)
		m, err := p.FindPresence(ctx, []string{"dave"})
		if err != nil {
			t.Fatal(err)
		}
		if m["dave"].Status != on {
			t.Fatalf("dave = %+v after the restart, want online", m["dave"])
		}
	})

	t.Run("Unavailable", func(t *testing.T) {
		own := redistest.Start(t)
		p := hub.NewRedisPresence(newClient(t, own), "", "pod-1", testPresenceOptions)
		defer p.Close()
		own.Stop()
		down, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := p.Connect(down, "erin", "c1"); aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
			t.Fatalf("connect with Redis down: %v, want %s", err, aoba.EUNAVAILABLE)
		}
		if _, err := p.FindPresence(down, []string{"erin"}); aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
			t.Fatalf("find with Redis down: %v, want %s", err, aoba.EUNAVAILABLE)
		}
	})
}
