package aoba_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/auth"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/sqlitestore"
)

// testPassword is the password of every account MustRegister creates: a
// passphrase, so that no password rule refuses it.
const testPassword = "a fine passphrase 1"

// TestService is a Service on a fresh embedded store and the in-process hub
// (broker, presence, sessions, rate limiter), with what tests need to look
// behind it: the store, the hub and the envelopes the broker delivered.
type TestService struct {
	*aoba.Service
	Store    *sqlitestore.Store
	Broker   *hub.MemoryBroker
	Presence *hub.MemoryPresence
	Sockets  *hub.MemorySockets
	Hasher   *recordingHasher

	rec *recorder
	cfg aoba.ServiceConfig // of Service, for startPod
}

// serviceOptions are what a serviceOption may change in newService.
type serviceOptions struct {
	loginFailures int
	presence      hub.PresenceOptions
	offline       aoba.OfflineNotifier
	unarmed       bool
	wrapStore     func(aoba.Store) aoba.Store
	sessions      aoba.SessionCache
}

// serviceOption changes one setting of newService.
type serviceOption func(*serviceOptions)

// withLoginFailures sets the failed-login budget of one account.
func withLoginFailures(n int) serviceOption {
	return func(o *serviceOptions) { o.loginFailures = n }
}

// withPresence sets the options of the presence registry (a short Grace,
// say).
func withPresence(p hub.PresenceOptions) serviceOption {
	return func(o *serviceOptions) { o.presence = p }
}

// withoutCaches leaves the Service off the directory topic (no
// CacheDirectory): it caches none of the users, blocks and memberships that
// sends read, and every send reads the store.
func withoutCaches() serviceOption {
	return func(o *serviceOptions) { o.unarmed = true }
}

// withStore gives the Service wrap(store) instead of the store itself (to
// count its calls, say); TestService.Store stays the store.
func withStore(wrap func(aoba.Store) aoba.Store) serviceOption {
	return func(o *serviceOptions) { o.wrapStore = wrap }
}

// withSessions sets the Service's SessionCache (the tickets stay in
// memory).
func withSessions(c aoba.SessionCache) serviceOption {
	return func(o *serviceOptions) { o.sessions = c }
}

// withOffline sets the Service's OfflineNotifier.
func withOffline(n aoba.OfflineNotifier) serviceOption {
	return func(o *serviceOptions) { o.offline = n }
}

