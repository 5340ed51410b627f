package xmpp

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aoba-chat/aoba"
)

// mamPage is the page size of a query without <max/>.
const mamPage = 50

// archive answers a XEP-0313 query (urn:xmpp:mam:2) over the user's
// archive (groupID empty: their 1:1 and group messages, or one 1:1
// conversation with the form's `with` field) or a room's (groupID). Paging
// is XEP-0059's with Aoba message ids as result ids: <after/> pages
// forward, <before/> backward (empty: the last page); without either the
// first page is the oldest. The form's start and end fields are honoured
// through the time order of Aoba ids (UUIDv7). Results are sent oldest
// first, then the <fin/> result.
func (ss *session) archive(iq, q *Element, groupID string) {
	queryID := q.attr("queryid")
	form := formValues(q.child(nsData, "x"))
	if ft, ok := form["FORM_TYPE"]; ok && ft != nsMAM {
		ss.send(iqError(iq, "modify", "bad-request", "FORM_TYPE must be "+nsMAM))
		return
	}
	ctx, cancel := stanzaContext()
	defer cancel()
	hq := aoba.HistoryQuery{Limit: mamPage, With: groupID}
	if w := form["with"]; w != "" && groupID == "" {
		to, ok := parseAddress(w)
		switch {
		case !ok:
			ss.send(iqError(iq, "modify", "jid-malformed", "with is not a JID"))
			return
		case to.domain == ss.srv.muc:
			hq.With = to.local
		case to.domain == ss.srv.domain && to.local != "":
			_, name, err := ss.srv.svc.LookupUser(ctx, to.local)
			if err != nil {
				t, c, text := errorOf(err)
				ss.send(iqError(iq, t, c, text))
				return
			}
			hq.With = name
		default:
			ss.send(iqError(iq, "cancel", "item-not-found", "no archive with "+w))
			return
		}
	}
	var end time.Time
	if v := form["end"]; v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			ss.send(iqError(iq, "modify", "bad-request", "end must be an XEP-0082 date-time"))
			return
		}
		end = t
	}
	backward := false
	set := q.child(nsRSM, "set")
	if set != nil {
		if m := set.childText(nsRSM, "max"); m != "" {
			n, err := strconv.Atoi(m)
			if err != nil || n < 0 {
				ss.send(iqError(iq, "modify", "bad-request", "max must be a number"))
				return
			}
			hq.Limit = min(max(n, 1), aoba.MaxPageSize-1)
		}
		if a := set.child(nsRSM, "after"); a != nil {
			hq.After = a.textContent()
		}
		if b := set.child(nsRSM, "before"); b != nil {
			backward = true
			hq.Before = b.textContent()
		}
	}
	if v := form["start"]; v != "" && hq.After == "" && !backward {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			ss.send(iqError(iq, "modify", "bad-request", "start must be an XEP-0082 date-time"))
			return
		}
		hq.After = idBefore(t)
	}
	if !backward && hq.After == "" {
		hq.After = "00000000-0000-0000-0000-000000000000" // the beginning
	}
	if backward && hq.Before == "" && !end.IsZero() {
		hq.Before = idAfter(end)
	}
	want := hq.Limit
	hq.Limit = want + 1 // one more tells whether the page is the last
	msgs, total, err := ss.srv.svc.History(ctx, ss.claims, hq)
	if err != nil {
		if aoba.ErrorCode(err) == aoba.EINVALID {
			ss.send(iqError(iq, "cancel", "item-not-found", "unknown result id"))
			return
		}
		t, c, text := errorOf(err)
		ss.send(iqError(iq, t, c, text))
		return
	}
	complete := len(msgs) <= want
	if !complete {
		msgs = msgs[:want]
	}
	if backward {
		for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
			msgs[i], msgs[j] = msgs[j], msgs[i]
		}
	}
	if !end.IsZero() && !backward {
		for i, m := range msgs {
			if m.Timestamp.After(end) {
				msgs, complete = msgs[:i], true
				break
			}
		}
	}
	// Results come from the archive: the room for a room's archive (XEP-0313
	// 4.2; clients drop results from another address), none (the user's
	// account) for the user's.
	from := ""
	if groupID != "" {
		from = ss.srv.roomJID(groupID)
	}
	for _, m := range msgs {
		ss.send(el(nsClient, "message", "from", from, "to", ss.full).add(
			el(nsMAM, "result", "queryid", queryID, "id", m.ID).add(
				el(nsForward, "forwarded").add(
					el(nsDelay, "delay", "stamp", m.Timestamp.UTC().Format(time.RFC3339Nano)),
					ss.archivedMessage(m)))))
	}
	fin := el(nsMAM, "fin", "complete", strconv.FormatBool(complete))
	rsm := el(nsRSM, "set")
	if len(msgs) > 0 {
		rsm.add(el("", "first").text(msgs[0].ID), el("", "last").text(msgs[len(msgs)-1].ID))
	}
	rsm.add(el("", "count").text(strconv.Itoa(total)))
	ss.send(iqResult(iq, fin.add(rsm)))
}

// archivedMessage returns the stanza of an archived message as it was
// sent: a chat message between two users, or a room's groupchat message
// from the sender's nick.
func (ss *session) archivedMessage(m *aoba.MessageView) *Element {
	var st *Element
	if m.Type == aoba.MessageGroupChat {
		st = el(nsClient, "message", "type", "groupchat", "id", orDefault(m.ClientID, m.ID),
			"from", ss.srv.roomJID(m.ToID)+"/"+m.From)
	} else {
		st = el(nsClient, "message", "type", "chat", "id", orDefault(m.ClientID, m.ID),
			"from", ss.srv.userJID(m.FromID), "to", ss.srv.userJID(m.ToID))
	}
	body := m.Content
	if m.Deleted {
		body = ""
	}
	return st.add(el("", "body").text(body))
}

// idBefore returns the smallest UUIDv7-ordered id below every id made at
// or after t: a cursor for "after" that starts at t.
func idBefore(t time.Time) string {
	ms := t.UnixMilli() - 1
	return fmt.Sprintf("%08x-%04x-7fff-bfff-ffffffffffff", uint64(ms)>>16, uint64(ms)&0xffff)
}

// idAfter returns an id above every id made at or before t: a cursor for
// "before" that ends at t.
func idAfter(t time.Time) string {
	ms := t.UnixMilli() + 1
	return fmt.Sprintf("%08x-%04x-7000-8000-000000000000", uint64(ms)>>16, uint64(ms)&0xffff)
}

// formValues returns the fields of a submitted data form (XEP-0004) by
// var, each field's first value.
func formValues(x *Element) map[string]string {
	out := map[string]string{}
	if x == nil {
		return out
	}
	for _, f := range x.elements() {
		if f.Name.Local == "field" {
			out[f.attr("var")] = f.childText("*", "value")
		}
	}
	return out
}

// mamForm returns the query form a client asks for with a MAM get.
func mamForm() *Element {
	return el(nsMAM, "query").add(el(nsData, "x", "type", "form").add(
		el("", "field", "var", "FORM_TYPE", "type", "hidden").add(el("", "value").text(nsMAM)),
		el("", "field", "var", "with", "type", "jid-single"),
		el("", "field", "var", "start", "type", "text-single"),
		el("", "field", "var", "end", "type", "text-single"),
	))
}
