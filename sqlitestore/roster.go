package sqlitestore

import (
	"context"
	"database/sql"

	"github.com/aoba-chat/aoba"
)

// scanRosterItem reads one row of user_id, contact_id, name, created_at.
func scanRosterItem(r rowScanner) (*aoba.RosterItem, error) {
	var it aoba.RosterItem
	var at int64
	if err := r.Scan(&it.UserID, &it.ContactID, &it.Name, &at); err != nil {
		return nil, err
	}
	it.CreatedAt = fromMillis(at)
	return &it, nil
}

// PutRosterItem renames the stored item of the pair or, when there is none
// and the user has fewer than aoba.MaxRosterItems items, inserts item, in
// one transaction. It returns ECONFLICT when the roster is full and
// EINTERNAL on any other failure.
func (s *Store) PutRosterItem(ctx context.Context, item *aoba.RosterItem) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE roster_items SET name = ? WHERE user_id = ? AND contact_id = ?",
			item.Name, item.UserID, item.ContactID)
		if err != nil {
			return internal("rename roster item", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return internal("rename roster item", err)
		} else if n > 0 {
			return nil
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM roster_items WHERE user_id = ?", item.UserID).Scan(&n); err != nil {
			return internal("count roster items", err)
		}
		if n >= aoba.MaxRosterItems {
			return aoba.ErrRosterFull()
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO roster_items (user_id, contact_id, name, created_at) VALUES (?, ?, ?, ?)",
			item.UserID, item.ContactID, item.Name, millis(item.CreatedAt))
		return translate(err, "insert roster item", "", "")
	})
}

// DeleteRosterItem deletes the item of contactID from userID's roster. It
// returns ENOTFOUND when there is none and EINTERNAL on any other failure.
func (s *Store) DeleteRosterItem(ctx context.Context, userID, contactID string) error {
	res, err := s.write.ExecContext(ctx, "DELETE FROM roster_items WHERE user_id = ? AND contact_id = ?", userID, contactID)
	return affectedOne(res, err, "delete roster item", "Roster item not found.")
}

// FindRosterItems returns userID's items through the primary key, oldest
// first. It returns EINTERNAL when the query fails.
func (s *Store) FindRosterItems(ctx context.Context, userID string) ([]*aoba.RosterItem, error) {
	return queryAll(ctx, s.read, "find roster items", scanRosterItem,
		"SELECT user_id, contact_id, name, created_at FROM roster_items WHERE user_id = ? ORDER BY created_at, contact_id", userID)
}
