// Package sqlitestore is the embedded store of the single-binary mode: it
// implements aoba.Store, durable sessions included, on one SQLite database
// file, through the pure-Go driver modernc.org/sqlite (no cgo).
//
// Writes go through a single connection, so concurrent writers queue in the
// connection pool instead of failing with SQLITE_BUSY; reads use a pool of
// read-only connections that see every committed write (WAL mode). Every
// write is synced to disk before a method returns: with synchronous=FULL,
// or, for messages, by the committer's own sync of the write-ahead log.
//
// # Group commit of messages
//
// Messages are the hot write path, and a sync to disk costs far more than
// an insert, so CreateMessage does not commit alone. One committer
// goroutine per Store receives writes on an unbuffered channel: it takes
// one, then every write whose caller is already blocked sending (at most
// 256), and inserts them all in one IMMEDIATE transaction with one commit
// on the writer connection. That commit runs with synchronous=NORMAL: it
// writes the transaction to the write-ahead log without syncing it, so the
// write lock is held only while the statements run. A goroutine then syncs
// the log (one fsync of the -wal file, outside SQLite's lock: see walFile)
// and only then answers each caller with its own row's result, so
// "CreateMessage returned nil" still means "the row is on disk", exactly as
// with synchronous=FULL. Meanwhile the committer goes on: the next batch is
// inserted and committed while the previous one is being synced, and its
// own sync starts at once, up to four syncs in progress (concurrent fsyncs
// of one file overlap on Linux; BENCHMARKS.md, "1:1 path", compares two
// and four); while four are, new callers gather into the next batch. A lone message commits and syncs at
// once (the committer never waits on a timer; it only yields once, so that
// callers just answered can queue their next write), and under load the
// number of syncs per second, not of messages, is what the disk bounds.
//
// The committer's transaction waits for another process's write lock (two
// pods sharing one data directory) by polling every 50 µs to 1 ms rather
// than through SQLite's busy handler, which sleeps 1, 2, 5, 10 ms and more.
// Checkpoints, which copy the log into the database file, never run inside
// a commit: the writer connection has wal_autocheckpoint off and a
// checkpointer goroutine runs passive checkpoints on a read connection,
// holding the committer back between two transactions only when the log
// has grown long enough that it must start over (checkpoint.go).
//
// A committed row is visible to readers from its commit, a sync's duration
// before its caller is answered: a power loss in that window loses rows
// that no caller was told are stored. A failed sync fails every caller of
// its batch (EINTERNAL), although their rows are committed: a client that
// retries with its client id gets the stored message. The store's other
// writes (users, groups, invitations, sessions, read markers) commit with
// synchronous=FULL on the same writer connection, which the committer holds
// for its whole transaction and sets back to FULL before releasing it.
//
// A batch is not all-or-nothing. A duplicate id fails that row's statement
// only (SQLite undoes the failed statement and keeps the transaction), and
// its caller alone gets ECONFLICT. A row whose sender already has a message
// with its client id (stored earlier, or earlier in the same batch) is not
// inserted (ON CONFLICT DO NOTHING on the partial unique index of
// migration 3): the committer reads that message in the same transaction
// and its caller alone gets it in an aoba.DuplicateMessageError, once the
// batch is committed and synced. Any other failure of a row may have
// rolled the transaction back, so that row's caller gets the error and the
// rest of the batch is committed again in a new transaction. A failed
// commit fails every row of its batch: none of them is acknowledged.
//
// The channel being unbuffered, "taken by the committer" is one instant:
// before it, a caller whose context ends, or a Store being closed, ends the
// call with ctx.Err() or EUNAVAILABLE and the row is never written; after
// it, the caller waits for its batch's commit and sync. Close stops the
// committer after the batch it is committing and waits for the syncs in
// progress, whose callers are all answered, and only then closes the
// database. Other writes keep their own statements or transactions on the
// same writer connection.
package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aoba-chat/aoba"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// FileName is the name of the database file inside the data directory.
const FileName = "aoba.db"

