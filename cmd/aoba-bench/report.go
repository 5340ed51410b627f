package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// Result is the outcome of one subcommand: its parameters and an ordered
// list of figures.
type Result struct {
	Command string         `json:"command"`
	Params  map[string]any `json:"params"`
	Metrics []Metric       `json:"metrics"`
	Runs    []*MsgStats    `json:"runs,omitempty"`
	JSON    bool           `json:"-"`
}

// Metric is one named figure.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// Add appends a figure.
func (r *Result) Add(name string, v float64, unit string) {
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: v, Unit: unit})
}

// Get returns the value of the figure name and whether it exists.
func (r *Result) Get(name string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

// WriteTable prints the result as an aligned table.
func (r *Result) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "== aoba-bench %s ==\n", r.Command)
	var keys []string
	for k, v := range r.Params {
		keys = append(keys, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(keys)
	fmt.Fprintln(w, strings.Join(keys, " "))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, m := range r.Metrics {
		fmt.Fprintf(tw, "%s\t%12s\t%s\n", m.Name, formatValue(m.Value), m.Unit)
	}
	tw.Flush()
}

func formatValue(v float64) string {
	if v == float64(int64(v)) && v < 1e15 && v > -1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.3f", v)
}

// addMsgStats appends the figures of a messaging run, each name prefixed.
func (r *Result) addMsgStats(prefix string, s *MsgStats) {
	r.Add(prefix+"sent", float64(s.Sent), "msgs")
	r.Add(prefix+"sent_rate", round(s.SentPerSec), "msgs/s")
	r.Add(prefix+"acked", float64(s.Acked), "msgs")
	r.Add(prefix+"send_errors", float64(s.SendErrors), "frames")
	r.Add(prefix+"skipped_window_full", float64(s.Skipped), "msgs")
	r.Add(prefix+"expected_deliveries", float64(s.Expected), "msgs")
	r.Add(prefix+"delivered", float64(s.Delivered), "msgs")
	r.Add(prefix+"deliveries_rate", round(s.DeliveriesPerS), "msgs/s")
	r.Add(prefix+"latency_p50", s.Latency.P50, "ms")
	r.Add(prefix+"latency_p95", s.Latency.P95, "ms")
	r.Add(prefix+"latency_p99", s.Latency.P99, "ms")
	r.Add(prefix+"latency_max", s.Latency.Max, "ms")
	if s.AckLatency.Count > 0 {
		r.Add(prefix+"ack_latency_p50", s.AckLatency.P50, "ms")
		r.Add(prefix+"ack_latency_p99", s.AckLatency.P99, "ms")
	}
	r.Add(prefix+"lost", float64(s.Lost), "msgs")
	r.Add(prefix+"duplicated", float64(s.Duplicated), "msgs")
	r.Add(prefix+"disconnected", float64(s.Disconnected), "sockets")
	for code, n := range s.CloseCodes {
		r.Add(prefix+"disconnected_close_"+code, float64(n), "sockets")
	}
	if s.ServerCores > 0 {
		r.Add(prefix+"server_cpu", s.ServerCores, "cores")
	}
	r.Add(prefix+"bench_cpu", s.BenchCores, "cores")
	if s.ServerCPUSeconds > 0 {
		r.Add(prefix+"server_cpu_time", s.ServerCPUSeconds, "s")
		r.Add(prefix+"deliveries_per_server_cpu_s", s.DeliveriesPerCPU, "msgs/cpu-s")
	}
}

func round(v float64) float64 {
	return float64(int64(v*10+0.5)) / 10
}

// round2 rounds v to two decimals.
func round2(v float64) float64 {
	return math.Round(v*100) / 100
}
