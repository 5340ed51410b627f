package main_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/fasthttp/websocket"
)

// TestResumeAfterRandomDrops: a client drops its socket at a random moment
// during a stream of 1:1 messages, group messages, invitations and group
// changes, reconnects (to the other pod when there are two) and catches up
// with GET /api/sync from its kept cursor. Over 100 rounds it ends with
// exactly what the server acknowledged: every message and invitation once
// after de-duplication by id, and every group change once.
func TestResumeAfterRandomDrops(t *testing.T) {
	rounds := 100
	t.Run("Embedded", func(t *testing.T) {
		e := embeddedEnv(t)
		e["AOBA_RATE_STANDARD"] = "100000"
		s := startMain(t, e)
		runResume(t, []*server{s}, rounds)
	})
	t.Run("ScaledOutTwoPods", func(t *testing.T) {
		if testing.Short() {
			t.Skip("needs MongoDB and Redis")
		}
		e := scaledEnv(t)
		e["AOBA_RATE_STANDARD"] = "100000"
		runResume(t, []*server{startMain(t, e), startMain(t, e)}, rounds)
	})
}

// resumeClient is the consumer: what it has seen, by key.
type resumeClient struct {
	mu     sync.Mutex
	seen   map[string]int // "m:<id>", "i:<invitation id>" from live frames and sync; "g:<event id>" from sync
	groups map[string]int // group event name -> count (from sync, de-duplicated by event id)
	cursor string
	extra  string // the user the stream adds to and removes from the group
}

func (rc *resumeClient) add(key string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seen[key]++
	return rc.seen[key] == 1
}

// readLive records the message and invitation frames of c until it fails.
func (rc *resumeClient) readLive(c *websocket.Conn, done chan<- struct{}) {
	defer close(done)
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		var f aoba.Frame
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		var d struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(f.Data, &d)
		switch f.Type {
		case aoba.FrameMessage:
			rc.add("m:" + d.ID)
		case aoba.FrameInvitation:
			rc.add("i:" + d.ID)
		}
	}
}

// catchUp pages GET /api/sync from the kept cursor until more is false.
func (rc *resumeClient) catchUp(t *testing.T, s *server, token string) {
	t.Helper()
	for range 1000 {
		var p syncPage
		s.do(t, "GET", "/api/sync?limit=50&since="+url.QueryEscape(rc.cursor), token, nil).want(t, 200).decode(t, &p)
		for _, m := range p.Messages {
			rc.add("m:" + m.ID)
		}
		for _, e := range p.Events {
			var d struct {
				ID       string `json:"id"`
				Event    string `json:"event"`
				Username string `json:"username"`
			}
			_ = json.Unmarshal(e.Data, &d)
			switch e.Type {
			case aoba.FrameInvitation:
				rc.add("i:" + d.ID)
			case aoba.FrameGroup:
				// Only the stream's changes count (those about extra): the
				// setup's may come too, being within sync's lag window.
				if rc.add("g:"+e.ID) && d.Username == rc.extra {
					rc.mu.Lock()
					rc.groups[d.Event]++
					rc.mu.Unlock()
				}
			}
		}
		rc.cursor = p.Next
		if !p.More {
			return
		}
	}
	t.Fatal("sync never ended")
}

func runResume(t *testing.T, pods []*server, rounds int) {
	a := pods[0]
	producer := a.register(t, "producer")
	consumer := a.register(t, "consumer")
	extra := a.register(t, "extra")
	gid := a.newGroup(t, producer.Token, "stream")
	a.do(t, "POST", "/api/groups/"+gid+"/members", producer.Token, map[string]string{"username": consumer.Name, "role": "member"}).want(t, 201)

	rc := &resumeClient{seen: map[string]int{}, groups: map[string]int{}, extra: extra.Name}
	acked := map[string]bool{}
	wantGroups := map[string]int{}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for round := 0; round < rounds; round++ {
		b := pods[(round+1)%len(pods)] // the consumer's pod: the other one when there are two
		c, _, err := b.dial(t, "?token="+url.QueryEscape(consumer.Token), nil)
		if err != nil {
			t.Fatalf("round %d: dial: %v", round, err)
		}
		hello := readFrame(t, c, aoba.FrameHello)
		if rc.cursor == "" {
			var h aoba.Hello
			if err := json.Unmarshal(hello.Data, &h); err != nil || h.Sync == "" {
				t.Fatalf("hello %s: %v", hello.Data, err)
			}
			rc.cursor = h.Sync
		}
		_ = c.SetReadDeadline(time.Time{})
		done := make(chan struct{})
		go rc.readLive(c, done)
		// Catch up on what happened while the socket was down.
		rc.catchUp(t, b, consumer.Token)

		// The stream, through the producer's pod, with the drop at a random
		// moment of it.
		dropAt := rng.IntN(5)
		for step := 0; step < 5; step++ {
			if step == dropAt {
				_ = c.UnderlyingConn().Close() // an abrupt cut: no close frame
			}
			switch step {
			case 0, 3:
				var m aoba.MessageView
				a.do(t, "POST", "/api/messages", producer.Token, map[string]string{"to": consumer.Name, "content": fmt.Sprintf("r%d s%d", round, step)}).want(t, 201).decode(t, &m)
				acked["m:"+m.ID] = true
			case 1:
				var m aoba.MessageView
				a.do(t, "POST", "/api/messages", producer.Token, map[string]string{"to": gid, "type": "groupchat", "content": fmt.Sprintf("group r%d", round)}).want(t, 201).decode(t, &m)
				acked["m:"+m.ID] = true
			case 2:
				if round%2 == 0 {
					a.do(t, "POST", "/api/groups/"+gid+"/members", producer.Token, map[string]string{"username": extra.Name, "role": "member"}).want(t, 201)
					wantGroups[aoba.GroupMemberAdded]++
				} else {
					a.do(t, "DELETE", "/api/groups/"+gid+"/members/"+extra.Name, producer.Token, nil).want(t, 204)
					wantGroups[aoba.GroupMemberRemoved]++
				}
			case 4:
				ng := a.newGroup(t, producer.Token, fmt.Sprintf("g%d", round))
				var inv aoba.InvitationView
				a.do(t, "POST", "/api/groups/"+ng+"/invitations", producer.Token, map[string]string{"username": consumer.Name}).want(t, 201).decode(t, &inv)
				acked["i:"+inv.ID] = true
			}
		}
		_ = c.UnderlyingConn().Close()
		<-done
	}
	// The last reconnect: catch up on the last round.
	rc.catchUp(t, pods[0], consumer.Token)

	var lost, unexpected []string
	for k := range acked {
		if rc.seen[k] == 0 {
			lost = append(lost, k)
		}
	}
	for k := range rc.seen {
		if k[0] != 'g' && !acked[k] {
			unexpected = append(unexpected, k)
		}
	}
	sort.Strings(lost)
	sort.Strings(unexpected)
	if len(lost) > 0 || len(unexpected) > 0 {
		t.Fatalf("after %d rounds: %d of %d acknowledged items lost %v; %d unexpected %v", rounds, len(lost), len(acked), lost, len(unexpected), unexpected)
	}
	for ev, n := range wantGroups {
		if rc.groups[ev] != n {
			t.Fatalf("group events %q: got %d, want %d (all: %v)", ev, rc.groups[ev], n, rc.groups)
		}
	}
	t.Logf("%d rounds: %d messages and invitations, %v group events, each once after de-duplication", rounds, len(acked), wantGroups)
}
