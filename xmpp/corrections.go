package xmpp

import (
	"github.com/aoba-chat/aoba"
)

// Namespaces of message corrections and retractions.
const (
	nsCorrect  = "urn:xmpp:message-correct:0"
	nsRetract  = "urn:xmpp:message-retract:1"
	nsFallback = "urn:xmpp:fallback:0"
)

// retractFallback is the body a client without XEP-0424 shows for a
// retraction.
const retractFallback = "This message was deleted."

// messageChange relays an edit (XEP-0308 Last Message Correction) or a
// deletion (XEP-0424 Message Retraction) made through the REST API or the
// JSON socket: the correction or retraction names the message by the id
// its stanza carried (the client id, else the Aoba id). A room's change
// reaches the sessions in the room; a 1:1 change the peer's sessions (the
// sender's own devices see their edit in the archive).
func (ss *session) messageChange(m *aoba.MessageView, deleted bool) {
	var st *Element
	if m.Type == aoba.MessageGroupChat {
		ss.mu.Lock()
		_, in := ss.rooms[m.ToID]
		ss.mu.Unlock()
		if !in {
			return
		}
		st = el(nsClient, "message", "type", "groupchat", "id", "change-"+streamID()[:12],
			"from", ss.srv.roomJID(m.ToID)+"/"+m.From, "to", ss.full)
	} else {
		if m.FromID == ss.userID {
			return
		}
		st = el(nsClient, "message", "type", "chat", "id", "change-"+streamID()[:12],
			"from", ss.srv.userJID(m.FromID), "to", ss.full)
	}
	orig := orDefault(m.ClientID, m.ID)
	if deleted {
		retractID := orig
		if m.Type == aoba.MessageGroupChat {
			retractID = m.ID // in rooms, the stanza-id the room gave it
		}
		st.add(el(nsRetract, "retract", "id", retractID),
			el(nsFallback, "fallback", "for", nsRetract),
			el("", "body").text(retractFallback),
			el(nsHints, "store"))
	} else {
		st.add(el("", "body").text(m.Content), el(nsCorrect, "replace", "id", orig))
	}
	ss.send(st)
}
