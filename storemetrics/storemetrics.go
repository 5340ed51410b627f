// Package storemetrics times the operations of an aoba.Store and counts
// their failures and the messages it stores, for Prometheus: a decorator
// around any store (MongoDB or the embedded one), so that neither store
// carries metrics code.
package storemetrics

import (
	"context"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/prometheus/client_golang/prometheus"
)

// Buckets are the latency buckets of store operations, in seconds: from
// half a millisecond (an indexed read of the embedded store) to 5 s (a
// MongoDB server selection timing out).
var Buckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Store is an aoba.Store whose every operation (but Ping and Close) is
// timed in aoba_store_operation_duration_seconds{operation} and, when it
// fails with EINTERNAL or EUNAVAILABLE, counted in
// aoba_store_operation_errors_total{operation,code}. The outcomes the
// contract expects (not found, conflict) are not errors here. Each message
// stored is counted by type in aoba_messages_stored_total{type}.
//
// A method added to aoba.Store and not yet here passes through untimed
// (the wrapped store is embedded); a test of this package lists them.
type Store struct {
	aoba.Store

	latency  *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	messages *prometheus.CounterVec
}

var _ aoba.Store = (*Store)(nil)

// New returns st with its operations measured. Register Collectors on the
// registry /metrics serves.
func New(st aoba.Store) *Store {
	s := &Store{
		Store: st,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "aoba", Subsystem: "store", Name: "operation_duration_seconds",
			Help:    "Latency of store operations (MongoDB or the embedded store), by operation.",
			Buckets: Buckets,
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "aoba", Subsystem: "store", Name: "operation_errors_total",
			Help: "Store operations that failed, by operation and code: unavailable (the store could not be reached in time) or internal.",
		}, []string{"operation", "code"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "aoba", Name: "messages_stored_total",
			Help: "Messages stored, by type (chat or groupchat); a resent client_id is not counted again.",
		}, []string{"type"}),
	}
	for _, t := range []aoba.MessageType{aoba.MessageChat, aoba.MessageGroupChat} {
		s.messages.WithLabelValues(string(t))
	}
	return s
}

// Collectors returns the store's metrics.
func (s *Store) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.latency, s.errors, s.messages}
}

// observe records the operation op begun at start, and its failure when
// *err is an EINTERNAL or EUNAVAILABLE error. It is deferred by every
// method, with err its named result.
func (s *Store) observe(op string, start time.Time, err *error) {
	s.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if *err == nil {
		return
	}
	switch code := aoba.ErrorCode(*err); code {
	case aoba.EINTERNAL, aoba.EUNAVAILABLE:
		s.errors.WithLabelValues(op, code).Inc()
	}
}

// CreateMessage is the wrapped store's, timed, and counts m by type once
// stored.
func (s *Store) CreateMessage(ctx context.Context, m *aoba.Message) (err error) {
	defer s.observe("CreateMessage", time.Now(), &err)
	if err = s.Store.CreateMessage(ctx, m); err == nil {
		s.messages.WithLabelValues(string(m.Type)).Inc()
	}
	return err
}
