package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// xmppFlags are the flags of the XMPP modes: where each pod's XMPP
// listener is, and its domain.
type xmppFlags struct {
	addrList *string
	domain   *string
	addrs    []string
}

func registerXMPPFlags(fs *flag.FlagSet) *xmppFlags {
	return &xmppFlags{
		addrList: fs.String("xmpp-addr", "127.0.0.1:5222", "comma-separated XMPP listeners (AOBA_XMPP_ADDR), host:port on 127.0.0.x, "+
			"one per -addr in the same order (or one for all)"),
		domain: fs.String("domain", "aoba.chat", "the servers' XMPP domain (AOBA_DOMAIN)"),
	}
}

// validate parses the listeners: one for every server of -addr.
func (x *xmppFlags) validate(servers int) error {
	for _, a := range strings.Split(*x.addrList, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if err := CheckLocal(a); err != nil {
			return fmt.Errorf("-xmpp-addr %q: %v", a, err)
		}
		x.addrs = append(x.addrs, a)
	}
	switch len(x.addrs) {
	case servers:
	case 1:
		for len(x.addrs) < servers {
			x.addrs = append(x.addrs, x.addrs[0])
		}
	default:
		return fmt.Errorf("-xmpp-addr names %d listeners for %d servers of -addr", len(x.addrs), servers)
	}
	if *x.domain == "" || strings.ContainsAny(*x.domain, "@/ ") {
		return errors.New("-domain must be a domain name")
	}
	return nil
}

// jid returns the bare JID of user id.
func (x *xmppFlags) jid(id string) string { return id + "@" + *x.domain }

// runtimeMetrics are the Go runtime figures the idle modes read from each
// server's /metrics, besides its RSS.
var runtimeMetrics = []struct {
	metric, name, unit string
	scale              float64
}{
	{"go_goroutines", "goroutines", "goroutines", 1},
	{"go_memstats_stack_inuse_bytes", "stack", "KiB", 1024},
	{"go_memstats_heap_inuse_bytes", "heap_inuse", "KiB", 1024},
	{"go_memstats_heap_alloc_bytes", "heap_alloc", "KiB", 1024},
}

// snapshot reads RSS and the runtime metrics of every server; a missing
// runtime metric is left out.
func snapshot(ctx context.Context, api *API, addrs []*url.URL) ([]map[string]float64, error) {
	out := make([]map[string]float64, len(addrs))
	for i, a := range addrs {
		out[i] = map[string]float64{}
		v, err := ServerRSS(ctx, api, a)
		if err != nil {
			return nil, fmt.Errorf("%s/metrics: %w", a, err)
		}
		out[i]["process_resident_memory_bytes"] = v
		for _, m := range runtimeMetrics {
			if v, err := ServerMetric(ctx, api, a, m.metric); err == nil {
				out[i][m.metric] = v
			}
		}
		if v, err := ServerMetric(ctx, api, a, "aoba_xmpp_streams"); err == nil {
			out[i]["aoba_xmpp_streams"] = v
		}
	}
	return out, nil
}

// growth returns the sum over servers of metric's growth from before to
// after, and whether every server reported it both times.
func growth(before, after []map[string]float64, metric string) (float64, bool) {
	var d float64
	for i := range before {
		b, ok1 := before[i][metric]
		a, ok2 := after[i][metric]
		if !ok1 || !ok2 {
			return 0, false
		}
		d += a - b
	}
	return d, true
}

