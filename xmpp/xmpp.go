// Package xmpp is Aoba's XMPP server for its own users (RFC 6120, 6121):
// client-to-server streams over TCP with STARTTLS and over WebSocket (RFC
// 7395), on the same accounts, history, presence and pods as the REST API
// and the JSON socket. It is one more transport into the same aoba.Service
// and broker: a message sent over XMPP is validated, stored, rate-limited
// and published like any other, and every frame the broker delivers to a
// user's topic reaches that user's XMPP resources, translated into
// stanzas.
//
// Addresses: a user is <user id>@<domain> (the seed's metadata route turns
// ids into usernames for display), and <username>@<domain> is accepted as
// an alias wherever a client names a user. A group is the members-only
// multi-user chat room <group id>@conference.<domain>.
//
// The stream layer is this package's own, on encoding/xml: it bounds every
// stanza (MaxStanzaBytes, depth, attributes, element count), refuses DTDs,
// entities, comments and processing instructions with restricted-xml, and
// frames WebSocket streams by RFC 7395. Addresses are parsed and
// normalized by mellium.im/xmpp/jid.
//
// Delivery is the broker's: at most once while the pod's broker
// connection holds. A client recovers from history (XEP-0313), as JSON
// clients do.
package xmpp

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aoba-chat/aoba"
)

// Defaults of Config.
const (
	DefaultDomain      = "localhost"
	DefaultIdleTimeout = 10 * time.Minute
	DefaultSendQueue   = 256
	// DefaultStanzaRate is the number of stanzas per second a stream may
	// send on average, DefaultStanzaBurst at once; more ends the stream
	// with policy-violation. Messages also spend the user's standard
	// budget, like every other send.
	DefaultStanzaRate  = 50
	DefaultStanzaBurst = 200
	writeTimeout       = 10 * time.Second
	// maxAuthAttempts is the number of failed SASL exchanges a stream may
	// make before it is closed.
	maxAuthAttempts = 3
	// maxWatched is the most roster contacts whose presence one session
	// follows.
	maxWatched = aoba.MaxWatchedPerUser
)

// Config holds the Server's dependencies and settings.
type Config struct {
	Service *aoba.Service
	// Broker carries the users', groups' and presence topics; the caller
	// hands the envelopes it receives to Server.Deliver. It must count
	// subscriptions (hub.SharedBroker), because the JSON socket subscribes
	// the same topics.
	Broker   aoba.Broker
	Presence aoba.PresenceRegistry
	Limiter  aoba.RateLimiter
	Rates    aoba.Rates
	// Sockets orders each user's connections across pods, JSON sockets and
	// XMPP streams together: a stream that takes its user past MaxSockets
	// closes their oldest connections (an XMPP stream ends with conflict).
	// Nil: no limit.
	Sockets    aoba.SocketRegistry
	MaxSockets int
	// Domain is the XMPP domain: users are <id>@Domain, rooms
	// <group id>@conference.Domain.
	Domain string
	// TLS is the STARTTLS configuration of TCP streams; nil offers no
	// STARTTLS, and TCP streams cannot authenticate (PLAIN only after TLS).
	TLS    *tls.Config
	Logger *slog.Logger
	// IdleTimeout closes a stream from which nothing (a stanza or a
	// whitespace keepalive) was read for that long.
	IdleTimeout time.Duration
	// SendQueue is the number of frames waiting for a session; one more
	// ends the stream (the client reconnects and catches up from the
	// archive).
	SendQueue   int
	StanzaRate  float64
	StanzaBurst int
}

// Server serves XMPP client streams. It is safe for concurrent use.
type Server struct {
	cfg     Config
	svc     *aoba.Service
	log     *slog.Logger
	domain  string
	muc     string
	metrics *metrics

	mu       sync.RWMutex
	users    map[string]map[*session]struct{} // user id → bound sessions
	rooms    map[string]map[*session]struct{} // group id → sessions in the room
	watchers map[string]map[*session]struct{} // user id → sessions following their presence
	all      map[*session]struct{}
	closing  bool
	lns      []net.Listener
	wg       sync.WaitGroup
}

