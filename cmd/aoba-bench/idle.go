package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// idleBufSize is the read and write buffer size of the tool's idle sockets:
// they read a hello and pings only.
const idleBufSize = 512

func runIdle(ctx context.Context, args []string, log io.Writer) (Result, error) {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	fs.SetOutput(log)
	var c Common
	c.register(fs, 60*time.Second)
	n := fs.Int("n", 1000, fmt.Sprintf("number of authenticated sockets (capped at %d)", MaxSockets))
	dialConc := fs.Int("dial-concurrency", 64, "sockets opened at once")
	settle := fs.Duration("settle", 3*time.Second, "wait after connecting before reading memory")
	if err := fs.Parse(args); err != nil {
		return Result{}, err
	}
	if *n < 1 || *n > MaxSockets {
		return Result{}, fmt.Errorf("-n must be 1..%d", MaxSockets)
	}
	if err := c.validate(); err != nil {
		return Result{}, err
	}
	*dialConc = clamp(*dialConc, 1, MaxConcurrency)
	src, err := heldSources(&c, *n)
	if err != nil {
		return Result{}, err
	}
	res := Result{Command: "idle", JSON: c.JSON, Params: map[string]any{
		"addr": c.AddrList, "n": *n, "duration": c.Duration.String(), "sources": src.Len(),
		"open_files": fmt.Sprintf("%d/%d", c.Files.Soft, c.Files.Hard),
	}}
	api := NewAPI(c.Conc)
	users, err := provisionHeld(ctx, api, &c, *n, &res, log)
	if err != nil {
		return res, err
	}

	before := make([]float64, len(c.Addrs))
	runtimeBefore := make([]map[string]float64, len(c.Addrs))
	for i, a := range c.Addrs {
		if before[i], err = ServerRSS(ctx, api, a); err != nil {
			return res, fmt.Errorf("%s/metrics: %w", a, err)
		}
		runtimeBefore[i] = map[string]float64{}
		for _, m := range []string{"go_goroutines", "go_memstats_stack_inuse_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes"} {
			if v, err := ServerMetric(ctx, api, a, m); err == nil {
				runtimeBefore[i][m] = v
			}
		}
	}
	selfBefore := selfRSS()
	conns := make([]*Conn, *n)
	defer func() {
		for _, cn := range conns {
			if cn != nil {
				cn.Close()
			}
		}
	}()
	// The ping interval, from the first hello: every socket's first frame.
	var heartbeat atomic.Int64
	onFrame := func(b []byte) {
		if heartbeat.Load() == 0 {
			if s := helloHeartbeat(b); s > 0 {
				heartbeat.Store(s)
			}
		}
	}
	var opened atomic.Int64
	stop := progress(c.Progress, log, func() string { return fmt.Sprintf("idle: %d/%d sockets open", opened.Load(), *n) })
	t1 := time.Now()
	err = connectAll(ctx, *n, *dialConc, func(i int) error {
		u := users[i]
		cn, err := Dial(ctx, WSURL(c.Addrs[u.Pod], u.Token), src.Next(), idleBufSize, onFrame)
		if err == nil {
			conns[i] = cn
			opened.Add(1)
		}
		return err
	})
	connectTime := time.Since(t1)
	stop()
	if err != nil {
		return res, err
	}
	res.Add("connect_rate", round(float64(*n)/connectTime.Seconds()), "sockets/s")
	sleepCtx(ctx, *settle)
	// rssDelta returns the servers' RSS growth since before and each
	// server's RSS.
	rssDelta := func() (float64, []float64, error) {
		var delta float64
		after := make([]float64, len(c.Addrs))
		for i, a := range c.Addrs {
			v, err := ServerRSS(ctx, api, a)
			if err != nil {
				return 0, nil, fmt.Errorf("%s/metrics: %w", a, err)
			}
			after[i] = v
			delta += v - before[i]
		}
		return delta, after, nil
	}
	delta, after, err := rssDelta()
	if err != nil {
		return res, err
	}
	for i := range c.Addrs {
		res.Add(fmt.Sprintf("rss_before_pod%d", i), round(before[i]/(1<<20)), "MiB")
		res.Add(fmt.Sprintf("rss_after_pod%d", i), round(after[i]/(1<<20)), "MiB")
	}
	res.Add("rss_per_socket", round(delta/float64(*n)/1024), "KiB")
	// Where the memory goes, from the Go runtime's own metrics, when the
	// servers expose them.
	for _, m := range []struct {
		metric, name, unit string
		scale              float64
	}{
		{"go_goroutines", "goroutines_per_socket", "goroutines", 1},
		{"go_memstats_stack_inuse_bytes", "stack_per_socket", "KiB", 1024},
		{"go_memstats_heap_inuse_bytes", "heap_inuse_per_socket", "KiB", 1024},
		{"go_memstats_heap_alloc_bytes", "heap_alloc_per_socket", "KiB", 1024},
	} {
		var d float64
		ok := true
		for i, a := range c.Addrs {
			after, err := ServerMetric(ctx, api, a, m.metric)
			if err != nil {
				ok = false
				break
			}
			d += after - runtimeBefore[i][m.metric]
		}
		if ok {
			res.Add(m.name, round2(d/float64(*n)/m.scale), m.unit)
		}
	}
	if self := selfRSS(); self > 0 && selfBefore > 0 {
		res.Add("bench_rss_per_socket", round((self-selfBefore)/float64(*n)/1024), "KiB")
	}

	// The hold: every socket idle, the server only pinging them.
	interval := time.Duration(heartbeat.Load()) * time.Second
	if interval > 0 && c.Duration < 2*interval {
		fmt.Fprintf(log, "idle: the hold (%v) is shorter than two ping intervals (%v): heartbeat_cpu covers part of a ping round only\n",
			c.Duration, 2*interval)
	}
	cpu0, cpuErr := ServersCPU(ctx, api, &c)
	self0, pings0, h0 := selfCPU(), totalPings(conns), time.Now()
	stop = progress(c.Progress, log, func() string { return fmt.Sprintf("idle: holding, %d sockets alive", alive(conns)) })
	sleepCtx(ctx, c.Duration)
	stop()
	cpu1, cpuErr1 := ServersCPU(ctx, api, &c)
	self1, pings1, hold := selfCPU(), totalPings(conns), time.Since(h0)
	if interval > 0 {
		res.Add("ping_interval", interval.Seconds(), "s")
		res.Add("hold_ping_intervals", round(hold.Seconds()/interval.Seconds()), "intervals")
	}
	pings := float64(pings1 - pings0)
	res.Add("pings_per_socket", round(pings/float64(*n)), "pings")
	if cpuErr == nil && cpuErr1 == nil {
		res.Add("heartbeat_cpu", round2((cpu1-cpu0)/hold.Seconds()*100), "% of one core")
		if pings > 0 {
			res.Add("server_cpu_per_ping", round((cpu1-cpu0)/pings*1e6), "µs")
		}
	}
	res.Add("bench_cpu_in_hold", round2((self1-self0)/hold.Seconds()*100), "% of one core")
	if delta, _, err := rssDelta(); err == nil {
		res.Add("rss_per_socket_after_hold", round(delta/float64(*n)/1024), "KiB")
	}
	res.Add("sockets_alive_at_end", float64(alive(conns)), "sockets")
	return res, ctx.Err()
}

