// Package asyncapitest loads the AsyncAPI 3.0 document of the WebSocket
// channel (api/asyncapi.json) for tests: it finds the payload schema of
// every frame type in each direction and validates frames against it with
// kin-openapi. The payloads are written in the OpenAPI 3.0 schema format
// (a Multi Format Schema with schemaFormat
// "application/vnd.oai.openapi;version=3.0.0"), so the validation is exact.
package asyncapitest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// OpenAPIFormat is the schemaFormat every payload of the document uses.
const OpenAPIFormat = "application/vnd.oai.openapi;version=3.0.0"

// Direction is the way a frame travels, in the document's terms (the
// application is the server): Send for server-to-client frames, Receive for
// client-to-server frames.
type Direction string

const (
	Send    Direction = "send"
	Receive Direction = "receive"
)

// Example is one example of a message of the document.
type Example struct {
	Message string    // the message's key in components/messages
	Dir     Direction // the direction of the operation that carries it
	Payload any
}

// Doc is a loaded document.
type Doc struct {
	Version    string
	Send       map[string]*openapi3.Schema // server-to-client payload schema by frame type
	Receive    map[string]*openapi3.Schema // client-to-server payload schema by frame type
	Examples   []Example
	CloseCodes []int // the codes of the channel's x-close-codes
}

// Load parses raw. The document's one channel must have the address /ws;
// every operation must name it and be a send or a receive; every payload
// must be an OpenAPI 3.0 schema of an object whose `type` property is an
// enum of one value, the frame type, appearing once per direction. With
// strict, every object schema that lists properties and says nothing of
// additionalProperties is made to refuse others, so that a frame with a
// field the document does not describe fails validation.
func Load(raw []byte, strict bool) (*Doc, error) {
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("asyncapi: not JSON: %w", err)
	}
	d := &Doc{Send: map[string]*openapi3.Schema{}, Receive: map[string]*openapi3.Schema{}}
	d.Version, _ = root["asyncapi"].(string)
	if !strings.HasPrefix(d.Version, "3.0.") {
		return nil, fmt.Errorf("asyncapi: version %q, want 3.0.x", d.Version)
	}
	channels, _ := root["channels"].(map[string]any)
	if len(channels) != 1 {
		return nil, fmt.Errorf("asyncapi: %d channels, want 1", len(channels))
	}
	var chanKey string
	var channel map[string]any
	for k, v := range channels {
		chanKey, channel = k, asMap(v)
	}
	if channel["address"] != "/ws" {
		return nil, fmt.Errorf("asyncapi: channel address %v, want /ws", channel["address"])
	}
	codes, _ := channel["x-close-codes"].([]any)
	for _, c := range codes {
		n, ok := asMap(c)["code"].(float64)
		if !ok {
			return nil, fmt.Errorf("asyncapi: x-close-codes entry %v has no numeric code", c)
		}
		d.CloseCodes = append(d.CloseCodes, int(n))
	}

	used := map[string]bool{}
	ops := asMap(root["operations"])
	opNames := make([]string, 0, len(ops))
	for k := range ops {
		opNames = append(opNames, k)
	}
	sort.Strings(opNames)
	for _, name := range opNames {
		op := asMap(ops[name])
		dir := Direction(fmt.Sprint(op["action"]))
		if dir != Send && dir != Receive {
			return nil, fmt.Errorf("asyncapi: operation %s: action %v", name, op["action"])
		}
		if ref, _ := asMap(op["channel"])["$ref"].(string); ref != "#/channels/"+chanKey {
			return nil, fmt.Errorf("asyncapi: operation %s: channel %q", name, ref)
		}
		msgs, _ := op["messages"].([]any)
		if len(msgs) == 0 {
			return nil, fmt.Errorf("asyncapi: operation %s has no message", name)
		}
		for _, m := range msgs {
			ref, _ := asMap(m)["$ref"].(string)
			if !strings.HasPrefix(ref, "#/channels/"+chanKey+"/messages/") {
				return nil, fmt.Errorf("asyncapi: operation %s: message %q is not one of the channel's", name, ref)
			}
			key := strings.TrimPrefix(ref, "#/channels/"+chanKey+"/messages/")
			if used[key] {
				return nil, fmt.Errorf("asyncapi: message %s is in two operations", key)
			}
			used[key] = true
			msg, err := resolve(root, m, 0)
			if err != nil {
				return nil, fmt.Errorf("asyncapi: operation %s: %w", name, err)
			}
			if err := d.addMessage(root, key, dir, asMap(msg), strict); err != nil {
				return nil, err
			}
		}
	}
	for key := range asMap(channel["messages"]) {
		if !used[key] {
			return nil, fmt.Errorf("asyncapi: message %s is in no operation", key)
		}
	}
	return d, nil
}

