// Package aoba is the domain of the Aoba chat backend: its types, its one
// error type, the interfaces that connect the adapters (stores, hub,
// realtime, HTTP) and the Service that holds the product's rules.
//
// It imports no adapter: no Fiber, no Redis, no MongoDB. Each adapter lives
// in its own package and asserts the interface it implements.
package aoba

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// NewID returns a new time-sortable identifier: a UUID version 7 string whose
// lexical order follows creation time on one process (and, across processes,
// follows it to the precision of their clocks).
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// IsValidID reports whether s is a canonical UUID string (any version).
func IsValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// Pinger is implemented by every backing service that /health checks.
type Pinger interface {
	// Ping returns an error when the service cannot be reached.
	Ping(ctx context.Context) error
}

// DegradedReporter is implemented by a backing service that the pod can
// serve without, degraded (Redis, when the store is up): a health check
// whose Pinger also implements it reports "degraded" rather than
// "unavailable" when its Ping fails, and the pod stays ready, since taking
// every pod out of the load balancer at once would turn a partial outage
// into a full one.
type DegradedReporter interface {
	// Degraded returns what the pod cannot do while the service is
	// unreachable (safe to show), or "" while it is reachable.
	Degraded() string
}

// Store is the whole persistence layer: users, groups, memberships,
// invitations, message history, the events of GET /api/sync, blocks and
// roster items. mongostore and the embedded store implement it.
type Store interface {
	UserStore
	GroupStore
	InvitationStore
	MessageStore
	EventStore
	ConversationStore
	SessionStore
	BlockStore
	RosterStore
	Pinger
	// Close releases the store's resources.
	Close() error
}

// Now returns the current time in UTC, truncated to milliseconds so that a
// value survives a round trip through every store unchanged.
func Now() time.Time {
	return time.Now().UTC().Truncate(time.Millisecond)
}

// Frame is one WebSocket text frame, in both directions:
// {"type": "...", "id": "<optional client id>", "data": {...}}.
type Frame struct {
	Type string          `json:"type"`
	ID   string          `json:"id,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Server-to-client frame types.
const (
	FrameMessage    = "message"
	FramePresence   = "presence"
	FrameTyping     = "typing"
	FrameInvitation = "invitation"
	FrameGroup      = "group"
	FrameAck        = "ack"
	FrameError      = "error"
	FramePong       = "pong"
	// FrameHello is the first frame of every socket (data Hello).
	FrameHello = "hello"
	// FrameMessageUpdated announces an edited message (data the updated
	// MessageView) to every participant of its conversation.
	FrameMessageUpdated = "message.updated"
	// FrameMessageDeleted announces a deleted message (data the
	// MessageView, deleted and with empty content).
	FrameMessageDeleted = "message.deleted"
)

// ServerFrameTypes lists every server-to-client frame type, for the tests
// that hold the AsyncAPI document (api/asyncapi.json) to the code.
var ServerFrameTypes = []string{
	FrameHello, FrameMessage, FramePresence, FrameTyping, FrameInvitation,
	FrameGroup, FrameBlock, FrameAck, FrameError, FramePong, FrameMessageUpdated, FrameMessageDeleted, FrameReceipt,
}

// EncodeFrame returns the JSON encoding of a frame of type typ with the
// given client id and data. It returns an EINTERNAL error when data cannot
// be encoded.
func EncodeFrame(typ, id string, data any) ([]byte, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, Errorf(EINTERNAL, "encode %s frame: %v", typ, err)
	}
	return json.Marshal(Frame{Type: typ, ID: id, Data: raw})
}
