package xmpp

import (
	"strconv"
	"strings"
	"time"

	"github.com/aoba-chat/aoba"
)

// Multi-user chat (XEP-0045): each Aoba group is the persistent,
// members-only, non-anonymous room <group id>@conference.<domain>. Nick
// names are usernames: a client that joins under another nick is given its
// username (status 210). Owners are owners and moderators, admins admins
// and moderators, members members and participants. The occupants are the
// members online: listed at join, then followed through their presence
// (members who join the group later are not). A removed member's session
// leaves with status 321.

// mucHistory is the number of messages sent at join when the client does
// not ask for a number.
const mucHistory = 20

// roomIQ answers an iq addressed to the conference service or a room.
func (ss *session) roomIQ(iq, q *Element, to address) {
	typ := iq.attr("type")
	ctx, cancel := stanzaContext()
	defer cancel()
	if to.local == "" {
		switch {
		case q.is(nsDiscoInf, "query") && typ == "get":
			res := el(nsDiscoInf, "query", "node", q.attr("node")).add(el("", "identity", "category", "conference", "type", "text", "name", "Groups"))
			addFeatures(res, ConferenceFeatures)
			ss.send(iqResult(iq, res))
		case q.is(nsDiscoIt, "query") && typ == "get":
			groups, err := ss.srv.svc.ListGroups(ctx, ss.claims)
			if err != nil {
				t, c, text := errorOf(err)
				ss.send(iqError(iq, t, c, text))
				return
			}
			res := el(nsDiscoIt, "query")
			for _, g := range groups {
				res.add(el("", "item", "jid", ss.srv.roomJID(g.ID), "name", g.Name))
			}
			ss.send(iqResult(iq, res))
		case q.is(nsPing, "ping") && typ == "get":
			ss.send(iqResult(iq, nil))
		default:
			ss.send(iqError(iq, "cancel", "service-unavailable", ""))
		}
		return
	}
	if to.resource != "" && !(q.is(nsPing, "ping") && typ == "get") {
		ss.send(iqError(iq, "cancel", "service-unavailable", "occupants answer no queries here"))
		return
	}
	if !aoba.IsValidID(to.local) {
		ss.send(iqError(iq, "cancel", "item-not-found", "no such room"))
		return
	}
	switch {
	case q.is(nsDiscoInf, "query") && typ == "get":
		g, err := ss.srv.svc.GetGroup(ctx, ss.claims, to.local)
		if err != nil {
			ss.send(iqError(iq, "cancel", "item-not-found", "no such room"))
			return
		}
		res := el(nsDiscoInf, "query").add(el("", "identity", "category", "conference", "type", "text", "name", g.Name))
		addFeatures(res, RoomFeatures)
		ss.send(iqResult(iq, res))
	case q.is(nsDiscoIt, "query") && typ == "get":
		if _, err := ss.srv.svc.GetGroup(ctx, ss.claims, to.local); err != nil {
			ss.send(iqError(iq, "cancel", "item-not-found", "no such room"))
			return
		}
		ss.send(iqResult(iq, el(nsDiscoIt, "query")))
	case q.is(nsMAM, "query") && typ == "set":
		ss.archive(iq, q, to.local)
	case q.is(nsMAM, "query") && typ == "get":
		ss.send(iqResult(iq, mamForm()))
	case q.is(nsPing, "ping") && typ == "get":
		// XEP-0410 self-ping (to the room or the occupant JID): answered
		// while the session is in the room.
		ss.mu.Lock()
		_, in := ss.rooms[to.local]
		ss.mu.Unlock()
		if in {
			ss.send(iqResult(iq, nil))
		} else {
			ss.send(iqError(iq, "cancel", "not-acceptable", "not in the room"))
		}
	default:
		ss.send(iqError(iq, "cancel", "service-unavailable", ""))
	}
}

