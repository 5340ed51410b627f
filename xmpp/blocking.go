package xmpp

import (
	"github.com/aoba-chat/aoba"
)

const nsBlocking = "urn:xmpp:blocking"

// blocking answers XEP-0191 blocking commands over Aoba blocks: the
// blocklist is the users the caller blocks; block and unblock are
// PUT and DELETE /api/users/me/blocks/{username}. Items must be bare JIDs of users of
// this server. The changes reach every session and device of the user
// through the `block` frames the Service publishes (pushes, see
// blockPush).
func (ss *session) blocking(iq, q *Element) {
	ctx, cancel := stanzaContext()
	defer cancel()
	typ := iq.attr("type")
	switch {
	case q.Name.Local == "blocklist" && typ == "get":
		users, err := ss.srv.svc.ListBlocks(ctx, ss.claims)
		if err != nil {
			t, c, text := errorOf(err)
			ss.send(iqError(iq, t, c, text))
			return
		}
		list := el(nsBlocking, "blocklist")
		for _, u := range users {
			list.add(el("", "item", "jid", ss.srv.userJID(u.ID)))
		}
		ss.send(iqResult(iq, list))
	case (q.Name.Local == "block" || q.Name.Local == "unblock") && typ == "set":
		var names []string
		for _, it := range q.elements() {
			if !it.is(nsBlocking, "item") {
				continue
			}
			to, ok := parseAddress(it.attr("jid"))
			if !ok || to.domain != ss.srv.domain || to.local == "" || to.resource != "" {
				ss.send(iqError(iq, "modify", "jid-malformed", "block items are bare JIDs of users of "+ss.srv.domain))
				return
			}
			_, name, err := ss.srv.svc.LookupUser(ctx, to.local)
			if err != nil {
				t, c, text := errorOf(err)
				ss.send(iqError(iq, t, c, text))
				return
			}
			names = append(names, name)
		}
		if len(names) == 0 {
			if q.Name.Local == "block" {
				ss.send(iqError(iq, "modify", "bad-request", "block at least one JID"))
				return
			}
			// An empty unblock unblocks everyone.
			users, err := ss.srv.svc.ListBlocks(ctx, ss.claims)
			if err != nil {
				t, c, text := errorOf(err)
				ss.send(iqError(iq, t, c, text))
				return
			}
			for _, u := range users {
				names = append(names, u.Username)
			}
		}
		for _, name := range names {
			var err error
			if q.Name.Local == "block" {
				err = ss.srv.svc.BlockUser(ctx, ss.claims, name)
			} else {
				err = ss.srv.svc.UnblockUser(ctx, ss.claims, name)
			}
			if err != nil && !(q.Name.Local == "unblock" && aoba.ErrorCode(err) == aoba.ENOTFOUND) {
				t, c, text := errorOf(err)
				ss.send(iqError(iq, t, c, text))
				return
			}
		}
		ss.send(iqResult(iq, nil))
	default:
		ss.send(iqError(iq, "modify", "bad-request", ""))
	}
}

// blockPush turns a `block` frame (the user blocked or unblocked someone,
// from any device) into a XEP-0191 push.
func (ss *session) blockPush(ev *aoba.BlockEvent) {
	name := "block"
	if ev.Event == aoba.BlockUnblocked {
		name = "unblock"
	}
	ss.send(el(nsClient, "iq", "type", "set", "id", "push-"+streamID()[:8], "to", ss.full).
		add(el(nsBlocking, name).add(el("", "item", "jid", ss.srv.userJID(ev.UserID)))))
}
