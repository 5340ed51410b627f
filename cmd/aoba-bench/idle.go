package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

func runIdle(ctx context.Context, args []string, log io.Writer) (Result, error) {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	fs.SetOutput(log)
	var c Common
	c.register(fs, 30*time.Second)
	n := fs.Int("n", 1000, "number of authenticated sockets (capped at 10000)")
	dialConc := fs.Int("dial-concurrency", 64, "sockets opened at once")
	settle := fs.Duration("settle", 3*time.Second, "wait after connecting before reading memory")
	if err := fs.Parse(args); err != nil {
		return Result{}, err
	}
	if err := c.validate(); err != nil {
		return Result{}, err
	}
	if *n < 1 || *n > MaxSockets {
		return Result{}, fmt.Errorf("-n must be 1..%d", MaxSockets)
	}
	*dialConc = clamp(*dialConc, 1, MaxConcurrency)
	res := Result{Command: "idle", JSON: c.JSON, Params: map[string]any{
		"addr": c.AddrList, "n": *n, "duration": c.Duration.String(), "sources": c.Sources,
	}}
	api := NewAPI(c.Conc)
	t0 := time.Now()
	users, err := Provision(ctx, api, &c, *n, func(d int) { fmt.Fprintf(log, "provisioned %d/%d users\n", d, *n) })
	if err != nil {
		return res, err
	}
	res.Add("provision_rate", round(float64(*n)/time.Since(t0).Seconds()), "users/s")

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
	src := &Sources{n: c.Sources}
	conns := make([]*Conn, *n)
	defer func() {
		for _, cn := range conns {
			if cn != nil {
				cn.Close()
			}
		}
	}()
	var opened atomic.Int64
	stop := progress(c.Progress, log, func() string { return fmt.Sprintf("idle: %d/%d sockets open", opened.Load(), *n) })
	t1 := time.Now()
	err = connectAll(ctx, *n, *dialConc, func(i int) error {
		u := users[i]
		cn, err := Dial(ctx, WSURL(c.Addrs[u.Pod], u.Token), src.Next(), nil)
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
	var delta float64
	for i, a := range c.Addrs {
		after, err := ServerRSS(ctx, api, a)
		if err != nil {
			return res, fmt.Errorf("%s/metrics: %w", a, err)
		}
		res.Add(fmt.Sprintf("rss_before_pod%d", i), round(before[i]/(1<<20)), "MiB")
		res.Add(fmt.Sprintf("rss_after_pod%d", i), round(after/(1<<20)), "MiB")
		delta += after - before[i]
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
			res.Add(m.name, round(d/float64(*n)/m.scale*10)/10, m.unit)
		}
	}

	stop = progress(c.Progress, log, func() string { return fmt.Sprintf("idle: holding, %d sockets alive", alive(conns)) })
	sleepCtx(ctx, c.Duration)
	stop()
	res.Add("sockets_alive_at_end", float64(alive(conns)), "sockets")
	return res, ctx.Err()
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
