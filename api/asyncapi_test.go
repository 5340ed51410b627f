package api_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/api"
	"github.com/aoba-chat/aoba/internal/asyncapitest"
	"github.com/aoba-chat/aoba/realtime"
)

// TestAsyncAPI holds the AsyncAPI document of the WebSocket channel to the
// code; cmd/aoba's TestFramesMatchAsyncAPI validates real frames against it.
func TestAsyncAPI(t *testing.T) {
	t.Run("IsAsyncAPI3", func(t *testing.T) {
		var doc struct {
			AsyncAPI string `json:"asyncapi"`
			Info     struct {
				Title, Version, Description string
			} `json:"info"`
			Servers map[string]struct {
				Host, Protocol string
				Variables      map[string]any `json:"variables"`
				Security       []any          `json:"security"`
			} `json:"servers"`
		}
		if err := json.Unmarshal(api.AsyncAPI, &doc); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		if !strings.HasPrefix(doc.AsyncAPI, "3.0.") || doc.Info.Version != "2.0.0" || doc.Info.Title == "" {
			t.Fatalf("asyncapi %q, info %+v", doc.AsyncAPI, doc.Info)
		}
		if !strings.Contains(doc.Info.Description, "docs/protocol.md") {
			t.Error("info.description does not point to docs/protocol.md")
		}
		ws, ok := doc.Servers["ws"]
		if !ok || ws.Protocol != "ws" || !strings.Contains(ws.Host, "{host}") || ws.Variables["host"] == nil || len(ws.Security) != 4 {
			t.Errorf("server ws = %+v", ws)
		}
	})

	d, err := asyncapitest.Load(api.AsyncAPI, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("EveryFrameTypeBothWays", func(t *testing.T) {
		for _, tc := range []struct {
			dir  asyncapitest.Direction
			code []string
		}{{asyncapitest.Send, aoba.ServerFrameTypes}, {asyncapitest.Receive, realtime.ClientFrameTypes}} {
			want := slices.Sorted(slices.Values(tc.code))
			if got := d.Types(tc.dir); !slices.Equal(got, want) {
				t.Errorf("%s frame types: document %v, code %v", tc.dir, got, want)
			}
		}
	})
	t.Run("ExamplesValidate", func(t *testing.T) {
		if len(d.Examples) < len(aoba.ServerFrameTypes)+len(realtime.ClientFrameTypes) {
			t.Errorf("%d examples, want one per message at least", len(d.Examples))
		}
		for _, e := range d.Examples {
			if err := d.ValidateValue(e.Dir, e.Payload); err != nil {
				t.Errorf("example of %s: %v", e.Message, err)
			}
		}
	})
	t.Run("RefusesWhatTheServerRefuses", func(t *testing.T) {
		for _, tc := range []struct {
			dir   asyncapitest.Direction
			frame string
		}{
			{asyncapitest.Receive, `{"type":"teleport"}`},
			{asyncapitest.Receive, `{"type":"typing","data":{"to":"bob","state":"shouting"}}`},
			{asyncapitest.Receive, `{"type":"message.send","data":{"to":"bob"}}`},
			{asyncapitest.Receive, `{"type":"message.send","data":{"to":"bob","content":"hi","client_id":"has space"}}`},
			{asyncapitest.Receive, `{"type":"presence.subscribe","data":{"usernames":["a"],"userIds":["b"]}}`},
			{asyncapitest.Receive, `{"type":"presence.subscribe","data":{"usernames":[]}}`},
			{asyncapitest.Send, `{"type":"ack","id":"1","data":{"unknown":["x"],"extra":1}}`},
			{asyncapitest.Send, `{"type":"presence","data":{"userId":"0193a2b4-7c1e-7d2a-9f3e-5b6c7d8e9f01","username":"bob","status":"away","lastSeen":null}}`},
			{asyncapitest.Send, `{"type":"hello","data":{"session_id":"s","sync":"c","heartbeat":25,"undocumented":true}}`},
		} {
			if err := d.Validate(tc.dir, []byte(tc.frame)); err == nil {
				t.Errorf("%s %s validates", tc.dir, tc.frame)
			}
		}
	})
	t.Run("CloseCodes", func(t *testing.T) {
		for _, c := range []int{aoba.CloseNormal, aoba.CloseGoingAway, aoba.CloseInvalidPayload, aoba.ClosePolicyViolation,
			aoba.CloseTooLarge, aoba.CloseSessionRevoked, aoba.CloseTooSlow, aoba.CloseIdle, aoba.CloseResync, aoba.CloseTooManySockets} {
			if !slices.Contains(d.CloseCodes, c) {
				t.Errorf("close code %d is not in x-close-codes", c)
			}
		}
	})
}
