package xmpp

import (
	"github.com/aoba-chat/aoba"
)

// roster answers a roster get (RFC 6121 2.1.3) or set (2.1.5). Every item
// has subscription both: Aoba presence is visible to every user who may
// see the user.
func (ss *session) roster(iq, q *Element) {
	ctx, cancel := stanzaContext()
	defer cancel()
	if iq.attr("type") == "get" {
		items, err := ss.srv.svc.Roster(ctx, ss.claims)
		if err != nil {
			t, c, text := errorOf(err)
			ss.send(iqError(iq, t, c, text))
			return
		}
		ss.send(iqResult(iq, ss.rosterQuery(items)))
		return
	}
	list := q.elements()
	if len(list) != 1 || !list[0].is(nsRoster, "item") {
		ss.send(iqError(iq, "modify", "bad-request", "a roster set has exactly one item"))
		return
	}
	item := list[0]
	to, ok := parseAddress(item.attr("jid"))
	if !ok || to.domain != ss.srv.domain || to.local == "" || to.resource != "" {
		ss.send(iqError(iq, "modify", "jid-malformed", "a roster item is a bare JID of a user of "+ss.srv.domain))
		return
	}
	id, _, err := ss.srv.svc.LookupUser(ctx, to.local)
	var pushed *Element
	if err == nil {
		if item.attr("subscription") == "remove" {
			err = ss.srv.svc.RemoveRosterItem(ctx, ss.claims, id)
			pushed = el("", "item", "jid", ss.srv.userJID(id), "subscription", "remove")
			if err == nil {
				// A conversation partner stays on the roster: the push
				// says so, under the username, as a roster get would.
				items, rerr := ss.srv.svc.Roster(ctx, ss.claims)
				for _, it := range items {
					if rerr == nil && it.UserID == id {
						pushed = rosterItem(ss.srv, it)
					}
				}
			}
		} else {
			var entry *aoba.RosterEntry
			if entry, err = ss.srv.svc.AddRosterItem(ctx, ss.claims, id, item.attr("name")); err == nil {
				pushed = rosterItem(ss.srv, entry)
			}
		}
	}
	if err != nil {
		t, c, text := errorOf(err)
		ss.send(iqError(iq, t, c, text))
		return
	}
	ss.send(iqResult(iq, nil))
	ss.pushRoster(pushed)
	if item.attr("subscription") != "remove" {
		ss.mu.Lock()
		ss.rosterWatch[id] = true
		ss.mu.Unlock()
		ss.watch([]string{id})
	}
}

// rosterQuery returns the roster as a query element.
func (ss *session) rosterQuery(items []*aoba.RosterEntry) *Element {
	q := el(nsRoster, "query")
	for _, it := range items {
		q.add(rosterItem(ss.srv, it))
	}
	return q
}

// rosterItem returns the item element of a roster entry.
func rosterItem(s *Server, it *aoba.RosterEntry) *Element {
	return el("", "item", "jid", s.userJID(it.UserID), "name", orDefault(it.Name, it.Username), "subscription", "both")
}

// pushRoster sends a roster push of one changed item (RFC 6121 2.1.6) to
// the user's sessions on this pod. Sessions on other pods see the change
// at their next roster get.
func (ss *session) pushRoster(item *Element) {
	for _, other := range ss.srv.localSessions(ss.userID) {
		other.send(el(nsClient, "iq", "type", "set", "id", "push-"+streamID()[:8], "to", other.full).add(el(nsRoster, "query").add(item)))
	}
}
