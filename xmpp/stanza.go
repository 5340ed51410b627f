package xmpp

import (
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/aoba-chat/aoba"
)

// iqResult returns the result to iq with payload (nil: empty).
func iqResult(iq *Element, payload *Element) *Element {
	r := el(nsClient, "iq", "type", "result", "id", iq.attr("id"), "to", iq.attr("from"), "from", iq.attr("to"))
	return r.add(payload)
}

// stanzaErr returns the error element of a stanza error (RFC 6120 8.3).
func stanzaErr(typ, condition, text string) *Element {
	e := el(nsClient, "error", "type", typ).add(el(nsStanzas, condition))
	if text != "" {
		e.add(el(nsStanzas, "text").text(text))
	}
	return e
}

// iqError returns the error answer to iq.
func iqError(iq *Element, typ, condition, text string) *Element {
	return bounce(iq, typ, condition, text)
}

// bounce returns the error answer to a stanza (message, presence or iq):
// the stanza's name and id, the addresses swapped.
func bounce(st *Element, typ, condition, text string) *Element {
	r := el(nsClient, st.Name.Local, "type", "error", "id", st.attr("id"), "to", st.attr("from"), "from", st.attr("to"))
	return r.add(stanzaErr(typ, condition, text))
}

// errorOf maps a Service error to a stanza error's type, condition and
// text.
func errorOf(err error) (string, string, string) {
	msg := aoba.ErrorMessage(err)
	switch aoba.ErrorCode(err) {
	case aoba.EINVALID:
		return "modify", "bad-request", msg
	case aoba.ETOOLARGE:
		return "modify", "policy-violation", msg
	case aoba.EUNAUTHORIZED:
		return "auth", "not-authorized", msg
	case aoba.EFORBIDDEN:
		return "auth", "forbidden", msg
	case aoba.ENOTFOUND:
		return "cancel", "item-not-found", msg
	case aoba.ECONFLICT:
		return "cancel", "conflict", msg
	case aoba.ERATELIMIT:
		return "wait", "resource-constraint", msg
	case aoba.EUNAVAILABLE:
		return "wait", "service-unavailable", msg
	}
	return "wait", "internal-server-error", ""
}

// address is a parsed JID that names something on this server.
type address struct {
	local, domain, resource string
}

// parseAddress parses and normalizes s (RFC 7622).
func parseAddress(s string) (address, bool) {
	j, err := jid.Parse(s)
	if err != nil {
		return address{}, false
	}
	return address{local: j.Localpart(), domain: strings.ToLower(j.Domainpart()), resource: j.Resourcepart()}, true
}

// userJID returns the bare JID of the user id.
func (s *Server) userJID(id string) string { return id + "@" + s.domain }

// roomJID returns the bare JID of the group id's room.
func (s *Server) roomJID(groupID string) string { return groupID + "@" + s.muc }
