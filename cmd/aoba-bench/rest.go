package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// restOp is one request of the REST mix: me (GET /api/users/me), metadata
// (POST /api/metadata/users/batch, 100 ids), presence (POST
// /api/presence/batch, 100 usernames), messages (GET /api/messages?limit=50).
type restOp struct {
	name string
	do   func(ctx context.Context, api *API, c *Common, u *User) (int, error)
}

// restMix returns every request the rest command can run; the default mix
// is defaultOps. send is POST /api/messages, a 1:1 message from each user
// to the next one.
func restMix(users []*User) []restOp {
	ids := make([]string, 0, 100)
	names := make([]string, 0, 100)
	next := make(map[*User]*User, len(users))
	for i, u := range users {
		next[u] = users[(i+1)%len(users)]
		if len(ids) < 100 {
			ids = append(ids, u.ID)
			names = append(names, u.Username)
		}
	}
	return []restOp{
		{"me", func(ctx context.Context, api *API, c *Common, u *User) (int, error) {
			return api.Do(ctx, c.Addrs[u.Pod], "GET", "/api/users/me", u.Token, nil, nil)
		}},
		{"metadata", func(ctx context.Context, api *API, c *Common, u *User) (int, error) {
			return api.Do(ctx, c.Addrs[u.Pod], "POST", "/api/metadata/users/batch", u.Token, map[string]any{"userIds": ids}, nil)
		}},
		{"presence", func(ctx context.Context, api *API, c *Common, u *User) (int, error) {
			return api.Do(ctx, c.Addrs[u.Pod], "POST", "/api/presence/batch", u.Token, map[string]any{"usernames": names}, nil)
		}},
		{"messages", func(ctx context.Context, api *API, c *Common, u *User) (int, error) {
			return api.Do(ctx, c.Addrs[u.Pod], "GET", "/api/messages?limit=50", u.Token, nil, nil)
		}},
		{"send", func(ctx context.Context, api *API, c *Common, u *User) (int, error) {
			body := map[string]string{"to": next[u].Username, "content": "bench", "type": "chat"}
			return api.Do(ctx, c.Addrs[u.Pod], "POST", "/api/messages", u.Token, body, nil)
		}},
	}
}

// defaultOps is the default -ops of the rest command.
const defaultOps = "me,metadata,presence,messages"