// roomMessage sends a groupchat message (or a chat state) to a room.
func (ss *session) roomMessage(m *Element, to address) {
	if to.local == "" || !aoba.IsValidID(to.local) {
		ss.send(bounce(m, "cancel", "item-not-found", "no such room"))
		return
	}
	if m.attr("type") != "groupchat" {
		ss.send(bounce(m, "modify", "not-acceptable", "private messages between occupants are not supported; message the user's JID"))
		return
	}
	if m.child(nsClient, "subject") != nil {
		ss.send(bounce(m, "auth", "forbidden", "rename the group to change the subject"))
		return
	}
	ctx, cancel := stanzaContext()
	defer cancel()
	if m.child(nsRetract, "retract") != nil {
		ss.send(bounce(m, "cancel", "feature-not-implemented", "delete the message through the Aoba API"))
		return
	}
	body, hasBody := bodyOf(m)
	if !hasBody {
		if state := chatState(m); state != "" {
			if err := ss.srv.svc.Typing(ctx, ss.claims, to.local, aoba.MessageGroupChat, state); err != nil && aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
				t, c, text := mucErrorOf(err)
				ss.send(bounce(m, t, c, text))
			}
		}
		return
	}
	if err := ss.spendMessage(); err != nil {
		t, c, text := errorOf(err)
		ss.send(bounce(m, t, c, text))
		return
	}
	// No connection is excepted: the room reflects the message to its
	// sender too, with the id the client gave it, as XEP-0045 7.4 asks.
	// The reflection carries the message's client id: when that is not the
	// stanza id (an origin-id, or an id derived from a stanza id that
	// cannot be a client id), the session remembers which stanza id to put
	// back.
	cid := clientID(m)
	echo := ""
	if id := m.attr("id"); cid != nil && *cid != id && id != "" {
		echo = *cid
		ss.expectEcho(echo, id)
	}
	in := aoba.SendInput{To: to.local, Content: body, Type: aoba.MessageGroupChat, ClientID: cid}
	if _, err := ss.srv.svc.SendMessage(ctx, ss.claims, in, ""); err != nil {
		if echo != "" {
			ss.echoID(echo)
		}
		t, c, text := mucErrorOf(err)
		ss.send(bounce(m, t, c, text))
	}
}

// maxEchoes bounds the stanza ids a session remembers for reflections it
// has not received yet (a send the store deduplicated is not reflected).
const maxEchoes = 64

// expectEcho remembers that the reflection of the groupchat message with
// client id cid gets the stanza id id.
func (ss *session) expectEcho(cid, id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.echoes == nil || len(ss.echoes) >= maxEchoes {
		ss.echoes = make(map[string]string)
	}
	ss.echoes[cid] = id
}

// echoID returns (and forgets) the stanza id the session's client gave
// the groupchat message with client id cid, or "" when it was cid itself.
func (ss *session) echoID(cid string) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	id, ok := ss.echoes[cid]
	if ok {
		delete(ss.echoes, cid)
	}
	return id
}

// mucErrorOf maps a Service error about a group to a stanza error: a
// group the user is not a member of is a members-only room they are not
// registered in.
func mucErrorOf(err error) (string, string, string) {
	switch aoba.ErrorCode(err) {
	case aoba.ENOTFOUND, aoba.EFORBIDDEN:
		return "auth", "registration-required", "members only: ask a group admin to add you"
	}
	return errorOf(err)
}

// affiliation returns the MUC affiliation and role of an Aoba role.
func affiliation(r aoba.Role) (string, string) {
	switch r {
	case aoba.RoleOwner:
		return "owner", "moderator"
	case aoba.RoleAdmin:
		return "admin", "moderator"
	}
	return "member", "participant"
}

