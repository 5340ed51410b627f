package sqlitestore

import (
	"context"

	"github.com/aoba-chat/aoba"
)

// scanBlock reads one row of blocker_id, blocked_id, created_at.
func scanBlock(r rowScanner) (*aoba.Block, error) {
	var b aoba.Block
	var at int64
	if err := r.Scan(&b.BlockerID, &b.BlockedID, &at); err != nil {
		return nil, err
	}
	b.CreatedAt = fromMillis(at)
	return &b, nil
}

// CreateBlock inserts b. It returns ECONFLICT when the pair is stored
// already and EINTERNAL on any other failure.
func (s *Store) CreateBlock(ctx context.Context, b *aoba.Block) error {
	_, err := s.write.ExecContext(ctx, "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?)",
		b.BlockerID, b.BlockedID, millis(b.CreatedAt))
	return translate(err, "insert block", "", "The user is blocked already.")
}

// DeleteBlock deletes the block of blockedID by blockerID. It returns
// ENOTFOUND when there is none and EINTERNAL on any other failure.
func (s *Store) DeleteBlock(ctx context.Context, blockerID, blockedID string) error {
	res, err := s.write.ExecContext(ctx, "DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?", blockerID, blockedID)
	return affectedOne(res, err, "delete block", "Block not found.")
}

// FindBlocksByBlocker returns the blocks of blockerID through the primary
// key. It returns EINTERNAL when the query fails.
func (s *Store) FindBlocksByBlocker(ctx context.Context, blockerID string) ([]*aoba.Block, error) {
	return queryAll(ctx, s.read, "find blocks", scanBlock,
		"SELECT blocker_id, blocked_id, created_at FROM blocks WHERE blocker_id = ? ORDER BY created_at, blocked_id", blockerID)
}

// FindBlocksBetween returns the blocks in either direction between userID
// and others, through the primary key and blocks_blocked. It returns
// EINTERNAL when the query fails.
func (s *Store) FindBlocksBetween(ctx context.Context, userID string, others []string) ([]*aoba.Block, error) {
	if len(others) == 0 {
		return []*aoba.Block{}, nil
	}
	list := jsonList(others)
	return queryAll(ctx, s.read, "find blocks", scanBlock,
		`SELECT blocker_id, blocked_id, created_at FROM blocks
		 WHERE (blocker_id = ? AND blocked_id IN (SELECT value FROM json_each(?)))
		    OR (blocked_id = ? AND blocker_id IN (SELECT value FROM json_each(?)))`,
		userID, list, userID, list)
}
