package xmpp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/aoba-chat/aoba"
)

// handleIQ answers an iq stanza. Unknown queries get service-unavailable,
// as RFC 6120 8.4 asks.
func (ss *session) handleIQ(iq *Element) error {
	typ := iq.attr("type")
	if typ == "result" || typ == "error" {
		return nil // answers to the server's own queries (none are sent)
	}
	if iq.attr("id") == "" || (typ != "get" && typ != "set") {
		ss.send(iqError(iq, "modify", "bad-request", "an iq needs an id and a type of get or set"))
		return nil
	}
	iq.setAttr("from", ss.full)
	kids := iq.elements()
	if len(kids) != 1 {
		ss.send(iqError(iq, "modify", "bad-request", "an iq get or set has exactly one child"))
		return nil
	}
	q := kids[0]
	to, ok := ss.destination(iq, ss.srv.domain)
	if !ok {
		return nil
	}
	if to.domain == ss.srv.muc {
		ss.roomIQ(iq, q, to)
		return nil
	}
	toSelf := to.local == "" || to.local == ss.userID || strings.EqualFold(to.local, ss.name())
	switch {
	case q.is(nsPing, "ping") && typ == "get":
		ss.send(iqResult(iq, nil))
	case q.is(nsSession, "session") && typ == "set":
		ss.send(iqResult(iq, nil))
	case q.is(nsDiscoInf, "query") && typ == "get":
		ss.discoInfo(iq, q, to)
	case q.is(nsDiscoIt, "query") && typ == "get":
		ss.discoItems(iq, q, to)
	case q.is(nsRoster, "query") && toSelf:
		ss.roster(iq, q)
	case (q.is(nsCarbons, "enable") || q.is(nsCarbons, "disable")) && typ == "set" && toSelf:
		ss.mu.Lock()
		ss.carbons = q.Name.Local == "enable"
		ss.mu.Unlock()
		ss.send(iqResult(iq, nil))
	case q.Name.Space == nsBlocking && toSelf:
		ss.blocking(iq, q)
	case q.is(nsMAM, "query") && typ == "set" && toSelf:
		ss.archive(iq, q, "")
	case q.is(nsMAM, "query") && typ == "get" && toSelf:
		ss.send(iqResult(iq, mamForm()))
	default:
		ss.send(iqError(iq, "cancel", "service-unavailable", ""))
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// name returns the session user's username (it changes when they rename
// themselves).
func (ss *session) name() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.username
}

// handleMessage sends a chat message (or a chat state) to a user, or a
// groupchat message to a room.
func (ss *session) handleMessage(m *Element) error {
	typ := orDefault(m.attr("type"), "normal")
	if typ == "error" {
		return nil
	}
	m.setAttr("from", ss.full)
	to, ok := ss.destination(m, "")
	if !ok {
		return nil
	}
	if to.domain == ss.srv.muc {
		ss.roomMessage(m, to)
		return nil
	}
	if to.local == "" {
		return nil // messages to the server itself are dropped
	}
	if typ == "groupchat" {
		ss.send(bounce(m, "modify", "bad-request", "groupchat messages go to a room"))
		return nil
	}
	if m.child(nsRetract, "retract") != nil {
		ss.send(bounce(m, "cancel", "feature-not-implemented", "delete the message through the Aoba API"))
		return nil
	}
	body, hasBody := bodyOf(m)
	ctx, cancel := stanzaContext()
	defer cancel()
	_, peer, err := ss.srv.svc.LookupUser(ctx, to.local)
	if err != nil {
		t, c, text := errorOf(err)
		ss.send(bounce(m, t, c, text))
		return nil
	}
	if !hasBody {
		if state := chatState(m); state != "" {
			if err := ss.srv.svc.Typing(ctx, ss.claims, peer, aoba.MessageChat, state); err != nil && aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
				t, c, text := errorOf(err)
				ss.send(bounce(m, t, c, text))
			}
		}
		return nil
	}
	if err := ss.spendMessage(); err != nil {
		t, c, text := errorOf(err)
		ss.send(bounce(m, t, c, text))
		return nil
	}
	in := aoba.SendInput{To: peer, Content: body, Type: aoba.MessageChat, ClientID: clientID(m)}
	if _, err := ss.srv.svc.SendMessage(ctx, ss.claims, in, ss.id); err != nil {
		t, c, text := errorOf(err)
		ss.send(bounce(m, t, c, text))
	}
	return nil
}

