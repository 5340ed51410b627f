package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
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

	conn     *Conn
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
	// ServerCPU, when set, returns the servers' total CPU seconds; it is
	// read at the start and the end of the sending window.
	ServerCPU func() (float64, error)
}

// MsgStats are the figures of a messaging run.
type MsgStats struct {
	Label          string         `json:"label"`
	Endpoints      int            `json:"endpoints"`
	Publishers     int            `json:"publishers"`
	TargetRate     float64        `json:"target_rate"`
	Sent           int64          `json:"sent"`
	Acked          int64          `json:"acked"`
	SendErrors     int64          `json:"send_errors"`
	Skipped        int64          `json:"skipped_window_full"`
	SentPerSec     float64        `json:"sent_per_s"`
	Expected       int64          `json:"expected_deliveries"`
	Delivered      int64          `json:"delivered"`
	DeliveriesPerS float64        `json:"deliveries_per_s"`
	Lost           int64          `json:"lost"`
	Duplicated     int64          `json:"duplicated"`
	Disconnected   int            `json:"disconnected"`
	Latency        LatencySummary `json:"latency"`
	AckLatency     LatencySummary `json:"ack_latency"`
	LastError      string         `json:"last_error,omitempty"`
	ServerCores    float64        `json:"server_cpu_cores"`
	BenchCores     float64        `json:"bench_cpu_cores"`
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
	var delivered atomic.Int64
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
	defer func() {
		for _, ep := range eps {
			if ep.conn != nil {
				ep.conn.Close()
			}
		}
	}()
	if err := connectAll(ctx, len(eps), o.DialConc, func(i int) error {
		ep := eps[i]
		c, err := Dial(ctx, ep.URL, src.Next(), DefaultBufSize, func(b []byte) { ep.handle(b, o.NeedAck, &delivered) })
		ep.conn = c
		return err
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
	drain(ctx, eps, &delivered, o.Drain)
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
		}
	}
	st.Skipped = skippedTotal(eps)
	st.SentPerSec = float64(st.Sent) / elapsed.Seconds()
	st.DeliveriesPerS = float64(deliveredInWindow) / elapsed.Seconds()
	st.Latency = all.Summary()
	st.AckLatency = acks.Summary()
	if cpuErr == nil && cpuErr1 == nil && o.ServerCPU != nil {
		st.ServerCores = round((cpu1-cpu0)/elapsed.Seconds()*100) / 100
	}
	st.BenchCores = round((self1-self0)/elapsed.Seconds()*100) / 100
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

func (ep *Endpoint) handle(b []byte, needAck bool, delivered *atomic.Int64) {
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
			delivered.Add(1)
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
			if o.NeedAck && o.Window > 0 && ep.inflight.Load() >= int64(o.Window) {
				ep.skipped += due - seq
				seq = due
				break
			}
			m := Marker{Pub: ep.Pub, Seq: seq, Sent: time.Now()}
			if o.NeedAck {
				ep.inflight.Add(1)
			} else {
				ep.ackMu.Lock()
				ep.acked.Add(seq)
				ep.ackMu.Unlock()
			}
			if err := ep.conn.Send(SendFrame(seq, ep.Target, ep.MsgType, m.Content(o.Size))); err != nil {
				ep.errs.Add(1)
				ep.lastErr.Store(err.Error())
				return
			}
			ep.sent.Add(1)
			seq++
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
