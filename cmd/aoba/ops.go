package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aoba-chat/aoba"
)

// Defaults of the settings an operator's day needs: how a pod waits for
// its dependencies at start and how it leaves.
const (
	// DefaultDrainDelay is how long a pod told to stop keeps serving with
	// /health/ready at 503 before it closes sockets: load balancers and
	// Kubernetes endpoints need a few seconds to stop sending it clients.
	DefaultDrainDelay = 5 * time.Second
	// DefaultDrainSpread is the time over which a stopping pod closes its
	// sockets, so that their clients do not all reconnect at once.
	DefaultDrainSpread = 10 * time.Second
	// DefaultStartTimeout bounds the start-up retries of MongoDB and Redis.
	DefaultStartTimeout = time.Minute
)

// parseOpsEnv reads AOBA_DRAIN_DELAY, AOBA_DRAIN_SPREAD (durations, 0 or
// more) and AOBA_START_TIMEOUT (positive) into c. It returns an error
// naming the variable of a malformed value.
func (c *Config) parseOpsEnv(getenv func(string) string) error {
	for _, d := range []struct {
		name     string
		dst      *time.Duration
		positive bool
	}{
		{"AOBA_DRAIN_DELAY", &c.DrainDelay, false},
		{"AOBA_DRAIN_SPREAD", &c.DrainSpread, false},
		{"AOBA_START_TIMEOUT", &c.StartTimeout, true},
	} {
		v := strings.TrimSpace(getenv(d.name))
		if v == "" {
			continue
		}
		n, err := time.ParseDuration(v)
		switch {
		case err != nil || n < 0:
			return fmt.Errorf("%s must be a duration such as 5s (0 for none), got %q", d.name, v)
		case n == 0 && d.positive:
			return fmt.Errorf("%s must be a positive duration such as 1m, got %q", d.name, v)
		}
		*d.dst = n
	}
	return nil
}

// Start-up retry backoff: the first wait, and the longest.
const (
	startBackoff    = 250 * time.Millisecond
	startBackoffMax = 5 * time.Second
)

// retryStart calls open until it succeeds and returns nil. An error other
// than EUNAVAILABLE (a malformed URI, refused credentials) is returned at
// once: waiting would not change it. An unavailable dependency is retried
// with exponential backoff from startBackoff to startBackoffMax, each
// failure logged, until AOBA_START_TIMEOUT has passed since the first
// retryStart of this Main (one budget for the store and the hub) or ctx
// ends (a signal): then the last error is returned, wrapped with what.
func (m *Main) retryStart(ctx context.Context, what string, open func(context.Context) error) error {
	if m.startDeadline.IsZero() {
		m.startDeadline = time.Now().Add(m.Config.StartTimeout)
	}
	wait := startBackoff
	for attempt := 1; ; attempt++ {
		err := open(ctx)
		if err == nil {
			if attempt > 1 {
				m.Logger.Info(what+" reachable", "attempts", attempt)
			}
			return nil
		}
		if aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
			return fmt.Errorf("%s: %w", what, err)
		}
		if time.Now().Add(wait).After(m.startDeadline) {
			return fmt.Errorf("%s still unreachable after %d attempts within AOBA_START_TIMEOUT (%v): %w", what, attempt, m.Config.StartTimeout, err)
		}
		m.Logger.Warn(what+" unreachable at start, retrying", "attempt", attempt, "retry_in", wait.String(), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: start interrupted while unreachable: %w", what, err)
		case <-t.C:
		}
		wait = min(2*wait, startBackoffMax)
	}
}

// Drain takes a running pod out of service before Close: /health/ready
// answers 503 at once, the pod keeps serving for Config.DrainDelay so that
// load balancers notice, then closes its sockets with 1001 spread over
// Config.DrainSpread (new upgrades get 503 from then on). When ctx ends
// (a second signal) the waits are cut short. It does nothing before Run.
func (m *Main) Drain(ctx context.Context) {
	if m.server == nil || m.node == nil {
		return
	}
	c := m.Config
	m.server.Drain()
	m.Logger.Info("draining: /health/ready answers 503", "delay", c.DrainDelay.String(), "spread", c.DrainSpread.String())
	if c.DrainDelay > 0 {
		t := time.NewTimer(c.DrainDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	n := m.node.Drain(ctx, c.DrainSpread)
	m.Logger.Info("drained: sockets closed", "sockets", n)
}

// drainUntilSignal runs Drain until it ends or a second SIGINT or SIGTERM
// asks to stop at once.
func (m *Main) drainUntilSignal() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m.Drain(ctx)
}

// singlePodWarning is the warning of a shared MongoDB without Redis.
const singlePodWarning = "AOBA_MONGO_URI is set without Redis: this pod runs an in-process hub for itself only, so " +
	"with several pods on this MongoDB a message sent through one pod is stored but never delivered live to sockets " +
	"on another (nor are presence, typing and rate limits shared). Run a single pod, or set AOBA_REDIS_URL on every pod."

// warnings returns the sentences Run logs at start and /health shows about
// a configuration with a consequence the operator must know.
func (c Config) warnings() []string {
	if !c.embedded() && c.hubKind() == "memory" {
		return []string{singlePodWarning}
	}
	return nil
}
