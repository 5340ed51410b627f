package xmpp

// Features advertised by service discovery (XEP-0030): exactly what is
// implemented. README's XEP table lists the same, and a test holds them
// together.
var (
	// ServerFeatures are the features of the server's domain.
	ServerFeatures = []string{nsDiscoInf, nsDiscoIt, nsPing, nsCarbons, nsBlocking}
	// AccountFeatures are the features of a user's own bare JID.
	AccountFeatures = []string{nsDiscoInf, nsMAM, nsSID}
	// ConferenceFeatures are the features of the conference service.
	ConferenceFeatures = []string{nsDiscoInf, nsDiscoIt, nsMUC}
	// RoomFeatures are the features of a room.
	RoomFeatures = []string{nsDiscoInf, nsMUC, "muc_membersonly", "muc_persistent", "muc_nonanonymous", "muc_hidden", nsMAM, nsSID}
)

// discoInfo answers a disco#info query to the server or an account.
func (ss *session) discoInfo(iq, q *Element, to address) {
	res := el(nsDiscoInf, "query", "node", q.attr("node"))
	switch {
	case to.local == "":
		res.add(el("", "identity", "category", "server", "type", "im", "name", "Aoba"))
		addFeatures(res, ServerFeatures)
	case to.local == ss.userID && to.resource == "":
		res.add(el("", "identity", "category", "account", "type", "registered"))
		addFeatures(res, AccountFeatures)
	default:
		ss.send(iqError(iq, "cancel", "service-unavailable", ""))
		return
	}
	ss.send(iqResult(iq, res))
}

// discoItems answers a disco#items query: the server lists its
// conference service.
func (ss *session) discoItems(iq, q *Element, to address) {
	res := el(nsDiscoIt, "query", "node", q.attr("node"))
	if to.local == "" {
		res.add(el("", "item", "jid", ss.srv.muc, "name", "Groups"))
	}
	ss.send(iqResult(iq, res))
}

func addFeatures(q *Element, features []string) {
	for _, f := range features {
		q.add(el("", "feature", "var", f))
	}
}
