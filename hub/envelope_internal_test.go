package hub

import (
	"encoding/binary"
	"testing"

	"github.com/aoba-chat/aoba"
)

func TestEnvelopeWireFormat(t *testing.T) {
	t.Run("RoundTrip", func(t *testing.T) {
		env := aoba.Envelope{Frame: []byte(`{"type":"typing"}`), ExceptConn: "c1", ExceptUser: "u1", Join: "g1", Leave: "g2",
			Close: &aoba.CloseOrder{Code: aoba.CloseTooManySockets, Reason: "r", Conns: []string{"c1", "c2"}}}
		b, err := encodeEnvelope(env)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeEnvelope(string(b))
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Frame) != string(env.Frame) || got.ExceptConn != "c1" || got.ExceptUser != "u1" || got.Join != "g1" ||
			got.Leave != "g2" || got.Close == nil || !sameClose(*got.Close, *env.Close) {
			t.Fatalf("decoded %+v, want %+v", got, env)
		}
	})

	t.Run("RoundTripV3", func(t *testing.T) {
		for _, env := range []aoba.Envelope{
			{Frame: []byte(`{"type":"presence"}`), OnlyUser: "u1"},
			{Frame: []byte(`{"type":"presence"}`), ExceptUser: "u0", ExceptUsers: []string{"u1", "u2"}},
		} {
			b, err := encodeEnvelope(env)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != envelopeV3 {
				t.Fatalf("version %d, want %d", b[0], envelopeV3)
			}
			got, err := decodeEnvelope(string(b))
			if err != nil {
				t.Fatal(err)
			}
			if !sameEnvelope(env, got) {
				t.Fatalf("decoded %+v, want %+v", got, env)
			}
		}
		// Without the new fields, the envelope stays v2 for older pods.
		if b, _ := encodeEnvelope(aoba.Envelope{Frame: []byte(`{}`), ExceptUser: "u"}); b[0] != envelopeV2 {
			t.Fatalf("version %d, want %d", b[0], envelopeV2)
		}
	})

	t.Run("ReadsVersion1", func(t *testing.T) {
		// What a pod of the previous version publishes.
		b := []byte{envelopeV1}
		b = binary.AppendUvarint(b, 2)
		b = append(b, "c1"...)
		b = binary.AppendUvarint(b, 0)
		b = append(b, `{"x":1}`...)
		got, err := decodeEnvelope(string(b))
		if err != nil {
			t.Fatal(err)
		}
		if got.ExceptConn != "c1" || string(got.Frame) != `{"x":1}` || got.Close != nil || got.ExceptUser != "" || got.Join != "" {
			t.Fatalf("decoded %+v", got)
		}
	})

	t.Run("Malformed", func(t *testing.T) {
		for name, s := range map[string]string{
			"Empty":          "",
			"UnknownVersion": "\x04\x00\x00\x00\x00\x00",
			"TooManyExcepts": "\x03\x00\x00\x00\x00\x00\x7f\x00",
			"Truncated":      "\x02\x05ab",
			"MissingFields":  "\x02\x00\x00",
			"Overflow":       "\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
			"BadCloseOrder":  "\x02\x00\x00\x00\x00\x03{x}",
		} {
			t.Run(name, func(t *testing.T) {
				if env, err := decodeEnvelope(s); err == nil {
					t.Fatalf("decoded %+v, want an error", env)
				}
			})
		}
	})
}
