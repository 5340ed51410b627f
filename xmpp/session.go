package xmpp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/aoba-chat/aoba"
)

// delivery is one envelope for a session, from the broker. Deliver makes
// one for all the sessions it hands an envelope to, which only read it;
// the queues hold pointers, so that a session's queue of SendQueue entries
// costs 2 KiB, not the 38 KiB of as many copies of the envelope.
type delivery struct {
	topic string
	env   aoba.Envelope

	// The frame is decoded once, by the first session that reads it
	// (decoded); every session the delivery reaches only reads the result.
	once    sync.Once
	typ     string
	payload any
}

// decoded returns the type of the envelope's frame and its data: a
// *aoba.MessageView (message, message.updated, message.deleted), an
// *aoba.TypingEvent, an *aoba.UserPresence or an *aoba.BlockEvent; nil for
// other frames, none, or one that does not decode.
func (d *delivery) decoded() (string, any) {
	d.once.Do(func() {
		var f aoba.Frame
		if len(d.env.Frame) == 0 || json.Unmarshal(d.env.Frame, &f) != nil {
			return
		}
		var v any
		switch f.Type {
		case aoba.FrameMessage, aoba.FrameMessageUpdated, aoba.FrameMessageDeleted:
			v = &aoba.MessageView{}
		case aoba.FrameTyping:
			v = &aoba.TypingEvent{}
		case aoba.FramePresence:
			v = &aoba.UserPresence{}
		case aoba.FrameBlock:
			v = &aoba.BlockEvent{}
		default:
			return
		}
		if json.Unmarshal(f.Data, v) == nil {
			d.typ, d.payload = f.Type, v
		}
	})
	return d.typ, d.payload
}

// session is one client stream. Its goroutine (run) reads and handles the
// client's stanzas; a second goroutine (pump), started at resource
// binding, turns the broker's envelopes into stanzas. Both write through
// the transport, which serializes writes.
type session struct {
	srv *Server
	t   transport
	id  string // also the connection id in the presence registry
	ip  string

	// Set once at binding, read-only afterwards.
	claims  aoba.Claims
	userID  string
	ownAoba bool // a PLAIN login opened an Aoba session; it ends with the stream
	// registered says the stream is in the socket registry.
	registered bool
	resource   string
	bare       string // <user id>@domain
	full       string // bare/resource
	authAttem  int

	queue    chan *delivery
	done     chan struct{}
	endOnce  sync.Once
	endErr   error
	pumpDone chan struct{}

	// mu guards the session state the two goroutines share.
	mu        sync.Mutex
	username  string
	available bool
	connected bool // counted online in the presence registry
	carbons   bool
	rooms     map[string]string   // group id → the user's affiliation in the room, at join
	echoes    map[string]string   // client id → stanza id, for groupchat reflections (expectEcho)
	watched   map[string]struct{} // user ids whose presence topic it follows
	// rosterWatch are the watched users whose presence the session gets
	// as roster presence; roomMembers the members of each joined room,
	// whose presence it gets as occupant presence.
	rosterWatch map[string]bool
	roomMembers map[string]map[string]roomMember
	tokens      float64
	lastFill    time.Time
}

func newSession(s *Server, t transport) *session {
	ip := ""
	if a, ok := t.remoteAddr().(*net.TCPAddr); ok {
		ip = a.IP.String()
	} else if a := t.remoteAddr(); a != nil {
		ip = a.String()
	}
	return &session{
		srv: s, t: t, id: aoba.NewID(), ip: ip,
		queue: make(chan *delivery, s.cfg.SendQueue), done: make(chan struct{}),
		rooms: make(map[string]string), watched: make(map[string]struct{}),
		rosterWatch: make(map[string]bool), roomMembers: make(map[string]map[string]roomMember),
		tokens: float64(s.cfg.StanzaBurst), lastFill: time.Now(),
	}
}

// streamID returns a fresh stream id.
func streamID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// run negotiates the stream, then handles stanzas until the stream ends.
func (ss *session) run() {
	err := ss.negotiate()
	if err == nil {
		err = ss.serveStanzas()
	}
	ss.end(err)
	ss.cleanup()
}

// end closes the stream once, with err's stream error when it is one.
func (ss *session) end(err error) {
	ss.endOnce.Do(func() {
		ss.endErr = err
		close(ss.done)
		if errors.Is(err, io.EOF) {
			err = nil
		}
		ss.t.close(err)
	})
}

