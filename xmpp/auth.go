package xmpp

import (
	"bytes"
	"encoding/base64"
	"strings"

	"github.com/aoba-chat/aoba"
)

// SASL mechanisms offered: PLAIN (RFC 4616) checks the account's password
// like POST /api/auth/login and only after TLS (or over WebSocket, whose
// TLS is the HTTP server's or its proxy's); OAUTHBEARER (RFC 7628) and
// X-OAUTH2 (a PLAIN-shaped payload whose password is the token) take an
// Aoba session token, so that an app need not keep the password.
const (
	mechPlain       = "PLAIN"
	mechOAuthBearer = "OAUTHBEARER"
	mechXOAuth2     = "X-OAUTH2"
)

// saslFailure is a SASL failure condition (RFC 6120 6.5) with a text.
type saslFailure struct{ condition, text string }

func (f *saslFailure) Error() string { return f.condition + ": " + f.text }

// authenticate runs SASL until success, giving a stream maxAuthAttempts
// failed exchanges.
func (ss *session) authenticate() error {
	for {
		e, err := ss.t.next(ss.srv.cfg.IdleTimeout)
		if err != nil {
			return err
		}
		if !e.is(nsSASL, "auth") {
			if e.is(nsSASL, "abort") {
				if err := ss.t.write(el(nsSASL, "failure").add(el("", "aborted"))); err != nil {
					return err
				}
				continue
			}
			return errStream("not-authorized", "authenticate first")
		}
		f := ss.exchange(e)
		if f == nil {
			ss.srv.metrics.logins.WithLabelValues("ok").Inc()
			return ss.t.write(el(nsSASL, "success"))
		}
		ss.srv.metrics.logins.WithLabelValues(f.condition).Inc()
		failure := el(nsSASL, "failure").add(el("", f.condition))
		if f.text != "" {
			failure.add(el("", "text").text(f.text))
		}
		if err := ss.t.write(failure); err != nil {
			return err
		}
		if ss.authAttem++; ss.authAttem >= maxAuthAttempts {
			return errStream("policy-violation", "too many failed authentication attempts")
		}
	}
}

// exchange runs one SASL exchange that starts with auth; nil is success.
func (ss *session) exchange(auth *Element) *saslFailure {
	mech := auth.attr("mechanism")
	payload, f := ss.initialResponse(auth)
	if f != nil {
		return f
	}
	ctx, cancel := stanzaContext()
	defer cancel()
	if ss.srv.cfg.Limiter != nil {
		if _, err := aoba.Limit(ctx, ss.srv.cfg.Limiter, aoba.IPRateKey(aoba.ClassStandard, ss.ip), ss.srv.cfg.Rates.Standard); err != nil {
			return failureOf(err)
		}
	}
	switch mech {
	case mechPlain:
		if !ss.t.secure() {
			return &saslFailure{"encryption-required", "PLAIN needs TLS"}
		}
		authz, user, pass, ok := splitPlain(payload)
		if !ok || user == "" || pass == "" {
			return &saslFailure{"malformed-request", "PLAIN wants authzid NUL authcid NUL password"}
		}
		name, f := ss.saslUser(user)
		if f != nil {
			return f
		}
		if authz != "" {
			if az, f := ss.saslUser(authz); f != nil || !strings.EqualFold(az, name) {
				return &saslFailure{"invalid-authzid", "authorization identity must be the user"}
			}
		}
		_, claims, u, err := ss.srv.svc.Login(ctx, name, pass, aoba.Device{UserAgent: "XMPP client", IP: ss.ip})
		if err != nil {
			return failureOf(err)
		}
		ss.claims, ss.userID, ss.username, ss.ownAoba = claims, u.ID, u.Username, true
		return nil
	case mechOAuthBearer, mechXOAuth2:
		var token, user string
		if mech == mechXOAuth2 {
			var ok bool
			if _, user, token, ok = splitPlain(payload); !ok || token == "" {
				return &saslFailure{"malformed-request", "X-OAUTH2 wants NUL user NUL token"}
			}
		} else {
			var ok bool
			if user, token, ok = parseOAuthBearer(payload); !ok {
				return &saslFailure{"malformed-request", "OAUTHBEARER wants n,a=user,^Aauth=Bearer <token>^A^A"}
			}
		}
		claims, err := ss.srv.svc.Authenticate(ctx, token)
		if err != nil {
			return failureOf(err)
		}
		me, err := ss.srv.svc.Me(ctx, claims)
		if err != nil {
			return failureOf(err)
		}
		if user != "" {
			if name, f := ss.saslUser(user); f != nil || !strings.EqualFold(name, me.Username) {
				return &saslFailure{"invalid-authzid", "the token belongs to another user"}
			}
		}
		ss.claims, ss.userID, ss.username = claims, me.ID, me.Username
		return nil
	}
	return &saslFailure{"invalid-mechanism", "offered: PLAIN, OAUTHBEARER, X-OAUTH2"}
}

