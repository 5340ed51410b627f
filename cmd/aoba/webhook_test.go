package main_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	main "github.com/aoba-chat/aoba/cmd/aoba"
	"github.com/fasthttp/websocket"
)

const hookSecret = "webhook-secret-0123456789"

// hookReceiver is a webhook endpoint on 127.0.0.1 that checks each
// request's signature and timestamp and counts the accepted ones by
// message id and recipient id. It can be taken down (stop: connections are
// refused) and brought back on the same address (start), answering 503 to
// every signed request while rejecting is set.
type hookReceiver struct {
	t    *testing.T
	url  string
	addr string

	mu        sync.Mutex
	srv       *http.Server              // nil while stopped
	rejecting bool                      // answer 503
	rejected  map[string]int            // "message/recipient" → 503 answers
	counts    map[string]map[string]int // message id → recipient id → deliveries
	bodies    map[string][]byte         // "message/recipient" → last body
	cond      chan struct{}             // closed and replaced at each delivery
}

// hookMaxSkew is how far from the receiver's clock a request's
// X-Aoba-Timestamp may be, as a receiver guarding against replays checks:
// a retry must be signed when it is sent, not when it was first queued.
const hookMaxSkew = 10 * time.Second

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{t: t, counts: map[string]map[string]int{}, bodies: map[string][]byte{}, rejected: map[string]int{}, cond: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.url = "http://" + r.addr + "/hooks/aoba"
	r.serve(ln)
	t.Cleanup(r.stop)
	return r
}

// serve answers on ln until stop.
func (r *hookReceiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle)}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener and every connection: from then on connecting
// is refused.
func (r *hookReceiver) stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// start listens again on the receiver's address after stop.
func (r *hookReceiver) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", r.addr, err)
	}
	r.serve(ln)
}

// setRejecting makes the receiver answer 503 to every request (true) or
// accept them again (false).
func (r *hookReceiver) setRejecting(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejecting = on
}

// handle checks a request's signature and timestamp, then rejects it or
// counts it as delivered.
func (r *hookReceiver) handle(w http.ResponseWriter, req *http.Request) {
	t := r.t
	body, _ := io.ReadAll(req.Body)
	ts := req.Header.Get("X-Aoba-Timestamp")
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write([]byte(ts + "." + string(body)))
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); req.Method != "POST" || !hmac.Equal([]byte(req.Header.Get("X-Aoba-Signature")), []byte(want)) {
		t.Errorf("webhook %s with a bad signature: %s", req.Method, body)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > hookMaxSkew {
		t.Errorf("webhook timestamp %q is not within %v of now", ts, hookMaxSkew)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p struct {
		Event     string           `json:"event"`
		Recipient aoba.User        `json:"recipient"`
		Message   aoba.MessageView `json:"message"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Event != "message.offline" {
		t.Errorf("webhook body %s", body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rejecting {
		r.rejected[p.Message.ID+"/"+p.Recipient.ID]++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.counts[p.Message.ID] == nil {
		r.counts[p.Message.ID] = map[string]int{}
	}
	r.counts[p.Message.ID][p.Recipient.ID]++
	r.bodies[p.Message.ID+"/"+p.Recipient.ID] = body
	close(r.cond)
	r.cond = make(chan struct{})
	w.WriteHeader(http.StatusOK)
}

// env returns the variables pointing a server at r.
func (r *hookReceiver) env() env {
	return env{"AOBA_WEBHOOK_URL": r.url, "AOBA_WEBHOOK_SECRET": hookSecret}
}

// expect waits up to 15 seconds until message msgID has reached each of
// the recipients, waits a little longer for any extra delivery, then checks
// that each got exactly one and nobody else got any.
func (r *hookReceiver) expect(t *testing.T, msgID string, recipients ...string) {
	t.Helper()
	r.expectWithin(t, 15*time.Second, msgID, recipients...)
}

// expectWithin is expect waiting up to d.
func (r *hookReceiver) expectWithin(t *testing.T, d time.Duration, msgID string, recipients ...string) {
	t.Helper()
	deadline := time.After(d)
	for {
		r.mu.Lock()
		done := true
		for _, id := range recipients {
			if r.counts[msgID][id] == 0 {
				done = false
			}
		}
		cond := r.cond
		r.mu.Unlock()
		if done {
			break
		}
		select {
		case <-cond:
		case <-deadline:
			t.Fatalf("message %s: webhooks %v, want one for each of %v", msgID, r.got(msgID), recipients)
		}
	}
	time.Sleep(300 * time.Millisecond)
	got := r.got(msgID)
	if len(got) != len(recipients) {
		t.Fatalf("message %s: webhooks %v, want one for each of %v", msgID, got, recipients)
	}
	for _, id := range recipients {
		if got[id] != 1 {
			t.Fatalf("message %s: webhooks %v, want one for each of %v", msgID, got, recipients)
		}
	}
}

// got returns the deliveries of message msgID by recipient id.
func (r *hookReceiver) got(msgID string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.counts[msgID] {
		out[k] = v
	}
	return out
}

// online opens a socket for u and waits until it answers a ping, by which
// time the presence registry counts it.
func (s *server) online(t *testing.T, u *user) *websocket.Conn {
	t.Helper()
	c, _, err := s.dial(t, "?token="+u.Token, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":"p"}`)); err != nil {
		t.Fatal(err)
	}
	readFrame(t, c, aoba.FramePong)
	return c
}

