package main_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/internal/mongotest"
	"github.com/aoba-chat/aoba/internal/redistest"
)

// drainSpread overrides testDrainSpread, for a run by hand.
var drainSpread = flag.Duration("drain-spread", 0, "AOBA_DRAIN_SPREAD of TestDrainBehindNginx's pods (0: testDrainSpread)")

// drainSockets is the number of sockets of TestDrainBehindNginx, bounded
// for the suite on two cores: 300, or 100 under -race (the reconnected
// clients' catch-up queries all reach the embedded FerretDB of the test
// process within a few seconds). Run 2,000 by hand with `go test
// ./cmd/aoba -run TestDrainBehindNginx -v -args -drain-sockets=2000`.
var drainSockets = flag.Int("drain-sockets", 0, "sockets held open through nginx by TestDrainBehindNginx (0: 300, 100 under -race)")

// testDrainDelay is the drain delay of the test's pods: short.
const testDrainDelay = time.Second

// testDrainSpread returns the drain spread of the test's pods for n
// sockets, unless -drain-spread says otherwise: 4 s up to 300, long enough
// to tell a spread from a burst, and 50 ms a socket beyond, so that about
// ten clients of the draining pod (half of n) reconnect and catch up per
// second: what the embedded FerretDB of the test process (SQLite, every
// query decoded in Go) answers in time on two busy cores. Faster, its
// queue grows until the pods' queries time out. (The spread is the
// operator's lever: sized to what the other pods and the store absorb.)
func testDrainSpread(n int) time.Duration {
	switch {
	case *drainSpread > 0:
		return *drainSpread
	case n <= 300:
		return 4 * time.Second
	}
	return time.Duration(n) * 50 * time.Millisecond
}

// drainClient is one socket of TestDrainBehindNginx: a device of a group
// member, which reconnects through nginx when its pod goes away and then
// catches up with GET /api/sync from the cursor of its first hello.
type drainClient struct {
	token string
	group int // the index of its group

	mu       sync.Mutex
	cursor   string
	live     map[string]bool // message ids received on a socket
	synced   map[string]bool // message ids received from GET /api/sync
	closedAt time.Time       // when the 1001 arrived; zero if none
	code     int             // the close code of the first socket, 0 while open
	redials  int             // reconnection attempts refused
	resyncs  int             // failed GET /api/sync calls, retried
	err      error           // a failure other than the expected 1001
	back     chan struct{}   // closed once reconnected and caught up
	conns    []*websocket.Conn
}

// closeAll closes the client's sockets, when the test ends.
func (dc *drainClient) closeAll() {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	for _, c := range dc.conns {
		c.Close()
	}
}

func (dc *drainClient) fail(err error) {
	dc.mu.Lock()
	if dc.err == nil {
		dc.err = err
	}
	dc.mu.Unlock()
}

// has reports whether the client received message id, live or by sync.
func (dc *drainClient) has(id string) bool {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return dc.live[id] || dc.synced[id]
}

// read records the message frames of c until it ends and returns its close
// code (0 for another end). The first hello sets the sync cursor.
func (dc *drainClient) read(c *websocket.Conn) int {
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			return 0
		}
		var f aoba.Frame
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		switch f.Type {
		case aoba.FrameHello:
			var h aoba.Hello
			_ = json.Unmarshal(f.Data, &h)
			dc.mu.Lock()
			if dc.cursor == "" {
				dc.cursor = h.Sync
			}
			dc.mu.Unlock()
		case aoba.FrameMessage:
			var m struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(f.Data, &m)
			dc.mu.Lock()
			dc.live[m.ID] = true
			dc.mu.Unlock()
		}
	}
}

// drainFront is the clients' side of nginx: sockets and REST calls from
// clientAddr.
type drainFront struct {
	base   string
	dialer *websocket.Dialer
	hc     *http.Client
}

func newDrainFront(base string) *drainFront {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: clientAddr}, Timeout: 5 * time.Second}
	return &drainFront{
		base:   base,
		dialer: &websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 10 * time.Second},
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: d.DialContext, MaxIdleConns: 256, MaxIdleConnsPerHost: 256,
		}},
	}
}

