package hub

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/aoba-chat/aoba"
)

// sameEnvelope reports whether a and b carry the same fields (a nil and an
// empty frame are the same).
func sameEnvelope(a, b aoba.Envelope) bool {
	if !bytes.Equal(a.Frame, b.Frame) || a.ExceptConn != b.ExceptConn || a.ExceptUser != b.ExceptUser ||
		a.Join != b.Join || a.Leave != b.Leave || a.OnlyUser != b.OnlyUser || !slices.Equal(a.ExceptUsers, b.ExceptUsers) ||
		(a.Close == nil) != (b.Close == nil) {
		return false
	}
	return a.Close == nil || sameClose(*a.Close, *b.Close)
}

// sameClose reports whether a and b are the same order (a nil and an empty
// Conns are the same).
func sameClose(a, b aoba.CloseOrder) bool {
	return a.Code == b.Code && a.Reason == b.Reason && a.Session == b.Session &&
		a.KeepSession == b.KeepSession && slices.Equal(a.Conns, b.Conns)
}

// FuzzDecodeEnvelope feeds arbitrary bytes to the envelope decoder: it
// never panics, and what it accepts encodes and decodes back to the same
// envelope.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, env := range []aoba.Envelope{
		{Frame: []byte(`{"type":"message","data":{"content":"hi"}}`), ExceptConn: "c1"},
		{Frame: []byte(`{"type":"typing"}`), ExceptUser: "u1", Join: "g1", Leave: "g2"},
		{Close: &aoba.CloseOrder{Code: aoba.CloseSessionRevoked, Reason: "logout", Session: "s1"}},
		{Frame: []byte(`{"type":"presence"}`), OnlyUser: "u1"},
		{Frame: []byte(`{"type":"presence"}`), ExceptUsers: []string{"u1", "", "u3"}},
		{Close: &aoba.CloseOrder{Code: aoba.CloseTooManySockets, Reason: "too many sockets", Conns: []string{"c1", "c2"}}},
		{},
	} {
		b, err := encodeEnvelope(env)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	v1 := binary.AppendUvarint([]byte{envelopeV1}, 2)
	v1 = binary.AppendUvarint(append(v1, "c1"...), 0)
	f.Add(append(v1, `{"x":1}`...))
	f.Add([]byte("\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f"))
	f.Add([]byte("\x02\x00\x00\x00\x00\x04null"))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := decodeEnvelope(string(data))
		if err != nil {
			return
		}
		b, err := encodeEnvelope(env)
		if err != nil {
			t.Fatalf("encode %+v: %v", env, err)
		}
		got, err := decodeEnvelope(string(b))
		if err != nil {
			t.Fatalf("decode of the re-encoded %+v: %v", env, err)
		}
		if !sameEnvelope(env, got) {
			t.Fatalf("round trip: %+v became %+v", env, got)
		}
	})
}

// FuzzEnvelopeRoundTrip encodes envelopes built from arbitrary fields and
// checks that decoding gives them back. Close order strings are UTF-8, as
// the server writes them (JSON cannot carry other bytes).
func FuzzEnvelopeRoundTrip(f *testing.F) {
	f.Add([]byte(`{"type":"ping"}`), "c1", "u1", "g1", "g2", true, aoba.CloseSessionRevoked, "logout", "s1", "s2")
	f.Add([]byte{}, "", "", "", "", false, 0, "", "", "")
	f.Add([]byte{0, 1, 2, 0xff}, "\x00", "é", "", "x", true, -1, "\u2028", "", "")
	f.Fuzz(func(t *testing.T, frame []byte, exceptConn, exceptUser, join, leave string, hasClose bool, code int, reason, session, keep string) {
		env := aoba.Envelope{Frame: frame, ExceptConn: exceptConn, ExceptUser: exceptUser, Join: join, Leave: leave}
		if hasClose {
			if !utf8.ValidString(reason) || !utf8.ValidString(session) || !utf8.ValidString(keep) {
				return
			}
			env.Close = &aoba.CloseOrder{Code: code, Reason: reason, Session: session, KeepSession: keep}
		}
		b, err := encodeEnvelope(env)
		if err != nil {
			t.Fatalf("encode %+v: %v", env, err)
		}
		got, err := decodeEnvelope(string(b))
		if err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
		if !sameEnvelope(env, got) {
			t.Fatalf("round trip: %+v became %+v", env, got)
		}
	})
}