// helloHeartbeat returns the heartbeat (ping interval, in seconds) of a
// hello frame, or 0 for any other frame.
func helloHeartbeat(b []byte) int64 {
	var f struct {
		Type string `json:"type"`
		Data struct {
			Heartbeat int64 `json:"heartbeat"`
		} `json:"data"`
	}
	if json.Unmarshal(b, &f) != nil || f.Type != "hello" {
		return 0
	}
	return f.Data.Heartbeat
}

// heldSources returns the source addresses for n sockets held at once,
// once the tool's open file limit (c.Files, see Common.validate) is known
// to hold them.
func heldSources(c *Common, n int) (*Sources, error) {
	src, err := NewSources(n, c.Sources, EphemeralPorts())
	if err != nil {
		return nil, err
	}
	if err := checkFiles(c.Files, n); err != nil {
		return nil, err
	}
	return src, nil
}

func totalPings(conns []*Conn) int64 {
	var n int64
	for _, c := range conns {
		if c != nil {
			n += c.Pings()
		}
	}
	return n
}

func alive(conns []*Conn) int {
	n := 0
	for _, c := range conns {
		if c != nil && c.Alive() {
			n++
		}
	}
	return n
}

// provisionHeld checks that every server can hold its share of n
// connections (its open file limit) before provisioning anything, then
// provisions n users and records the provisioning rate in res.
func provisionHeld(ctx context.Context, api *API, c *Common, n int, res *Result, log io.Writer) ([]*User, error) {
	for i, a := range c.Addrs {
		if err := checkServerFiles(ctx, api, a, (n-i+len(c.Addrs)-1)/len(c.Addrs)); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	users, err := Provision(ctx, api, c, n, func(d int) { fmt.Fprintf(log, "provisioned %d/%d users\n", d, n) })
	if err != nil {
		return nil, err
	}
	res.Add("provision_rate", round(float64(n)/time.Since(t0).Seconds()), "users/s")
	return users, nil
}