// dial opens a socket through nginx.
func (f *drainFront) dial(token string) (*websocket.Conn, error) {
	c, res, err := f.dialer.Dial("ws"+strings.TrimPrefix(f.base, "http")+"/ws?token="+url.QueryEscape(token), nil)
	if res != nil && res.Body != nil {
		res.Body.Close()
	}
	return c, err
}

// getJSON GETs path with token and decodes a 200 answer into out.
func (f *drainFront) getJSON(path, token string, out any) error {
	req, _ := http.NewRequest("GET", f.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := f.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("GET %s: status %d", path, res.StatusCode)
	}
	return json.NewDecoder(res.Body).Decode(out)
}

// catchUp pages GET /api/sync from the kept cursor until more is false.
// A failed call is retried a second later until deadline, as the SDK does.
func (dc *drainClient) catchUp(f *drainFront, deadline time.Time) error {
	for range 100 {
		dc.mu.Lock()
		cursor := dc.cursor
		dc.mu.Unlock()
		var p syncPage
		if err := f.getJSON("/api/sync?limit=100&since="+url.QueryEscape(cursor), dc.token, &p); err != nil {
			if time.Now().After(deadline) {
				return err
			}
			dc.mu.Lock()
			dc.resyncs++
			dc.mu.Unlock()
			time.Sleep(time.Second)
			continue
		}
		dc.mu.Lock()
		for _, m := range p.Messages {
			dc.synced[m.ID] = true
		}
		dc.cursor = p.Next
		dc.mu.Unlock()
		if !p.More {
			return nil
		}
	}
	return errors.New("sync never ended")
}

// run is the client's life: the first socket until it closes; after a
// 1001, redials through nginx after 250 to 500 ms as the SDK does (a
// refused attempt is counted and retried after as long) until deadline,
// catches up, and reads on.
func (dc *drainClient) run(f *drainFront, first *websocket.Conn, deadline time.Time) {
	code := dc.read(first)
	dc.mu.Lock()
	dc.code = code
	if code == aoba.CloseGoingAway {
		dc.closedAt = time.Now()
	}
	dc.mu.Unlock()
	if code != aoba.CloseGoingAway {
		dc.fail(fmt.Errorf("socket ended with close code %d, want 1001 or none", code))
		return
	}
	for {
		time.Sleep(250*time.Millisecond + rand.N(250*time.Millisecond))
		c, err := f.dial(dc.token)
		if err == nil {
			dc.mu.Lock()
			dc.conns = append(dc.conns, c)
			dc.mu.Unlock()
			go func() {
				defer c.Close()
				if code := dc.read(c); code != 0 {
					dc.fail(fmt.Errorf("second socket ended with close code %d", code))
				}
			}()
			break
		}
		dc.mu.Lock()
		dc.redials++
		dc.mu.Unlock()
		if time.Now().After(deadline) {
			dc.fail(fmt.Errorf("no reconnection by the deadline: %v", err))
			return
		}
	}
	if err := dc.catchUp(f, deadline); err != nil {
		dc.fail(fmt.Errorf("catch up: %w", err))
		return
	}
	close(dc.back)
}

// socketsOpen returns aoba_realtime_sockets_open of the pod at base.
func socketsOpen(t *testing.T, p *proc) int {
	t.Helper()
	return int(metricValue(t, p.server, "aoba_realtime_sockets_open"))
}