func runXMPPIdle(ctx context.Context, args []string, log io.Writer) (Result, error) {
	fs := flag.NewFlagSet("xmpp-idle", flag.ContinueOnError)
	fs.SetOutput(log)
	var c Common
	c.register(fs, 60*time.Second)
	xf := registerXMPPFlags(fs)
	n := fs.Int("n", 1000, fmt.Sprintf("number of authenticated XMPP sessions (capped at %d)", MaxSockets))
	dialConc := fs.Int("dial-concurrency", 32, "sessions negotiated at once")
	settle := fs.Duration("settle", 3*time.Second, "wait after connecting before reading memory")
	mech := fs.String("sasl", SASLOAuthBearer, "SASL mechanism: oauthbearer (the REST login's token) or plain (the password: one argon2 check and one more Aoba session per stream)")
	presence := fs.Bool("presence", true, "send the initial presence after binding (the session becomes available)")
	keepalive := fs.Duration("keepalive", 0, "send a whitespace keepalive on every session every interval during the hold, spread evenly (0: none)")
	if err := fs.Parse(args); err != nil {
		return Result{}, err
	}
	if *n < 1 || *n > MaxSockets {
		return Result{}, fmt.Errorf("-n must be 1..%d", MaxSockets)
	}
	if *mech != SASLOAuthBearer && *mech != SASLPlain {
		return Result{}, errors.New("-sasl must be oauthbearer or plain")
	}
	if *keepalive < 0 || (*keepalive > 0 && *keepalive < time.Second) {
		return Result{}, errors.New("-keepalive must be 0 or at least 1s")
	}
	if err := c.validate(); err != nil {
		return Result{}, err
	}
	if err := xf.validate(len(c.Addrs)); err != nil {
		return Result{}, err
	}
	*dialConc = clamp(*dialConc, 1, MaxConcurrency)
	src, err := heldSources(&c, *n)
	if err != nil {
		return Result{}, err
	}
	res := Result{Command: "xmpp-idle", JSON: c.JSON, Params: map[string]any{
		"addr": c.AddrList, "xmpp_addr": strings.Join(xf.addrs, ","), "domain": *xf.domain, "n": *n,
		"duration": c.Duration.String(), "sources": src.Len(), "sasl": *mech, "presence": *presence,
		"keepalive": keepalive.String(), "open_files": fmt.Sprintf("%d/%d", c.Files.Soft, c.Files.Hard),
	}}
	api := NewAPI(c.Conc)
	users, err := provisionHeld(ctx, api, &c, *n, &res, log)
	if err != nil {
		return res, err
	}
	before, err := snapshot(ctx, api, c.Addrs)
	if err != nil {
		return res, err
	}
	selfBefore := selfRSS()
	conns := make([]*XConn, *n)
	defer func() {
		for _, cn := range conns {
			if cn != nil {
				cn.Close()
			}
		}
	}()
	var opened atomic.Int64
	stop := progress(c.Progress, log, func() string { return fmt.Sprintf("xmpp-idle: %d/%d sessions open", opened.Load(), *n) })
	t1 := time.Now()
	err = connectAll(ctx, *n, *dialConc, func(i int) error {
		u := users[i]
		cn, err := DialXMPP(ctx, XDialOptions{
			Addr: xf.addrs[u.Pod], Domain: *xf.domain, Src: src.Next(), Mech: *mech,
			Username: u.Username, Password: c.Password, Token: u.Token, Resource: "idle",
			Presence: *presence, BufSize: idleBufSize,
		}, nil)
		if err != nil {
			return fmt.Errorf("xmpp: %w", err)
		}
		conns[i] = cn
		opened.Add(1)
		return nil
	})
	connectTime := time.Since(t1)
	stop()
	if err != nil {
		return res, err
	}
	res.Add("connect_rate", round(float64(*n)/connectTime.Seconds()), "sessions/s")
	sleepCtx(ctx, *settle)
	after, err := snapshot(ctx, api, c.Addrs)
	if err != nil {
		return res, err
	}
	perSession := func(prefix string, after []map[string]float64) {
		if d, ok := growth(before, after, "process_resident_memory_bytes"); ok {
			res.Add(prefix+"rss_per_session", round(d/float64(*n)/1024), "KiB")
		}
		for _, m := range runtimeMetrics {
			if d, ok := growth(before, after, m.metric); ok {
				res.Add(prefix+m.name+"_per_session", round2(d/float64(*n)/m.scale), m.unit)
			}
		}
	}
	for i := range c.Addrs {
		res.Add(fmt.Sprintf("rss_before_pod%d", i), round(before[i]["process_resident_memory_bytes"]/(1<<20)), "MiB")
		res.Add(fmt.Sprintf("rss_after_pod%d", i), round(after[i]["process_resident_memory_bytes"]/(1<<20)), "MiB")
	}
	perSession("", after)
	if d, ok := growth(before, after, "aoba_xmpp_streams"); ok {
		res.Add("server_streams_opened", d, "streams")
	}
	if self := selfRSS(); self > 0 && selfBefore > 0 {
		res.Add("bench_rss_per_session", round((self-selfBefore)/float64(*n)/1024), "KiB")
	}

	// The hold: every session idle. The server sends nothing on an idle
	// XMPP stream (no server-side keepalive: it only closes a stream
	// silent for 10 minutes); with -keepalive the tool sends whitespace.
	cpu0, cpuErr := ServersCPU(ctx, api, &c)
	self0, h0 := selfCPU(), time.Now()
	var sent atomic.Int64
	kaDone := make(chan struct{})
	if *keepalive > 0 {
		go func() {
			defer close(kaDone)
			sendKeepalives(ctx, conns, *keepalive, h0.Add(c.Duration), &sent)
		}()
	} else {
		close(kaDone)
	}
	stop = progress(c.Progress, log, func() string {
		return fmt.Sprintf("xmpp-idle: holding, %d sessions alive, %d keepalives sent", aliveX(conns), sent.Load())
	})
	sleepCtx(ctx, c.Duration)
	stop()
	<-kaDone
	cpu1, cpuErr1 := ServersCPU(ctx, api, &c)
	self1, hold := selfCPU(), time.Since(h0)
	if cpuErr == nil && cpuErr1 == nil {
		cpu := cpu1 - cpu0
		res.Add("server_cpu_in_hold", round2(cpu/hold.Seconds()*100), "% of one core")
		res.Add("server_cpu_per_session", round2(cpu/hold.Seconds()/float64(*n)*1e6), "µs/s")
		if k := sent.Load(); k > 0 {
			res.Add("keepalives_sent", float64(k), "keepalives")
			res.Add("server_cpu_per_keepalive", round(cpu/float64(k)*1e6), "µs")
		}
	}
	res.Add("bench_cpu_in_hold", round2((self1-self0)/hold.Seconds()*100), "% of one core")
	if end, err := snapshot(ctx, api, c.Addrs); err == nil {
		if d, ok := growth(before, end, "process_resident_memory_bytes"); ok {
			res.Add("rss_per_session_after_hold", round(d/float64(*n)/1024), "KiB")
		}
	}
	res.Add("sessions_alive_at_end", float64(aliveX(conns)), "sessions")
	return res, ctx.Err()
}