// initialResponse returns the exchange's client payload: the auth
// element's initial response, or, when it has none, the response to an
// empty challenge.
func (ss *session) initialResponse(auth *Element) ([]byte, *saslFailure) {
	text := strings.TrimSpace(auth.textContent())
	if text == "" {
		if err := ss.t.write(el(nsSASL, "challenge")); err != nil {
			return nil, &saslFailure{"aborted", ""}
		}
		e, err := ss.t.next(ss.srv.cfg.IdleTimeout)
		if err != nil || !e.is(nsSASL, "response") {
			return nil, &saslFailure{"aborted", "expected a response"}
		}
		text = strings.TrimSpace(e.textContent())
	}
	if text == "=" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, &saslFailure{"incorrect-encoding", "payload is not base64"}
	}
	return b, nil
}

// saslUser returns the username that a SASL identity names: a username,
// a user id, or either as a bare JID of this domain.
func (ss *session) saslUser(id string) (string, *saslFailure) {
	if at := strings.LastIndexByte(id, '@'); at >= 0 {
		if !strings.EqualFold(id[at+1:], ss.srv.domain) {
			return "", &saslFailure{"not-authorized", "unknown domain"}
		}
		id = id[:at]
	}
	if aoba.IsValidID(id) {
		ctx, cancel := stanzaContext()
		defer cancel()
		_, name, err := ss.srv.svc.LookupUser(ctx, id)
		if err != nil {
			// The same answer as a wrong password.
			return id, nil
		}
		return name, nil
	}
	return id, nil
}

// splitPlain splits a PLAIN payload into authzid, authcid and password.
func splitPlain(b []byte) (string, string, string, bool) {
	parts := bytes.Split(b, []byte{0})
	if len(parts) != 3 {
		return "", "", "", false
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), true
}

// parseOAuthBearer parses an OAUTHBEARER initial response (RFC 7628 3.1):
// a GS2 header "n,a=<authzid>," or "n,,", then ^A-separated key=value
// pairs, one of them auth=Bearer <token>.
func parseOAuthBearer(b []byte) (user, token string, ok bool) {
	s := string(b)
	comma := strings.IndexByte(s, ',')
	if comma < 0 || (s[:comma] != "n" && s[:comma] != "y") {
		return "", "", false
	}
	rest := s[comma+1:]
	comma = strings.IndexByte(rest, ',')
	if comma < 0 {
		return "", "", false
	}
	if a := rest[:comma]; strings.HasPrefix(a, "a=") {
		user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(a[2:])
	} else if a != "" {
		return "", "", false
	}
	for _, kv := range strings.Split(rest[comma+1:], "\x01") {
		if v, found := strings.CutPrefix(kv, "auth="); found {
			scheme, tok, _ := strings.Cut(v, " ")
			if !strings.EqualFold(scheme, "Bearer") || tok == "" {
				return "", "", false
			}
			token = tok
		}
	}
	return user, token, token != ""
}

// failureOf maps a Service error to a SASL failure.
func failureOf(err error) *saslFailure {
	switch aoba.ErrorCode(err) {
	case aoba.ERATELIMIT, aoba.EUNAVAILABLE:
		return &saslFailure{"temporary-auth-failure", aoba.ErrorMessage(err)}
	case aoba.EFORBIDDEN:
		return &saslFailure{"account-disabled", aoba.ErrorMessage(err)}
	case aoba.EUNAUTHORIZED, aoba.ENOTFOUND, aoba.EINVALID:
		return &saslFailure{"not-authorized", "wrong username, password or token"}
	}
	return &saslFailure{"temporary-auth-failure", "try again later"}
}
