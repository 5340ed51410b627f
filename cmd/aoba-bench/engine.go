package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aoba-chat/aoba/internal/fdlimit"
)

// Endpoint is one socket of a messaging run: it may publish (Pub >= 0, to
// Target) and always receives.
type Endpoint struct {
	URL     string // WebSocket URL with token
	Pub     int    // publisher index, or -1
	Target  string // username or group id to send to
	MsgType string // chat or groupchat
	Expect  []int  // publishers whose messages this endpoint must receive
	// Base and Token, when Base is set, make a publisher send with POST
	// /api/messages on that server instead of message.send frames (see
	// MsgOptions.Count).
	Base  *url.URL
	Token string
	// XMPP, when set, makes the endpoint an XMPP session instead of a
	// JSON socket (URL is then unused): it sends chat message stanzas to
	// Target (a bare JID) and receives the stanzas of its stream. Its
	// sends are never acknowledged (XMPP has no such answer): each counts
	// as confirmed when written, unless the server bounces it.
	XMPP *XMPPEndpoint

	conn     msgConn
	tracker  *Tracker
	acked    *SeqSet // seqs the server confirmed (publishers only)
	ackMu    sync.Mutex
	sent     atomic.Int64
	errs     atomic.Int64
	inflight atomic.Int64
	lastErr  atomic.Value
	skipped  int64 // written by the publishing goroutine only
	ackLat   Latencies
}

// XMPPEndpoint is how an XMPP endpoint connects (see DialXMPP): it
// authenticates with OAUTHBEARER and its Token.
type XMPPEndpoint struct {
	Addr   string // the XMPP listener, host:port
	Domain string
	Token  string
}

// msgConn is a messaging endpoint's connection: a JSON socket (*Conn) or
// an XMPP stream (*XConn).
type msgConn interface {
	Send([]byte) error
	Alive() bool
	CloseCode() string
	Close() error
}

// MsgOptions sets the load of a messaging run.
type MsgOptions struct {
	Rate     float64       // total messages per second over all publishers
	Duration time.Duration // sending time
	Drain    time.Duration // wait after sending for late deliveries
	Window   int           // max unconfirmed messages per publisher; a full window skips a send
	Size     int           // content size in bytes
	NeedAck  bool          // only acked messages are expected at receivers
	DialConc int
	Sources  int           // source addresses; 0 picks them (see NewSources)
	Files    fdlimit.Limit // the tool's open file limit; the zero Limit is not checked
	Progress time.Duration
	Label    string
	// Count, when positive, is the number of messages to send over all
	// publishers, each sending its share as fast as Window allows (Rate
	// is then unused; Duration caps the sending time). REST publishers
	// (Endpoint.Base set) need it: each keeps Window requests in flight.
	Count int
	// API sends the REST publishers' requests.
	API *API
	// ServerCPU, when set, returns the servers' total CPU seconds; it is
	// read at the start and the end of the sending window, and after the
	// drain.
	ServerCPU func() (float64, error)
}

// MsgStats are the figures of a messaging run.
type MsgStats struct {
	Label          string  `json:"label"`
	Endpoints      int     `json:"endpoints"`
	Publishers     int     `json:"publishers"`
	TargetRate     float64 `json:"target_rate"`
	Sent           int64   `json:"sent"`
	Acked          int64   `json:"acked"`
	SendErrors     int64   `json:"send_errors"`
	Skipped        int64   `json:"skipped_window_full"`
	SentPerSec     float64 `json:"sent_per_s"`
	Expected       int64   `json:"expected_deliveries"`
	Delivered      int64   `json:"delivered"`
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	Lost           int64   `json:"lost"`
	Duplicated     int64   `json:"duplicated"`
	Disconnected   int     `json:"disconnected"`
	// CloseCodes counts the disconnected sockets by the close code the
	// server sent ("none" when the connection just dropped).
	CloseCodes  map[string]int `json:"close_codes,omitempty"`
	Latency     LatencySummary `json:"latency"`
	AckLatency  LatencySummary `json:"ack_latency"`
	LastError   string         `json:"last_error,omitempty"`
	ServerCores float64        `json:"server_cpu_cores"`
	BenchCores  float64        `json:"bench_cpu_cores"`
	// ServerCPUSeconds is the servers' CPU time from the start of sending
	// to the end of the drain, and DeliveriesPerCPU the deliveries of the
	// whole run (drain included) per second of it.
	ServerCPUSeconds float64 `json:"server_cpu_s"`
	DeliveriesPerCPU float64 `json:"deliveries_per_server_cpu_s"`
}