// sendKeepalives writes one space on every session every interval, the
// sessions spread evenly over the interval, until end; it counts the
// writes that succeeded in sent.
func sendKeepalives(ctx context.Context, conns []*XConn, interval time.Duration, end time.Time, sent *atomic.Int64) {
	start := time.Now()
	step := interval / time.Duration(len(conns))
	space := []byte(" ")
	for round := 0; ; round++ {
		for i, c := range conns {
			at := start.Add(time.Duration(round)*interval + time.Duration(i)*step)
			if at.After(end) || ctx.Err() != nil {
				return
			}
			if d := time.Until(at); d > 0 {
				sleepCtx(ctx, d)
			}
			if c != nil && c.Send(space) == nil {
				sent.Add(1)
			}
		}
	}
}

func aliveX(conns []*XConn) int {
	n := 0
	for _, c := range conns {
		if c != nil && c.Alive() {
			n++
		}
	}
	return n
}

// xmppDirections are the runs of xmpp-latency, each one way inside every
// pair (a, b): x2j, a's XMPP stream sends to b's JSON socket; j2x, b's
// JSON socket (message.send) sends to a's XMPP stream; j2j, a's JSON
// socket sends to b's, the same run with no XMPP in it.
var xmppDirections = []string{"x2j", "j2x", "j2j"}