// newService returns a Service on a fresh embedded store in t.TempDir() and
// the in-process hub, with a cheap argon2id. The presence registry reports
// its changes to the Service, as in main. Everything closes at the end of
// the test.
func newService(t testing.TB, opts ...serviceOption) *TestService {
	t.Helper()
	var o serviceOptions
	for _, opt := range opts {
		opt(&o)
	}
	ctx := context.Background()
	store, err := sqlitestore.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	tokens, err := auth.NewTokens([]byte(strings.Repeat("k", 32)), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	argon, err := auth.NewArgon2id(auth.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	ts := &TestService{Store: store, Sockets: hub.NewMemorySockets(), Hasher: &recordingHasher{Argon2id: argon}, rec: newRecorder()}
	ts.Broker = hub.NewMemoryBroker()
	ts.Broker.RegisterDeliver(ts.rec.deliver)
	t.Cleanup(func() { _ = ts.Broker.Close() })
	if err := ts.Broker.Subscribe(ctx, flushTopic); err != nil {
		t.Fatal(err)
	}
	ts.Presence = hub.NewMemoryPresence(o.presence)
	t.Cleanup(func() { _ = ts.Presence.Close() })
	sessions := hub.NewMemorySessions()
	var cache aoba.SessionCache = sessions
	if o.sessions != nil {
		cache = o.sessions
	}
	ts.cfg = aoba.ServiceConfig{
		Store: store, Broker: ts.Broker, Presence: ts.Presence, Sessions: cache, Tickets: sessions,
		Limiter: hub.NewMemoryRateLimiter(), LoginFailures: o.loginFailures, Tokens: tokens, Hasher: ts.Hasher,
		Offline: o.offline, Sockets: ts.Sockets,
	}
	if o.wrapStore != nil {
		ts.cfg.Store = o.wrapStore(store)
	}
	if o.unarmed {
		ts.Service = aoba.NewService(ts.cfg)
	} else {
		ts.Service = ts.startPod(t)
	}
	// The registry calls back into the Service, registered once both exist.
	ts.Presence.RegisterChangeHandler(ts.Service.PresenceChanged)
	return ts
}

// startPod returns a Service on ts's configuration that hears the
// directory topic and caches what sends read, as main sets it up. Called
// again, it returns another pod of the same deployment: same store and
// broker, a directory cache of its own.
func (ts *TestService) startPod(t testing.TB) *aoba.Service {
	t.Helper()
	svc := aoba.NewService(ts.cfg)
	ts.rec.onDirectory(svc.DirectoryChanged)
	if err := svc.CacheDirectory(context.Background()); err != nil {
		t.Fatal(err)
	}
	return svc
}

// recordingHasher is a cheap argon2id that records the length of every
// password it is given.
type recordingHasher struct {
	*auth.Argon2id
	mu      sync.Mutex
	longest int
	dummies int
}

func (h *recordingHasher) saw(pw string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.longest = max(h.longest, len(pw))
}

func (h *recordingHasher) Hash(pw string) (string, error) { h.saw(pw); return h.Argon2id.Hash(pw) }

func (h *recordingHasher) Verify(hash, pw string) (bool, error) {
	h.saw(pw)
	return h.Argon2id.Verify(hash, pw)
}

func (h *recordingHasher) Dummy() {
	h.mu.Lock()
	h.dummies++
	h.mu.Unlock()
	h.Argon2id.Dummy()
}

// Account is a registered user signed in on one session.
type Account struct {
	*aoba.User
	aoba.Claims
	Token string
}

// MustRegister registers username with testPassword and signs in.
func (ts *TestService) MustRegister(t testing.TB, username string) Account {
	t.Helper()
	ctx := context.Background()
	if _, err := ts.Register(ctx, username, testPassword); err != nil {
		t.Fatalf("Register(%s): %v", username, err)
	}
	return ts.MustLogin(t, username)
}

// MustLogin opens a new session of username (whose password is
// testPassword).
func (ts *TestService) MustLogin(t testing.TB, username string) Account {
	t.Helper()
	tok, c, u, err := ts.Login(context.Background(), username, testPassword, aoba.Device{UserAgent: "test", IP: "192.0.2.1"})
	if err != nil {
		t.Fatalf("Login(%s): %v", username, err)
	}
	return Account{User: u, Claims: c, Token: tok}
}

// MustCreateGroup creates a group owned by owner and adds each member
// directly with the role given (admin or member), in order, a few
// milliseconds apart so that their JoinedAt follow that order.
func (ts *TestService) MustCreateGroup(t testing.TB, owner Account, name string, members ...Role) *aoba.GroupView {
	t.Helper()
	ctx := context.Background()
	res, err := ts.CreateGroup(ctx, owner.Claims, name, nil)
	if err != nil {
		t.Fatalf("CreateGroup(%s): %v", name, err)
	}
	for _, m := range members {
		time.Sleep(2 * time.Millisecond)
		if _, err := ts.AddMember(ctx, owner.Claims, res.Group.ID, m.Username, string(m.Role)); err != nil {
			t.Fatalf("AddMember(%s, %s): %v", m.Username, m.Role, err)
		}
	}
	return res.Group
}

// Role pairs an account with the role it gets in MustCreateGroup.
type Role struct {
	Account
	Role aoba.Role
}

// As returns a with role r, for MustCreateGroup.
func (a Account) As(r aoba.Role) Role { return Role{Account: a, Role: r} }

// Subscribe makes the broker deliver the topics' envelopes to the recorder;
// the broker drops envelopes on topics nobody subscribed to.
func (ts *TestService) Subscribe(t testing.TB, topics ...string) {
	t.Helper()
	if err := ts.Broker.Subscribe(context.Background(), topics...); err != nil {
		t.Fatal(err)
	}
}

// Published waits until the broker has delivered everything published so
// far, then returns the envelopes delivered on topic since the last call
// for it, in order, and forgets them.
func (ts *TestService) Published(t testing.TB, topic string) []aoba.Envelope {
	t.Helper()
	ts.flush(t)
	return ts.rec.take(topic)
}

// Forget waits until the broker has delivered everything published so far
// and forgets every envelope recorded.
func (ts *TestService) Forget(t testing.TB) {
	t.Helper()
	ts.flush(t)
	ts.rec.reset()
}

// flush publishes a marker on flushTopic and waits for its delivery: the
// broker delivers in the order of publication, so every earlier envelope
// has been delivered by then.
func (ts *TestService) flush(t testing.TB) {
	t.Helper()
	marker, done := ts.rec.marker()
	if err := ts.Broker.Publish(context.Background(), aoba.Publication{Topic: flushTopic, Envelope: aoba.Envelope{Join: marker}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the broker did not deliver the flush marker")
	}
}

// flushTopic carries the markers of flush.
const flushTopic = "test:flush"

// recorder keeps the envelopes the broker delivers, per topic, and hands
// those of the directory topic to the Services that hear it.
type recorder struct {
	mu        sync.Mutex
	topics    map[string][]aoba.Envelope
	markers   map[string]chan struct{}
	next      int
	directory []func(aoba.Envelope)
}

// onDirectory makes fn receive every envelope of aoba.DirectoryTopic.
func (r *recorder) onDirectory(fn func(aoba.Envelope)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.directory = append(r.directory, fn)
}

func newRecorder() *recorder {
	return &recorder{topics: make(map[string][]aoba.Envelope), markers: make(map[string]chan struct{})}
}

// deliver is the broker's DeliverFunc.
func (r *recorder) deliver(topic string, env aoba.Envelope) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if topic == aoba.DirectoryTopic {
		for _, fn := range r.directory {
			fn(env)
		}
	}
	if topic == flushTopic {
		if ch, ok := r.markers[env.Join]; ok {
			delete(r.markers, env.Join)
			close(ch)
		}
		return
	}
	r.topics[topic] = append(r.topics[topic], env)
}

// marker returns a new flush marker and the channel closed on its delivery.
func (r *recorder) marker() (string, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	m := strconv.Itoa(r.next)
	ch := make(chan struct{})
	r.markers[m] = ch
	return m, ch
}

func (r *recorder) take(topic string) []aoba.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	envs := r.topics[topic]
	delete(r.topics, topic)
	return envs
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.topics = make(map[string][]aoba.Envelope)
}

// frameOf decodes the frame of env, and fails the test when env carries
// none.
func frameOf(t testing.TB, env aoba.Envelope) aoba.Frame {
	t.Helper()
	if env.Frame == nil {
		t.Fatalf("envelope %+v carries no frame", env)
	}
	var f aoba.Frame
	if err := json.Unmarshal(env.Frame, &f); err != nil {
		t.Fatalf("decode frame %s: %v", env.Frame, err)
	}
	return f
}

// dataOf decodes the data of a frame of type typ carried by env into a new
// T.
func dataOf[T any](t testing.TB, env aoba.Envelope, typ string) T {
	t.Helper()
	f := frameOf(t, env)
	if f.Type != typ {
		t.Fatalf("frame type %q, want %q: %s", f.Type, typ, env.Frame)
	}
	var v T
	if err := json.Unmarshal(f.Data, &v); err != nil {
		t.Fatalf("decode %s data %s: %v", typ, f.Data, err)
	}
	return v
}

// framesOf returns the frames among envs of type typ.
func framesOf(t testing.TB, envs []aoba.Envelope, typ string) []aoba.Envelope {
	t.Helper()
	var out []aoba.Envelope
	for _, env := range envs {
		if env.Frame != nil && frameOf(t, env).Type == typ {
			out = append(out, env)
		}
	}
	return out
}

// describe returns a short account of envs for failure messages: what each
// carries, in order.
func describe(envs []aoba.Envelope) string {
	out := make([]string, len(envs))
	for i, env := range envs {
		switch {
		case env.Close != nil:
			out[i] = "close " + strconv.Itoa(env.Close.Code)
		case env.Join != "":
			out[i] = "join " + env.Join
		case env.Leave != "":
			out[i] = "leave " + env.Leave
		default:
			out[i] = "frame " + string(env.Frame)
			if env.ExceptConn != "" {
				out[i] += " except conn " + env.ExceptConn
			}
			if env.ExceptUser != "" {
				out[i] += " except user " + env.ExceptUser
			}
		}
	}
	return "[" + strings.Join(out, "; ") + "]"
}

// wantCode fails the test unless err has the domain error code want ("" for
// nil).
func wantCode(t testing.TB, err error, want string) {
	t.Helper()
	if got := aoba.ErrorCode(err); got != want {
		t.Fatalf("error code %q (%v), want %q", got, err, want)
	}
}

// uuids returns n new well-formed ids that name nothing.
func uuids(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = aoba.NewID()
	}
	return ids
}