// spendMessage counts one message against the user's standard budget,
// the key POST /api/messages and the JSON socket's message.send spend.
func (ss *session) spendMessage() error {
	if ss.srv.cfg.Limiter == nil {
		return nil
	}
	ctx, cancel := stanzaContext()
	defer cancel()
	_, err := aoba.Limit(ctx, ss.srv.cfg.Limiter, aoba.UserRateKey(aoba.ClassStandard, ss.userID), ss.srv.cfg.Rates.Standard)
	return err
}

// bodyOf returns the message's body and whether it has one.
func bodyOf(m *Element) (string, bool) {
	b := m.child(nsClient, "body")
	if b == nil {
		return "", false
	}
	return b.textContent(), true
}

// clientID returns the id that makes the send idempotent: the XEP-0359
// origin-id, else the stanza id, when it is a valid Aoba client id; else,
// for a stanza id that cannot be one (too long, or with other characters),
// an id derived from it ("x:" and a hash), so that a retry is still stored
// once.
func clientID(m *Element) *string {
	for _, id := range []string{attrOf(m.child(nsSID, "origin-id"), "id"), m.attr("id")} {
		if aoba.ValidClientID(id) {
			return aoba.ClientID(id)
		}
	}
	if id := m.attr("id"); id != "" {
		sum := sha256.Sum256([]byte(id))
		return aoba.ClientID("x:" + hex.EncodeToString(sum[:20]))
	}
	return nil
}

func attrOf(e *Element, name string) string {
	if e == nil {
		return ""
	}
	return e.attr(name)
}

// chatState returns the XEP-0085 state of a message as an Aoba typing
// state: composing, or paused for every other state.
func chatState(m *Element) string {
	for _, c := range m.elements() {
		if c.Name.Space == nsChatStat {
			if c.Name.Local == "composing" {
				return aoba.TypingComposing
			}
			return aoba.TypingPaused
		}
	}
	return ""
}

// destination returns the address a stanza is sent to (def when it has no
// to attribute): this server's domain or its conference service. It
// bounces the stanza, and returns false, when the address is malformed or
// names another server (Aoba does not federate).
func (ss *session) destination(st *Element, def string) (address, bool) {
	to, ok := parseAddress(orDefault(st.attr("to"), def))
	if !ok {
		ss.send(bounce(st, "modify", "jid-malformed", "the to address is not a valid JID"))
		return address{}, false
	}
	if to.domain != ss.srv.domain && to.domain != ss.srv.muc {
		ss.send(bounce(st, "cancel", "remote-server-not-found", "this server does not federate"))
		return address{}, false
	}
	return to, true
}

// handlePresence handles the session's own presence (to no one), a
// subscription request to a user, or room presence.
func (ss *session) handlePresence(p *Element) error {
	typ := p.attr("type")
	p.setAttr("from", ss.full)
	if p.attr("to") != "" {
		to, ok := ss.destination(p, "")
		if !ok {
			return nil
		}
		if to.domain == ss.srv.muc {
			ss.roomPresence(p, to, typ)
			return nil
		}
		ss.subscription(p, to, typ)
		return nil
	}
	switch typ {
	case "":
		ss.becomeAvailable()
	case "unavailable":
		ss.becomeUnavailable()
	case "probe", "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		// Without a to address these mean nothing.
	default:
		ss.send(bounce(p, "modify", "bad-request", "unknown presence type"))
	}
	return nil
}

// becomeAvailable handles the initial (or a later) available presence:
// the user is counted online, and, the first time, the session follows
// its roster's presence and receives it.
func (ss *session) becomeAvailable() {
	ss.mu.Lock()
	first := !ss.available
	ss.available = true
	connect := !ss.connected
	ss.connected = true
	ss.mu.Unlock()
	ctx, cancel := stanzaContext()
	defer cancel()
	if connect && ss.srv.cfg.Presence != nil {
		if err := ss.srv.cfg.Presence.Connect(ctx, ss.userID, ss.id); err != nil {
			ss.srv.log.Warn("xmpp: presence connect failed", "err", err)
		}
	}
	if first {
		ss.followRoster(ctx)
	}
	// The user's own other resources are not told: Aoba presence is per
	// user, not per resource.
}

// becomeUnavailable ends the session's presence (the stream stays open).
func (ss *session) becomeUnavailable() {
	ss.mu.Lock()
	ss.available = false
	disconnect := ss.connected
	ss.connected = false
	ss.mu.Unlock()
	if disconnect && ss.srv.cfg.Presence != nil {
		ctx, cancel := stanzaContext()
		defer cancel()
		if err := ss.srv.cfg.Presence.Disconnect(ctx, ss.userID, ss.id); err != nil {
			ss.srv.log.Warn("xmpp: presence disconnect failed", "err", err)
		}
	}
	ss.leaveAllRooms()
}

