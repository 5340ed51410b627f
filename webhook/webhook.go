// Package webhook announces messages to recipients who are offline by
// POSTing them to one HTTP endpoint (a mobile push gateway), as the
// contract's "Webhooks (mobile push)" section describes.
//
// Each request body is {"event": "message.offline", "recipient": User,
// "message": Message}, signed with the shared secret: the header
// X-Aoba-Timestamp holds the Unix time of the attempt in seconds and
// X-Aoba-Signature holds "sha256=" and the hex HMAC-SHA256 of
// "<timestamp>.<body>". Every attempt is signed afresh.
//
// Who is notified, and by which pod: the pod that stored a message (the one
// running Service.SendMessage) hands it to its Sender once, after storing
// and publishing it; no other pod ever sees it here. A worker of that
// Sender then asks Service.OfflineRecipients, once, which recipients have
// no open socket on any pod (one presence lookup for all of them) and
// queues one delivery per offline recipient. So a message starts at most
// one delivery chain per recipient across all pods. Limits of that single
// check: a recipient who goes offline a moment after it gets no webhook
// (nor does one still within the presence registry's grace period), and
// one who is online per presence but whose socket is stalled gets none
// either.
//
// Delivery is at least once: an attempt that fails (a network error or a
// non-2xx answer) is retried with exponential backoff and jitter until
// MaxAge after the message was queued (10 minutes by default), after which
// the delivery is given up. Receivers deduplicate on the message id and
// recipient id. Nothing here blocks the sender: NotifyOffline only tries to
// add to a bounded queue and drops (and counts) what does not fit. Each
// worker runs one delivery chain at a time, retries included, so while the
// endpoint fails the queue fills and later messages are dropped.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/prometheus/client_golang/prometheus"
)

// Event is the event name of every delivery.
const Event = "message.offline"

// Defaults of Config.
const (
	DefaultQueueSize  = 10000
	DefaultWorkers    = 8
	DefaultMaxAge     = 10 * time.Minute
	DefaultTimeout    = 10 * time.Second
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	// MinSecretLen is the shortest secret New accepts, in bytes.
	MinSecretLen = 16
)

// Config is a Sender's settings; zero values take the defaults.
type Config struct {
	// URL is the endpoint, http or https.
	URL string
	// Secret signs every request; at least MinSecretLen bytes.
	Secret string
	// QueueSize bounds the messages and deliveries waiting for a worker.
	QueueSize int
	// Workers is the number of deliveries run at once.
	Workers int
	// MaxAge is how long after a message was queued its deliveries are
	// still retried.
	MaxAge time.Duration
	// Timeout bounds one attempt (Client's own timeout when Client is set).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between two attempts, which
	// doubles from MinBackoff, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// Client sends the requests (one with Timeout when nil).
	Client *http.Client
	Logger *slog.Logger
}

// Payload is the body of every request.
type Payload struct {
	Event     string            `json:"event"`
	Recipient *aoba.User        `json:"recipient"`
	Message   *aoba.MessageView `json:"message"`
}

// ResolveFunc returns the users a message is to be announced to
// (Service.OfflineRecipients).
type ResolveFunc func(ctx context.Context, m *aoba.MessageView) ([]*aoba.User, error)

// item is one queue entry: a message whose offline recipients are still to
// be found (recipient nil), or one delivery.
type item struct {
	m         *aoba.MessageView
	recipient *aoba.User
	queued    time.Time
}

// Sender delivers webhooks from a bounded queue with a pool of workers.
type Sender struct {
	cfg     Config
	url     string
	secret  []byte
	client  *http.Client
	log     *slog.Logger
	queue   chan item
	resolve ResolveFunc

	mu     sync.RWMutex
	closed bool

	closing chan struct{} // closed by Close: workers drain the queue and stop
	ctx     context.Context
	cancel  context.CancelFunc // aborts attempts and backoff once Close's deadline passes
	wg      sync.WaitGroup

	sent, failed, dropped prometheus.Counter
}

var _ aoba.OfflineNotifier = (*Sender)(nil)

// ValidateURL returns an error saying why u is not an http or https URL
// with a host.
func ValidateURL(u string) error {
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return fmt.Errorf("is not a URL: %v", err)
	case p.Scheme != "http" && p.Scheme != "https":
		return errors.New("must start with http:// or https://")
	case p.Hostname() == "":
		return errors.New("has no host")
	}
	return nil
}

// New returns a Sender whose workers are running; RegisterResolver must be
// called before the first NotifyOffline. It returns an error for a URL
// that ValidateURL refuses or a secret under MinSecretLen bytes.
func New(c Config) (*Sender, error) {
	if err := ValidateURL(c.URL); err != nil {
		return nil, fmt.Errorf("webhook URL %w", err)
	}
	if len(c.Secret) < MinSecretLen {
		return nil, fmt.Errorf("webhook secret must be at least %d bytes long", MinSecretLen)
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{
		cfg: c, url: c.URL, secret: []byte(c.Secret), client: c.Client, log: c.Logger,
		queue: make(chan item, c.QueueSize), closing: make(chan struct{}), ctx: ctx, cancel: cancel,
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "aoba", Subsystem: "webhook", Name: "sent_total",
			Help: "Webhook deliveries the endpoint accepted (2xx).",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "aoba", Subsystem: "webhook", Name: "failed_total",
			Help: "Webhook attempts that failed (network error or non-2xx); most are retried.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "aoba", Subsystem: "webhook", Name: "dropped_total",
			Help: "Webhooks dropped: queue full, recipients not found, retries given up, or shutdown.",
		}),
	}
	s.wg.Add(c.Workers)
	for range c.Workers {
		go s.work()
	}
	return s, nil
}

