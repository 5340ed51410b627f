package aoba

import (
	"context"
	"time"
)

// ConversationState is the state a store keeps per conversation, updated in
// the same write as every message stored in it, so that listing
// conversations and counting unread messages never scan history. Seq is the
// number of messages stored in the conversation; LastMessage is the one
// with the greatest id; UpdatedAt is its timestamp. Stores only keep
// conversations with a message; the Service lists a group without
// messages as a state with LastMessage nil and UpdatedAt the time the
// member joined.
type ConversationState struct {
	Key         string
	Seq         int64
	LastMessage *Message
	UpdatedAt   time.Time
}

// ReadState is one user's read marker in one conversation: ReadUpTo is the
// greatest message id the user has read, ReadCount the number of messages
// of the conversation up to it when it was set, and ReadAt when it was set.
// The user's unread count is the conversation's Seq − ReadCount (never
// negative). A user's own messages move their marker as they are stored.
type ReadState struct {
	UserID       string
	Conversation string
	ReadUpTo     string
	ReadCount    int64
	ReadAt       time.Time
}

// Unread returns the number of messages of c that r has not read: c.Seq −
// r.ReadCount, never negative; every message when r is nil.
func Unread(c *ConversationState, r *ReadState) int64 {
	if r == nil {
		return c.Seq
	}
	return max(0, c.Seq-r.ReadCount)
}

// ConversationStore keeps the per-conversation state and the read markers.
// The stores update ConversationState (and the sender's ReadState) as part
// of MessageStore.CreateMessage.
type ConversationStore interface {
	// FindConversations returns the conversations among keys and every
	// 1:1 conversation of userID that have a message, whose last message
	// id is smaller than before (no bound when before is empty), most
	// recent last message first, at most limit of them. It returns an
	// EINTERNAL (or EUNAVAILABLE) error when they cannot be read.
	FindConversations(ctx context.Context, userID string, keys []string, before string, limit int) ([]*ConversationState, error)
	// FindConversationKeys returns those of keys whose conversation has a
	// message, in any order. It returns an EINTERNAL (or EUNAVAILABLE)
	// error when they cannot be read.
	FindConversationKeys(ctx context.Context, keys []string) ([]string, error)
	// FindConversation returns the state of the conversation key; ENOTFOUND
	// when it has no message.
	FindConversation(ctx context.Context, key string) (*ConversationState, error)
	// FindReadStates returns the read markers of userID among the
	// conversations keys that exist, in any order.
	FindReadStates(ctx context.Context, userID string, keys []string) ([]*ReadState, error)
	// FindConversationReadStates returns every read marker of the
	// conversation key, in any order.
	FindConversationReadStates(ctx context.Context, key string) ([]*ReadState, error)
	// MarkRead moves the marker of userID in the conversation key to the
	// message upTo, unless it is there or further already, and returns the
	// marker as stored afterwards. The read count is computed from the
	// conversation's state and the messages after upTo (the unread ones
	// only, never the whole history). It returns ENOTFOUND when upTo is
	// not a message of the conversation.
	MarkRead(ctx context.Context, userID, key, upTo string, at time.Time) (*ReadState, error)
}
