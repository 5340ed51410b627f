package hub_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/internal/redistest"
)

// redisMetric returns the counter value, or the histogram's sample count,
// of name with exactly labels among the hub's collectors.
func redisMetric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(hub.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				if sameLabels(m, labels) {
					if h := m.GetHistogram(); h != nil {
						return float64(h.GetSampleCount())
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func sameLabels(m *dto.Metric, labels map[string]string) bool {
	if len(m.GetLabel()) != len(labels) {
		return false
	}
	for _, l := range m.GetLabel() {
		if labels[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

// TestRedisMetrics drives a real redis-server through an instrumented
// client: commands and pipelines are timed by name; a nil reply and a
// script's first run (NOSCRIPT, then EVAL) are not errors, an error reply
// and an unreachable server are.
func TestRedisMetrics(t *testing.T) {
	srv := redistest.Start(t)
	client := newClient(t, srv)
	hub.InstrumentRedis(client)
	ctx := context.Background()
	// Commands no other test of the package sends, so that the counts
	// are this test's.
	type sample struct {
		name   string
		labels map[string]string
	}
	lat := func(cmd string) sample {
		return sample{"aoba_redis_command_duration_seconds", map[string]string{"command": cmd}}
	}
	errs := func(cmd, code string) sample {
		return sample{"aoba_redis_command_errors_total", map[string]string{"command": cmd, "code": code}}
	}
	watch := []sample{lat("echo"), lat("hget"), lat("pipeline:echo,ping"), lat("evalsha"), lat("eval"), lat("lpush"), lat("dbsize"),
		errs("hget", "internal"), errs("evalsha", "internal"), errs("lpush", "internal"), errs("dbsize", "unavailable")}
	before := make([]float64, len(watch))
	for i, s := range watch {
		before[i] = redisMetric(t, s.name, s.labels)
	}

	if err := client.Echo(ctx, "x").Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.HGet(ctx, "metrics:nothing", "f").Err(); err != redis.Nil {
		t.Fatalf("HGET of a missing key: %v, want redis.Nil", err)
	}
	if _, err := client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Echo(ctx, "a")
		p.Ping(ctx)
		p.Echo(ctx, "b")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := redis.NewScript(`return 7`).Run(ctx, client, nil).Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.Set(ctx, "metrics:string", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.LPush(ctx, "metrics:string", "x").Err(); err == nil {
		t.Fatal("LPUSH on a string succeeded")
	}
	srv.Stop()
	if err := client.DBSize(ctx).Err(); err == nil {
		t.Fatal("DBSIZE on a stopped server succeeded")
	}

	// A new connection's set-up (HELLO, then CLIENT SETINFO in a
	// pipeline) is timed too: latency counts are at least the commands
	// sent, error counts exact.
	want := []float64{1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1}
	for i, s := range watch {
		got := redisMetric(t, s.name, s.labels) - before[i]
		if s.name == "aoba_redis_command_errors_total" && got != want[i] || got < want[i] {
			t.Errorf("%s%v grew by %v, want %v", s.name, s.labels, got, want[i])
		}
	}
}
