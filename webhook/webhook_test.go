package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/webhook"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const secret = "0123456789abcdef-test"

// receiver is an httptest endpoint that checks every request's signature
// (recomputing the HMAC itself, not with webhook.Sign) and answers 500 to
// the first failFirst attempts of each (message, recipient).
type receiver struct {
	t         *testing.T
	srv       *httptest.Server
	failFirst int

	mu        sync.Mutex
	attempts  map[string]int // by "message/recipient"
	successes map[string]int
	got       chan webhook.Payload
}

func newReceiver(t *testing.T, failFirst int) *receiver {
	r := &receiver{t: t, failFirst: failFirst, attempts: map[string]int{}, successes: map[string]int{}, got: make(chan webhook.Payload, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	ts := req.Header.Get("X-Aoba-Timestamp")
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if got := req.Header.Get("X-Aoba-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		r.t.Errorf("signature %q, want %q", got, want)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if n, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(n, 0)).Abs() > time.Minute {
		r.t.Errorf("timestamp %q is not the time of the attempt", ts)
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil || p.Event != "message.offline" || p.Recipient == nil || p.Message == nil {
		r.t.Errorf("body %s", body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	key := p.Message.ID + "/" + p.Recipient.ID
	r.mu.Lock()
	r.attempts[key]++
	fail := r.attempts[key] <= r.failFirst
	if !fail {
		r.successes[key]++
	}
	r.mu.Unlock()
	if fail {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	r.got <- p
	w.WriteHeader(http.StatusNoContent)
}

// resolveTo returns a resolver that names users as every message's offline
// recipients.
func resolveTo(users ...*aoba.User) webhook.ResolveFunc {
	return func(context.Context, *aoba.MessageView) ([]*aoba.User, error) { return users, nil }
}

func newSender(t *testing.T, c webhook.Config, resolve webhook.ResolveFunc) *webhook.Sender {
	t.Helper()
	if c.Secret == "" {
		c.Secret = secret
	}
	if c.MinBackoff == 0 {
		c.MinBackoff, c.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	}
	s, err := webhook.New(c)
	if err != nil {
		t.Fatal(err)
	}
	s.RegisterResolver(resolve)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func message(id string) *aoba.MessageView {
	return &aoba.MessageView{ID: id, FromID: "a", ToID: "g", From: "alice", To: "g", Content: "hi", Type: aoba.MessageGroupChat, Timestamp: time.Now(), Status: "sent"}
}

func TestSender_RetriesUntilAccepted(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 2)
	bob := &aoba.User{ID: "b", Username: "bob"}
	carol := &aoba.User{ID: "c", Username: "carol"}
	s := newSender(t, webhook.Config{URL: rcv.srv.URL, Workers: 3}, resolveTo(bob, carol))
	for _, id := range []string{"m1", "m2"} {
		s.NotifyOffline(message(id))
	}
	for range 4 {
		select {
		case p := <-rcv.got:
			if p.Message.Content != "hi" || (p.Recipient.Username != "bob" && p.Recipient.Username != "carol") {
				t.Fatalf("payload %+v", p)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("deliveries missing")
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, key := range []string{"m1/b", "m1/c", "m2/b", "m2/c"} {
		if rcv.successes[key] != 1 || rcv.attempts[key] != 3 {
			t.Errorf("%s: %d successes in %d attempts, want 1 in 3", key, rcv.successes[key], rcv.attempts[key])
		}
	}
	cs := s.Collectors()
	if sent, failed, dropped := value(cs[0]), value(cs[1]), value(cs[2]); sent != 4 || failed != 8 || dropped != 0 {
		t.Fatalf("sent %v failed %v dropped %v, want 4, 8, 0", sent, failed, dropped)
	}
}

func TestSender_QueueFull(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 0)
	release := make(chan struct{})
	var once sync.Once
	started := make(chan struct{})
	// The one worker is held in the resolver of the first message; the
	// queue of 2 then takes two more and drops the rest. The first
	// message's delivery, finding the queue full, is run by its worker.
	resolve := func(ctx context.Context, m *aoba.MessageView) ([]*aoba.User, error) {
		once.Do(func() { close(started) })
		<-release
		return []*aoba.User{{ID: "b", Username: "bob"}}, nil
	}
	s := newSender(t, webhook.Config{URL: rcv.srv.URL, Workers: 1, QueueSize: 2}, resolve)
	s.NotifyOffline(message("m0"))
	<-started
	for i := 1; i <= 5; i++ {
		s.NotifyOffline(message("m" + strconv.Itoa(i)))
	}
	if d := value(s.Collectors()[2]); d != 3 {
		t.Fatalf("dropped %v, want 3", d)
	}
	close(release)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sent := value(s.Collectors()[0]); sent != 3 {
		t.Fatalf("sent %v, want the 3 queued", sent)
	}
	s.NotifyOffline(message("late"))
	if d := value(s.Collectors()[2]); d != 4 {
		t.Fatalf("dropped %v after Close, want 4", d)
	}
}

func TestSender_GivesUp(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 1<<30)
	s := newSender(t, webhook.Config{URL: rcv.srv.URL, Workers: 1, MaxAge: 150 * time.Millisecond}, resolveTo(&aoba.User{ID: "b"}))
	s.NotifyOffline(message("m1"))
	deadline := time.Now().Add(10 * time.Second)
	for value(s.Collectors()[2]) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("never gave up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rcv.mu.Lock()
	n := rcv.attempts["m1/b"]
	rcv.mu.Unlock()
	if failed := value(s.Collectors()[1]); n < 2 || failed != float64(n) {
		t.Fatalf("%d attempts, %v counted failed", n, failed)
	}
	if sent := value(s.Collectors()[0]); sent != 0 {
		t.Fatalf("sent %v", sent)
	}
}

func TestSender_CloseDeadline(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 1<<30)
	s := newSender(t, webhook.Config{URL: rcv.srv.URL, Workers: 1, MaxAge: 3 * time.Hour, MinBackoff: time.Hour, MaxBackoff: time.Hour}, resolveTo(&aoba.User{ID: "b"}))
	s.NotifyOffline(message("m1"))
	for value(s.Collectors()[1]) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Close(ctx); err == nil {
		t.Fatal("Close cut a retry short and returned nil")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Close waited for the backoff")
	}
	if d := value(s.Collectors()[2]); d != 1 {
		t.Fatalf("dropped %v, want 1", d)
	}
}

func TestNew_Invalid(t *testing.T) {
	t.Parallel()
	for _, c := range []webhook.Config{
		{URL: "ftp://x", Secret: secret},
		{URL: "http://", Secret: secret},
		{URL: "::", Secret: secret},
		{URL: "https://push.example.com/hook", Secret: "short"},
	} {
		if s, err := webhook.New(c); err == nil {
			_ = s.Close(context.Background())
			t.Errorf("New(%q, %d-byte secret) succeeded", c.URL, len(c.Secret))
		}
	}
}

// value returns the value of the counter c.
func value(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