// followRoster subscribes the session to its roster contacts' presence
// and sends their current presence.
func (ss *session) followRoster(ctx context.Context) {
	items, err := ss.srv.svc.Roster(ctx, ss.claims)
	if err != nil {
		ss.srv.log.Warn("xmpp: roster unavailable for presence", "err", err)
		return
	}
	ids := make([]string, 0, len(items))
	for _, it := range items {
		if len(ids) == maxWatched {
			break
		}
		ids = append(ids, it.UserID)
	}
	ss.mu.Lock()
	for _, id := range ids {
		ss.rosterWatch[id] = true
	}
	ss.mu.Unlock()
	ss.watch(ids)
	// PresenceByIDs takes at most aoba.MaxBatchIDs ids a call.
	for len(ids) > 0 {
		batch := ids[:min(len(ids), aoba.MaxBatchIDs)]
		ids = ids[len(batch):]
		found, err := ss.srv.svc.PresenceByIDs(ctx, ss.claims, batch)
		if err != nil {
			ss.srv.log.Warn("xmpp: roster presence unavailable", "err", err)
			return
		}
		for _, p := range found {
			ss.send(ss.presenceStanza(p))
		}
	}
}

// watch makes the session follow the presence topics of ids.
func (ss *session) watch(ids []string) {
	for _, id := range ids {
		ss.mu.Lock()
		_, had := ss.watched[id]
		full := len(ss.watched) >= maxWatched
		if !had && !full {
			ss.watched[id] = struct{}{}
		}
		ss.mu.Unlock()
		if !had && !full {
			ss.srv.index(ss.srv.watchers, id, aoba.PresenceTopic(id), ss)
		}
	}
}

// presenceStanza returns the presence of a user as the session sees it.
func (ss *session) presenceStanza(p *aoba.UserPresence) *Element {
	e := el(nsClient, "presence", "from", ss.srv.userJID(p.UserID), "to", ss.full)
	if p.Status != aoba.StatusOnline {
		e.setAttr("type", "unavailable")
		if p.LastSeen != nil {
			e.add(el(nsDelay, "delay", "stamp", p.LastSeen.UTC().Format(time.RFC3339)))
		}
	}
	return e
}

// subscription handles presence addressed to a user: subscription
// requests are approved at once (Aoba presence is visible to every user
// who may see the user) and add the contact to the roster; a probe is
// answered with the contact's presence.
func (ss *session) subscription(p *Element, to address, typ string) {
	ctx, cancel := stanzaContext()
	defer cancel()
	id, _, err := ss.srv.svc.LookupUser(ctx, to.local)
	if err != nil {
		t, c, text := errorOf(err)
		ss.send(bounce(p, t, c, text))
		return
	}
	switch typ {
	case "subscribe":
		// An item the user added already keeps its name.
		items, err := ss.srv.svc.Roster(ctx, ss.claims)
		var entry *aoba.RosterEntry
		for _, it := range items {
			if it.UserID == id && it.Name != "" {
				entry = it
			}
		}
		if err == nil && entry == nil {
			entry, err = ss.srv.svc.AddRosterItem(ctx, ss.claims, id, "")
		}
		if err != nil {
			t, c, text := errorOf(err)
			ss.send(bounce(p, t, c, text))
			return
		}
		ss.send(el(nsClient, "presence", "type", "subscribed", "from", ss.srv.userJID(id), "to", ss.bare))
		ss.pushRoster(rosterItem(ss.srv, entry))
		ss.mu.Lock()
		ss.rosterWatch[id] = true
		ss.mu.Unlock()
		ss.watch([]string{id})
		ss.probe(ctx, id)
	case "probe":
		ss.probe(ctx, id)
	case "", "unavailable":
		// Directed presence: Aoba has no per-contact presence.
	case "subscribed", "unsubscribe", "unsubscribed":
		// Every contact sees every other: nothing to change.
	}
}

// probe sends the current presence of the user id.
func (ss *session) probe(ctx context.Context, id string) {
	found, err := ss.srv.svc.PresenceByIDs(ctx, ss.claims, []string{id})
	if err != nil {
		return
	}
	for _, p := range found {
		ss.send(ss.presenceStanza(p))
	}
}