// counters are the receivers' shared tallies: deliveries, and the time of
// the latest one (Unix nanoseconds).
type counters struct {
	delivered atomic.Int64
	last      atomic.Int64
}

// RunMessaging connects every endpoint, publishes at the target rate for
// the duration, drains, closes and returns the figures. It returns an error
// when a socket cannot be opened.
func RunMessaging(ctx context.Context, eps []*Endpoint, o MsgOptions, log io.Writer) (*MsgStats, error) {
	if len(eps) > MaxSockets {
		return nil, fmt.Errorf("%d sockets asked, the cap is %d", len(eps), MaxSockets)
	}
	if err := checkFiles(o.Files, len(eps)); err != nil {
		return nil, err
	}
	src, err := NewSources(len(eps), o.Sources, EphemeralPorts())
	if err != nil {
		return nil, err
	}
	var cnt counters
	delivered := &cnt.delivered
	pubs := 0
	for _, ep := range eps {
		ep.tracker = NewTracker()
		if ep.Pub >= 0 {
			ep.acked = &SeqSet{}
			pubs++
		}
	}
	if pubs == 0 {
		return nil, fmt.Errorf("no publisher")
	}
	for _, ep := range eps {
		if ep.Pub >= 0 && ep.Base != nil && (o.Count <= 0 || o.API == nil) {
			return nil, fmt.Errorf("REST publishers need a message count and an API client")
		}
	}
	defer func() {
		for _, ep := range eps {
			if ep.conn != nil {
				ep.conn.Close()
			}
		}
	}()
	if err := connectAll(ctx, len(eps), o.DialConc, func(i int) error {
		ep := eps[i]
		if x := ep.XMPP; x != nil {
			c, err := DialXMPP(ctx, XDialOptions{Addr: x.Addr, Domain: x.Domain, Src: src.Next(), Token: x.Token,
				Resource: fmt.Sprintf("bench%d", i), Presence: true, BufSize: DefaultBufSize},
				func(n *XNode) { ep.handleStanza(n, &cnt) })
			if err != nil {
				return fmt.Errorf("xmpp: %w", err)
			}
			ep.conn = c
			return nil
		}
		c, err := Dial(ctx, ep.URL, src.Next(), DefaultBufSize, func(b []byte) { ep.handle(b, o.NeedAck, &cnt) })
		if err != nil {
			return err
		}
		ep.conn = c
		return nil
	}); err != nil {
		return nil, err
	}
	// Let the server register every socket (presence, hub subscriptions).
	sleepCtx(ctx, 500*time.Millisecond)

	perPub := o.Rate / float64(pubs)
	cpu0, cpuErr := serverCPU(o)
	self0 := selfCPU()
	start := time.Now()
	end := start.Add(o.Duration)
	var wg sync.WaitGroup
	rank := 0
	for _, ep := range eps {
		if ep.Pub < 0 {
			continue
		}
		if o.Count > 0 {
			quota := int64(o.Count / pubs)
			if rank < o.Count%pubs {
				quota++
			}
			rank++
			wg.Add(1)
			go func(ep *Endpoint) {
				defer wg.Done()
				ep.publishCount(ctx, quota, end, o)
			}(ep)
			continue
		}
		// Publishers are phased evenly over one send interval, so that they
		// do not all fire at the same instant.
		phase := time.Duration(float64(rank) / float64(pubs) * float64(time.Second) / perPub)
		rank++
		wg.Add(1)
		go func(ep *Endpoint) {
			defer wg.Done()
			ep.publish(ctx, start.Add(phase), end, perPub, o)
		}(ep)
	}
	stopProgress := progress(o.Progress, log, func() string {
		var sent int64
		for _, ep := range eps {
			sent += ep.sent.Load()
		}
		el := time.Since(start).Seconds()
		return fmt.Sprintf("%s %5.1fs sent=%d (%.0f/s) delivered=%d (%.0f/s)", o.Label, el, sent, float64(sent)/el, delivered.Load(), float64(delivered.Load())/el)
	})
	wg.Wait()
	deliveredInWindow := delivered.Load()
	elapsed := time.Since(start)
	cpu1, cpuErr1 := serverCPU(o)
	self1 := selfCPU()
	drain(ctx, eps, delivered, o.Drain)
	cpu2, cpuErr2 := serverCPU(o)
	stopProgress()

	st := &MsgStats{Label: o.Label, Endpoints: len(eps), Publishers: pubs, TargetRate: o.Rate}
	expected := map[int]*SeqSet{}
	for _, ep := range eps {
		if ep.Pub < 0 {
			continue
		}
		st.Sent += ep.sent.Load()
		st.SendErrors += ep.errs.Load()
		ep.ackMu.Lock()
		expected[ep.Pub] = ep.acked
		st.Acked += int64(ep.acked.Len())
		ep.ackMu.Unlock()
		if e, ok := ep.lastErr.Load().(string); ok {
			st.LastError = e
		}
	}
	all, acks := &Latencies{}, &Latencies{}
	for _, ep := range eps {
		acks.Merge(&ep.ackLat)
		want := map[int]*SeqSet{}
		for _, p := range ep.Expect {
			if s, ok := expected[p]; ok {
				want[p] = s
				st.Expected += int64(s.Len())
			}
		}
		lost, dup := ep.tracker.Account(want, -1)
		st.Lost += lost
		st.Duplicated += dup
		st.Delivered += ep.tracker.Deliveries()
		all.Merge(&ep.tracker.lat)
		if !ep.conn.Alive() {
			st.Disconnected++
			if st.CloseCodes == nil {
				st.CloseCodes = map[string]int{}
			}
			st.CloseCodes[ep.conn.CloseCode()]++
		}
	}
	st.Skipped = skippedTotal(eps)
	st.SentPerSec = float64(st.Sent) / elapsed.Seconds()
	st.DeliveriesPerS = float64(deliveredInWindow) / elapsed.Seconds()
	if last := cnt.last.Load(); o.Count > 0 && last > start.UnixNano() {
		// Everything was sent as fast as possible: the rate is that of
		// the whole run, up to the last delivery.
		st.DeliveriesPerS = float64(st.Delivered) / time.Duration(last-start.UnixNano()).Seconds()
	}
	st.Latency = all.Summary()
	st.AckLatency = acks.Summary()
	if cpuErr == nil && cpuErr1 == nil && o.ServerCPU != nil {
		st.ServerCores = round((cpu1-cpu0)/elapsed.Seconds()*100) / 100
	}
	st.BenchCores = round((self1-self0)/elapsed.Seconds()*100) / 100
	if cpuErr == nil && cpuErr2 == nil && o.ServerCPU != nil && cpu2 > cpu0 {
		st.ServerCPUSeconds = round((cpu2-cpu0)*100) / 100
		st.DeliveriesPerCPU = round(float64(st.Delivered) / (cpu2 - cpu0))
	}
	return st, ctx.Err()
}