func runREST(ctx context.Context, args []string, log io.Writer) (Result, error) {
	fs := flag.NewFlagSet("rest", flag.ContinueOnError)
	fs.SetOutput(log)
	var c Common
	c.register(fs, 20*time.Second)
	nusers := fs.Int("users", 20, "number of provisioned users the requests are spread over")
	conc := fs.Int("concurrency", 16, "concurrent request loops (capped at 1000)")
	only := fs.String("ops", defaultOps, "comma-separated requests of the mix: me, metadata, presence, messages, send (1:1 POST /api/messages)")
	seed := fs.Int("seed-messages", 10, "1:1 messages each user sends before the run, so history is not empty")
	if err := fs.Parse(args); err != nil {
		return Result{}, err
	}
	if err := c.validate(); err != nil {
		return Result{}, err
	}
	if *nusers < 2 || *nusers > MaxUsers {
		return Result{}, fmt.Errorf("-users must be 2..%d", MaxUsers)
	}
	*conc = clamp(*conc, 1, MaxConcurrency)
	*seed = clamp(*seed, 0, 100)
	res := Result{Command: "rest", JSON: c.JSON, Params: map[string]any{
		"addr": c.AddrList, "users": *nusers, "concurrency": *conc, "duration": c.Duration.String(), "ops": *only,
	}}
	api := NewAPI(max(c.Conc, *conc))
	users, err := Provision(ctx, api, &c, *nusers, nil)
	if err != nil {
		return res, err
	}
	for k := 0; k < *seed; k++ {
		for i, u := range users {
			to := users[(i+1)%len(users)]
			body := map[string]string{"to": to.Username, "content": fmt.Sprintf("seed %d", k), "type": "chat"}
			if _, err := api.Do(ctx, c.Addrs[u.Pod], "POST", "/api/messages", u.Token, body, nil); err != nil {
				return res, fmt.Errorf("seeding messages: %w", err)
			}
		}
	}
	ops, err := selectOps(restMix(users), *only)
	if err != nil {
		return res, err
	}
	type opStats struct {
		lat    Latencies
		status sync.Map // int -> *atomic.Int64
	}
	stats := make([]*opStats, len(ops))
	for i := range stats {
		stats[i] = &opStats{}
	}
	var total atomic.Int64
	cpu0, cpuErr := ServersCPU(ctx, api, &c)
	self0 := selfCPU()
	rctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	start := time.Now()
	stop := progress(c.Progress, log, func() string {
		el := time.Since(start).Seconds()
		return fmt.Sprintf("rest %5.1fs requests=%d (%.0f/s)", el, total.Load(), float64(total.Load())/el)
	})
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for k := w; rctx.Err() == nil; k++ {
				op := k % len(ops)
				u := users[(w+k)%len(users)]
				t := time.Now()
				st, err := ops[op].do(rctx, api, &c, u)
				if rctx.Err() != nil && st == 0 {
					return // cut off by the end of the run
				}
				stats[op].lat.Add(time.Since(t))
				total.Add(1)
				var se *StatusError
				if err != nil && !errors.As(err, &se) {
					st = 0 // transport error
				}
				v, _ := stats[op].status.LoadOrStore(st, new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
		}(w)
	}
	wg.Wait()
	stop()
	el := time.Since(start).Seconds()
	cpu1, cpuErr1 := ServersCPU(ctx, api, &c)
	self1 := selfCPU()
	res.Add("requests", float64(total.Load()), "reqs")
	res.Add("requests_rate", round(float64(total.Load())/el), "reqs/s")
	all := &Latencies{}
	errorsByStatus := map[int]int64{}
	for i, op := range ops {
		all.Merge(&stats[i].lat)
		s := stats[i].lat.Summary()
		res.Add(op.name+" p50", s.P50, "ms")
		res.Add(op.name+" p99", s.P99, "ms")
		stats[i].status.Range(func(k, v any) bool {
			if st := k.(int); st < 200 || st > 299 {
				errorsByStatus[st] += v.(*atomic.Int64).Load()
			}
			return true
		})
	}
	s := all.Summary()
	res.Add("latency_p50", s.P50, "ms")
	res.Add("latency_p95", s.P95, "ms")
	res.Add("latency_p99", s.P99, "ms")
	res.Add("latency_max", s.Max, "ms")
	if cpuErr == nil && cpuErr1 == nil {
		res.Add("server_cpu", round((cpu1-cpu0)/el*100)/100, "cores")
	}
	res.Add("bench_cpu", round((self1-self0)/el*100)/100, "cores")
	var codes []int
	var nerr int64
	for st, n := range errorsByStatus {
		codes = append(codes, st)
		nerr += n
	}
	sort.Ints(codes)
	res.Add("errors", float64(nerr), "reqs")
	for _, st := range codes {
		name := fmt.Sprintf("errors_status_%d", st)
		if st == 0 {
			name = "errors_transport"
		}
		res.Add(name, float64(errorsByStatus[st]), "reqs")
	}
	return res, ctx.Err()
}

// selectOps returns the ops named in the comma-separated list, in mix
// order, or an error naming an unknown one.
func selectOps(all []restOp, list string) ([]restOp, error) {
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var out []restOp
	for _, op := range all {
		if want[op.name] {
			out = append(out, op)
			delete(want, op.name)
		}
	}
	for n := range want {
		return nil, fmt.Errorf("unknown op %q in -ops (me, metadata, presence, messages, send)", n)
	}
	if len(out) == 0 {
		return nil, errors.New("-ops selects nothing")
	}
	return out, nil
}
