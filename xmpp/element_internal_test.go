package xmpp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// parseOne reads the first element of s with the stream reader's rules.
func parseOne(s string) (*Element, error) {
	br := &budgetReader{r: strings.NewReader(s), limit: MaxStanzaBytes + 4096}
	d := xml.NewDecoder(br)
	d.Strict = true
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, xmlError(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return readElement(d, t)
		case xml.CharData:
			continue
		default:
			return nil, restricted(tok)
		}
	}
}

func TestElementRoundTrip(t *testing.T) {
	in := `<message xmlns="jabber:client" to="a@b" type="chat"><body>x &lt; y &amp; "z"</body><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`
	e, err := parseOne(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.childText(nsClient, "body"); got != `x < y & "z"` {
		t.Fatalf("body %q", got)
	}
	if chatState(e) != "composing" {
		t.Fatal("chat state not found")
	}
	// Encoded for a TCP stream the stanza inherits jabber:client; for a
	// WebSocket message it declares it.
	if out := string(e.bytes(nsClient)); strings.Contains(out, `xmlns="jabber:client"`) || !strings.Contains(out, `xmlns="http://jabber.org/protocol/chatstates"`) {
		t.Fatalf("TCP encoding %s", out)
	}
	again, err := parseOne(string(e.bytes("")))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.bytes(""), e.bytes("")) {
		t.Fatalf("round trip changed the element:\n%s\n%s", again.bytes(""), e.bytes(""))
	}
	// Attribute values with quotes and newlines survive.
	a := el(nsClient, "x", "v", "a\"b'c\nd<&>")
	back, err := parseOne(string(a.bytes("")))
	if err != nil || back.attr("v") != "a\"b'c\nd<&>" {
		t.Fatalf("attribute round trip: %v %q", err, back.attr("v"))
	}
}

func TestReaderLimits(t *testing.T) {
	cases := map[string]struct{ in, condition string }{
		"Deep":     {`<a>` + strings.Repeat("<b>", maxDepth) + strings.Repeat("</b>", maxDepth) + `</a>`, "policy-violation"},
		"Attrs":    {`<a ` + strings.Repeat(`x="1" `, 1) + attrs(maxAttrs+1) + `/>`, "policy-violation"},
		"Elements": {`<a>` + strings.Repeat("<b/>", maxElements) + `</a>`, "policy-violation"},
		"Huge":     {`<a>` + strings.Repeat("x", MaxStanzaBytes+8192) + `</a>`, "policy-violation"},
		"DTD":      {`<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>`, "restricted-xml"},
		"Entity":   {`<a>&x;</a>`, "not-well-formed"},
		"Comment":  {`<a><!-- c --></a>`, "restricted-xml"},
		"PI":       {`<a><?p x?></a>`, "restricted-xml"},
		"Mismatch": {`<a></b>`, "not-well-formed"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parseOne(tc.in)
			var se *streamError
			if !errors.As(err, &se) || se.condition != tc.condition {
				t.Fatalf("error %v, want stream error %s", err, tc.condition)
			}
		})
	}
	// At the limits, it is accepted.
	if _, err := parseOne(`<a>` + strings.Repeat("<b>", maxDepth-1) + strings.Repeat("</b>", maxDepth-1) + `</a>`); err != nil {
		t.Fatalf("depth %d refused: %v", maxDepth, err)
	}
}

func attrs(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(" a")
		b.WriteString(strings.Repeat("z", i+1))
		b.WriteString(`="1"`)
	}
	return b.String()
}

func TestSASLPayloads(t *testing.T) {
	if z, u, p, ok := splitPlain([]byte("\x00alice\x00secret")); !ok || z != "" || u != "alice" || p != "secret" {
		t.Fatalf("PLAIN: %q %q %q %v", z, u, p, ok)
	}
	if _, _, _, ok := splitPlain([]byte("alice\x00secret")); ok {
		t.Fatal("a PLAIN payload with one NUL accepted")
	}
	u, tok, ok := parseOAuthBearer([]byte("n,a=alice=2Cx,\x01host=h\x01auth=Bearer abc.def\x01\x01"))
	if !ok || u != "alice,x" || tok != "abc.def" {
		t.Fatalf("OAUTHBEARER: %q %q %v", u, tok, ok)
	}
	for _, bad := range []string{"", "n,,\x01\x01", "x,,\x01auth=Bearer t\x01\x01", "n,,\x01auth=Basic t\x01\x01", "n,b=1,\x01auth=Bearer t\x01\x01"} {
		if _, _, ok := parseOAuthBearer([]byte(bad)); ok {
			t.Errorf("OAUTHBEARER %q accepted", bad)
		}
	}
}

func TestArchiveCursors(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	// An id made at, or after, at sorts after idBefore(at) and an id made
	// at or before it sorts before idAfter(at).
	made := func(t time.Time, rest string) string {
		ms := uint64(t.UnixMilli())
		return strings.Join([]string{hex8(ms >> 16), hex4(ms & 0xffff), rest}, "-")
	}
	for _, rest := range []string{"7000-8000-000000000000", "7fff-bfff-ffffffffffff"} {
		if id := made(at, rest); id <= idBefore(at) || id >= idAfter(at) {
			t.Fatalf("id %s outside (%s, %s)", id, idBefore(at), idAfter(at))
		}
		if id := made(at.Add(-time.Millisecond), rest); id > idBefore(at) {
			t.Fatalf("an id before at sorts after idBefore: %s > %s", id, idBefore(at))
		}
		if id := made(at.Add(time.Millisecond), rest); id < idAfter(at) {
			t.Fatalf("an id after at sorts before idAfter: %s < %s", id, idAfter(at))
		}
	}
}

func hex8(v uint64) string { return strings.ToLower(padHex(v, 8)) }
func hex4(v uint64) string { return strings.ToLower(padHex(v, 4)) }
func padHex(v uint64, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}

// FuzzReadElement feeds arbitrary bytes to the stream reader: it must
// return an element or an error, never panic, and an element it returns
// must encode to XML it reads back the same.
func FuzzReadElement(f *testing.F) {
	for _, s := range []string{
		`<message to="a@b"><body>hi</body></message>`,
		`<iq type="get" id="1"><query xmlns="jabber:iq:roster"/></iq>`,
		`<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`,
		`<a xmlns:p="urn:x"><p:b p:c="d"/></a>`,
		`<a>&#x41;&amp;</a>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parseOne(string(data))
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return
			}
			return
		}
		out := e.bytes("")
		back, err := parseOne(string(out))
		if err != nil {
			t.Fatalf("re-reading %q (from %q): %v", out, data, err)
		}
		if !bytes.Equal(back.bytes(""), out) {
			t.Fatalf("round trip: %q != %q", back.bytes(""), out)
		}
	})
}