// roomPresence joins (available presence with a nick) or leaves
// (unavailable) a room.
func (ss *session) roomPresence(p *Element, to address, typ string) {
	if to.local == "" || !aoba.IsValidID(to.local) {
		ss.send(bounce(p, "cancel", "item-not-found", "no such room"))
		return
	}
	gid := to.local
	room := ss.srv.roomJID(gid)
	me := ss.name()
	switch typ {
	case "unavailable":
		if aff, in := ss.leaveRoom(gid); in {
			x := el(nsMUCUser, "x").add(el("", "item", "affiliation", aff, "role", "none"), el("", "status", "code", "110"))
			ss.send(el(nsClient, "presence", "type", "unavailable", "from", room+"/"+me, "to", ss.full).add(x))
		}
		return
	case "":
	default:
		return // subscriptions to rooms mean nothing
	}
	if to.resource == "" {
		ss.send(bounce(p, "modify", "jid-malformed", "join with room@service/nick"))
		return
	}
	ctx, cancel := stanzaContext()
	defer cancel()
	g, err := ss.srv.svc.GetGroup(ctx, ss.claims, gid)
	var members []*aoba.Member
	if err == nil {
		members, err = ss.srv.svc.ListMembers(ctx, ss.claims, gid)
	}
	if err != nil {
		t, c, text := mucErrorOf(err)
		e := bounce(p, t, c, text)
		e.add(el(nsMUC, "x"))
		ss.send(e)
		return
	}
	myRole := aoba.RoleMember
	for _, m := range members {
		if strings.EqualFold(m.Username, me) {
			myRole = m.Role
		}
	}
	aff, role := affiliation(myRole)
	roster := make(map[string]roomMember, len(members))
	ids := make([]string, 0, len(members))
	for _, m := range members {
		if m.UserID != "" && m.UserID != ss.userID {
			roster[m.UserID] = roomMember{name: m.Username, role: m.Role}
			ids = append(ids, m.UserID)
		}
	}
	ss.mu.Lock()
	_, already := ss.rooms[gid]
	ss.rooms[gid] = aff
	ss.roomMembers[gid] = roster
	ss.mu.Unlock()
	// Occupants come and go with their presence: the session follows the
	// members' presence topics (up to its watch limit).
	ss.watch(ids)
	if !already {
		ss.srv.index(ss.srv.rooms, gid, aoba.GroupTopic(gid), ss)
	}
	for _, m := range members {
		if strings.EqualFold(m.Username, me) {
			continue
		}
		if m.Status == aoba.StatusOnline && !already {
			aff, role := affiliation(m.Role)
			item := el("", "item", "affiliation", aff, "role", role)
			if m.UserID != "" {
				item.setAttr("jid", ss.srv.userJID(m.UserID))
			}
			ss.send(el(nsClient, "presence", "from", room+"/"+m.Username, "to", ss.full).add(el(nsMUCUser, "x").add(item)))
		}
	}
	x := el(nsMUCUser, "x").add(el("", "item", "affiliation", aff, "role", role, "jid", ss.full), el("", "status", "code", "100"), el("", "status", "code", "110"))
	if to.resource != me {
		x.add(el("", "status", "code", "210"))
	}
	ss.send(el(nsClient, "presence", "from", room+"/"+me, "to", ss.full).add(x))
	if already {
		return
	}
	ss.roomHistory(p, gid)
	ss.send(el(nsClient, "message", "type", "groupchat", "from", room, "to", ss.full, "id", "subject-"+gid[:8]).add(el("", "subject").text(g.Name)))
}

// roomHistory sends the room's recent messages the join asks for
// (<history maxstanzas/seconds/since/>), oldest first, each with its
// original time.
func (ss *session) roomHistory(p *Element, gid string) {
	n := mucHistory
	var since time.Time
	if x := p.child(nsMUC, "x"); x != nil {
		if h := x.child(nsMUC, "history"); h != nil {
			if v, err := strconv.Atoi(h.attr("maxstanzas")); err == nil && v >= 0 {
				n = v
			}
			if v, err := strconv.Atoi(h.attr("seconds")); err == nil && v >= 0 {
				since = time.Now().Add(-time.Duration(v) * time.Second)
			}
			if t, err := time.Parse(time.RFC3339, h.attr("since")); err == nil {
				since = t
			}
		}
	}
	n = min(n, aoba.MaxPageSize)
	if n == 0 {
		return
	}
	ctx, cancel := stanzaContext()
	defer cancel()
	msgs, _, err := ss.srv.svc.History(ctx, ss.claims, aoba.HistoryQuery{With: gid, Limit: n})
	if err != nil {
		return
	}
	room := ss.srv.roomJID(gid)
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.Deleted || (!since.IsZero() && m.Timestamp.Before(since)) {
			continue
		}
		ss.send(el(nsClient, "message", "type", "groupchat", "id", orDefault(m.ClientID, m.ID), "from", room+"/"+m.From, "to", ss.full).add(
			el("", "body").text(m.Content),
			el(nsDelay, "delay", "stamp", m.Timestamp.UTC().Format(time.RFC3339Nano), "from", room),
			el(nsSID, "stanza-id", "id", m.ID, "by", room)))
	}
}

