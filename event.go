package aoba

import (
	"context"
	"encoding/json"
	"time"
)

// EventRetention is how long stored events are kept, and how far back
// GET /api/sync reaches: a cursor older than that is read as the start of
// the retention window, for messages as well as events.
const EventRetention = 30 * 24 * time.Hour

// Event types: the type of the live frame an event repeats.
const (
	EventInvitation = FrameInvitation
	EventGroup      = FrameGroup
	EventBlock      = FrameBlock
	// EventMessageUpdated and EventMessageDeleted repeat the edit or
	// deletion of a message, whatever its id: GET /api/sync returns
	// messages after the cursor by id, so an edit of an older message
	// reaches a syncing client only as an event.
	EventMessageUpdated = FrameMessageUpdated
	EventMessageDeleted = FrameMessageDeleted
)

// Event is one durable copy of a live frame addressed to one user, kept for
// GET /api/sync. ID is time-sortable (NewID) and the same for every
// recipient of one event; (UserID, ID) is unique. Data is the JSON data of
// the live frame of type Type.
//
// Events are written one row or document per recipient, because they are
// rare (invitations, group changes, blocks, message edits and deletions);
// messages are never copied into events: a group message stays one row,
// found through memberships. An edit or deletion of a group message is one
// row per member, acceptable because edits are rare next to sends.
type Event struct {
	ID        string
	UserID    string
	Type      string
	Data      json.RawMessage
	CreatedAt time.Time
}

// EventStore persists the events of GET /api/sync.
type EventStore interface {
	// AppendEvents stores events durably, in one call whatever their
	// number. Appending an event whose (UserID, ID) is stored already
	// leaves the stored one as it is, so a retried call is harmless. It
	// returns an EINTERNAL (or EUNAVAILABLE) error when they cannot be
	// stored; some of them may then be stored.
	AppendEvents(ctx context.Context, events []*Event) error
	// FindEvents returns the events of userID whose id is greater than
	// afterID (every event when afterID is empty), oldest first, at most
	// limit of them (no limit when limit is 0). It returns an EINTERNAL
	// (or EUNAVAILABLE) error when they cannot be read.
	FindEvents(ctx context.Context, userID, afterID string, limit int) ([]*Event, error)
	// DeleteEventsBefore deletes every event created before t and returns
	// how many it deleted. It returns an EINTERNAL (or EUNAVAILABLE)
	// error when they cannot be deleted.
	DeleteEventsBefore(ctx context.Context, t time.Time) (int, error)
}

// EventView is an Event as GET /api/sync returns it: Data is exactly the
// data of the live frame of type Type.
type EventView struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
}
