package aoba

import (
	"context"
	"time"
)

// MessageMaxLen is the largest message content, in characters.
const MessageMaxLen = 10240

// ClientIDMaxLen is the longest client id of a message, in characters.
const ClientIDMaxLen = 64

// ClientIDWindow is how long a sender's client id is remembered at least:
// within it, a send with a client id already used returns the message first
// stored with it. The stores keep the id as long as the message.
const ClientIDWindow = 24 * time.Hour

// MessageType says whether a message goes to a user or to a group.
type MessageType string

// Message types of the contract.
const (
	MessageChat      MessageType = "chat"
	MessageGroupChat MessageType = "groupchat"
)

// Message is one stored message. ID is time-sortable (NewID). For chat, ToID
// is the recipient's user id; for groupchat it is the group id.
// Conversation is the key of its conversation (DirectConversation or
// GroupConversation). FromName and ToName are the names at sending time,
// used when the sender or the recipient no longer exists. ClientID, when
// not empty, is the sender's idempotency key: the stores keep at most one
// message per (FromID, ClientID). EditedAt is the time of the last edit,
// nil when never edited. Deleted marks a message deleted by its sender or
// a group's owner or admin: it stays in history with an empty Content.
type Message struct {
	ID           string
	Conversation string
	FromID       string
	ToID         string
	FromName     string
	ToName       string
	Content      string
	Type         MessageType
	Timestamp    time.Time
	ClientID     string
	EditedAt     *time.Time
	Deleted      bool
}

// DirectConversation returns the conversation key of the 1:1 conversation
// between users a and b; it is the same for (a, b) and (b, a).
func DirectConversation(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return "d:" + a + ":" + b
}

// GroupConversation returns the conversation key of a group.
func GroupConversation(groupID string) string {
	return "g:" + groupID
}

// MessageFilter selects history. Conversations lists the conversation keys
// to read; when ParticipantID is set, every 1:1 conversation of that user is
// read as well. AfterID returns only messages with a greater id, oldest
// first (a reconnecting client's catch-up); otherwise messages are newest
// first, and BeforeID returns only messages with a smaller id. Offset and
// Limit page the result; Limit 0 means no limit. SkipTotal spares the
// count of every match: FindMessages then returns 0 as the total.
type MessageFilter struct {
	Conversations []string
	ParticipantID string
	AfterID       string
	BeforeID      string
	Offset        int
	Limit         int
	SkipTotal     bool
}

// DuplicateMessageError is the error of MessageStore.CreateMessage when the
// sender already has a message with the same ClientID: Message is that
// message, as stored, and the new one was not stored. Its code is
// ECONFLICT, so a caller that does not look for it still sees a refusal.
type DuplicateMessageError struct {
	Message *Message
}

// Error implements the error interface.
func (e *DuplicateMessageError) Error() string { return e.Unwrap().Error() }

// Unwrap returns the ECONFLICT domain error, so ErrorCode and ErrorMessage
// see it.
func (e *DuplicateMessageError) Unwrap() error {
	return Errorf(ECONFLICT, "A message with this client_id already exists.")
}

// MessageStore persists message history, the source of truth for every
// client that reconnects.
type MessageStore interface {
	// CreateMessage stores m durably before returning; once it returns nil
	// the message is in history. When m.ClientID is not empty and the
	// sender m.FromID already has a message with that ClientID, m is not
	// stored and CreateMessage returns a *DuplicateMessageError holding the
	// stored message, also when the two calls race: of concurrent calls
	// with the same (FromID, ClientID), exactly one stores its message and
	// every other gets that one. The uniqueness lasts at least
	// ClientIDWindow. An empty ClientID never conflicts. It returns a plain
	// ECONFLICT error when a message with m.ID exists.
	CreateMessage(ctx context.Context, m *Message) error
	// FindMessages returns one page of messages matching f and the total
	// number of messages matching f without Offset and Limit.
	FindMessages(ctx context.Context, f MessageFilter) ([]*Message, int, error)
	// FindMessageByID returns the message with that id. It returns
	// ENOTFOUND when there is none.
	FindMessageByID(ctx context.Context, id string) (*Message, error)
	// UpdateMessage stores m.Content, m.EditedAt and m.Deleted on the
	// stored message with m.ID; every other field is left as stored.
	// Concurrent updates of one message are last-writer-wins. It returns
	// ENOTFOUND when there is no message with m.ID.
	UpdateMessage(ctx context.Context, m *Message) error
}