// roomFrame delivers a frame of a group's topic (its type and decoded
// data, see delivery.decoded) to the session, which joined the group's
// room.
func (ss *session) roomFrame(gid, typ string, payload any) {
	room := ss.srv.roomJID(gid)
	switch v := payload.(type) {
	case *aoba.MessageView:
		if typ == aoba.FrameMessage && v.Type == aoba.MessageGroupChat {
			id := orDefault(v.ClientID, v.ID)
			if v.FromID == ss.userID && v.ClientID != "" {
				id = orDefault(ss.echoID(v.ClientID), id)
			}
			ss.send(el(nsClient, "message", "type", "groupchat", "id", id, "from", room+"/"+v.From, "to", ss.full).add(
				el("", "body").text(v.Content),
				el(nsSID, "stanza-id", "id", v.ID, "by", room)))
		}
	case *aoba.TypingEvent:
		if v.Type == aoba.MessageGroupChat && !strings.EqualFold(v.From, ss.name()) {
			state := "paused"
			if v.State == aoba.TypingComposing {
				state = "composing"
			}
			ss.send(el(nsClient, "message", "type", "groupchat", "from", room+"/"+v.From, "to", ss.full).add(el(nsChatStat, state), el(nsHints, "no-store")))
		}
	}
}

// leftGroup handles the user's removal from a group (removed, left on
// another device, or the group deleted): the session leaves the room with
// status 321.
func (ss *session) leftGroup(gid string) {
	if _, in := ss.leaveRoom(gid); !in {
		return
	}
	x := el(nsMUCUser, "x").add(el("", "item", "affiliation", "none", "role", "none"), el("", "status", "code", "110"), el("", "status", "code", "321"))
	ss.send(el(nsClient, "presence", "type", "unavailable", "from", ss.srv.roomJID(gid)+"/"+ss.name(), "to", ss.full).add(x))
}

// roomMember is a member of a joined room, as the join listed them.
type roomMember struct {
	name string
	role aoba.Role
}

// occupantPresence sends a member's presence change as the presence of
// their occupant in the joined room gid: an Aoba member is in the room
// while online.
func (ss *session) occupantPresence(gid string, p *aoba.UserPresence) {
	ss.mu.Lock()
	m, ok := ss.roomMembers[gid][p.UserID]
	ss.mu.Unlock()
	if !ok {
		return
	}
	aff, role := affiliation(m.role)
	st := el(nsClient, "presence", "from", ss.srv.roomJID(gid)+"/"+m.name, "to", ss.full)
	if p.Status != aoba.StatusOnline {
		st.setAttr("type", "unavailable")
		role = "none"
	}
	st.add(el(nsMUCUser, "x").add(el("", "item", "affiliation", aff, "role", role, "jid", ss.srv.userJID(p.UserID))))
	ss.send(st)
}

// leaveRoom takes the session out of the room; it returns the user's
// affiliation there and whether the session was in.
func (ss *session) leaveRoom(gid string) (string, bool) {
	ss.mu.Lock()
	delete(ss.roomMembers, gid)
	aff, in := ss.rooms[gid]
	delete(ss.rooms, gid)
	ss.mu.Unlock()
	if in {
		ss.srv.unindex(ss.srv.rooms, gid, aoba.GroupTopic(gid), ss)
	}
	return aff, in
}

// leaveAllRooms leaves every room, when the session becomes unavailable.
func (ss *session) leaveAllRooms() {
	ss.mu.Lock()
	gids := make([]string, 0, len(ss.rooms))
	for g := range ss.rooms {
		gids = append(gids, g)
	}
	ss.mu.Unlock()
	for _, g := range gids {
		ss.leaveRoom(g)
	}
}