// busyTimeoutMS is how long, in milliseconds, a statement waits for a lock
// that another connection holds before it fails with SQLITE_BUSY.
const busyTimeoutMS = 10000

// purgeInterval is how often sessions expired for longer than
// sessionRetention, and events older than aoba.EventRetention, are removed.
const purgeInterval = 10 * time.Minute

var _ aoba.Store = (*Store)(nil)

// Store is the SQLite implementation of aoba.Store. It is safe for
// concurrent use.
type Store struct {
	write *sql.DB // one connection: every write, in IMMEDIATE transactions

	insertMessage *sql.Stmt // insertMessageSQL on write, prepared once
	upsertConv    *sql.Stmt // upsertConversationSQL on write, prepared once
	upsertRead    *sql.Stmt // upsertSenderReadSQL on write, prepared once
	read          *sql.DB   // read-only pool

	// writes hands CreateMessage calls to commitLoop (unbuffered: a write
	// is either taken or not).
	writes        chan *messageWrite
	committerDone chan struct{}
	waiting       atomic.Int64 // CreateMessage calls not yet received by commitLoop
	held          atomic.Int64 // messages received by commitLoop, waiting for a sync slot
	taken         atomic.Int64 // messages taken by commitLoop into a transaction
	commits       atomic.Int64 // message transactions committed
	// observer, when set, is called for every message transaction synced
	// (see ObserveCommits).
	observer atomic.Pointer[func(CommitStats)]

	// wal is the write-ahead log that syncWAL (wal.sync, or a test's
	// replacement) syncs after each message commit; slots holds one token
	// per sync in progress (capacity maxSyncs) and syncing counts their
	// goroutines.
	wal     *walFile
	syncWAL func() error
	slots   chan struct{}
	syncing sync.WaitGroup

	// gate is read-held by the committer for each transaction and held
	// by checkpointLoop while it checkpoints so that the log can start
	// over (see checkpoint.go).
	gate             sync.RWMutex
	checkpointerDone chan struct{}
	restartFrames    atomic.Int64 // defaultRestartFrames; tests lower it
	logFrames        atomic.Int64 // pages in the log at the last checkpoint

	stop chan struct{} // closed by Close: ends purgeLoop and commitLoop
	done chan struct{} // closed when purgeLoop ends
	once sync.Once
}

// Open creates dir if needed (DirMode), opens dir/aoba.db (FileMode, as are
// its -wal and -shm files, whatever the umask; WAL journal, synchronous
// FULL, foreign keys on, a busy timeout), applies the schema migrations that
// are not applied yet, deletes the sessions expired for more than a day and
// starts deleting them every few minutes. It returns an EINTERNAL error when the directory or the
// database cannot be opened or migrated.
func Open(ctx context.Context, dir string) (*Store, error) {
	path := filepath.Join(dir, FileName)
	if strings.ContainsRune(path, '?') {
		return nil, aoba.Errorf(aoba.EINTERNAL, "data directory %s must not contain '?'", dir)
	}
	if err := prepareFiles(dir, path); err != nil {
		return nil, aoba.Errorf(aoba.EINTERNAL, "%v", err)
	}
	common := "_pragma=busy_timeout(" + strconv.Itoa(busyTimeoutMS) + ")&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"

	// The writer never checkpoints: checkpointLoop does.
	write, err := sql.Open("sqlite", path+"?"+common+"&_pragma=journal_mode(WAL)&_pragma=wal_autocheckpoint(0)&_txlock=immediate")
	if err != nil {
		return nil, aoba.Errorf(aoba.EINTERNAL, "open %s: %v", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	// The writer connection switches the file to WAL before any reader
	// connects, and migrates the schema.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, aoba.Errorf(aoba.EINTERNAL, "open %s: %v", path, err)
	}
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, err
	}

	read, err := sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		write.Close()
		return nil, aoba.Errorf(aoba.EINTERNAL, "open %s: %v", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)

	var stmts [3]*sql.Stmt
	for i, q := range []string{insertMessageSQL, upsertConversationSQL, upsertSenderReadSQL} {
		if stmts[i], err = write.PrepareContext(ctx, q); err != nil {
			for _, st := range stmts[:i] {
				st.Close()
			}
			write.Close()
			read.Close()
			return nil, aoba.Errorf(aoba.EINTERNAL, "prepare message statements: %v", err)
		}
	}
	insertMessage := stmts[0]
	s := &Store{
		insertMessage: insertMessage,
		upsertConv:    stmts[1],
		upsertRead:    stmts[2],
		write:         write,
		read:          read,
		writes:        make(chan *messageWrite),
		committerDone: make(chan struct{}),
		wal:           &walFile{path: path + "-wal"},
		slots:         make(chan struct{}, maxSyncs),

		checkpointerDone: make(chan struct{}),
		stop:             make(chan struct{}),
		done:             make(chan struct{}),
	}
	if _, err := s.DeleteExpiredSessions(ctx, time.Now().Add(-sessionRetention)); err != nil {
		insertMessage.Close()
		s.upsertConv.Close()
		s.upsertRead.Close()
		write.Close()
		read.Close()
		return nil, err
	}
	s.syncWAL = s.wal.sync
	s.restartFrames.Store(defaultRestartFrames)
	go s.purgeLoop()
	go s.commitLoop()
	go s.checkpointLoop()
	return s, nil
}

