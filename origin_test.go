package aoba_test

import (
	"testing"

	"github.com/aoba-chat/aoba"
)

func TestOriginPolicy(t *testing.T) {
	p := aoba.NewOriginPolicy([]string{" https://App.example/ ", ""})
	for _, tc := range []struct {
		name, origin, site, host string
		foreign                  bool
	}{
		{"NoHeaders", "", "", "chat.example", false},
		{"SameOriginHTTP", "http://chat.example:8080", "same-origin", "chat.example:8080", false},
		{"SameOriginHTTPS", "https://Chat.Example", "", "chat.example", false},
		{"DefaultPortOnHost", "https://chat.example", "", "chat.example:443", false},
		{"Allowed", "https://app.example", "", "chat.example", false},
		{"AllowedCrossSite", "https://app.example", "cross-site", "chat.example", false},
		{"OtherHost", "https://evil.example", "", "chat.example", true},
		{"OtherPort", "http://chat.example:9090", "", "chat.example:8080", true},
		{"OtherScheme", "ftp://chat.example", "", "chat.example", true},
		{"Null", "null", "", "chat.example", true},
		{"WithPath", "https://chat.example/x", "", "chat.example", true},
		{"CrossSiteNoOrigin", "", "cross-site", "chat.example", true},
		{"CrossSiteSameHost", "https://chat.example", "cross-site", "chat.example", true},
		{"SameSiteNoOrigin", "", "same-site", "chat.example", false},
		{"NoHost", "https://chat.example", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Foreign(tc.origin, tc.site, tc.host); got != tc.foreign {
				t.Fatalf("Foreign(%q, %q, %q) = %v, want %v", tc.origin, tc.site, tc.host, got, tc.foreign)
			}
		})
	}
	if (aoba.OriginPolicy{}).Foreign("https://app.example", "", "chat.example") != true {
		t.Fatal("the zero policy allowed a foreign origin")
	}
}
