package api_test

import (
	"net/netip"
	"testing"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/api"
)

func TestParseProxies(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		p, err := api.ParseProxies([]string{"10.0.0.1", " 172.28.0.0/16 ", "2001:db8::/32", "::ffff:192.0.2.0/120"})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"10.0.0.1", "172.28.5.6", "2001:db8::7", "192.0.2.9", "::ffff:10.0.0.1"} {
			if !p.Trusts(netip.MustParseAddr(a)) {
				t.Errorf("%s not trusted", a)
			}
		}
		for _, a := range []string{"10.0.0.2", "172.29.0.1", "2001:db9::1", "192.0.3.1"} {
			if p.Trusts(netip.MustParseAddr(a)) {
				t.Errorf("%s trusted", a)
			}
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, e := range []string{"", "nginx", "10.0.0.1/33", "10.0.0", "10.0.0.1:80", "fe80::1%eth0", "*"} {
			if _, err := api.ParseProxies([]string{e}); err == nil {
				t.Errorf("%q accepted", e)
			}
		}
	})
	t.Run("Zero", func(t *testing.T) {
		var p api.Proxies
		if p.Trusts(netip.MustParseAddr("127.0.0.1")) {
			t.Fatal("the zero Proxies trusts an address")
		}
	})
}

func TestClientIP(t *testing.T) {
	p, err := api.ParseProxies([]string{"127.0.0.1", "10.0.0.0/8", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"UntrustedPeerIgnoresHeader", "198.51.100.7", []string{"203.0.113.1"}, "198.51.100.7"},
		{"TrustedPeerWithoutHeader", "127.0.0.1", nil, "127.0.0.1"},
		{"RightMost", "127.0.0.1", []string{"203.0.113.1"}, "203.0.113.1"},
		{"SpoofedLeftIgnored", "127.0.0.1", []string{"1.2.3.4, 203.0.113.1"}, "203.0.113.1"},
		{"TrustedHopsSkipped", "127.0.0.1", []string{"1.2.3.4, 203.0.113.1, 10.1.2.3, 10.0.0.9"}, "203.0.113.1"},
		{"Spaces", "127.0.0.1", []string{"  1.2.3.4 ,203.0.113.1  ,  10.0.0.9 "}, "203.0.113.1"},
		{"EmptyEntriesSkipped", "127.0.0.1", []string{"203.0.113.1,, ,"}, "203.0.113.1"},
		{"SeveralHeaders", "127.0.0.1", []string{"1.2.3.4", "203.0.113.1, 10.0.0.9"}, "203.0.113.1"},
		{"LastHeaderWins", "127.0.0.1", []string{"10.0.0.9", "203.0.113.1"}, "203.0.113.1"},
		{"IPv6", "127.0.0.1", []string{"2001:db8::1, fd00::2"}, "2001:db8::1"},
		{"IPv6Brackets", "127.0.0.1", []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"IPv6BracketsPort", "127.0.0.1", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"IPv4Port", "127.0.0.1", []string{"203.0.113.1:5000"}, "203.0.113.1"},
		{"IPv4Mapped", "::ffff:127.0.0.1", []string{"::ffff:203.0.113.1"}, "203.0.113.1"},
		{"IPv6Peer", "fd00::1", []string{"203.0.113.1"}, "203.0.113.1"},
		{"JunkLeftOfClientIgnored", "127.0.0.1", []string{"<script>, 203.0.113.1"}, "203.0.113.1"},
		{"JunkRightMostMeansPeer", "127.0.0.1", []string{"203.0.113.1, unknown"}, "127.0.0.1"},
		{"JunkAfterTrustedHop", "127.0.0.1", []string{"203.0.113.1, junk, 10.0.0.9"}, "10.0.0.9"},
		{"AllTrustedLeftMost", "127.0.0.1", []string{"10.0.0.5, 10.0.0.9"}, "10.0.0.5"},
		{"ZoneDropped", "127.0.0.1", []string{"fe80::1%eth0"}, "fe80::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := p.ClientIP(netip.MustParseAddr(tc.peer), tc.xff)
			if got.String() != tc.want {
				t.Fatalf("ClientIP(%s, %q) = %s, want %s", tc.peer, tc.xff, got, tc.want)
			}
		})
	}
}

func TestNewRefusesBadProxy(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted a trusted proxy that is not an address")
		}
	}()
	api.New(api.Config{Service: aoba.NewService(aoba.ServiceConfig{}), Limiter: limiterFunc(nil), TrustedProxies: []string{"lb"}})
}