// Close stops the purge loop, the message committer and the checkpointer
// and closes the database (SQLite checkpoints the whole log as the last
// connection closes). CreateMessage calls not yet taken by the committer fail with
// EUNAVAILABLE; Close waits for the batch being committed and the syncs in
// progress, whose callers get their results. Calling it twice is harmless. It returns an EINTERNAL
// error when the database cannot be closed cleanly.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		<-s.committerDone
		<-s.checkpointerDone
		s.syncing.Wait()
		err = errors.Join(s.insertMessage.Close(), s.upsertConv.Close(), s.upsertRead.Close(), s.read.Close(), s.write.Close(),
			s.wal.close())
	})
	if err != nil {
		return aoba.Errorf(aoba.EINTERNAL, "close sqlite store: %v", err)
	}
	return nil
}

// Ping runs a trivial query on a read connection. It returns an
// EUNAVAILABLE error when the database cannot be read (or the store is
// closed).
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return aoba.Errorf(aoba.EUNAVAILABLE, "sqlite store unavailable: %v", err)
	}
	return nil
}

// purgeLoop removes the sessions expired for longer than sessionRetention
// and the events older than aoba.EventRetention every purgeInterval until
// Close.
func (s *Store) purgeLoop() {
	defer close(s.done)
	t := time.NewTicker(purgeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, _ = s.DeleteExpiredSessions(ctx, time.Now().Add(-sessionRetention))
			_, _ = s.DeleteEventsBefore(ctx, time.Now().Add(-aoba.EventRetention))
			cancel()
		}
	}
}

// migrations are the schema steps, applied in order, each once, each in
// its own transaction. Append new steps; never edit an applied one.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE users (
	id             TEXT PRIMARY KEY,
	username       TEXT NOT NULL,
	username_lower TEXT NOT NULL,
	password_hash  TEXT NOT NULL,
	created_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_username_lower ON users (username_lower);