// groupOf creates a group of owner's with members, who accept their
// invitations, and returns its id.
func groupOf(t *testing.T, s *server, owner *user, members ...*user) string {
	t.Helper()
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.Name
	}
	var g createdGroup
	s.do(t, "POST", "/api/groups", owner.Token, map[string]any{"name": "Hooks", "initial_members": names}).want(t, 201).decode(t, &g)
	for _, inv := range g.Invitations {
		for _, m := range members {
			if m.Name == inv.InviteeUsername {
				s.do(t, "POST", "/api/invitations/"+inv.ID+"/accept", m.Token, nil).want(t, 200)
			}
		}
	}
	return g.Group.ID
}

// send sends a message through s and returns its id.
func (s *server) send(t *testing.T, from *user, to, typ, content string) string {
	t.Helper()
	var m aoba.MessageView
	s.do(t, "POST", "/api/messages", from.Token, map[string]string{"to": to, "content": content, "type": typ}).want(t, 201).decode(t, &m)
	return m.ID
}

func TestWebhooks(t *testing.T) {
	forEachMode(t, func(t *testing.T, start func(env) *server) {
		rcv := newHookReceiver(t)
		s := start(rcv.env())
		alice := s.register(t, "alice")
		bob := s.register(t, "bob")
		carol := s.register(t, "carol")
		dave := s.register(t, "dave")

		t.Run("Offline", func(t *testing.T) {
			id := s.send(t, alice, bob.Name, "chat", "are you there?")
			rcv.expect(t, id, bob.ID)
			rcv.mu.Lock()
			body := rcv.bodies[id+"/"+bob.ID]
			rcv.mu.Unlock()
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(body, &raw); err != nil || len(raw) != 3 || string(raw["event"]) != `"message.offline"` {
				t.Fatalf("body %s, want event message.offline, recipient and message", body)
			}
			for _, k := range []string{"recipient", "message"} {
				var v map[string]any
				if err := json.Unmarshal(raw[k], &v); err != nil {
					t.Fatalf("%s in %s", k, body)
				}
				switch k {
				case "recipient":
					if v["id"] != bob.ID || v["username"] != bob.Name || v["created_at"] == nil || v["password_hash"] != nil || len(v) != 3 {
						t.Fatalf("recipient %v", v)
					}
				case "message":
					if v["id"] != id || v["from"] != alice.Name || v["to"] != bob.Name || v["from_id"] != alice.ID || v["to_id"] != bob.ID ||
						v["content"] != "are you there?" || v["type"] != "chat" || v["timestamp"] == nil || v["status"] != "sent" {
						t.Fatalf("message %v", v)
					}
				}
			}
		})
		t.Run("Online", func(t *testing.T) {
			s.online(t, bob)
			id := s.send(t, alice, bob.Name, "chat", "you are online")
			rcv.expect(t, id)
		})
		t.Run("Group", func(t *testing.T) {
			gid := groupOf(t, s, alice, bob, carol, dave)
			s.online(t, bob) // the socket of Online may have closed with its subtest
			id := s.send(t, alice, gid, "groupchat", "hi all")
			rcv.expect(t, id, carol.ID, dave.ID)
			// The sender offline gets none for her own message either.
			id = s.send(t, carol, gid, "groupchat", "hi back")
			rcv.expect(t, id, alice.ID, dave.ID)
		})
	})
}