// deliver turns one broker envelope into stanzas.
func (ss *session) deliver(d *delivery) {
	env := d.env
	if o := env.Close; o != nil {
		if d.topic[0] != 'u' {
			ss.end(errStream("reset", "the server lost events; reconnect and catch up from the archive"))
			return
		}
		if (o.Session != "" && ss.claims.SessionID != o.Session) ||
			(o.KeepSession != "" && ss.claims.SessionID == o.KeepSession) ||
			(len(o.Conns) > 0 && !contains(o.Conns, ss.id)) {
			return
		}
		ss.end(closeError(o))
		return
	}
	if env.Leave != "" {
		ss.leftGroup(env.Leave)
		return
	}
	typ, payload := d.decoded()
	if d.topic[0] == 'g' {
		ss.roomFrame(d.topic[2:], typ, payload)
		return
	}
	switch v := payload.(type) {
	case *aoba.MessageView:
		if typ != aoba.FrameMessage {
			ss.messageChange(v, typ == aoba.FrameMessageDeleted)
		} else if v.Type == aoba.MessageChat {
			ss.chatMessage(v)
		}
	case *aoba.TypingEvent:
		if v.Type == aoba.MessageChat {
			ss.typing(v)
		}
	case *aoba.UserPresence:
		if d.topic[0] == 'p' {
			ss.watchedPresence(v)
		}
	case *aoba.BlockEvent:
		ss.blockPush(v)
	}
}

// watchedPresence delivers the presence change of a user the session
// follows: as roster presence when the user is on its roster (and the
// session available), and as occupant presence in every joined room of
// which the user is a member.
func (ss *session) watchedPresence(p *aoba.UserPresence) {
	ss.mu.Lock()
	onRoster := ss.rosterWatch[p.UserID]
	available := ss.available
	var occupied []string
	for gid, members := range ss.roomMembers {
		if _, ok := members[p.UserID]; ok {
			occupied = append(occupied, gid)
		}
	}
	ss.mu.Unlock()
	if onRoster && available {
		ss.send(ss.presenceStanza(p))
	}
	for _, gid := range occupied {
		ss.occupantPresence(gid, p)
	}
}

// closeError maps a close order's code to a stream error.
func closeError(o *aoba.CloseOrder) *streamError {
	switch o.Code {
	case aoba.CloseSessionRevoked:
		return errStream("not-authorized", orDefault(o.Reason, "session revoked"))
	case aoba.CloseTooManySockets:
		return errStream("conflict", orDefault(o.Reason, "too many sessions"))
	case aoba.CloseResync:
		return errStream("reset", "the server lost events; reconnect and catch up from the archive")
	case aoba.CloseGoingAway:
		return errStream("system-shutdown", o.Reason)
	}
	return errStream("policy-violation", o.Reason)
}

// chatMessage delivers a 1:1 message: from a peer as a chat message, from
// the user's own other device as a sent carbon (XEP-0280) when carbons
// are on.
func (ss *session) chatMessage(m *aoba.MessageView) {
	id := orDefault(m.ClientID, m.ID)
	if m.FromID == ss.userID {
		ss.mu.Lock()
		carbons := ss.carbons
		ss.mu.Unlock()
		if !carbons {
			return
		}
		inner := el(nsClient, "message", "type", "chat", "id", id, "from", ss.bare, "to", ss.srv.userJID(m.ToID)).
			add(el("", "body").text(m.Content), el(nsSID, "stanza-id", "id", m.ID, "by", ss.bare))
		ss.send(el(nsClient, "message", "type", "chat", "from", ss.bare, "to", ss.full).
			add(el(nsCarbons, "sent").add(el(nsForward, "forwarded").add(inner))))
		return
	}
	ss.send(el(nsClient, "message", "type", "chat", "id", id, "from", ss.srv.userJID(m.FromID), "to", ss.full).
		add(el("", "body").text(m.Content), el(nsChatStat, "active"), el(nsSID, "stanza-id", "id", m.ID, "by", ss.bare)))
}

// typing delivers a typing notice as a XEP-0085 chat state.
func (ss *session) typing(t *aoba.TypingEvent) {
	ctx, cancel := stanzaContext()
	defer cancel()
	id, _, err := ss.srv.svc.LookupUser(ctx, t.From)
	if err != nil {
		return
	}
	state := "paused"
	if t.State == aoba.TypingComposing {
		state = "composing"
	}
	ss.send(el(nsClient, "message", "type", "chat", "from", ss.srv.userJID(id), "to", ss.full).
		add(el(nsChatStat, state), el(nsHints, "no-store")))
}
