package sqlitestore

import (
	"context"
	"database/sql"
	"time"

	"github.com/aoba-chat/aoba"
)

// scanEvent reads one row of id, user_id, type, data, created_at.
func scanEvent(r rowScanner) (*aoba.Event, error) {
	var e aoba.Event
	var data string
	var at int64
	if err := r.Scan(&e.ID, &e.UserID, &e.Type, &data, &at); err != nil {
		return nil, err
	}
	e.Data = []byte(data)
	e.CreatedAt = fromMillis(at)
	return &e, nil
}

// AppendEvents inserts events in one transaction, committed and synced
// before it returns; a (user_id, id) pair stored already is left as it is.
// It returns EINTERNAL when the transaction fails, and then stores none of
// them.
func (s *Store) AppendEvents(ctx context.Context, events []*aoba.Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.withTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx,
			"INSERT OR IGNORE INTO events (user_id, id, type, data, created_at) VALUES (?, ?, ?, ?, ?)")
		if err != nil {
			return internal("prepare event insert", err)
		}
		defer stmt.Close()
		for _, e := range events {
			if _, err := stmt.ExecContext(ctx, e.UserID, e.ID, e.Type, string(e.Data), millis(e.CreatedAt)); err != nil {
				return internal("insert event", err)
			}
		}
		return nil
	})
}

// FindEvents returns the events of userID after afterID, oldest first, at
// most limit (0: all), read through the primary key (user_id, id). It
// returns EINTERNAL when the query fails.
func (s *Store) FindEvents(ctx context.Context, userID, afterID string, limit int) ([]*aoba.Event, error) {
	if limit <= 0 {
		limit = -1
	}
	return queryAll(ctx, s.read, "find events", scanEvent,
		"SELECT id, user_id, type, data, created_at FROM events WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?",
		userID, afterID, limit)
}

// DeleteEventsBefore deletes the events created before t and returns their
// number. It returns EINTERNAL when the deletion fails.
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time) (int, error) {
	res, err := s.write.ExecContext(ctx, "DELETE FROM events WHERE created_at < ?", millis(t))
	if err != nil {
		return 0, internal("delete events", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, internal("delete events", err)
	}
	return int(n), nil
}