CREATE TABLE chat_groups (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	owner_id   TEXT NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE memberships (
	group_id  TEXT NOT NULL,
	user_id   TEXT NOT NULL,
	role      TEXT NOT NULL,
	joined_at INTEGER NOT NULL,
	PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX memberships_user ON memberships (user_id, joined_at);

CREATE TABLE invitations (
	id           TEXT PRIMARY KEY,
	group_id     TEXT NOT NULL,
	inviter_id   TEXT NOT NULL,
	invitee_id   TEXT NOT NULL,
	status       TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	responded_at INTEGER
);
CREATE INDEX invitations_invitee ON invitations (invitee_id, created_at);
CREATE INDEX invitations_group ON invitations (group_id, created_at);
CREATE UNIQUE INDEX invitations_pending ON invitations (group_id, invitee_id) WHERE status = 'pending';

CREATE TABLE messages (
	id           TEXT PRIMARY KEY,
	conversation TEXT NOT NULL,
	from_id      TEXT NOT NULL,
	to_id        TEXT NOT NULL,
	from_name    TEXT NOT NULL,
	to_name      TEXT NOT NULL,
	content      TEXT NOT NULL,
	type         TEXT NOT NULL,
	ts           INTEGER NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation, id);
CREATE INDEX messages_chat_from ON messages (from_id, id) WHERE type = 'chat';
CREATE INDEX messages_chat_to ON messages (to_id, id) WHERE type = 'chat';

CREATE TABLE revoked_sessions (
	session_id TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
CREATE TABLE revoked_user_sessions (
	user_id      TEXT NOT NULL,
	before_ms    INTEGER NOT NULL,
	keep_session TEXT NOT NULL,
	expires_at   INTEGER NOT NULL,
	PRIMARY KEY (user_id, before_ms, keep_session)
);
`,
	// 2: durable sessions, one row per signed-in device, replace the
	// revocation lists.
	`
CREATE TABLE sessions (
	id           TEXT PRIMARY KEY,
	user_id      TEXT NOT NULL,
	token_id     TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	user_agent   TEXT NOT NULL,
	ip           TEXT NOT NULL,
	revoked_at   INTEGER
);
CREATE INDEX sessions_user ON sessions (user_id, created_at, id);

DROP TABLE revoked_sessions;
DROP TABLE revoked_user_sessions;
`,
	// 3: idempotent sends: a sender's client id names at most one message,
	// for as long as that message exists.
	`
ALTER TABLE messages ADD COLUMN client_id TEXT;
CREATE UNIQUE INDEX messages_client_id ON messages (from_id, client_id) WHERE client_id IS NOT NULL;
`,
	// 4: the events of GET /api/sync, one row per (recipient, event),
	// read by recipient after a cursor; the primary key is that index.
	`
CREATE TABLE events (
	user_id    TEXT NOT NULL,
	id         TEXT NOT NULL,
	type       TEXT NOT NULL,
	data       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
CREATE INDEX events_created ON events (created_at);
`,
	// 5: blocks, read by blocker (the primary key) and by blocked user
	// (the presence and send checks ask both ways).
	`
CREATE TABLE blocks (
	blocker_id TEXT NOT NULL,
	blocked_id TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (blocker_id, blocked_id)
) WITHOUT ROWID;
CREATE INDEX blocks_blocked ON blocks (blocked_id, blocker_id);
`,
	// 6: conversation state and read markers. The message committer keeps
	// one row per conversation (message count, last message id) and the
	// senders' read markers up to date in the transaction that stores the
	// messages (see recordConversations), so neither listing conversations
	// nor unread counts scan history. 1:1 rows carry their two users
	// (user_a < user_b) for listing.
	`
CREATE TABLE conversations (
	key     TEXT PRIMARY KEY,
	user_a  TEXT,
	user_b  TEXT,
	seq     INTEGER NOT NULL,
	last_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX conversations_user_a ON conversations (user_a) WHERE user_a IS NOT NULL;
CREATE INDEX conversations_user_b ON conversations (user_b) WHERE user_b IS NOT NULL;

CREATE TABLE read_states (
	user_id      TEXT NOT NULL,
	conversation TEXT NOT NULL,
	read_up_to   TEXT NOT NULL,
	read_count   INTEGER NOT NULL,
	read_at      INTEGER NOT NULL,
	PRIMARY KEY (user_id, conversation)
) WITHOUT ROWID;
CREATE INDEX read_states_conversation ON read_states (conversation);

INSERT INTO conversations (key, user_a, user_b, seq, last_id)
SELECT conversation,
	CASE WHEN max(type) = 'chat' THEN min(min(from_id, to_id)) END,
	CASE WHEN max(type) = 'chat' THEN max(max(from_id, to_id)) END,
	count(*), max(id)
FROM messages GROUP BY conversation;
`,
	// 7: message edits and deletions: the time of the last edit (NULL
	// when never edited) and the deleted flag (content is then empty).
	`
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
`,
	// 8: accounts disabled by an administrator: when (NULL while enabled).
	`
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
`,
	// 9: roster items, read by owner (the primary key) and deleted by
	// contact when the contact's account is deleted.
	`
CREATE TABLE roster_items (
	user_id    TEXT NOT NULL,
	contact_id TEXT NOT NULL,
	name       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, contact_id)
) WITHOUT ROWID;
CREATE INDEX roster_items_contact ON roster_items (contact_id);
`,
}

// migrate creates schema_migrations and applies every step of migrations
// whose version (index + 1) is not recorded there yet.
func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at INTEGER NOT NULL
)`); err != nil {
		return aoba.Errorf(aoba.EINTERNAL, "create schema_migrations: %v", err)
	}
	for i, step := range migrations {
		version := i + 1
		if err := applyMigration(ctx, db, version, step); err != nil {
			return aoba.Errorf(aoba.EINTERNAL, "apply migration %d: %v", version, err)
		}
	}
	return nil
}

// applyMigration runs step and records version in one transaction, unless
// version is already recorded.
func applyMigration(ctx context.Context, db *sql.DB, version int, step string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, step); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
		version, time.Now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}

// SchemaVersion returns the highest applied migration. It returns an
// EINTERNAL error when the database cannot be read.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.read.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, internal("read schema version", err)
	}
	return int(v.Int64), nil
}