// New returns a Server; Serve and WebSocketHandler start serving.
func New(cfg Config) *Server {
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = DefaultSendQueue
	}
	if cfg.StanzaRate <= 0 {
		cfg.StanzaRate = DefaultStanzaRate
	}
	if cfg.StanzaBurst <= 0 {
		cfg.StanzaBurst = DefaultStanzaBurst
	}
	cfg.Rates = cfg.Rates.WithDefaults()
	return &Server{
		cfg: cfg, svc: cfg.Service, log: cfg.Logger, domain: cfg.Domain, muc: "conference." + cfg.Domain,
		metrics:  newMetrics(),
		users:    make(map[string]map[*session]struct{}),
		rooms:    make(map[string]map[*session]struct{}),
		watchers: make(map[string]map[*session]struct{}),
		all:      make(map[*session]struct{}),
	}
}

// Domain returns the server's XMPP domain.
func (s *Server) Domain() string { return s.domain }

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("xmpp: server closed")

// Serve accepts TCP client streams on ln until Shutdown, and returns
// ErrServerClosed then; another accept error is returned as is.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveTransport(newTCPTransport(c, s.cfg.TLS))
		}()
	}
}

func (s *Server) isClosing() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closing
}

// Shutdown stops accepting streams and ends every open one with the
// system-shutdown stream error, then waits for them until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for _, ln := range s.lns {
		_ = ln.Close()
	}
	sessions := make([]*session, 0, len(s.all))
	for ss := range s.all {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.end(errStream("system-shutdown", "the server is shutting down"))
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Sessions returns the number of open streams.
func (s *Server) Sessions() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.all)
}

// Collectors returns the server's Prometheus collectors.
func (s *Server) Collectors() []prometheus.Collector { return s.metrics.collectors() }

// serveTransport runs one stream to its end.
func (s *Server) serveTransport(t transport) {
	ss := newSession(s, t)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		t.close(errStream("system-shutdown", "the server is shutting down"))
		return
	}
	s.all[ss] = struct{}{}
	s.mu.Unlock()
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("xmpp: panic in stream", "panic", r)
			ss.end(errStream("internal-server-error", ""))
		}
		s.mu.Lock()
		delete(s.all, ss)
		s.mu.Unlock()
	}()
	ss.run()
}

// Deliver hands an envelope the broker received on topic to the local
// sessions: a user topic's to that user's bound sessions, a group topic's
// to the sessions that joined the group's room, a presence topic's to the
// sessions that follow that user. It never blocks: a session whose queue
// is full is ended.
func (s *Server) Deliver(topic string, env aoba.Envelope) {
	if len(topic) < 2 || topic[1] != ':' {
		return
	}
	id := topic[2:]
	var set map[*session]struct{}
	s.mu.RLock()
	switch topic[0] {
	case 'u':
		set = s.users[id]
	case 'g':
		set = s.rooms[id]
	case 'p':
		set = s.watchers[id]
	}
	targets := make([]*session, 0, len(set))
	for ss := range set {
		if ss.id == env.ExceptConn || (env.ExceptUser != "" && ss.userID == env.ExceptUser) ||
			(env.OnlyUser != "" && ss.userID != env.OnlyUser) || contains(env.ExceptUsers, ss.userID) {
			continue
		}
		targets = append(targets, ss)
	}
	s.mu.RUnlock()
	d := &delivery{topic: topic, env: env}
	for _, ss := range targets {
		ss.enqueue(d)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// index adds ss to set[key] and subscribes the broker to topic for it
// (the broker counts references).
func (s *Server) index(set map[string]map[*session]struct{}, key, topic string, ss *session) bool {
	s.mu.Lock()
	m := set[key]
	if m == nil {
		m = make(map[*session]struct{})
		set[key] = m
	}
	_, had := m[ss]
	m[ss] = struct{}{}
	s.mu.Unlock()
	if had {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.cfg.Broker.Subscribe(ctx, topic); err != nil {
		s.log.Warn("xmpp: subscribe failed", "topic", topic, "err", err)
	}
	return true
}

// unindex removes ss from set[key] and releases its reference to topic.
func (s *Server) unindex(set map[string]map[*session]struct{}, key, topic string, ss *session) {
	s.mu.Lock()
	m := set[key]
	_, had := m[ss]
	delete(m, ss)
	if len(m) == 0 {
		delete(set, key)
	}
	s.mu.Unlock()
	if !had {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.cfg.Broker.Unsubscribe(ctx, topic); err != nil {
		s.log.Warn("xmpp: unsubscribe failed", "topic", topic, "err", err)
	}
}

// localSessions returns the bound sessions of userID on this pod.
func (s *Server) localSessions(userID string) []*session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*session, 0, len(s.users[userID]))
	for ss := range s.users[userID] {
		out = append(out, ss)
	}
	return out
}