// TestWebhooksTwoPods proves that with two pods on one Redis and one
// database, each offline recipient gets one webhook per message whichever
// pod stored it, and an online one none, wherever their socket is.
func TestWebhooksTwoPods(t *testing.T) {
	if testing.Short() {
		t.Skip("scaled-out mode skipped in -short")
	}
	rcv := newHookReceiver(t)
	e := scaledEnv(t)
	for k, v := range rcv.env() {
		e[k] = v
	}
	p1, p2 := startMain(t, e), startMain(t, e)
	alice := p1.register(t, "alice")
	bob := p1.register(t, "bob")
	carol := p2.register(t, "carol")
	dave := p2.register(t, "dave")
	gid := groupOf(t, p1, alice, bob, carol, dave)
	p2.online(t, bob)
	for i, p := range []*server{p1, p2} {
		t.Logf("through pod %d", i+1)
		rcv.expect(t, p.send(t, alice, carol.Name, "chat", "direct"), carol.ID)
		rcv.expect(t, p.send(t, alice, bob.Name, "chat", "direct"))
		rcv.expect(t, p.send(t, alice, gid, "groupchat", "group"), carol.ID, dave.ID)
		rcv.expect(t, p.send(t, dave, gid, "groupchat", "group"), alice.ID, carol.ID)
	}
}

func TestConfigWebhook(t *testing.T) {
	parse := func(e env) error {
		return main.NewMain().ParseEnv(func(k string) string { return e[k] })
	}
	if err := parse(env{"AOBA_WEBHOOK_URL": "https://push.example.com/aoba", "AOBA_WEBHOOK_SECRET": hookSecret, "AOBA_WEBHOOK_QUEUE": "50"}); err != nil {
		t.Fatalf("valid webhook settings refused: %v", err)
	}
	for _, tt := range []struct {
		e    env
		want string
	}{
		{env{"AOBA_WEBHOOK_URL": "push.example.com/aoba", "AOBA_WEBHOOK_SECRET": hookSecret}, "AOBA_WEBHOOK_URL must start with http:// or https://"},
		{env{"AOBA_WEBHOOK_URL": "https:///aoba", "AOBA_WEBHOOK_SECRET": hookSecret}, "AOBA_WEBHOOK_URL has no host"},
		{env{"AOBA_WEBHOOK_URL": "https://push.example.com"}, "AOBA_WEBHOOK_SECRET is required"},
		{env{"AOBA_WEBHOOK_URL": "https://push.example.com", "AOBA_WEBHOOK_SECRET": "short"}, "AOBA_WEBHOOK_SECRET must be at least 16 bytes"},
		{env{"AOBA_WEBHOOK_QUEUE": "0"}, "AOBA_WEBHOOK_QUEUE must be a positive integer"},
	} {
		if err := parse(tt.e); err == nil || !contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want %q", tt.e, err, tt.want)
		}
	}
}

// metric returns the value of the metric without labels name on s's
// /metrics.
func (s *server) metric(t *testing.T, name string) float64 {
	t.Helper()
	body := string(s.do(t, "GET", "/metrics", "", nil).want(t, 200).Body)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric line %q", line)
			}
			return f
		}
	}
	t.Fatalf("metric %s missing", name)
	return 0
}