// withTx runs fn in an IMMEDIATE transaction on the writer connection and
// commits it when fn returns nil. Errors of fn are returned as they are;
// errors of the transaction itself become EINTERNAL.
func (s *Store) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return internal("begin transaction", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return internal("commit transaction", err)
	}
	return nil
}

// withReadTx runs fn in a read transaction, so that its queries see one
// snapshot.
func (s *Store) withReadTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return internal("begin read transaction", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// isBusy reports whether err is SQLITE_BUSY (with any extended code): a
// lock is held by another connection.
func isBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure.
func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return true
		}
	}
	return false
}

// translate turns a driver error into a domain error: sql.ErrNoRows into
// ENOTFOUND with notFound as message, a unique violation into ECONFLICT
// with conflict as message, and anything else into EINTERNAL naming op and
// the cause. Domain errors pass through.
func translate(err error, op, notFound, conflict string) error {
	var e *aoba.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return err
	case errors.Is(err, sql.ErrNoRows) && notFound != "":
		return aoba.Errorf(aoba.ENOTFOUND, "%s", notFound)
	case isUniqueViolation(err) && conflict != "":
		return aoba.Errorf(aoba.ECONFLICT, "%s", conflict)
	}
	return internal(op, err)
}

// internal returns an EINTERNAL error naming op and its cause.
func internal(op string, err error) error {
	return aoba.Errorf(aoba.EINTERNAL, "sqlite: %s: %v", op, err)
}

// millis returns t as unix milliseconds.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis returns the UTC time of unix milliseconds ms.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// jsonList encodes ss as a JSON array for json_each, so that a list of any
// length is one bound parameter.
func jsonList(ss []string) string {
	if ss == nil {
		ss = []string{}
	}
	b, _ := json.Marshal(ss)
	return string(b)
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// queryer is *sql.DB or *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queryAll runs query and scans every row with scan.
func queryAll[T any](ctx context.Context, q queryer, op string, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, internal(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// affectedOne translates the result of an UPDATE or DELETE by primary key:
// ENOTFOUND with notFound as message when no row changed.
func affectedOne(res sql.Result, err error, op, notFound string) error {
	if err != nil {
		return internal(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return internal(op, err)
	} else if n == 0 {
		return aoba.Errorf(aoba.ENOTFOUND, "%s", notFound)
	}
	return nil
}