// drain waits, at most max, until every publisher's messages are
// confirmed and no delivery has arrived for one second.
func drain(ctx context.Context, eps []*Endpoint, delivered *atomic.Int64, max time.Duration) {
	deadline := time.Now().Add(max)
	last, quietSince := delivered.Load(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		sleepCtx(ctx, 100*time.Millisecond)
		if d := delivered.Load(); d != last {
			last, quietSince = d, time.Now()
			continue
		}
		pending := false
		for _, ep := range eps {
			if ep.Pub >= 0 && ep.inflight.Load() > 0 && ep.conn.Alive() {
				pending = true
				break
			}
		}
		if !pending && time.Since(quietSince) >= time.Second {
			return
		}
	}
}

func skippedTotal(eps []*Endpoint) int64 {
	var n int64
	for _, ep := range eps {
		n += ep.skipped
	}
	return n
}

func (ep *Endpoint) handle(b []byte, needAck bool, cnt *counters) {
	switch Classify(b) {
	case FrameMessage:
		now := time.Now()
		m, ok := ParseMarker(b)
		if !ok || m.Pub == ep.Pub {
			return
		}
		if !ep.expects(m.Pub) {
			return
		}
		if ep.tracker.Record(m.Pub, m.Seq, m.Sent, now) {
			cnt.delivered.Add(1)
			cnt.last.Store(now.UnixNano())
		}
	case FrameAck:
		if ep.Pub < 0 || !needAck {
			return
		}
		seq, err := strconv.ParseInt(frameID(b), 10, 64)
		if err != nil {
			return
		}
		ep.ackMu.Lock()
		ep.acked.Add(seq)
		ep.ackMu.Unlock()
		ep.inflight.Add(-1)
		if m, ok := ParseMarker(b); ok {
			ep.ackLat.Add(time.Since(m.Sent))
		}
	case FrameError:
		if ep.Pub < 0 {
			return
		}
		if frameID(b) != "" {
			ep.inflight.Add(-1)
		}
		ep.errs.Add(1)
		s := string(b)
		if len(s) > 200 {
			s = s[:200]
		}
		ep.lastErr.Store(s)
	}
}