// RegisterResolver sets the function that finds a message's offline
// recipients; the server registers Service.OfflineRecipients. It must be
// called once, before the first NotifyOffline.
func (s *Sender) RegisterResolver(fn ResolveFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resolve = fn
}

// Collectors returns the Sender's Prometheus collectors: deliveries sent,
// attempts failed and webhooks dropped. They are not registered anywhere:
// the server registers them. It never fails.
func (s *Sender) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.sent, s.failed, s.dropped}
}

// NotifyOffline queues m, whose offline recipients a worker then finds and
// notifies. It never blocks: when the queue is full or the Sender closed,
// m is dropped and counted.
func (s *Sender) NotifyOffline(m *aoba.MessageView) {
	if !s.push(item{m: m, queued: time.Now()}) {
		s.log.Warn("webhook dropped: queue full or closed", "message", m.ID)
	}
}

// push adds it to the queue without blocking; it reports false, having
// counted the drop, when the queue is full or the Sender closed.
func (s *Sender) push(it item) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.closed {
		select {
		case s.queue <- it:
			return true
		default:
		}
	}
	s.dropped.Inc()
	return false
}

// work runs queue items until Close: then it drains the queue and returns.
func (s *Sender) work() {
	defer s.wg.Done()
	for {
		select {
		case it := <-s.queue:
			s.handle(it)
		case <-s.closing:
			select {
			case it := <-s.queue:
				s.handle(it)
			default:
				return
			}
		}
	}
}

// handle resolves a message into deliveries, or runs one delivery.
func (s *Sender) handle(it item) {
	if it.recipient != nil {
		s.deliver(it)
		return
	}
	s.mu.RLock()
	resolve := s.resolve
	s.mu.RUnlock()
	if resolve == nil {
		s.dropped.Inc()
		s.log.Error("webhook dropped: no resolver registered", "message", it.m.ID)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	users, err := resolve(ctx, it.m)
	cancel()
	if err != nil {
		s.dropped.Inc()
		s.log.Warn("webhook dropped: offline recipients unknown", "message", it.m.ID, "err", err)
		return
	}
	// Deliveries go through the queue so that the recipients of one group
	// message are delivered in parallel; they bypass the closed flag, since
	// their message was accepted before Close. Those that do not fit are
	// run by this worker, one after the other: an accepted message is not
	// dropped for want of room, the queue's intake is.
	var inline []*aoba.User
	for _, u := range users {
		select {
		case s.queue <- item{m: it.m, recipient: u, queued: it.queued}:
		default:
			inline = append(inline, u)
		}
	}
	for _, u := range inline {
		s.deliver(item{m: it.m, recipient: u, queued: it.queued})
	}
}

// deliver runs the attempts of one delivery until one succeeds, MaxAge
// passes or the Sender is aborted.
func (s *Sender) deliver(it item) {
	body, err := json.Marshal(Payload{Event: Event, Recipient: it.recipient, Message: it.m})
	if err != nil {
		s.dropped.Inc()
		s.log.Error("webhook dropped: encode", "message", it.m.ID, "err", err)
		return
	}
	deadline := it.queued.Add(s.cfg.MaxAge)
	for attempt := 0; ; attempt++ {
		err := s.attempt(body)
		if err == nil {
			s.sent.Inc()
			return
		}
		s.failed.Inc()
		wait := s.backoff(attempt)
		if time.Now().Add(wait).After(deadline) || s.ctx.Err() != nil {
			s.dropped.Inc()
			s.log.Warn("webhook given up", "message", it.m.ID, "recipient", it.recipient.ID, "attempts", attempt+1, "err", err)
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			s.dropped.Inc()
			s.log.Warn("webhook given up at shutdown", "message", it.m.ID, "recipient", it.recipient.ID, "attempts", attempt+1)
			return
		}
	}
}

// backoff returns the wait after the failed attempt number attempt (from
// 0): MinBackoff doubled attempt times, at most MaxBackoff, of which a
// random half to all.
func (s *Sender) backoff(attempt int) time.Duration {
	d := s.cfg.MinBackoff
	for range attempt {
		if d >= s.cfg.MaxBackoff/2 {
			d = s.cfg.MaxBackoff
			break
		}
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// attempt POSTs body once. It returns the network error, or an error
// naming the status when it is not 2xx.
func (s *Sender) attempt(body []byte) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "aoba-webhook")
	req.Header.Set("X-Aoba-Timestamp", ts)
	req.Header.Set("X-Aoba-Signature", Sign(s.secret, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// Sign returns the X-Aoba-Signature value of body sent at the Unix time
// timestamp: "sha256=" and the hex HMAC-SHA256 of "<timestamp>.<body>"
// keyed by secret. It never fails.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Close stops accepting messages, lets the workers finish the queue until
// ctx is done, then aborts what is left (counted as dropped). It returns
// ctx's error when the deadline cut deliveries short, and nil otherwise;
// calls after the first return nil.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.closing)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.cancel()
		<-done
	}
	s.cancel()
	// A resolver that finished after the last worker left may have queued
	// deliveries nobody runs.
	for {
		select {
		case it := <-s.queue:
			s.dropped.Inc()
			s.log.Warn("webhook dropped at shutdown", "message", it.m.ID)
		default:
			return err
		}
	}
}