// TestDrainBehindNginx: two scaled-out pods (the real binary, MongoDB and
// Redis) behind the shipped nginx configuration hold drainSockets sockets
// of group members while a producer sends group messages through nginx.
// SIGTERM to pod A: its /health/ready turns 503 before any socket closes;
// its sockets close with 1001 spread over AOBA_DRAIN_SPREAD, not in one
// burst; each client reconnects through nginx (to pod B) and catches up
// through GET /api/sync; pod A exits 0; every message acknowledged reached
// every client, live or by sync.
func TestDrainBehindNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two pods behind nginx")
	}
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skipf("nginx is not installed (%v); scripts/test.sh installs nginx-light", err)
	}
	n := *drainSockets
	if n <= 0 {
		n = 300
		if raceDetector {
			n = 100
		}
	}
	spread := testDrainSpread(n)
	bin := buildBinary(t)
	uri, db := mongotest.New(t)
	podEnv := []string{
		"AOBA_MONGO_URI=" + uri, "AOBA_MONGO_DB=" + db, "AOBA_REDIS_URL=" + redistest.Shared(t).URL(),
		"AOBA_REDIS_PREFIX=" + redistest.Prefix(t), "AOBA_JWT_SECRET=" + testSecret, "AOBA_TRUSTED_PROXIES=127.0.0.1",
		"AOBA_DRAIN_DELAY=" + testDrainDelay.String(), "AOBA_DRAIN_SPREAD=" + spread.String(),
	}
	a := startProc(t, bin, t.TempDir(), podEnv...)
	b := startProc(t, bin, t.TempDir(), podEnv...)
	// The access log also names the pod and its time, for a failure's
	// report.
	base, nginxDir := startNginx(t, [2]string{strings.TrimPrefix(a.base, "http://"), strings.TrimPrefix(b.base, "http://")}, func(conf string) string {
		return strings.Replace(conf, "$request_time $request_id';", "$request_time $request_id $upstream_addr $upstream_status $upstream_response_time';", 1)
	})
	t.Cleanup(func() {
		if t.Failed() {
			access, _ := os.ReadFile(filepath.Join(nginxDir, "access.log"))
			var slow []string
			for _, line := range strings.Split(string(access), "\n") {
				if !strings.Contains(line, `" 101 `) && !strings.Contains(line, "POST /api/messages") {
					slow = append(slow, line)
				}
			}
			t.Logf("nginx's access log but upgrades and sends (%d lines):\n%s", len(slow), tail([]byte(strings.Join(slow, "\n")), 8000))
		}
	})
	front := newDrainFront(base)
	via := &server{base: base, logs: a.logs, hc: front.hc}

	// Members with ten sockets each, in groups of twenty: each member
	// added is an event stored for every member already there, so one
	// group of everyone would make the store's sync queries quadratic.
	const perUser, perGroup = 10, 20
	producer := via.register(t, "producer")
	members := make([]*user, (n+perUser-1)/perUser)
	var gids []string
	for i := range members {
		if i%perGroup == 0 {
			gids = append(gids, via.newGroup(t, producer.Token, fmt.Sprintf("drain %d", i/perGroup)))
		}
		members[i] = via.register(t, "member")
		via.do(t, "POST", "/api/groups/"+gids[i/perGroup]+"/members", producer.Token, map[string]string{"username": members[i].Name, "role": "member"}).want(t, 201)
	}

	clients := make([]*drainClient, n)
	deadline := time.Now().Add(2*time.Minute + spread)
	dials := make(chan int)
	var (
		wg      sync.WaitGroup
		dialErr atomic.Value
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range dials {
				m := i % len(members)
				dc := &drainClient{token: members[m].Token, group: m / perGroup, live: map[string]bool{}, synced: map[string]bool{}, back: make(chan struct{})}
				c, err := front.dial(dc.token)
				if err != nil {
					dialErr.Store(err)
					continue
				}
				dc.conns = append(dc.conns, c)
				clients[i] = dc
				go dc.run(front, c, deadline)
			}
		}()
	}
	began := time.Now()
	for i := range clients {
		dials <- i
	}
	close(dials)
	wg.Wait()
	t.Cleanup(func() {
		for _, dc := range clients {
			if dc != nil {
				dc.closeAll()
			}
		}
	})
	if err := dialErr.Load(); err != nil {
		t.Fatalf("dial through nginx: %v", err)
	}
	// Every socket counted by its pod and its hello read.
	var onA, onB int
	for wait := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		onA, onB = socketsOpen(t, a), socketsOpen(t, b)
		hellos := 0
		for _, dc := range clients {
			dc.mu.Lock()
			if dc.cursor != "" {
				hellos++
			}
			dc.mu.Unlock()
		}
		if onA+onB == n && hellos == n {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("%d sockets on A, %d on B and %d hellos, want %d", onA, onB, hellos, n)
		}
	}
	if onA == 0 || onB == 0 {
		t.Fatalf("nginx put %d sockets on A and %d on B: round robin should use both", onA, onB)
	}
	t.Logf("%d sockets open through nginx in %v: %d on pod A, %d on pod B", n, time.Since(began).Round(time.Millisecond), onA, onB)

	// The producer: a message every 200 ms through nginx, to each group in
	// turn, until told to stop.
	var (
		ackMu     sync.Mutex
		acked     = make([][]string, len(gids)) // by group
		ackedAt   []time.Time
		sendFails atomic.Int64
		stopSend  = make(chan struct{})
		sent      = make(chan struct{})
	)
	go func() {
		defer close(sent)
		for i := 0; ; i++ {
			select {
			case <-stopSend:
				return
			case <-time.After(200 * time.Millisecond):
			}
			g := i % len(gids)
			body, _ := json.Marshal(map[string]string{"to": gids[g], "type": "groupchat", "content": fmt.Sprintf("m%d", i)})
			req, _ := http.NewRequest("POST", base+"/api/messages", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+producer.Token)
			res, err := front.hc.Do(req)
			if err != nil {
				sendFails.Add(1)
				continue
			}
			var m aoba.MessageView
			err = json.NewDecoder(res.Body).Decode(&m)
			res.Body.Close()
			if res.StatusCode != http.StatusCreated || err != nil || m.ID == "" {
				sendFails.Add(1)
				continue
			}
			ackMu.Lock()
			acked[g] = append(acked[g], m.ID)
			ackedAt = append(ackedAt, time.Now())
			ackMu.Unlock()
		}
	}()

	// Pod A's readiness, straight from the pod: when it first says 503.
	var first503 atomic.Int64
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		hc := &http.Client{Timeout: 2 * time.Second}
		for {
			res, err := hc.Get(a.base + "/health/ready")
			if err != nil {
				return // pod A is gone
			}
			var r readiness
			_ = json.NewDecoder(res.Body).Decode(&r)
			res.Body.Close()
			if res.StatusCode == 503 && r.Status == "draining" && first503.Load() == 0 {
				first503.Store(time.Now().UnixNano())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	time.Sleep(500 * time.Millisecond)
	sigAt := time.Now()
	a.terminate(t, testDrainDelay+spread+20*time.Second)
	exitedAt := time.Now()
	<-pollDone
	// Everyone pod A had is back, through nginx, and caught up.
	for _, dc := range clients {
		dc.mu.Lock()
		closed := dc.code == aoba.CloseGoingAway
		dc.mu.Unlock()
		if !closed {
			continue
		}
		select {
		case <-dc.back:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("a client of pod A did not reconnect: %v", dc.err)
		}
	}
	backAt := time.Now()
	time.Sleep(500 * time.Millisecond) // a few messages more, all through pod B
	close(stopSend)
	<-sent

	// The drain.
	var closes []time.Time
	redials, resyncs := 0, 0
	for _, dc := range clients {
		dc.mu.Lock()
		if dc.err != nil {
			t.Errorf("client: %v", dc.err)
		}
		if !dc.closedAt.IsZero() {
			closes = append(closes, dc.closedAt)
		}
		redials += dc.redials
		resyncs += dc.resyncs
		dc.mu.Unlock()
	}
	if len(closes) != onA {
		t.Fatalf("%d sockets closed with 1001, pod A had %d", len(closes), onA)
	}
	slices.SortFunc(closes, func(x, y time.Time) int { return x.Compare(y) })
	firstClose, lastClose := closes[0], closes[len(closes)-1]
	ready503 := time.Unix(0, first503.Load())
	if first503.Load() == 0 || !ready503.Before(firstClose) {
		t.Fatalf("/health/ready of pod A said 503 at %v, the first socket closed at %v: want 503 first", ready503.Sub(sigAt), firstClose.Sub(sigAt))
	}
	if firstClose.Sub(sigAt) < testDrainDelay-50*time.Millisecond {
		t.Errorf("the first socket closed %v after SIGTERM, before AOBA_DRAIN_DELAY (%v)", firstClose.Sub(sigAt), testDrainDelay)
	}
	// Evenly over 4 s or more, a second holds at most about a quarter of
	// the closes: not more than half.
	busiest := 0
	for i, c := range closes {
		j, _ := slices.BinarySearchFunc(closes, c.Add(time.Second), func(x, y time.Time) int { return x.Compare(y) })
		busiest = max(busiest, j-i)
	}
	if lastClose.Sub(firstClose) < spread/2 || busiest > len(closes)/2 {
		t.Errorf("%d closes over %v, %d in the busiest second: want them spread over about %v", len(closes), lastClose.Sub(firstClose), busiest, spread)
	}
	if got := socketsOpen(t, b); got != n {
		t.Errorf("pod B holds %d sockets after the drain, want all %d", got, n)
	}
	if !contains(a.logs.String(), "draining: /health/ready answers 503") || !contains(a.logs.String(), fmt.Sprintf(`"sockets":%d`, onA)) {
		t.Errorf("pod A's log lacks the drain lines:\n%s", tail([]byte(a.logs.String()), 3000))
	}

	// No acknowledged message lost: every client has every one, live or by
	// sync (late live frames get a few seconds).
	ackMu.Lock()
	defer ackMu.Unlock()
	duringDrain := 0
	for _, at := range ackedAt {
		if at.After(sigAt) && at.Before(exitedAt) {
			duringDrain++
		}
	}
	if duringDrain == 0 {
		t.Fatalf("no message acknowledged during the drain (%d in all, %d sends failed)", len(ackedAt), sendFails.Load())
	}
	missing := 0
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		missing = 0
		for _, dc := range clients {
			for _, id := range acked[dc.group] {
				if !dc.has(id) {
					missing++
				}
			}
		}
		if missing == 0 || time.Now().After(wait) {
			break
		}
	}
	if missing > 0 {
		t.Fatalf("%d (client, message) pairs missing of %d acknowledged messages to %d groups of %d clients", missing, len(ackedAt), len(gids), n)
	}
	var syncs []float64 // GET /api/sync durations on both pods, ms
	for _, line := range strings.Split(a.logs.String()+b.logs.String(), "\n") {
		var rec struct {
			Route    string  `json:"route"`
			Duration float64 `json:"duration"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Route == "/api/sync" {
			syncs = append(syncs, rec.Duration)
		}
	}
	slices.Sort(syncs)
	if len(syncs) > 0 {
		t.Logf("%d GET /api/sync: median %.0f ms, 99th percentile %.0f ms, slowest %.0f ms", len(syncs),
			syncs[len(syncs)/2], syncs[len(syncs)*99/100], syncs[len(syncs)-1])
	}
	t.Logf("SIGTERM → ready 503 in %v; %d sockets closed from %v to %v after SIGTERM (busiest second: %d); "+
		"all back on pod B and caught up %v after SIGTERM, %d refused redials, %d failed syncs retried; pod A exited after %v; "+
		"%d messages acknowledged (%d during the drain, %d sends failed), none lost",
		ready503.Sub(sigAt).Round(time.Millisecond), len(closes), firstClose.Sub(sigAt).Round(time.Millisecond),
		lastClose.Sub(sigAt).Round(time.Millisecond), busiest, backAt.Sub(sigAt).Round(time.Millisecond), redials, resyncs,
		exitedAt.Sub(sigAt).Round(time.Millisecond), len(ackedAt), duringDrain, sendFails.Load())
}

// TestSecondSignalCutsDrain: the real binary told to stop drains (ready
// 503, sockets still open during AOBA_DRAIN_DELAY); a second SIGTERM ends
// the wait: the sockets close with 1001 and the process exits 0 at once.
func TestSecondSignalCutsDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := startProc(t, buildBinary(t), t.TempDir(), "AOBA_DRAIN_DELAY=1h", "AOBA_DRAIN_SPREAD=1h")
	u := p.register(t, "alice")
	c, _, err := p.dial(t, "?token="+u.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	readFrame(t, c, aoba.FrameHello)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, r := p.ready(t); st == 503 && r.Status == "draining" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/health/ready did not turn 503 after SIGTERM")
		}
	}
	// Still serving during the delay: the socket answers.
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","id":"during"}`)); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(t, c, aoba.FramePong); f.ID != "during" {
		t.Fatalf("pong id = %q", f.ID)
	}
	p.terminate(t, 15*time.Second)
	wantClose(t, c, aoba.CloseGoingAway)
}
