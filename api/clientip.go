package api

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/aoba-chat/aoba"
)

// ClientIPKey is the c.Locals key under which a request holds its client
// address (a string), as derived by the Server from the peer address and a
// trusted proxy's X-Forwarded-For. Handlers mounted on the Server (the
// WebSocket handler) read it there instead of deriving it again.
const ClientIPKey = aoba.ClientIPLocal

// Proxies is a set of trusted proxies: addresses and networks whose
// X-Forwarded-For and X-Forwarded-Proto headers are believed. The zero
// value trusts no one.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseProxies parses proxy entries, each an IP address ("10.0.0.1",
// "::1") or a CIDR network ("172.28.0.0/16"). It returns an error naming
// the first entry that is neither.
func ParseProxies(entries []string) (Proxies, error) {
	var p Proxies
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if strings.Contains(e, "/") {
			pre, err := netip.ParsePrefix(e)
			if err != nil || pre.Addr().Zone() != "" {
				return Proxies{}, fmt.Errorf("%q is not an IP address or CIDR network", e)
			}
			p.prefixes = append(p.prefixes, unmapPrefix(pre).Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil || a.Zone() != "" {
			return Proxies{}, fmt.Errorf("%q is not an IP address or CIDR network", e)
		}
		a = a.Unmap()
		p.prefixes = append(p.prefixes, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// unmapPrefix turns an IPv4-mapped IPv6 network (::ffff:10.0.0.0/104) into
// its IPv4 form, so that it matches the unmapped addresses it is compared
// with.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			bits = 0
		}
		return netip.PrefixFrom(a.Unmap(), bits)
	}
	return p
}

// Trusts reports whether a is one of the trusted proxies.
func (p Proxies) Trusts(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, pre := range p.prefixes {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client's address of a request that arrived from peer
// with the given X-Forwarded-For header values (in the order received).
//
// The rule: when peer is not a trusted proxy, it is the client and the
// headers are ignored. Otherwise the X-Forwarded-For addresses are walked
// from the right (the hop nearest to us, appended by the trusted peer) to
// the left, and the first address that is not a trusted proxy is the
// client: everything left of it was written by the client itself and can be
// forged. If every address is trusted, the left-most of them is the client
// (a request from inside the trusted network). An entry that is not an
// address ends the walk the same way: the client is then the last address
// walked, or the peer when there is none. Entries may carry spaces, IPv6
// brackets and a port ("[2001:db8::1]:443", "192.0.2.1:5000"); empty
// entries are skipped.
func (p Proxies) ClientIP(peer netip.Addr, xff []string) netip.Addr {
	client := peer.Unmap().WithZone("")
	if !p.Trusts(client) {
		return client
	}
	for i := len(xff) - 1; i >= 0; i-- {
		entries := strings.Split(xff[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			e := strings.TrimSpace(entries[j])
			if e == "" {
				continue
			}
			a, ok := parseForwarded(e)
			if !ok {
				return client
			}
			client = a
			if !p.Trusts(a) {
				return a
			}
		}
	}
	return client
}

// parseForwarded parses one X-Forwarded-For entry: an address, optionally
// in brackets or with a port.
func parseForwarded(e string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(e); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(e); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]") {
		if a, err := netip.ParseAddr(e[1 : len(e)-1]); err == nil {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// peerAddr returns the address of the connection's other end.
func peerAddr(c *fiber.Ctx) netip.Addr {
	a, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	return a.Unmap()
}

// clientIP returns the request's client address by the rule of
// Proxies.ClientIP, computed once per request and kept in c.Locals under
// ClientIPKey. It is the key of per-IP rate limits and the ip of request
// logs.
func (s *Server) clientIP(c *fiber.Ctx) string {
	if ip, ok := c.Locals(ClientIPKey).(string); ok {
		return ip
	}
	var xff []string
	for _, v := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		xff = append(xff, string(v))
	}
	ip := s.proxies.ClientIP(peerAddr(c), xff).String()
	c.Locals(ClientIPKey, ip)
	return ip
}

// viaHTTPS reports whether the client reached us over HTTPS: this
// connection is TLS, or a trusted proxy (the peer) says so with
// X-Forwarded-Proto. An untrusted peer's X-Forwarded-Proto is ignored. With
// several comma-separated values, the left-most (the client's hop) counts.
func (s *Server) viaHTTPS(c *fiber.Ctx) bool {
	if c.Context().IsTLS() {
		return true
	}
	if !s.proxies.Trusts(peerAddr(c)) {
		return false
	}
	proto, _, _ := strings.Cut(c.Get(fiber.HeaderXForwardedProto), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}