// TestWebhookReceiverOutage: the receiver is down for 65 seconds, refusing
// connections for 30 then answering 503, while offline messages are sent
// through two pods. With the production schedule (waits from 1 s doubling
// to a minute, with jitter, for up to 10 minutes) each delivery keeps
// being retried, at most a few times in the 503 half, and once the
// receiver is back each offline recipient gets each message exactly once,
// signed when it is sent; the pods' webhook metrics add up to that.
func TestWebhookReceiverOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about two minutes: a 65 s outage, then up to a minute of backoff")
	}
	const refusing, rejecting = 30 * time.Second, 35 * time.Second
	rcv := newHookReceiver(t)
	e := scaledEnv(t)
	for k, v := range rcv.env() {
		e[k] = v
	}
	pods := []*server{startMain(t, e), startMain(t, e)}
	alice := pods[0].register(t, "alice")
	bob := pods[0].register(t, "bob")
	carol := pods[1].register(t, "carol")
	gid := groupOf(t, pods[0], alice, bob, carol)

	rcv.stop()
	down := time.Now()
	type delivery struct {
		msg string
		to  []string
	}
	var sent []delivery
	for i, p := range pods {
		sent = append(sent,
			delivery{p.send(t, alice, bob.Name, "chat", fmt.Sprint("to bob through pod ", i+1)), []string{bob.ID}},
			delivery{p.send(t, alice, carol.Name, "chat", fmt.Sprint("to carol through pod ", i+1)), []string{carol.ID}},
			delivery{p.send(t, alice, gid, "groupchat", fmt.Sprint("to the group through pod ", i+1)), []string{bob.ID, carol.ID}})
	}
	var n int
	for _, d := range sent {
		n += len(d.to)
	}
	time.Sleep(time.Until(down.Add(refusing)))
	rcv.setRejecting(true)
	rcv.start(t)
	time.Sleep(time.Until(down.Add(refusing + rejecting)))
	rcv.setRejecting(false)
	back := time.Now()
	t.Logf("receiver back after %v; %d deliveries pending", back.Sub(down).Round(time.Second), n)

	// The longest wait is a minute, so every delivery is attempted again
	// within about that after the receiver is back.
	for _, d := range sent {
		rcv.expectWithin(t, 90*time.Second, d.msg, d.to...)
	}
	t.Logf("all delivered %v after the receiver came back", time.Since(back).Round(time.Second))

	// At most 6 attempts fit in the first 30 s (waits of at least 0.5, 1,
	// 2, 4 and 8 s), and the wait after the last of them is at most 32 s:
	// every delivery is attempted in the 503 half, where waits are 16 s or
	// more, so 1 to 3 times (5 allows for slow machines).
	rcv.mu.Lock()
	var rejected int
	for _, d := range sent {
		for _, to := range d.to {
			k := rcv.rejected[d.msg+"/"+to]
			if k < 1 || k > 5 {
				t.Errorf("message %s to %s was answered 503 %d times, want 1 to 5 (retried with backoff)", d.msg, to, k)
			}
			rejected += k
		}
	}
	rcv.mu.Unlock()
	var delivered, failed, dropped float64
	for _, p := range pods {
		delivered += p.metric(t, "aoba_webhook_sent_total")
		failed += p.metric(t, "aoba_webhook_failed_total")
		dropped += p.metric(t, "aoba_webhook_dropped_total")
	}
	// Every delivery was first tried while connections were refused, 1 to
	// 6 times; every 503 is a failed attempt too.
	if refused := int(failed) - rejected; delivered != float64(n) || dropped != 0 || refused < n || refused > 6*n {
		t.Errorf("metrics: sent %v, failed %v (%d of them 503), dropped %v; want sent %d, none dropped, %d to %d refused",
			delivered, failed, rejected, dropped, n, n, 6*n)
	}
}
