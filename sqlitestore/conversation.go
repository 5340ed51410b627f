package sqlitestore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/aoba-chat/aoba"
)

// conversationSelect reads conversation rows joined with their last message.
var conversationSelect = "SELECT c.key, c.seq, m." + strings.ReplaceAll(messageColumns, ", ", ", m.") +
	" FROM conversations c JOIN messages m ON m.id = c.last_id"

// scanConversation reads one row of conversationSelect.
func scanConversation(r rowScanner) (*aoba.ConversationState, error) {
	var c aoba.ConversationState
	var m aoba.Message
	var typ string
	var ts int64
	var clientID sql.NullString
	if err := r.Scan(&c.Key, &c.Seq, &m.ID, &m.Conversation, &m.FromID, &m.ToID, &m.FromName, &m.ToName, &m.Content, &typ, &ts, &clientID); err != nil {
		return nil, err
	}
	m.Type = aoba.MessageType(typ)
	m.Timestamp = fromMillis(ts)
	m.ClientID = clientID.String
	c.LastMessage, c.UpdatedAt = &m, m.Timestamp
	return &c, nil
}

const readStateColumns = "user_id, conversation, read_up_to, read_count, read_at"

// scanReadState reads one row of readStateColumns.
func scanReadState(r rowScanner) (*aoba.ReadState, error) {
	var rs aoba.ReadState
	var at int64
	if err := r.Scan(&rs.UserID, &rs.Conversation, &rs.ReadUpTo, &rs.ReadCount, &at); err != nil {
		return nil, err
	}
	rs.ReadAt = fromMillis(at)
	return &rs, nil
}

// FindConversations returns the conversations among keys and the 1:1
// conversations of userID, most recent first, with a last message id below
// before when it is set, at most limit (no limit when 0). It reads only
// conversation rows, through their indexes. It returns EINTERNAL when the
// query fails.
func (s *Store) FindConversations(ctx context.Context, userID string, keys []string, before string, limit int) ([]*aoba.ConversationState, error) {
	if before == "" {
		before = "~" // above every id
	}
	if limit <= 0 {
		limit = -1
	}
	return queryAll(ctx, s.read, "find conversations", scanConversation, conversationSelect+
		" WHERE c.key IN (SELECT key FROM conversations WHERE key IN (SELECT value FROM json_each(?))"+
		" UNION SELECT key FROM conversations WHERE user_a = ? UNION SELECT key FROM conversations WHERE user_b = ?)"+
		" AND c.last_id < ? ORDER BY c.last_id DESC LIMIT ?",
		jsonList(keys), userID, userID, before, limit)
}

// FindConversationKeys returns those of keys that have a conversation row
// (a message). It returns EINTERNAL when the query fails.
func (s *Store) FindConversationKeys(ctx context.Context, keys []string) ([]string, error) {
	return queryAll(ctx, s.read, "find conversation keys", func(r rowScanner) (string, error) {
		var k string
		return k, r.Scan(&k)
	}, "SELECT key FROM conversations WHERE key IN (SELECT value FROM json_each(?))", jsonList(keys))
}

// FindConversation returns the state of the conversation key: ENOTFOUND
// when it has no message, EINTERNAL when the query fails.
func (s *Store) FindConversation(ctx context.Context, key string) (*aoba.ConversationState, error) {
	c, err := scanConversation(s.read.QueryRowContext(ctx, conversationSelect+" WHERE c.key = ?", key))
	return c, translate(err, "find conversation", "Conversation not found.", "")
}

// FindReadStates returns the read markers of userID among keys. It returns
// EINTERNAL when the query fails.
func (s *Store) FindReadStates(ctx context.Context, userID string, keys []string) ([]*aoba.ReadState, error) {
	return queryAll(ctx, s.read, "find read states", scanReadState,
		"SELECT "+readStateColumns+" FROM read_states WHERE user_id = ? AND conversation IN (SELECT value FROM json_each(?))",
		userID, jsonList(keys))
}

// FindConversationReadStates returns every read marker of the conversation
// key. It returns EINTERNAL when the query fails.
func (s *Store) FindConversationReadStates(ctx context.Context, key string) ([]*aoba.ReadState, error) {
	return queryAll(ctx, s.read, "find conversation read states", scanReadState,
		"SELECT "+readStateColumns+" FROM read_states WHERE conversation = ? ORDER BY user_id", key)
}

// MarkRead moves the marker of userID in key forward to upTo in one
// transaction; the read count is the conversation's message count minus the
// messages after upTo (counted through the conversation index). It returns
// ENOTFOUND when upTo is not a message of key and EINTERNAL when a
// statement fails.
func (s *Store) MarkRead(ctx context.Context, userID, key, upTo string, at time.Time) (*aoba.ReadState, error) {
	var out *aoba.ReadState
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM messages WHERE id = ? AND conversation = ?", upTo, key).Scan(&n); err != nil {
			return internal("find message", err)
		} else if n == 0 {
			return aoba.Errorf(aoba.ENOTFOUND, "Message not found.")
		}
		var seq, after int64
		if err := tx.QueryRowContext(ctx, "SELECT seq FROM conversations WHERE key = ?", key).Scan(&seq); err != nil {
			return internal("find conversation", err)
		}
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM messages WHERE conversation = ? AND id > ?", key, upTo).Scan(&after); err != nil {
			return internal("count unread", err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO read_states ("+readStateColumns+") VALUES (?, ?, ?, ?, ?)"+
			" ON CONFLICT (user_id, conversation) DO UPDATE SET read_up_to = excluded.read_up_to,"+
			" read_count = max(read_count, excluded.read_count), read_at = excluded.read_at"+
			" WHERE excluded.read_up_to > read_up_to",
			userID, key, upTo, max(0, seq-after), millis(at)); err != nil {
			return internal("mark read", err)
		}
		var err error
		out, err = scanReadState(tx.QueryRowContext(ctx, "SELECT "+readStateColumns+" FROM read_states WHERE user_id = ? AND conversation = ?", userID, key))
		return translate(err, "find read state", "", "")
	})
	return out, err
}
