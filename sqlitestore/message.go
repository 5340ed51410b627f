package sqlitestore

import (
	"context"
	"database/sql"
	"strings"

	"github.com/aoba-chat/aoba"
)

// messageColumns are the columns a new message is inserted with.
const messageColumns = "id, conversation, from_id, to_id, from_name, to_name, content, type, ts, client_id"

// messageReadColumns are the columns scanMessage reads: messageColumns and
// the edit state (migration 7).
const messageReadColumns = messageColumns + ", edited_at, deleted"

// msgMessageNotFound is the ENOTFOUND message of an unknown message id.
const msgMessageNotFound = "Message not found."

// scanMessage reads one row of messageReadColumns.
func scanMessage(r rowScanner) (*aoba.Message, error) {
	var m aoba.Message
	var typ string
	var ts int64
	var clientID sql.NullString
	var editedAt sql.NullInt64
	var deleted bool
	if err := r.Scan(&m.ID, &m.Conversation, &m.FromID, &m.ToID, &m.FromName, &m.ToName, &m.Content, &typ, &ts, &clientID,
		&editedAt, &deleted); err != nil {
		return nil, err
	}
	m.Type = aoba.MessageType(typ)
	m.Timestamp = fromMillis(ts)
	m.ClientID = clientID.String
	if editedAt.Valid {
		at := fromMillis(editedAt.Int64)
		m.EditedAt = &at
	}
	m.Deleted = deleted
	return &m, nil
}

// CreateMessage stores m durably: it returns nil only after the
// transaction that contains m is committed and the write-ahead log is
// synced to disk after that commit, so an acknowledged message survives a
// process kill or a power loss.
//
// Concurrent calls are group-committed: the store's committer goroutine
// takes m together with every other message whose caller is already
// waiting (up to 256), inserts them in one transaction and syncs once, then
// answers each caller with the result of its own row (see the package
// documentation: the next batch commits while this one syncs). A row's failure is
// its caller's alone: a duplicate id fails only that call, and so does a
// client id that the sender already used, whose caller gets the message
// stored with it (see aoba.MessageStore). When ctx ends
// before the committer takes m, CreateMessage returns ctx.Err() and m is
// not written; once taken, m is committed or failed whatever ctx does, and
// CreateMessage waits for that outcome.
//
// It returns an *aoba.DuplicateMessageError when the sender has a message
// with m.ClientID (kept as long as that message), ECONFLICT when a message
// with that id exists, EUNAVAILABLE
// when the store is closed before m is taken, ctx.Err() as described
// above, and EINTERNAL on any other failure.
func (s *Store) CreateMessage(ctx context.Context, m *aoba.Message) error {
	return s.enqueueMessage(ctx, m)
}

// FindMessages returns one page of the messages matching f and the total
// number of matches without f.Offset and f.Limit. With f.AfterID the page
// is oldest first, otherwise newest first; both AfterID and BeforeID bound
// the ids when set; with f.SkipTotal the total is 0. A filter with neither
// Conversations nor ParticipantID matches nothing. It returns EINTERNAL
// when the query fails.
func (s *Store) FindMessages(ctx context.Context, f aoba.MessageFilter) ([]*aoba.Message, int, error) {
	var or []string
	var args []any
	switch len(f.Conversations) {
	case 0:
	case 1:
		or, args = append(or, "conversation = ?"), append(args, f.Conversations[0])
	default:
		or, args = append(or, "conversation IN (SELECT value FROM json_each(?))"), append(args, jsonList(f.Conversations))
	}
	if f.ParticipantID != "" {
		// Two terms, each matching one partial index on chat messages.
		or = append(or, "(type = 'chat' AND from_id = ?)", "(type = 'chat' AND to_id = ?)")
		args = append(args, f.ParticipantID, f.ParticipantID)
	}
	if len(or) == 0 {
		return []*aoba.Message{}, 0, nil
	}
	where := "(" + strings.Join(or, " OR ") + ")"
	if f.AfterID != "" {
		where, args = where+" AND id > ?", append(args, f.AfterID)
	}
	if f.BeforeID != "" {
		where, args = where+" AND id < ?", append(args, f.BeforeID)
	}
	order := " ORDER BY id DESC"
	if f.AfterID != "" {
		order = " ORDER BY id ASC"
	}
	limit := f.Limit
	if limit <= 0 {
		limit = -1
	}

	var msgs []*aoba.Message
	var total int
	err := s.withReadTx(ctx, func(tx *sql.Tx) error {
		if !f.SkipTotal {
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM messages WHERE "+where, args...).Scan(&total); err != nil {
				return internal("count messages", err)
			}
		}
		var err error
		msgs, err = queryAll(ctx, tx, "find messages", scanMessage,
			"SELECT "+messageReadColumns+" FROM messages WHERE "+where+order+" LIMIT ? OFFSET ?",
			append(args, limit, max(f.Offset, 0))...)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return msgs, total, nil
}

// FindMessageByID returns the message with that id, read through the
// primary key. It returns ENOTFOUND when there is none, EINTERNAL on any
// other failure.
func (s *Store) FindMessageByID(ctx context.Context, id string) (*aoba.Message, error) {
	m, err := scanMessage(s.read.QueryRowContext(ctx, "SELECT "+messageReadColumns+" FROM messages WHERE id = ?", id))
	if err != nil {
		return nil, translate(err, "find message by id", msgMessageNotFound, "")
	}
	return m, nil
}

// UpdateMessage stores m.Content, m.EditedAt and m.Deleted on the message
// with m.ID, committed before it returns. It returns ENOTFOUND when there
// is no such message, EINTERNAL on any other failure.
func (s *Store) UpdateMessage(ctx context.Context, m *aoba.Message) error {
	var editedAt sql.NullInt64
	if m.EditedAt != nil {
		editedAt = sql.NullInt64{Int64: millis(*m.EditedAt), Valid: true}
	}
	res, err := s.write.ExecContext(ctx, "UPDATE messages SET content = ?, edited_at = ?, deleted = ? WHERE id = ?",
		m.Content, editedAt, m.Deleted, m.ID)
	return affectedOne(res, err, "update message", msgMessageNotFound)
}