// features returns the stream features for the stream's current stage.
func (ss *session) features(authed bool) *Element {
	f := el(nsStream, "features")
	switch {
	case !authed && ss.t.canTLS():
		f.add(el(nsTLS, "starttls").add(el("", "required")))
	case !authed:
		mechs := el(nsSASL, "mechanisms")
		if ss.t.secure() {
			mechs.add(el("", "mechanism").text("PLAIN"))
		}
		mechs.add(el("", "mechanism").text("OAUTHBEARER"), el("", "mechanism").text("X-OAUTH2"))
		f.add(mechs)
	default:
		f.add(el(nsBind, "bind"), el(nsSession, "session").add(el("", "optional")))
	}
	return f
}

// header reads the client's stream header and answers it with features.
func (ss *session) header(authed bool) error {
	h, err := ss.t.readHeader(ss.srv.cfg.IdleTimeout)
	if err != nil {
		return err
	}
	if to := h.attr("to"); !strings.EqualFold(to, ss.srv.domain) {
		_ = ss.t.writeHeader(ss.srv.domain, streamID(), nil)
		return errStream("host-unknown", "this server is "+ss.srv.domain)
	}
	if v := h.attr("version"); v != "" && !strings.HasPrefix(v, "1.") {
		_ = ss.t.writeHeader(ss.srv.domain, streamID(), nil)
		return errStream("unsupported-version", "version 1.0 only")
	}
	return ss.t.writeHeader(ss.srv.domain, streamID(), ss.features(authed))
}

// negotiate runs STARTTLS, SASL and resource binding.
func (ss *session) negotiate() error {
	if err := ss.header(false); err != nil {
		return err
	}
	// STARTTLS, when offered, is required before anything else.
	if ss.t.canTLS() {
		e, err := ss.t.next(ss.srv.cfg.IdleTimeout)
		if err != nil {
			return err
		}
		if !e.is(nsTLS, "starttls") {
			return errStream("not-authorized", "STARTTLS is required")
		}
		if err := ss.t.write(el(nsTLS, "proceed")); err != nil {
			return err
		}
		if err := ss.t.startTLS(); err != nil {
			return err
		}
		if err := ss.header(false); err != nil {
			return err
		}
	}
	if err := ss.authenticate(); err != nil {
		return err
	}
	ss.t.restart()
	if err := ss.header(true); err != nil {
		return err
	}
	for {
		e, err := ss.t.next(ss.srv.cfg.IdleTimeout)
		if err != nil {
			return err
		}
		if !e.is(nsClient, "iq") {
			return errStream("not-authorized", "bind a resource first")
		}
		if bind := e.child(nsBind, "bind"); bind != nil && e.attr("type") == "set" {
			return ss.bind(e, bind)
		}
		if err := ss.t.write(iqError(e, "cancel", "not-allowed", "bind a resource first")); err != nil {
			return err
		}
	}
}

// bind binds the resource the client asked for (or a generated one) and
// makes the session live: indexed under its user, following the user's
// topic, with its pump running.
func (ss *session) bind(iq, bind *Element) error {
	res := strings.TrimSpace(bind.childText(nsBind, "resource"))
	if res == "" {
		res = streamID()[:8]
	}
	if len(res) > 256 || strings.ContainsAny(res, "/\x00") {
		return ss.t.write(iqError(iq, "modify", "bad-request", "invalid resource"))
	}
	// Another session of the user with the same resource on this pod is
	// replaced, as RFC 6120 7.7.2.2 allows.
	for _, other := range ss.srv.localSessions(ss.userID) {
		if other.resource == res {
			other.end(errStream("conflict", "replaced by a new session with the same resource"))
		}
	}
	ss.resource = res
	ss.bare = ss.userID + "@" + ss.srv.domain
	ss.full = ss.bare + "/" + res
	ss.pumpDone = make(chan struct{})
	go ss.pump()
	evicted := ss.openSocket()
	ss.srv.index(ss.srv.users, ss.userID, aoba.UserTopic(ss.userID), ss)
	ss.evict(evicted)
	return ss.t.write(iqResult(iq, el(nsBind, "bind").add(el("", "jid").text(ss.full))))
}

// openSocket records the stream in the socket registry and returns the
// ids of the user's oldest connections it takes past the limit. A failure
// is logged: the stream stays and evicts nothing.
func (ss *session) openSocket() []string {
	reg := ss.srv.cfg.Sockets
	if reg == nil {
		return nil
	}
	ctx, cancel := stanzaContext()
	defer cancel()
	max := ss.srv.cfg.MaxSockets
	if max <= 0 {
		max = aoba.DefaultMaxSocketsPerUser
	}
	evicted, err := reg.Open(ctx, ss.userID, ss.id, max)
	if err != nil {
		ss.srv.log.Warn("xmpp: socket registry open failed", "err", err)
		return nil
	}
	ss.registered = true
	return evicted
}

