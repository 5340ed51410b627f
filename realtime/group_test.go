package realtime_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/internal/redistest"
	"github.com/aoba-chat/aoba/realtime"
)

// countingBroker records what goes through a Broker: every publication and
// the topics currently subscribed. It subscribes group topics after
// groupDelay, as a slow broker would, so that a test sees whether a
// membership change is applied before the event announcing it.
type countingBroker struct {
	aoba.Broker
	groupDelay time.Duration

	mu         sync.Mutex
	pubs       []aoba.Publication
	calls      int // Publish calls
	subscribed map[string]bool
}

func newCountingBroker(b aoba.Broker) *countingBroker {
	return &countingBroker{Broker: b, subscribed: make(map[string]bool), groupDelay: 50 * time.Millisecond}
}

func (b *countingBroker) Publish(ctx context.Context, pubs ...aoba.Publication) error {
	b.mu.Lock()
	b.pubs = append(b.pubs, pubs...)
	b.calls++
	b.mu.Unlock()
	return b.Broker.Publish(ctx, pubs...)
}

func (b *countingBroker) Subscribe(ctx context.Context, topics ...string) error {
	for _, t := range topics {
		if strings.HasPrefix(t, "g:") {
			time.Sleep(b.groupDelay)
			break
		}
	}
	b.mu.Lock()
	for _, t := range topics {
		b.subscribed[t] = true
	}
	b.mu.Unlock()
	return b.Broker.Subscribe(ctx, topics...)
}

func (b *countingBroker) Unsubscribe(ctx context.Context, topics ...string) error {
	b.mu.Lock()
	for _, t := range topics {
		delete(b.subscribed, t)
	}
	b.mu.Unlock()
	return b.Broker.Unsubscribe(ctx, topics...)
}

// reset forgets the publications so far.
func (b *countingBroker) reset() {
	b.mu.Lock()
	b.pubs, b.calls = nil, 0
	b.mu.Unlock()
}

// published returns the publications since the last reset on topics with
// the given prefix ("u:", "g:", "p:").
func (b *countingBroker) published(prefix string) []aoba.Publication {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []aoba.Publication
	for _, p := range b.pubs {
		if strings.HasPrefix(p.Topic, prefix) {
			out = append(out, p)
		}
	}
	return out
}

func (b *countingBroker) isSubscribed(topic string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subscribed[topic]
}

// cluster is two pods, A and B, sharing one store; with Redis they are two
// pods of a cluster, with the in-process hub A and B are the same pod.
// Every broker is wrapped in a countingBroker.
type cluster struct {
	a, b       *testEnv
	brA, brB   *countingBroker
	sameBroker bool
}

func newMemoryCluster(t *testing.T) *cluster {
	store := openStore(t)
	br := newCountingBroker(hub.NewMemoryBroker())
	e := newPod(t, realtime.Config{RateStandard: 1000}, store, br)
	return &cluster{a: e, b: e, brA: br, brB: br, sameBroker: true}
}

