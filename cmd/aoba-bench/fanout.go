package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"
)

type msgFlags struct {
	rate     *float64
	window   *int
	size     *int
	drain    *time.Duration
	dialConc *int
	count    *int
}

func registerMsgFlags(fs *flag.FlagSet, defRate float64) msgFlags {
	return msgFlags{
		rate:     fs.Float64("rate", defRate, "target total messages per second over all publishers"),
		window:   fs.Int("window", 64, "max unacknowledged messages per publisher (a full window skips sends)"),
		size:     fs.Int("size", 64, "message content size in bytes"),
		drain:    fs.Duration("drain", 10*time.Second, "longest wait after sending for late deliveries and acks (ends after 1s without any)"),
		dialConc: fs.Int("dial-concurrency", 32, "sockets opened at once"),
		count: fs.Int("count", 0, "send this many messages over all publishers as fast as -window allows, "+
			"ignoring -rate (-duration caps the sending time); 0: send at -rate for -duration"),
	}
}

func (m msgFlags) options(c *Common, label string, needAck bool) (MsgOptions, error) {
	if *m.rate <= 0 || *m.rate > MaxRate {
		return MsgOptions{}, fmt.Errorf("-rate must be in (0, %d]", MaxRate)
	}
	if *m.count < 0 || *m.count > MaxMessages {
		return MsgOptions{}, fmt.Errorf("-count must be in [0, %d]", MaxMessages)
	}
	return MsgOptions{
		Rate: *m.rate, Duration: c.Duration, Drain: min(max(*m.drain, 0), time.Minute),
		Window: clamp(*m.window, 1, 100000), Size: clamp(*m.size, 32, 10000), NeedAck: needAck,
		DialConc: clamp(*m.dialConc, 1, MaxConcurrency), Sources: c.Sources, Files: c.Files, Progress: c.Progress, Label: label,
		Count: *m.count,
	}, nil
}

func runFanout(ctx context.Context, args []string, log io.Writer) (Result, error) {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	fs.SetOutput(log)
	var c Common
	c.register(fs, 20*time.Second)
	members := fs.Int("members", 100, "group size M; member i connects to server i mod len(addr)")
	pubs := fs.Int("publishers", 4, "number of publishing members P")
	baseline := fs.Bool("baseline", false, "also run the bare Fiber broadcast baseline and print ratios")
	via := fs.String("via", "ws", "how publishers send: ws (message.send frames) or rest (POST /api/messages, "+
		"-window requests in flight per publisher; needs -count; the baseline always uses frames)")
	mf := registerMsgFlags(fs, 100)
	if err := fs.Parse(args); err != nil {
		return Result{}, err
	}
	if err := c.validate(); err != nil {
		return Result{}, err
	}
	if *members < 2 || *members > MaxSockets {
		return Result{}, fmt.Errorf("-members must be 2..%d", MaxSockets)
	}
	if *pubs < 1 || *pubs > *members {
		return Result{}, fmt.Errorf("-publishers must be 1..members")
	}
	opts, err := mf.options(&c, "fanout", true)
	if err != nil {
		return Result{}, err
	}
	switch *via {
	case "ws":
	case "rest":
		if opts.Count == 0 {
			return Result{}, fmt.Errorf("-via rest needs -count")
		}
		opts.API = NewAPI(min(*pubs*opts.Window, MaxConcurrency))
	default:
		return Result{}, fmt.Errorf("-via must be ws or rest")
	}
	if *baseline {
		// The baseline server runs in this process: it holds the other end
		// of each of its sockets.
		if err := checkFiles(c.Files, 2**members); err != nil {
			return Result{}, err
		}
	}
	res := Result{Command: "fanout", JSON: c.JSON, Params: map[string]any{
		"addr": c.AddrList, "members": *members, "publishers": *pubs, "rate": opts.Rate,
		"duration": c.Duration.String(), "window": opts.Window, "size": opts.Size, "baseline": *baseline,
		"count": opts.Count, "via": *via,
	}}
	api := NewAPI(c.Conc)
	opts.ServerCPU = func() (float64, error) { return ServersCPU(ctx, api, &c) }
	users, err := Provision(ctx, api, &c, *members, nil)
	if err != nil {
		return res, err
	}
	gid, err := CreateGroup(ctx, api, &c, users[0], users, c.Prefix+"-group")
	if err != nil {
		return res, err
	}
	fmt.Fprintf(log, "fanout: %d members provisioned in group %s\n", len(users), gid)
	eps := fanoutEndpoints(users, *pubs, func(u *User) string {
		return WSURL(c.Addrs[u.Pod], u.Token)
	}, gid)
	if *via == "rest" {
		for i, ep := range eps {
			if ep.Pub >= 0 {
				ep.Base, ep.Token = c.Addrs[users[i].Pod], users[i].Token
			}
		}
	}
	st, err := RunMessaging(ctx, eps, opts, log)
	if err != nil {
		return res, err
	}
	res.Runs = append(res.Runs, st)
	res.addMsgStats("", st)
	if !*baseline {
		return res, nil
	}
	b, err := StartBaseline()
	if err != nil {
		return res, fmt.Errorf("baseline: %w", err)
	}
	defer b.Close()
	opts.Label = "baseline"
	opts.ServerCPU = nil // the baseline runs in this process: see bench_cpu
	bst, err := RunMessaging(ctx, fanoutEndpoints(users, *pubs, func(*User) string {
		return WSURL(b.URL(), "")
	}, "baseline"), opts, log)
	if err != nil {
		return res, fmt.Errorf("baseline: %w", err)
	}
	res.Runs = append(res.Runs, bst)
	res.addMsgStats("baseline_", bst)
	res.Add("ratio_deliveries_rate", ratio(st.DeliveriesPerS, bst.DeliveriesPerS), "x baseline")
	res.Add("ratio_latency_p50", ratio(st.Latency.P50, bst.Latency.P50), "x baseline")
	res.Add("ratio_latency_p95", ratio(st.Latency.P95, bst.Latency.P95), "x baseline")
	res.Add("ratio_latency_p99", ratio(st.Latency.P99, bst.Latency.P99), "x baseline")
	res.Add("ratio_latency_max", ratio(st.Latency.Max, bst.Latency.Max), "x baseline")
	return res, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return float64(int64(a/b*1000+0.5)) / 1000
}

