package aoba

import (
	"context"
	"time"
)

// Block records that BlockerID blocked BlockedID: the blocked user's 1:1
// messages, typing notices and invitations to the blocker are refused, and
// the blocker looks offline (with no last seen time) to them.
type Block struct {
	BlockerID string
	BlockedID string
	CreatedAt time.Time
}

// BlockStore persists blocks. A block is identified by the pair (BlockerID,
// BlockedID); a user's blocks are few (tens), so they are read whole.
type BlockStore interface {
	// CreateBlock stores b. It returns ECONFLICT when the blocker blocks
	// that user already; the stored block is then left as it is.
	CreateBlock(ctx context.Context, b *Block) error
	// DeleteBlock removes the block of blockedID by blockerID. It returns
	// ENOTFOUND when there is none.
	DeleteBlock(ctx context.Context, blockerID, blockedID string) error
	// FindBlocksByBlocker returns every block made by blockerID, in any
	// order (none is an empty slice). It returns an EINTERNAL (or
	// EUNAVAILABLE) error when they cannot be read.
	FindBlocksByBlocker(ctx context.Context, blockerID string) ([]*Block, error)
	// FindBlocksBetween returns the blocks, in either direction, between
	// userID and each of others: userID blocking one of them, or one of
	// them blocking userID. It returns an EINTERNAL (or EUNAVAILABLE) error
	// when they cannot be read.
	FindBlocksBetween(ctx context.Context, userID string, others []string) ([]*Block, error)
}