// needAck says whether the endpoint's sends wait for an ack: a JSON
// socket's when the run asks for them, an XMPP stream's never.
func (ep *Endpoint) needAck(o MsgOptions) bool { return o.NeedAck && ep.XMPP == nil }

// xmppStanzaID returns the id of publisher pub's message seq: a valid
// client id, as the ids real XMPP clients send are, so the server makes
// the send idempotent on it.
func xmppStanzaID(pub int, seq int64) string {
	return "b" + strconv.Itoa(pub) + "-" + strconv.FormatInt(seq, 10)
}

// parseXMPPStanzaID returns the publisher and seq of a stanza id made by
// xmppStanzaID.
func parseXMPPStanzaID(id string) (int, int64, bool) {
	rest, ok := strings.CutPrefix(id, "b")
	if !ok {
		return 0, 0, false
	}
	p, s, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, 0, false
	}
	pub, err1 := strconv.Atoi(p)
	seq, err2 := strconv.ParseInt(s, 10, 64)
	if err1 != nil || err2 != nil || seq < 0 {
		return 0, 0, false
	}
	return pub, seq, true
}

// handleStanza handles one stanza of an XMPP endpoint: a chat message
// carrying a marker is a delivery; a bounced message (type error, the
// id of one of its sends) is a send error and no longer expected.
func (ep *Endpoint) handleStanza(n *XNode, cnt *counters) {
	if n.XMLName.Local != "message" {
		return
	}
	if n.Attr("type") == "error" {
		pub, seq, ok := parseXMPPStanzaID(n.Attr("id"))
		if !ok || pub != ep.Pub || ep.acked == nil {
			return
		}
		ep.ackMu.Lock()
		ep.acked.Remove(seq)
		ep.ackMu.Unlock()
		ep.errs.Add(1)
		ep.lastErr.Store("bounced: " + n.condition())
		return
	}
	b := n.Child("body")
	if b == nil {
		return
	}
	now := time.Now()
	m, ok := ParseMarker([]byte(b.Text))
	if !ok || m.Pub == ep.Pub || !ep.expects(m.Pub) {
		return
	}
	if ep.tracker.Record(m.Pub, m.Seq, m.Sent, now) {
		cnt.delivered.Add(1)
		cnt.last.Store(now.UnixNano())
	}
}

func (ep *Endpoint) expects(pub int) bool {
	for _, p := range ep.Expect {
		if p == pub {
			return true
		}
	}
	return false
}