// fanoutEndpoints makes one endpoint per member: the first pubs members
// publish to the group, and every member expects every other publisher.
func fanoutEndpoints(users []*User, pubs int, wsURL func(*User) string, group string) []*Endpoint {
	all := make([]int, pubs)
	for i := range all {
		all[i] = i
	}
	eps := make([]*Endpoint, len(users))
	for i, u := range users {
		ep := &Endpoint{URL: wsURL(u), Pub: -1, Target: group, MsgType: "groupchat"}
		if i < pubs {
			ep.Pub = i
		}
		for _, p := range all {
			if p != ep.Pub {
				ep.Expect = append(ep.Expect, p)
			}
		}
		eps[i] = ep
	}
	return eps
}

func runDirect(ctx context.Context, args []string, log io.Writer) (Result, error) {
	fs := flag.NewFlagSet("direct", flag.ContinueOnError)
	fs.SetOutput(log)
	var c Common
	c.register(fs, 20*time.Second)
	pairs := fs.Int("pairs", 50, "number of pairs K; in each pair both users send to each other")
	mf := registerMsgFlags(fs, 1000)
	if err := fs.Parse(args); err != nil {
		return Result{}, err
	}
	if err := c.validate(); err != nil {
		return Result{}, err
	}
	if *pairs < 1 || *pairs*2 > MaxSockets {
		return Result{}, fmt.Errorf("-pairs must be 1..%d", MaxSockets/2)
	}
	opts, err := mf.options(&c, "direct", true)
	if err != nil {
		return Result{}, err
	}
	res := Result{Command: "direct", JSON: c.JSON, Params: map[string]any{
		"addr": c.AddrList, "pairs": *pairs, "rate": opts.Rate, "duration": c.Duration.String(),
		"window": opts.Window, "size": opts.Size,
	}}
	api := NewAPI(c.Conc)
	opts.ServerCPU = func() (float64, error) { return ServersCPU(ctx, api, &c) }
	users, err := Provision(ctx, api, &c, *pairs*2, nil)
	if err != nil {
		return res, err
	}
	eps := make([]*Endpoint, len(users))
	for i, u := range users {
		// Users 2k and 2k+1 form a pair; with two or more servers they were
		// provisioned round-robin, so the two ends sit on different pods.
		partner := i ^ 1
		eps[i] = &Endpoint{URL: WSURL(c.Addrs[u.Pod], u.Token), Pub: i, Target: users[partner].Username,
			MsgType: "chat", Expect: []int{partner}}
	}
	st, err := RunMessaging(ctx, eps, opts, log)
	if err != nil {
		return res, err
	}
	res.Runs = append(res.Runs, st)
	res.addMsgStats("", st)
	return res, nil
}
