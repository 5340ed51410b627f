package api

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// initMetrics creates the HTTP metrics and registers them on the registry.
func (s *Server) initMetrics() {
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aoba_http_requests_total",
		Help: "HTTP requests by method, route template and status.",
	}, []string{"method", "route", "status"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "aoba_http_request_duration_seconds",
		Help:    "HTTP request latency by method, route template and status.",
		Buckets: prometheus.DefBuckets,
	}, []string{"method", "route", "status"})
	s.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "aoba_rate_limit_refusals_total",
		Help: "Requests refused by the rate limiter, by class.",
	}, []string{"class"})
	s.registry.MustRegister(s.requests, s.latency, s.refusals)
}

// metrics serves the registry in the Prometheus text format.
func (s *Server) metrics() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
}
