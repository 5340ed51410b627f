package api

import (
	"context"
	"errors"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/gofiber/fiber/v2"
)

// StoreCheck is the name of the store's pinger in Config.Pingers: the one
// dependency without which the pod cannot serve, so /health/ready answers
// 503 when it fails. Any other failing pinger (the hub) leaves the pod
// ready but degraded.
const StoreCheck = "store"

// Readiness states of GET /health/ready.
const (
	ReadyOK          = "ok"
	ReadyDegraded    = "degraded"
	ReadyDraining    = "draining"
	ReadyUnavailable = "unavailable"
)

// readyTimeout bounds the pings of one GET /health/ready: a probe's own
// timeout should be longer.
const readyTimeout = 2 * time.Second

// Drain makes GET /health/ready answer 503 ("draining") from now on, so
// that load balancers stop sending new clients to this pod while it closes
// its sockets. It cannot be undone: the pod is stopping.
func (s *Server) Drain() { s.draining.Store(true) }

// check pings every pinger within timeout and returns each one's state
// ("ok", "degraded[: reason]", or a message safe to show), the names of
// those that failed, and whether a service the pod can serve without (an
// aoba.DegradedReporter) failed: that degrades the pod, it does not fail it.
func (s *Server) check(ctx context.Context, timeout time.Duration) (checks map[string]string, failed map[string]bool, degraded bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	checks = make(map[string]string, len(s.pingers))
	for name, p := range s.pingers {
		err := p.Ping(ctx)
		if err == nil {
			checks[name] = "ok"
			continue
		}
		// A service the pod serves without (Redis) degrades it.
		if d, soft := p.(aoba.DegradedReporter); soft {
			degraded = true
			checks[name] = "degraded"
			if reason := d.Degraded(); reason != "" {
				checks[name] = "degraded: " + reason
			}
			s.log.Warn("health check degraded", "check", name, "err", err)
			continue
		}
		if failed == nil {
			failed = make(map[string]bool)
		}
		failed[name] = true
		// A domain error's message is safe to show; a raw driver error may
		// name internal addresses, so it goes to the log.
		checks[name] = "unreachable"
		var de *aoba.Error
		if errors.As(err, &de) && de.Code != aoba.EINTERNAL {
			checks[name] = de.Message
		}
		s.log.Warn("health check failed", "check", name, "err", err)
	}
	return checks, failed, degraded
}

// live answers GET /health/live: 200 whenever the process serves HTTP. It
// checks no dependency, so that an outage of one never gets every pod
// restarted.
func (s *Server) live(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// ready answers GET /health/ready: 200 with status "ok", or "degraded"
// when a dependency other than the store fails (the pod still serves REST
// and sockets); 503 with status "draining" once Drain was called, or
// "unavailable" when the store cannot be reached. A 503 body carries the
// contract's error fields besides status and checks.
func (s *Server) ready(c *fiber.Ctx) error {
	checks, failed, degraded := s.check(c.UserContext(), readyTimeout)
	body := fiber.Map{"status": ReadyOK, "checks": checks}
	if len(s.warnings) > 0 {
		body["warnings"] = s.warnings
	}
	var message string
	switch {
	case s.draining.Load():
		body["status"], message = ReadyDraining, "The server is shutting down."
	case failed[StoreCheck]:
		body["status"], message = ReadyUnavailable, "The store is unreachable."
	case len(failed) > 0 || degraded:
		body["status"] = ReadyDegraded
	}
	if message != "" {
		body["error"], body["message"] = "Service Unavailable", message
		c.Status(fiber.StatusServiceUnavailable)
	}
	return c.JSON(body)
}
