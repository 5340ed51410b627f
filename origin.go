package aoba

import (
	"net/url"
	"strings"
)

// OriginPolicy is the one rule, used by the REST API and by the WebSocket
// upgrade alike, that decides whether a browser request comes from a page
// allowed to ride on the session cookie: a page of the server's own origin
// or of one of the configured allowed origins (AOBA_ALLOWED_ORIGINS). The
// zero value allows only the server's own origin.
type OriginPolicy struct {
	allowed map[string]bool
}

// NewOriginPolicy returns the policy allowing the server's own origin and
// the given ones ("https://app.example"; case and a trailing slash do not
// matter, blanks are skipped).
func NewOriginPolicy(allowed []string) OriginPolicy {
	p := OriginPolicy{allowed: make(map[string]bool, len(allowed))}
	for _, o := range allowed {
		if o = normalizeOrigin(o); o != "" {
			p.allowed[o] = true
		}
	}
	return p
}

// normalizeOrigin lowercases an origin and drops surrounding blanks and a
// trailing slash.
func normalizeOrigin(o string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(o), "/"))
}

// Foreign reports whether a request must be treated as coming from a page
// of another site, given its Origin and Sec-Fetch-Site headers (empty when
// absent) and its Host header. It is true when origin is present and is
// neither the server's own (scheme http or https, same host and port as
// host; a default port may be left out on either side) nor an allowed one,
// and when fetchSite is "cross-site" unless origin is one of the allowed
// origins (which may well be on another site: the operator listed it). A
// request with neither header (curl, mobile apps) is not foreign.
func (p OriginPolicy) Foreign(origin, fetchSite, host string) bool {
	o := normalizeOrigin(origin)
	if p.allowed[o] && o != "" {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(fetchSite), "cross-site") {
		return true
	}
	return o != "" && !sameOrigin(o, host)
}

// sameOrigin reports whether the normalized origin o names host: an http or
// https origin without path, user or query whose host and port equal host's.
func sameOrigin(o, host string) bool {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	h := strings.ToLower(strings.TrimSpace(host))
	if h == "" {
		return false
	}
	def := ":80"
	if u.Scheme == "https" {
		def = ":443"
	}
	return strings.TrimSuffix(u.Host, def) == strings.TrimSuffix(h, def)
}