func (d *Doc) addMessage(root map[string]any, key string, dir Direction, msg map[string]any, strict bool) error {
	payload := asMap(msg["payload"])
	if payload["schemaFormat"] != OpenAPIFormat {
		return fmt.Errorf("asyncapi: message %s: schemaFormat %v, want %s", key, payload["schemaFormat"], OpenAPIFormat)
	}
	inlined, err := resolve(root, payload["schema"], 0)
	if err != nil {
		return fmt.Errorf("asyncapi: message %s: %w", key, err)
	}
	b, err := json.Marshal(inlined)
	if err != nil {
		return err
	}
	var s openapi3.Schema
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("asyncapi: message %s: payload is not an OpenAPI schema: %w", key, err)
	}
	typ := s.Properties["type"]
	if typ == nil || typ.Value == nil || len(typ.Value.Enum) != 1 {
		return fmt.Errorf("asyncapi: message %s: payload property type is not an enum of one value", key)
	}
	name, _ := typ.Value.Enum[0].(string)
	if msg["name"] != name {
		return fmt.Errorf("asyncapi: message %s: name %v, payload type %q", key, msg["name"], name)
	}
	if strict {
		closeObjects(&s, map[*openapi3.Schema]bool{})
	}
	byType := d.Send
	if dir == Receive {
		byType = d.Receive
	}
	if byType[name] != nil {
		return fmt.Errorf("asyncapi: frame type %q appears twice as %s", name, dir)
	}
	byType[name] = &s
	examples, _ := msg["examples"].([]any)
	for _, e := range examples {
		p, ok := asMap(e)["payload"]
		if !ok {
			return fmt.Errorf("asyncapi: message %s: an example without payload", key)
		}
		d.Examples = append(d.Examples, Example{Message: key, Dir: dir, Payload: p})
	}
	return nil
}

// Validate checks one frame, as sent on the socket, against the schema of
// its type in direction dir. A frame type the document does not list is an
// error.
func (d *Doc) Validate(dir Direction, frame []byte) error {
	var v any
	if err := json.Unmarshal(frame, &v); err != nil {
		return fmt.Errorf("frame %s is not JSON: %w", frame, err)
	}
	return d.ValidateValue(dir, v)
}

var uuidFormat = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ValidateValue is Validate for a decoded frame.
func (d *Doc) ValidateValue(dir Direction, v any) error {
	typ, _ := asMap(v)["type"].(string)
	byType := d.Send
	if dir == Receive {
		byType = d.Receive
	}
	s := byType[typ]
	if s == nil {
		return fmt.Errorf("frame type %q (%s) is not in the AsyncAPI document", typ, dir)
	}
	err := s.VisitJSON(v, openapi3.EnableFormatValidation(), openapi3.MultiErrors(), openapi3.DisableSchemaErrorDetails(),
		openapi3.WithStringFormatValidator("uuid", openapi3.NewCallbackValidator(func(s string) error {
			if !uuidFormat.MatchString(s) {
				return fmt.Errorf("not a lower-case UUID")
			}
			return nil
		})))
	if err != nil {
		return fmt.Errorf("%s frame %q does not match the AsyncAPI document: %w", dir, typ, err)
	}
	return nil
}

// Types returns the sorted frame types of direction dir.
func (d *Doc) Types(dir Direction) []string {
	byType := d.Send
	if dir == Receive {
		byType = d.Receive
	}
	out := make([]string, 0, len(byType))
	for k := range byType {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// closeObjects makes every object schema under s that lists properties
// and leaves additionalProperties open refuse other properties.
func closeObjects(s *openapi3.Schema, seen map[*openapi3.Schema]bool) {
	if s == nil || seen[s] {
		return
	}
	seen[s] = true
	if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
		no := false
		s.AdditionalProperties.Has = &no
	}
	for _, p := range s.Properties {
		closeObjects(p.Value, seen)
	}
	for _, list := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf, s.AllOf} {
		for _, r := range list {
			closeObjects(r.Value, seen)
		}
	}
	if s.Items != nil {
		closeObjects(s.Items.Value, seen)
	}
}

// resolve returns a copy of v with every local $ref ("#/a/b") replaced by
// its target, recursively.
func resolve(root map[string]any, v any, depth int) (any, error) {
	if depth > 32 {
		return nil, fmt.Errorf("$ref nesting too deep")
	}
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok {
			target, err := pointer(root, ref)
			if err != nil {
				return nil, err
			}
			return resolve(root, target, depth+1)
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := resolve(root, e, depth)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := resolve(root, e, depth)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// pointer follows a local JSON pointer reference.
func pointer(root map[string]any, ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("$ref %q is not local", ref)
	}
	var cur any = root
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("$ref %q: no %q", ref, tok)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("$ref %q: bad index %q", ref, tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("$ref %q: cannot descend into %q", ref, tok)
		}
	}
	return cur, nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