// evict orders the pods holding the evicted connections to close them:
// one close order on the user's topic, as the JSON socket does.
func (ss *session) evict(evicted []string) {
	if len(evicted) == 0 {
		return
	}
	ctx, cancel := stanzaContext()
	defer cancel()
	order := &aoba.CloseOrder{Code: aoba.CloseTooManySockets, Reason: "too many connections", Conns: evicted}
	if err := ss.srv.cfg.Broker.Publish(ctx, aoba.Publication{Topic: aoba.UserTopic(ss.userID), Envelope: aoba.Envelope{Close: order}}); err != nil {
		ss.srv.log.Warn("xmpp: too-many-connections close order failed", "err", err)
	}
}

// cleanup undoes what binding and the session's life did: indexes,
// presence, joined rooms, the Aoba session of a PLAIN login.
func (ss *session) cleanup() {
	if ss.pumpDone != nil {
		<-ss.pumpDone
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ss.userID != "" && ss.bare != "" {
		ss.srv.unindex(ss.srv.users, ss.userID, aoba.UserTopic(ss.userID), ss)
	}
	if ss.registered {
		if err := ss.srv.cfg.Sockets.Close(ctx, ss.userID, ss.id); err != nil {
			ss.srv.log.Warn("xmpp: socket registry close failed", "err", err)
		}
	}
	ss.mu.Lock()
	rooms := make([]string, 0, len(ss.rooms))
	for g := range ss.rooms {
		rooms = append(rooms, g)
	}
	watched := make([]string, 0, len(ss.watched))
	for u := range ss.watched {
		watched = append(watched, u)
	}
	ss.rooms, ss.watched = map[string]string{}, map[string]struct{}{}
	connected := ss.connected
	ss.connected = false
	ss.mu.Unlock()
	for _, g := range rooms {
		ss.srv.unindex(ss.srv.rooms, g, aoba.GroupTopic(g), ss)
	}
	for _, u := range watched {
		ss.srv.unindex(ss.srv.watchers, u, aoba.PresenceTopic(u), ss)
	}
	if connected && ss.srv.cfg.Presence != nil {
		if err := ss.srv.cfg.Presence.Disconnect(ctx, ss.userID, ss.id); err != nil {
			ss.srv.log.Warn("xmpp: presence disconnect failed", "err", err)
		}
	}
	if ss.ownAoba {
		if err := ss.srv.svc.Logout(ctx, ss.claims); err != nil && aoba.ErrorCode(err) != aoba.EUNAUTHORIZED {
			ss.srv.log.Warn("xmpp: ending the stream's session failed", "err", err)
		}
	}
}

// serveStanzas handles the client's stanzas until the stream ends.
func (ss *session) serveStanzas() error {
	for {
		e, err := ss.t.next(ss.srv.cfg.IdleTimeout)
		if err != nil {
			return err
		}
		if !ss.spend() {
			return errStream("policy-violation", "too many stanzas")
		}
		ss.srv.metrics.stanzasIn.Inc()
		if e.Name.Space != nsClient {
			return errStream("unsupported-stanza-type", "")
		}
		switch e.Name.Local {
		case "message":
			err = ss.handleMessage(e)
		case "presence":
			err = ss.handlePresence(e)
		case "iq":
			err = ss.handleIQ(e)
		default:
			return errStream("unsupported-stanza-type", e.Name.Local)
		}
		if err != nil {
			return err
		}
		select {
		case <-ss.done:
			return ss.endErr
		default:
		}
	}
}

// spend takes one stanza from the session's token bucket.
func (ss *session) spend() bool {
	now := time.Now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.tokens = min(float64(ss.srv.cfg.StanzaBurst), ss.tokens+now.Sub(ss.lastFill).Seconds()*ss.srv.cfg.StanzaRate)
	ss.lastFill = now
	if ss.tokens < 1 {
		return false
	}
	ss.tokens--
	return true
}

// send writes a stanza to the client; a write error ends the stream.
func (ss *session) send(e *Element) {
	if err := ss.t.write(e); err != nil {
		ss.end(err)
		return
	}
	ss.srv.metrics.stanzasOut.Inc()
}

// enqueue hands a broker envelope to the pump; a full queue ends the
// stream (the client catches up from the archive).
func (ss *session) enqueue(d *delivery) {
	select {
	case ss.queue <- d:
	case <-ss.done:
	default:
		ss.srv.metrics.slow.Inc()
		go ss.end(errStream("policy-violation", "the client reads too slowly"))
	}
}

// pump turns the queued envelopes into stanzas until the stream ends.
func (ss *session) pump() {
	defer close(ss.pumpDone)
	for {
		select {
		case <-ss.done:
			return
		case d := <-ss.queue:
			ss.deliver(d)
		}
	}
}

// ctx returns a context for one stanza's work.
func stanzaContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}
