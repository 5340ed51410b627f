package clustertest_test

import (
	"errors"
	"fmt"
	"github.com/fasthttp/websocket"
	"maps"
	"net/http"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/internal/redistest"
)

func TestCluster(t *testing.T) {
	rs := redistest.Start(t)
	cl := newCluster(t, rs.URL())
	a, b := cl.start("A"), cl.start("B")

	t.Run("MessageCrossesPods", func(t *testing.T) {
		alice := a.signup("alice")
		bob := a.signup("bob")
		bs := b.dial(bob)
		sent, status, err := a.send(alice, "bob", "hello from A")
		if err != nil || status != http.StatusCreated {
			t.Fatalf("send: status %d, err %v", status, err)
		}
		got := decode[aoba.MessageView](t, bs.expect(aoba.FrameMessage, 5*time.Second))
		if got.ID != sent.ID || got.Content != "hello from A" || got.From != "alice" {
			t.Fatalf("bob got %+v, want message %s", got, sent.ID)
		}
	})

	t.Run("IdempotentSendAcrossPods", func(t *testing.T) {
		alice := a.signup("idemalice")
		bob := a.signup("idembob")
		bs := a.dial(bob)
		in := aoba.SendInput{To: "idembob", Content: "once across pods", ClientID: aoba.ClientID("phone:1")}
		var first aoba.MessageView
		a.must(http.StatusCreated, "POST", "/api/messages", alice, in, &first)
		if got := decode[aoba.MessageView](t, bs.expect(aoba.FrameMessage, 5*time.Second)); got.ID != first.ID {
			t.Fatalf("bob got %+v, want %s", got, first.ID)
		}
		// The retry reaches pod B, by REST and by socket.
		var again aoba.MessageView
		b.must(http.StatusCreated, "POST", "/api/messages", alice, in, &again)
		if again != first {
			t.Fatalf("REST retry on B = %+v, want %+v", again, first)
		}
		as := b.dial(alice)
		as.send("message.send", "retry", in)
		if ack := as.expect(aoba.FrameAck, 5*time.Second); ack.ID != "retry" || decode[aoba.MessageView](t, ack) != first {
			t.Fatalf("socket retry on B: ack %s %s, want %+v", ack.ID, ack.Data, first)
		}
		// Two pods racing with a new client id: one message, one id.
		race := aoba.SendInput{To: "idembob", Content: "raced", ClientID: aoba.ClientID("phone:2")}
		var got [2]aoba.MessageView
		var wg sync.WaitGroup
		for i, p := range []*pod{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if status, err := p.do("POST", "/api/messages", alice, race, &got[i]); err != nil || status != http.StatusCreated {
					t.Errorf("racing send on %s: status %d, err %v", p.name, status, err)
				}
			}()
		}
		wg.Wait()
		if got[0].ID == "" || got[0] != got[1] {
			t.Fatalf("racing sends got %+v and %+v, want one message", got[0], got[1])
		}
		hist := b.history(alice, "idembob", "")
		if len(hist) != 2 || hist[0].ID != got[0].ID || hist[1].ID != first.ID {
			t.Fatalf("history = %+v, want the two messages once each", hist)
		}
		// Bob's socket got the raced message once: next comes the marker.
		a.must(http.StatusCreated, "POST", "/api/messages", alice, aoba.SendInput{To: "idembob", Content: "marker"}, nil)
		for _, want := range []string{"raced", "marker"} {
			if m := decode[aoba.MessageView](t, bs.expect(aoba.FrameMessage, 5*time.Second)); m.Content != want {
				t.Fatalf("bob got %q, want %q", m.Content, want)
			}
		}
	})

	t.Run("GroupMessageAcrossPods", func(t *testing.T) {
		owner := a.signup("gowner")
		m1, m2 := a.signup("gmember1"), a.signup("gmember2")
		var g aoba.CreateGroupResult
		a.must(http.StatusCreated, "POST", "/api/groups", owner, map[string]any{"name": "crew"}, &g)
		for _, m := range []string{"gmember1", "gmember2"} {
			a.must(http.StatusCreated, "POST", "/api/groups/"+g.Group.ID+"/members", owner, map[string]string{"username": m}, nil)
		}
		ow, s1, s2 := b.dial(owner), b.dial(m1), a.dial(m2)
		post := func(content string) aoba.MessageView {
			var m aoba.MessageView
			a.must(http.StatusCreated, "POST", "/api/messages", owner,
				aoba.SendInput{To: g.Group.ID, Content: content, Type: aoba.MessageGroupChat}, &m)
			return m
		}
		sent := post("to the crew")
		for name, c := range map[string]*client{"owner on B": ow, "member1 on B": s1, "member2 on A": s2} {
			if got := decode[aoba.MessageView](t, c.expect(aoba.FrameMessage, 5*time.Second)); got.ID != sent.ID {
				t.Fatalf("%s got %+v, want %s", name, got, sent.ID)
			}
		}
		// member1 leaves through pod A; its socket on B stops receiving once
		// the event announcing it has arrived.
		a.must(http.StatusOK, "POST", "/api/groups/"+g.Group.ID+"/leave", m1, nil, nil)
		if ev := decode[aoba.GroupEvent](t, s1.expect(aoba.FrameGroup, 5*time.Second)); ev.Event != aoba.GroupMemberLeft {
			t.Fatalf("member1 got %+v, want member_left", ev)
		}
		sent = post("without member1")
		if got := decode[aoba.MessageView](t, ow.expect(aoba.FrameMessage, 5*time.Second)); got.ID != sent.ID {
			t.Fatalf("owner got %+v, want %s", got, sent.ID)
		}
		s2.expect(aoba.FrameMessage, 5*time.Second)
		s1.send("ping", "after", nil)
		if f, err := s1.read(5 * time.Second); err != nil || f.Type != aoba.FramePong {
			t.Fatalf("member1 after leaving got %s %s (%v), want only the pong", f.Type, f.Data, err)
		}
	})

	t.Run("PresenceAcrossPods", func(t *testing.T) {
		viewer := a.signup("viewer")
		carol := a.signup("carol")
		var p aoba.UserPresence
		a.must(http.StatusOK, "GET", "/api/presence/carol", viewer, nil, &p)
		if p.Status != aoba.StatusOffline {
			t.Fatalf("carol before connecting: %+v", p)
		}
		b.dial(carol)
		deadline := time.Now().Add(5 * time.Second)
		for {
			a.must(http.StatusOK, "GET", "/api/presence/carol", viewer, nil, &p)
			if p.Status == aoba.StatusOnline {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("carol connected on B, A says %+v", p)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("LogoutOnAClosesSocketOnB", func(t *testing.T) {
		dave := a.signup("dave")
		other := a.login("dave")
		ds, keep := b.dial(dave), b.dial(other)
		a.must(http.StatusOK, "POST", "/api/auth/logout", dave, nil, nil)
		if code := ds.closeCode(5 * time.Second); code != aoba.CloseSessionRevoked {
			t.Fatalf("close code %d, want %d", code, aoba.CloseSessionRevoked)
		}
		keep.send("ping", "still", nil)
		keep.expect(aoba.FramePong, 5*time.Second)
		if status, _ := b.do("GET", "/api/users/me", dave, nil, nil); status != http.StatusUnauthorized {
			t.Fatalf("revoked token on B: status %d, want 401", status)
		}
	})

	t.Run("KilledPodGoesOffline", func(t *testing.T) {
		c := cl.start("C")
		erin := a.signup("erin")
		frank := a.signup("frank")
		c.dial(erin)
		fs := a.dial(frank)
		fs.send("presence.subscribe", "s", map[string]any{"usernames": []string{"erin"}})
		if p := decode[aoba.UserPresence](t, fs.expect(aoba.FramePresence, 5*time.Second)); p.Status != aoba.StatusOnline {
			t.Fatalf("erin on C: %+v, want online", p)
		}
		killed := time.Now()
		c.kill()
		// The live "online" event of erin's connection may arrive after
		// the snapshot; wait for the change to offline.
		deadline := killed.Add(45 * time.Second)
		var p aoba.UserPresence
		for p.Status != aoba.StatusOffline {
			p = decode[aoba.UserPresence](t, fs.expect(aoba.FramePresence, time.Until(deadline)))
			if p.Username != "erin" {
				t.Fatalf("presence event for %q, want only erin's", p.Username)
			}
		}
		if p.LastSeen == nil {
			t.Fatalf("offline event without lastSeen: %+v", p)
		}
		t.Logf("offline %v after SIGKILL", time.Since(killed).Round(time.Second))
		var q aoba.UserPresence
		a.must(http.StatusOK, "GET", "/api/presence/erin", frank, nil, &q)
		if q.Status != aoba.StatusOffline {
			t.Fatalf("REST presence after the event: %+v", q)
		}
	})

	t.Run("RedisRestartDuringStream", func(t *testing.T) {
		sam := a.signup("sam")
		rita := a.signup("rita")
		rs2 := b.dial(rita)

		var (
			mu    sync.Mutex
			acked []string // in sending order
			live  []string // in receiving order, duplicates kept
		)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // the stream, through pod A
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				m, status, err := a.send(sam, "rita", fmt.Sprint("m", i))
				if err == nil && status == http.StatusCreated {
					mu.Lock()
					acked = append(acked, m.ID)
					mu.Unlock()
				}
			}
		}()
		var (
			resyncs   int      // sockets closed with CloseResync
			caught    []string // recovered from history after each resync
			readerErr error
		)
		cur := rs2
		readerDone := make(chan struct{})
		go func() { // rita's socket on pod B, reconnecting as a client does
			defer wg.Done()
			defer close(readerDone)
			for {
				mu.Lock()
				conn := cur
				mu.Unlock()
				f, err := conn.read(30 * time.Second)
				var ce *websocket.CloseError
				if errors.As(err, &ce) && ce.Code == aoba.CloseResync {
					// The pod lost Redis and may have missed messages:
					// reconnect, then catch up from the last one seen.
					next, err := b.tryDial(rita)
					if err != nil {
						readerErr = err
						return
					}
					mu.Lock()
					resyncs++
					cur = next
					after := live[len(live)-1]
					mu.Unlock()
					var page []aoba.MessageView
					if _, err := b.do("GET", "/api/messages?with=sam&limit=100&after="+after, rita, nil, &struct {
						Messages *[]aoba.MessageView `json:"messages"`
					}{&page}); err != nil {
						readerErr = err
						return
					}
					mu.Lock()
					for _, m := range page {
						caught = append(caught, m.ID)
					}
					mu.Unlock()
					continue
				} else if err != nil {
					return
				}
				if f.Type == aoba.FrameMessage {
					m := decode[aoba.MessageView](t, f)
					mu.Lock()
					live = append(live, m.ID)
					mu.Unlock()
				}
			}
		}()
		count := func() (int, int) {
			mu.Lock()
			defer mu.Unlock()
			return len(acked), len(live)
		}
		waitFor := func(what string, timeout time.Duration, ok func() bool) {
			t.Helper()
			deadline := time.Now().Add(timeout)
			for !ok() {
				if time.Now().After(deadline) {
					t.Fatalf("timed out waiting for %s", what)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		// health returns the HTTP status and the status field of /health.
		health := func() (int, string) {
			var h struct {
				Status string `json:"status"`
			}
			code, _ := a.do("GET", "/health", "", nil, &h)
			return code, h.Status
		}
		waitFor("messages before the restart", 10*time.Second, func() bool { n, l := count(); return n >= 10 && l >= 5 })
		mu.Lock()
		lastSeen := live[len(live)-1]
		mu.Unlock()

		rs.Stop()
		// Without Redis the pods serve degraded: /health stays 200.
		waitFor("/health 200 degraded while Redis is down", 10*time.Second, func() bool {
			code, status := health()
			return code == http.StatusOK && status == "degraded"
		})
		time.Sleep(300 * time.Millisecond) // let the stream hit the outage
		rs.Restart()
		waitFor("/health 200 ok after the restart", 20*time.Second, func() bool {
			code, status := health()
			return code == http.StatusOK && status == "ok"
		})
		n, _ := count()
		mu.Lock()
		marker := acked[n-1]
		mu.Unlock()
		waitFor("live delivery after the restart (resubscribed)", 20*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(live) > 0 && live[len(live)-1] > marker
		})
		waitFor("more messages after the restart", 10*time.Second, func() bool { m, _ := count(); return m >= n+10 })
		close(stop)
		// Let in-flight deliveries arrive, then end the reader.
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		_ = cur.ws.Close()
		mu.Unlock()
		<-readerDone
		wg.Wait()

		mu.Lock()
		defer mu.Unlock()
		if readerErr != nil {
			t.Fatalf("reconnecting after the resync order: %v", readerErr)
		}
		if resyncs != 1 {
			t.Fatalf("the socket was told to resync %d times after one Redis restart, want 1", resyncs)
		}
		// What the client holds: live frames plus its catch-up after the
		// resync order, de-duplicated by id. A message may come both ways
		// (it can arrive live while the catch-up reads history); none may
		// come twice on the socket.
		liveSet := make(map[string]bool)
		for _, id := range live {
			if liveSet[id] {
				t.Fatalf("message %s delivered twice on the socket", id)
			}
			liveSet[id] = true
		}
		if !sort.StringsAreSorted(caught) {
			t.Fatalf("history after a cursor is not oldest first")
		}
		held := maps.Clone(liveSet)
		lost := 0
		for _, id := range caught {
			if !held[id] {
				lost++
			}
			held[id] = true
		}
		missing := 0
		for _, id := range acked {
			if !held[id] {
				missing++
			}
		}
		if missing > 0 {
			t.Fatalf("%d of %d acknowledged messages neither delivered live nor caught up from history", missing, len(acked))
		}
		if !slices.IsSorted(acked) {
			t.Fatalf("acknowledged ids are not increasing")
		}
		t.Logf("%d acknowledged, %d live, %d recovered from history only, lastSeen before the outage %s", len(acked), len(live), lost, lastSeen)
	})
}