// publish sends at rate per second between start (its first send) and
// end, never letting
// more than o.Window messages go unconfirmed.
func (ep *Endpoint) publish(ctx context.Context, start, end time.Time, rate float64, o MsgOptions) {
	if rate <= 0 {
		return
	}
	var seq int64
	tick := time.Millisecond
	if iv := time.Duration(float64(time.Second) / rate); iv > tick {
		tick = iv
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		now := time.Now()
		if now.After(end) || ctx.Err() != nil {
			return
		}
		due := int64(0)
		if !now.Before(start) {
			due = int64(now.Sub(start).Seconds()*rate) + 1
		}
		for seq < due {
			if ep.needAck(o) && o.Window > 0 && ep.inflight.Load() >= int64(o.Window) {
				ep.skipped += due - seq
				seq = due
				break
			}
			if !ep.sendFrame(seq, o) {
				return
			}
			seq++
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sendFrame sends message seq as a message.send frame; it reports false
// when the socket failed.
func (ep *Endpoint) sendFrame(seq int64, o MsgOptions) bool {
	m := Marker{Pub: ep.Pub, Seq: seq, Sent: time.Now()}
	if ep.needAck(o) {
		ep.inflight.Add(1)
	} else {
		ep.ackMu.Lock()
		ep.acked.Add(seq)
		ep.ackMu.Unlock()
	}
	var frame []byte
	if ep.XMPP != nil {
		frame = ChatStanza(ep.Target, xmppStanzaID(ep.Pub, seq), m.Content(o.Size))
	} else {
		frame = SendFrame(seq, ep.Target, ep.MsgType, m.Content(o.Size))
	}
	if err := ep.conn.Send(frame); err != nil {
		ep.errs.Add(1)
		ep.lastErr.Store(err.Error())
		return false
	}
	ep.sent.Add(1)
	return true
}

// publishCount sends messages 0..quota-1 as fast as the window allows,
// until end: with message.send frames, waiting while o.Window of them are
// unconfirmed; through REST (ep.Base set), from o.Window goroutines, each
// sending its next request when the previous one is answered.
func (ep *Endpoint) publishCount(ctx context.Context, quota int64, end time.Time, o MsgOptions) {
	window := max(o.Window, 1)
	if ep.Base == nil {
		for seq := int64(0); seq < quota; {
			if time.Now().After(end) || ctx.Err() != nil {
				return
			}
			if ep.needAck(o) && ep.inflight.Load() >= int64(window) {
				time.Sleep(100 * time.Microsecond)
				continue
			}
			if !ep.sendFrame(seq, o) {
				return
			}
			seq++
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range window {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seq := next.Add(1) - 1
				if seq >= quota || time.Now().After(end) || ctx.Err() != nil {
					return
				}
				ep.post(ctx, seq, o)
			}
		}()
	}
	wg.Wait()
}

// post sends message seq with POST /api/messages; the 201 answer is its
// acknowledgement.
func (ep *Endpoint) post(ctx context.Context, seq int64, o MsgOptions) {
	m := Marker{Pub: ep.Pub, Seq: seq, Sent: time.Now()}
	body := map[string]string{"to": ep.Target, "type": ep.MsgType, "content": m.Content(o.Size)}
	ep.sent.Add(1)
	if _, err := o.API.Do(ctx, ep.Base, "POST", "/api/messages", ep.Token, body, nil); err != nil {
		ep.errs.Add(1)
		ep.lastErr.Store(err.Error())
		return
	}
	ep.ackLat.Add(time.Since(m.Sent))
	ep.ackMu.Lock()
	ep.acked.Add(seq)
	ep.ackMu.Unlock()
}

// connectAll runs dial(i) for i in [0, n) with at most conc at once and
// returns the first error.
func connectAll(ctx context.Context, n, conc int, dial func(i int) error) error {
	if conc < 1 {
		conc = 1
	}
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for w := 0; w < conc && w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := dial(i); err != nil {
					once.Do(func() { first = fmt.Errorf("socket %d: %w", i, err) })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// progress prints line() every interval on w until the returned stop is
// called; interval 0 prints nothing.
func progress(interval time.Duration, w io.Writer, line func() string) (stop func()) {
	if interval <= 0 || w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintln(w, line())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func serverCPU(o MsgOptions) (float64, error) {
	if o.ServerCPU == nil {
		return 0, nil
	}
	return o.ServerCPU()
}

// selfCPU returns this process's user+system CPU seconds, or 0 when the
// platform does not say.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