func runXMPPLatency(ctx context.Context, args []string, log io.Writer) (Result, error) {
	fs := flag.NewFlagSet("xmpp-latency", flag.ContinueOnError)
	fs.SetOutput(log)
	var c Common
	c.register(fs, 20*time.Second)
	xf := registerXMPPFlags(fs)
	pairs := fs.Int("pairs", 50, "number of pairs (a, b); with two servers a and b sit on different ones")
	dirs := fs.String("dirs", strings.Join(xmppDirections, ","), "runs, in order: x2j (XMPP to JSON socket), "+
		"j2x (JSON socket to XMPP), j2j (JSON socket to JSON socket, the reference)")
	mf := registerMsgFlags(fs, 100)
	if err := fs.Parse(args); err != nil {
		return Result{}, err
	}
	if err := c.validate(); err != nil {
		return Result{}, err
	}
	if err := xf.validate(len(c.Addrs)); err != nil {
		return Result{}, err
	}
	if *pairs < 1 || *pairs*2 > MaxSockets {
		return Result{}, fmt.Errorf("-pairs must be 1..%d", MaxSockets/2)
	}
	var runs []string
	for _, d := range strings.Split(*dirs, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		known := false
		for _, k := range xmppDirections {
			known = known || k == d
		}
		if !known {
			return Result{}, fmt.Errorf("-dirs: unknown run %q (x2j, j2x, j2j)", d)
		}
		runs = append(runs, d)
	}
	if len(runs) == 0 {
		return Result{}, errors.New("-dirs selects nothing")
	}
	opts, err := mf.options(&c, "", true)
	if err != nil {
		return Result{}, err
	}
	if opts.Count > 0 {
		return Result{}, errors.New("-count is not supported here: xmpp-latency sends at -rate")
	}
	res := Result{Command: "xmpp-latency", JSON: c.JSON, Params: map[string]any{
		"addr": c.AddrList, "xmpp_addr": strings.Join(xf.addrs, ","), "domain": *xf.domain, "pairs": *pairs,
		"rate": opts.Rate, "duration": c.Duration.String(), "window": opts.Window, "size": opts.Size, "dirs": strings.Join(runs, ","),
	}}
	api := NewAPI(c.Conc)
	opts.ServerCPU = func() (float64, error) { return ServersCPU(ctx, api, &c) }
	users, err := Provision(ctx, api, &c, *pairs*2, nil)
	if err != nil {
		return res, err
	}
	stats := map[string]*MsgStats{}
	for r, dir := range runs {
		if r > 0 {
			// Let the previous run's streams and sockets end.
			sleepCtx(ctx, time.Second)
		}
		eps := make([]*Endpoint, 0, len(users))
		for k := 0; k < *pairs; k++ {
			a, b := users[2*k], users[2*k+1]
			xa := &XMPPEndpoint{Addr: xf.addrs[a.Pod], Domain: *xf.domain, Token: a.Token}
			switch dir {
			case "x2j":
				eps = append(eps,
					&Endpoint{XMPP: xa, Pub: k, Target: xf.jid(b.ID), MsgType: "chat"},
					&Endpoint{URL: WSURL(c.Addrs[b.Pod], b.Token), Pub: -1, Expect: []int{k}})
			case "j2x":
				eps = append(eps,
					&Endpoint{URL: WSURL(c.Addrs[b.Pod], b.Token), Pub: k, Target: a.Username, MsgType: "chat"},
					&Endpoint{XMPP: xa, Pub: -1, Expect: []int{k}})
			case "j2j":
				eps = append(eps,
					&Endpoint{URL: WSURL(c.Addrs[a.Pod], a.Token), Pub: k, Target: b.Username, MsgType: "chat"},
					&Endpoint{URL: WSURL(c.Addrs[b.Pod], b.Token), Pub: -1, Expect: []int{k}})
			}
		}
		opts.Label = dir
		st, err := RunMessaging(ctx, eps, opts, log)
		if err != nil {
			return res, fmt.Errorf("%s: %w", dir, err)
		}
		stats[dir] = st
		res.Runs = append(res.Runs, st)
		res.addMsgStats(dir+"_", st)
	}
	if ref := stats["j2j"]; ref != nil {
		for _, dir := range []string{"x2j", "j2x"} {
			if st := stats[dir]; st != nil {
				res.Add(dir+"_ratio_latency_p50", ratio(st.Latency.P50, ref.Latency.P50), "x j2j")
				res.Add(dir+"_ratio_latency_p99", ratio(st.Latency.P99, ref.Latency.P99), "x j2j")
			}
		}
	}
	return res, ctx.Err()
}
