package aoba

import (
	"context"
	"time"
)

// MessageMaxLen is the largest message content, in characters.
const MessageMaxLen = 10240

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
// used when the sender or the recipient no longer exists.
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

// MessageStore persists message history, the source of truth for every
// client that reconnects.
type MessageStore interface {
	// CreateMessage stores m durably before returning; once it returns nil
	// the message is in history.
	CreateMessage(ctx context.Context, m *Message) error
	// FindMessages returns one page of messages matching f and the total
	// number of messages matching f without Offset and Limit.
	FindMessages(ctx context.Context, f MessageFilter) ([]*Message, int, error)
}