func newRedisCluster(t *testing.T) *cluster {
	srv := redistest.Start(t)
	store := openStore(t)
	prefix := redistest.Prefix(t)
	pod := func() (*testEnv, *countingBroker) {
		opt, err := redis.ParseURL(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		client := redis.NewClient(opt)
		t.Cleanup(func() { _ = client.Close() })
		br := newCountingBroker(hub.NewRedisBroker(client, prefix))
		return newPod(t, realtime.Config{RateStandard: 1000}, store, br), br
	}
	c := &cluster{}
	c.a, c.brA = pod()
	c.b, c.brB = pod()
	return c
}

// groupMessage sends a group message from c through its socket and
// returns it as acknowledged.
func groupMessage(t *testing.T, c *client, groupID, content string) aoba.MessageView {
	t.Helper()
	c.send(realtime.FrameMessageSend, "gm", aoba.SendInput{To: groupID, Content: content, Type: aoba.MessageGroupChat})
	return decodeData[aoba.MessageView](t, c.expect(aoba.FrameAck))
}

// expectMessage reads the next frame of each client, which must be message m.
func expectMessage(t *testing.T, m aoba.MessageView, cs map[string]*client) {
	t.Helper()
	for name, c := range cs {
		got := decodeData[aoba.MessageView](t, c.expect(aoba.FrameMessage))
		if got.ID != m.ID || got.Type != aoba.MessageGroupChat {
			t.Fatalf("%s got %+v, want group message %s", name, got, m.ID)
		}
	}
}

// expectGroupEvent reads the next frame of c, which must be a `group` event.
func expectGroupEvent(t *testing.T, c *client, event string) {
	t.Helper()
	if got := decodeData[aoba.GroupEvent](t, c.expect(aoba.FrameGroup)); string(got.Event) != event {
		t.Fatalf("group event %+v, want %s", got, event)
	}
}

func TestGroupTopic(t *testing.T) {
	for name, newCluster := range map[string]func(*testing.T) *cluster{"Memory": newMemoryCluster, "Redis": newRedisCluster} {
		t.Run(name, func(t *testing.T) {
			testGroupTopic(t, newCluster(t))
		})
	}
}

func testGroupTopic(t *testing.T, cl *cluster) {
	ctx := context.Background()
	a, b := cl.a, cl.b
	ownerTok, owner := a.user("owner")
	m1Tok, _ := a.user("member1")
	m2Tok, _ := a.user("member2")
	xTok, _ := a.user("xavier")
	yTok, y := a.user("yvonne")
	g, err := a.svc.CreateGroup(ctx, owner, "team", nil)
	if err != nil {
		t.Fatal(err)
	}
	gid := g.Group.ID
	for _, m := range []string{"member1", "member2"} {
		if _, err := a.svc.AddMember(ctx, owner, gid, m, "member"); err != nil {
			t.Fatal(err)
		}
	}
	// Members alternate between the pods; the owner has a socket on each.
	o1, o2 := a.dial(ownerTok), b.dial(ownerTok)
	m1, m2 := b.dial(m1Tok), a.dial(m2Tok)
	x, yv := b.dial(xTok), b.dial(yTok)
	all := []*client{o1, o2, m1, m2, x, yv}
	for _, c := range all {
		c.quiet() // the socket's groups are subscribed once it answers
	}

	t.Run("OnePublicationPerMessage", func(t *testing.T) {
		use(t, all...)
		cl.brA.reset()
		sent := groupMessage(t, o1, gid, "hello team")
		expectMessage(t, sent, map[string]*client{"owner's other socket": o2, "member1 on B": m1, "member2 on A": m2})
		if got := cl.brA.published("g:"); len(got) != 1 || got[0].Topic != aoba.GroupTopic(gid) ||
			got[0].Envelope.ExceptConn == "" {
			t.Fatalf("group publications = %+v, want one on %s excepting the sending socket", got, aoba.GroupTopic(gid))
		}
		if got := cl.brA.published("u:"); len(got) != 0 {
			t.Fatalf("%d user topic publications for a group message, want 0", len(got))
		}
		for _, c := range []*client{o1, x, yv} {
			c.quiet()
		}
	})

	t.Run("TypingSkipsTypist", func(t *testing.T) {
		use(t, all...)
		m1.send(realtime.FrameTyping, "", map[string]string{"to": gid, "type": "groupchat", "state": "composing"})
		for name, c := range map[string]*client{"owner A": o1, "owner B": o2, "member2": m2} {
			if got := decodeData[aoba.TypingEvent](t, c.expect(aoba.FrameTyping)); got.From != "member1" || got.To != gid {
				t.Fatalf("%s got typing %+v", name, got)
			}
		}
		m1.quiet()
		x.quiet()
	})

	t.Run("AddedMemberReceives", func(t *testing.T) {
		use(t, all...)
		if _, err := a.svc.AddMember(ctx, owner, gid, "xavier", "member"); err != nil {
			t.Fatal(err)
		}
		// The event follows the Join order on xavier's topic: once it is
		// read, xavier's pod follows the group.
		for _, c := range []*client{o1, o2, m1, m2, x} {
			expectGroupEvent(t, c, string(aoba.GroupMemberAdded))
		}
		sent := groupMessage(t, m2, gid, "welcome xavier")
		expectMessage(t, sent, map[string]*client{"xavier": x, "owner": o1, "member1": m1})
		o2.expect(aoba.FrameMessage)
		yv.quiet()
	})

	t.Run("InvitedMemberReceivesAfterAccepting", func(t *testing.T) {
		use(t, all...)
		inv, err := a.svc.Invite(ctx, owner, gid, "yvonne")
		if err != nil {
			t.Fatal(err)
		}
		yv.expect(aoba.FrameInvitation)
		sent := groupMessage(t, o1, gid, "before yvonne")
		expectMessage(t, sent, map[string]*client{"xavier": x})
		yv.quiet() // not a member yet
		for _, c := range []*client{o2, m1, m2} {
			c.expect(aoba.FrameMessage)
		}
		if _, err := b.svc.AcceptInvitation(ctx, y, inv.ID); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*client{o1, o2, m1, m2, x, yv} {
			expectGroupEvent(t, c, string(aoba.GroupMemberAdded))
		}
		sent = groupMessage(t, o1, gid, "welcome yvonne")
		expectMessage(t, sent, map[string]*client{"yvonne": yv, "xavier": x, "owner B": o2, "member1": m1, "member2": m2})
	})

	t.Run("RemovedMemberStops", func(t *testing.T) {
		use(t, all...)
		if err := a.svc.RemoveMember(ctx, owner, gid, "xavier"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*client{o1, o2, m1, m2, x, yv} {
			expectGroupEvent(t, c, string(aoba.GroupMemberRemoved))
		}
		sent := groupMessage(t, o1, gid, "after xavier")
		// yvonne is on xavier's pod: once she has it, xavier would have too.
		expectMessage(t, sent, map[string]*client{"yvonne": yv, "owner B": o2, "member1": m1, "member2": m2})
		x.quiet()
	})

	t.Run("LeavingMemberStops", func(t *testing.T) {
		use(t, all...)
		if err := b.svc.LeaveGroup(ctx, y, gid); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*client{o1, o2, m1, m2, yv} {
			expectGroupEvent(t, c, string(aoba.GroupMemberLeft))
		}
		sent := groupMessage(t, m2, gid, "after yvonne")
		expectMessage(t, sent, map[string]*client{"member1 (yvonne's pod)": m1, "owner A": o1, "owner B": o2})
		yv.quiet()
		x.quiet()
	})

	t.Run("DeletedGroupUnsubscribed", func(t *testing.T) {
		use(t, all...)
		if err := a.svc.DeleteGroup(ctx, owner, gid); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*client{o1, o2, m1, m2} {
			expectGroupEvent(t, c, string(aoba.GroupDeleted))
		}
		for name, br := range map[string]*countingBroker{"A": cl.brA, "B": cl.brB} {
			if br.isSubscribed(aoba.GroupTopic(gid)) {
				t.Errorf("pod %s still subscribes to the deleted group's topic", name)
			}
		}
	})
}

// TestJoinAppliedBeforeEvent checks the ordering promise of membership
// orders: with a broker slow to subscribe, the `group` event announcing a
// join still reaches the new member only once their pod follows the group,
// so a message sent right after it arrives.
func TestJoinAppliedBeforeEvent(t *testing.T) {
	ctx := context.Background()
	cl := newMemoryCluster(t)
	cl.brA.groupDelay = 200 * time.Millisecond
	e := cl.a
	_, owner := e.user("owner")
	xTok, _ := e.user("xavier")
	g, err := e.svc.CreateGroup(ctx, owner, "team", nil)
	if err != nil {
		t.Fatal(err)
	}
	x := e.dial(xTok) // the group's only local member once added
	x.quiet()
	if _, err := e.svc.AddMember(ctx, owner, g.Group.ID, "xavier", "member"); err != nil {
		t.Fatal(err)
	}
	expectGroupEvent(t, x, string(aoba.GroupMemberAdded))
	sent, err := e.svc.SendMessage(ctx, owner, aoba.SendInput{To: g.Group.ID, Content: "right after", Type: aoba.MessageGroupChat}, "")
	if err != nil {
		t.Fatal(err)
	}
	expectMessage(t, *sent, map[string]*client{"xavier": x})
}

// TestResyncClosesFollowers: a broker that resubscribes a group or
// presence topic hands it a resync order; the sockets that follow the topic
// (the group's members', the user's presence watchers) close with 4004,
// and the others stay open.
func TestResyncClosesFollowers(t *testing.T) {
	ctx := context.Background()
	e := newPod(t, realtime.Config{RateStandard: 1000}, openStore(t), hub.NewMemoryBroker())
	ownerTok, owner := e.user("owner")
	memberTok, _ := e.user("member")
	watcherTok, _ := e.user("watcher")
	otherTok, _ := e.user("other")
	g, err := e.svc.CreateGroup(ctx, owner, "team", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddMember(ctx, owner, g.Group.ID, "member", "member"); err != nil {
		t.Fatal(err)
	}
	o, m, w, x := e.dial(ownerTok), e.dial(memberTok), e.dial(watcherTok), e.dial(otherTok)
	for _, c := range []*client{o, m, x} {
		c.quiet()
	}
	w.send(realtime.FramePresenceSub, "s", map[string]any{"usernames": []string{"other"}})
	for f := w.next(); f.ID != "s"; f = w.next() {
	}
	w.quiet()

	resync := aoba.Envelope{Close: &aoba.CloseOrder{Code: aoba.CloseResync, Reason: "events may have been missed"}}
	e.node.Deliver(aoba.GroupTopic(g.Group.ID), resync)
	for name, c := range map[string]*client{"owner": o, "member": m} {
		if code := c.closeCode(5 * time.Second); code != aoba.CloseResync {
			t.Errorf("%s's socket closed with %d, want %d", name, code, aoba.CloseResync)
		}
	}
	w.quiet() // a watcher of another topic stays open
	_, other := e.login("other")
	e.node.Deliver(aoba.PresenceTopic(other.UserID), resync)
	if code := w.closeCode(5 * time.Second); code != aoba.CloseResync {
		t.Errorf("the watcher's socket closed with %d, want %d", code, aoba.CloseResync)
	}
	x.quiet() // the watched user's own socket follows neither topic
}
