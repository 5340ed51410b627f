package sqlitestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"runtime"
	"strconv"
	"time"

	"github.com/aoba-chat/aoba"
)

// maxBatch bounds the messages committed in one transaction, so that one
// commit, and the wait of the first caller in it, stays short.
const maxBatch = 256

// maxSyncs bounds the syncs of the write-ahead log in progress at a time:
// while one batch is being synced, the next one is inserted and committed,
// and its own sync starts without waiting for the first (a sync covers what
// was committed before it started, see walFile). Once maxSyncs are in
// progress, new writes gather into the next batch until one ends; each
// commit writes every page it touches, so unbounded concurrency would turn
// into many small commits and a faster-growing log.
const maxSyncs = 4

// insertMessageSQL inserts one row of messageColumns, unless its sender
// already has a message with its client id: then it inserts nothing and
// fails nothing. A duplicate id still fails the statement.
const insertMessageSQL = "INSERT INTO messages (" + messageColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" +
	" ON CONFLICT (from_id, client_id) WHERE client_id IS NOT NULL DO NOTHING"

// findByClientIDSQL reads the message of a sender with a client id.
const findByClientIDSQL = "SELECT " + messageReadColumns + " FROM messages WHERE from_id = ? AND client_id = ?"

// CommitStats describes one transaction of the message committer, for a
// commit observer (see Store.ObserveCommits).
type CommitStats struct {
	// Messages is the number of messages the transaction stored (not
	// counting a resent client id, nor a conflicting id).
	Messages int
	// Queued is how long its first message waited for the committer: for
	// the transactions before it to be committed, and for a sync slot.
	Queued time.Duration
	// Commit is the time spent inserting the messages and committing them
	// to the write-ahead log (without syncing it), holding the write lock.
	Commit time.Duration
	// Sync is the time spent syncing the write-ahead log afterwards, which
	// the messages' callers wait for too.
	Sync time.Duration
}

// ObserveCommits has fn called with the figures of every message
// transaction committed and synced from now on, on the goroutine that
// synced it, after its callers are answered; nil stops the calls. fn must
// not block.
func (s *Store) ObserveCommits(fn func(CommitStats)) {
	if fn == nil {
		s.observer.Store(nil)
		return
	}
	s.observer.Store(&fn)
}

// messageWrite is one CreateMessage call handed to the committer.
type messageWrite struct {
	m      *aoba.Message
	answer error      // the row's result, sent once its commit is synced
	done   chan error // buffered: the committer never blocks answering
	at     time.Time  // when CreateMessage handed it over
}

// errClosed returns the answer to a write that is not taken before Close.
func errClosed() error {
	return aoba.Errorf(aoba.EUNAVAILABLE, "The message store is closed.")
}

// commitLoop is the committer goroutine; it runs until Close. It takes one
// write, then every write whose caller is already waiting, and, as soon as
// fewer than maxSyncs syncs are in progress (taking the writes that arrive
// meanwhile, up to maxBatch), commits them in one transaction without
// syncing it. A goroutine then syncs the write-ahead log and answers each
// caller, while the loop goes on with the next batch. Close stops it
// between two batches.
func (s *Store) commitLoop() {
	defer close(s.committerDone)
	for {
		var batch []*messageWrite
		select {
		case <-s.stop:
			return
		case w := <-s.writes:
			batch = append(batch, w)
		}
		// Let the callers answered by the previous syncs, which are
		// runnable but may not have queued their next write yet, run
		// first; without other runnable goroutines this returns at once.
		runtime.Gosched()
		batch = s.gather(batch)
	slot:
		for {
			s.held.Store(int64(len(batch)))
			if len(batch) >= maxBatch {
				s.slots <- struct{}{}
				break
			}
			select {
			case s.slots <- struct{}{}:
				break slot
			case w := <-s.writes:
				batch = s.gather(append(batch, w))
			}
		}
		s.held.Store(0)
		s.taken.Add(int64(len(batch)))
		start := time.Now()
		st := CommitStats{Queued: start.Sub(batch[0].at)}
		var committed []*messageWrite
		for pending := batch; len(pending) > 0; {
			pending, committed = s.commitMessages(pending)
		}
		if len(committed) == 0 {
			<-s.slots
			continue
		}
		st.Commit = time.Since(start)
		for _, w := range committed {
			if w.answer == nil {
				st.Messages++
			}
		}
		s.syncing.Add(1)
		go s.syncAndAnswer(committed, st)
	}
}

// gather appends to batch every write whose caller is already waiting, up
// to maxBatch in all.
func (s *Store) gather(batch []*messageWrite) []*messageWrite {
	for len(batch) < maxBatch {
		select {
		case w := <-s.writes:
			batch = append(batch, w)
		default:
			return batch
		}
	}
	return batch
}

// syncAndAnswer syncs the write-ahead log, which makes the commit of
// committed durable, frees the sync slot that commitLoop took for it and
// answers each caller with its row's result, or every caller with
// EINTERNAL when the sync fails: the rows are then committed, and visible,
// but none of them is acknowledged. A successful sync is then reported,
// with st, to the commit observer, if any.
func (s *Store) syncAndAnswer(committed []*messageWrite, st CommitStats) {
	defer s.syncing.Done()
	start := time.Now()
	err := s.syncWAL()
	st.Sync = time.Since(start)
	<-s.slots
	for _, w := range committed {
		if err != nil {
			w.done <- err
		} else {
			w.done <- w.answer
		}
	}
	if fn := s.observer.Load(); fn != nil && err == nil {
		(*fn)(st)
	}
}

// commitMessages inserts batch in one IMMEDIATE transaction and commits it
// with synchronous=NORMAL: the commit writes the transaction to the
// write-ahead log without syncing it, and the rows it returns as committed,
// each with its answer, must wait for a sync (syncAndAnswer). A row that
// violates a uniqueness constraint is answered with ECONFLICT and the others
// are still committed: SQLite undoes only the failed statement, not the
// transaction. A row whose client id its sender already used is not
// inserted; the message stored with it, read in the same transaction (it
// may be a row of this batch), is that row's answer, in an
// aoba.DuplicateMessageError. Any other failure of a row may have rolled
// the whole transaction back, so that row is answered at once with its
// error and the other rows are returned as retry, to be committed again by
// the caller in a new transaction. The same transaction updates the state
// of the conversations of the rows stored (recordConversations): one
// statement per conversation and one per (sender, conversation) of the
// batch, not per message. A failure to begin, to record or to commit is the
// immediate answer of every row.
//
// The writer connection is held for the whole transaction and set back to
// synchronous=FULL before it returns to the pool, so the store's other
// writes still sync as they commit; a connection that cannot be set back is
// discarded.
func (s *Store) commitMessages(batch []*messageWrite) (retry, committed []*messageWrite) {
	// The callers' contexts do not bound the transaction: once taken, a
	// write is committed or failed, whatever its caller does meanwhile.
	ctx := context.Background()
	s.gate.RLock()
	defer s.gate.RUnlock()
	conn, err := s.write.Conn(ctx)
	if err != nil {
		answerAll(batch, internal("writer connection", err))
		return nil, nil
	}
	defer releaseWriter(conn)
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 0"); err != nil {
		answerAll(batch, internal("defer sync", err))
		return nil, nil
	}
	tx, err := beginImmediate(ctx, conn)
	if err != nil {
		answerAll(batch, internal("begin transaction", err))
		return nil, nil
	}
	defer tx.Rollback()
	stmt := tx.StmtContext(ctx, s.insertMessage)
	for i, w := range batch {
		err := insertOrFind(ctx, tx, stmt, w.m)
		switch code := aoba.ErrorCode(err); {
		case code == "" || code == aoba.ECONFLICT:
			w.answer = err
		default:
			w.done <- err
			return append(batch[:i:i], batch[i+1:]...), nil
		}
	}
	var stored []*aoba.Message
	for _, w := range batch {
		if w.answer == nil {
			stored = append(stored, w.m)
		}
	}
	if err := s.recordConversations(ctx, tx, stored); err != nil {
		answerAll(batch, err)
		return nil, nil
	}
	if err := tx.Commit(); err != nil {
		answerAll(batch, internal("commit messages", err))
		return nil, nil
	}
	s.commits.Add(1)
	return nil, batch
}

// releaseWriter sets the writer connection conn back to synchronous=FULL
// and its busy timeout back to busyTimeoutMS, and returns it to the pool,
// or has the pool discard it when that fails.
func releaseWriter(conn *sql.Conn) {
	if _, err := conn.ExecContext(context.Background(),
		"PRAGMA synchronous = FULL; PRAGMA busy_timeout = "+strconv.Itoa(busyTimeoutMS)); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	conn.Close()
}

// beginImmediate begins an IMMEDIATE transaction on conn, whose busy
// timeout is 0. While another process holds the database's write lock (two
// pods sharing one data directory) it tries again every 50 µs to 1 ms, for
// up to busyTimeoutMS, where SQLite's busy handler would sleep 1, 2, 5,
// 10 ms and more between tries. It returns the last error.
func beginImmediate(ctx context.Context, conn *sql.Conn) (*sql.Tx, error) {
	deadline := time.Now().Add(busyTimeoutMS * time.Millisecond)
	for wait := 50 * time.Microsecond; ; wait = min(2*wait, time.Millisecond) {
		tx, err := conn.BeginTx(ctx, nil)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return tx, err
		}
		time.Sleep(wait)
	}
}

// insertOrFind inserts m with stmt, a statement of insertMessageSQL on q's
// connection. It returns nil when m was inserted, an
// aoba.DuplicateMessageError with the stored message, read through q, when
// the sender already used m.ClientID, ECONFLICT when m.ID is taken, and
// EINTERNAL on any other failure.
func insertOrFind(ctx context.Context, q queryer, stmt *sql.Stmt, m *aoba.Message) error {
	var clientID sql.NullString
	if m.ClientID != "" {
		clientID = sql.NullString{String: m.ClientID, Valid: true}
	}
	res, err := stmt.ExecContext(ctx, m.ID, m.Conversation, m.FromID, m.ToID, m.FromName, m.ToName, m.Content,
		string(m.Type), millis(m.Timestamp), clientID)
	if err != nil {
		return translate(err, "create message", "", "Message already exists.")
	}
	if n, err := res.RowsAffected(); err != nil {
		return internal("create message", err)
	} else if n == 1 {
		return nil
	}
	stored, err := scanMessage(q.QueryRowContext(ctx, findByClientIDSQL, m.FromID, m.ClientID))
	if err != nil {
		return internal("find message by client id", err)
	}
	return &aoba.DuplicateMessageError{Message: stored}
}

// answerAll answers every write of batch with err.
func answerAll(batch []*messageWrite, err error) {
	for _, w := range batch {
		w.done <- err
	}
}

// enqueueMessage hands m to the committer and waits for the commit that
// contains it to be synced. See CreateMessage.
func (s *Store) enqueueMessage(ctx context.Context, m *aoba.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &messageWrite{m: m, done: make(chan error, 1), at: time.Now()}
	s.waiting.Add(1)
	select {
	case s.writes <- w:
		s.waiting.Add(-1)
	case <-ctx.Done():
		s.waiting.Add(-1)
		return ctx.Err()
	case <-s.stop:
		s.waiting.Add(-1)
		return errClosed()
	}
	return <-w.done
}

// upsertConversationSQL adds a batch's messages to a conversation's state
// and returns its message count afterwards.
const upsertConversationSQL = "INSERT INTO conversations (key, user_a, user_b, seq, last_id) VALUES (?, ?, ?, ?, ?)" +
	" ON CONFLICT (key) DO UPDATE SET seq = seq + excluded.seq, last_id = max(last_id, excluded.last_id) RETURNING seq"

// upsertSenderReadSQL moves a sender's read marker forward to their
// messages: the id, the count and the time each only ever grow, so that
// a batch stored after one holding a greater id of the same sender still
// counts its messages as read.
const upsertSenderReadSQL = "INSERT INTO read_states (user_id, conversation, read_up_to, read_count, read_at) VALUES (?, ?, ?, ?, ?)" +
	" ON CONFLICT (user_id, conversation) DO UPDATE SET read_up_to = max(read_up_to, excluded.read_up_to)," +
	" read_count = max(read_count, excluded.read_count), read_at = max(read_at, excluded.read_at)"

// recordConversations updates, in tx and with the statements prepared at
// Open, the state of the conversations of
// msgs (stored in tx, in that order): each conversation's message count
// and last message id, and each sender's read marker, which moves to their
// greatest message id of the batch with the count up to their last message
// stored (its position in the conversation: the committer is the only
// writer, so the batch's messages take the last positions in order), as
// the MongoDB store does. It runs one statement per
// conversation and one per (sender, conversation), whatever the number of
// messages. It returns EINTERNAL when a statement fails.
func (s *Store) recordConversations(ctx context.Context, tx *sql.Tx, msgs []*aoba.Message) error {
	type senderKey struct{ user, conv string }
	type sender struct {
		m   *aoba.Message // the sender's message with the greatest id
		pos int64         // 1-based position of their last message among the batch's of the conversation
	}
	type conv struct {
		first *aoba.Message
		n     int64
		last  string
	}
	convs := map[string]*conv{}
	var order []string
	senders := map[senderKey]*sender{}
	var senderOrder []senderKey
	for _, m := range msgs {
		c := convs[m.Conversation]
		if c == nil {
			c = &conv{first: m}
			convs[m.Conversation] = c
			order = append(order, m.Conversation)
		}
		c.n++
		c.last = max(c.last, m.ID)
		k := senderKey{m.FromID, m.Conversation}
		sd := senders[k]
		if sd == nil {
			sd = &sender{}
			senders[k] = sd
			senderOrder = append(senderOrder, k)
		}
		sd.pos = c.n
		if sd.m == nil || m.ID > sd.m.ID {
			sd.m = m
		}
	}
	seqs := make(map[string]int64, len(convs))
	for _, key := range order {
		c := convs[key]
		var a, b sql.NullString
		if c.first.Type == aoba.MessageChat {
			a = sql.NullString{String: min(c.first.FromID, c.first.ToID), Valid: true}
			b = sql.NullString{String: max(c.first.FromID, c.first.ToID), Valid: true}
		}
		var seq int64
		if err := tx.StmtContext(ctx, s.upsertConv).QueryRowContext(ctx, key, a, b, c.n, c.last).Scan(&seq); err != nil {
			return internal("update conversation", err)
		}
		seqs[key] = seq
	}
	for _, k := range senderOrder {
		sd := senders[k]
		count := seqs[k.conv] - convs[k.conv].n + sd.pos
		if _, err := tx.StmtContext(ctx, s.upsertRead).ExecContext(ctx, k.user, k.conv, sd.m.ID, count, millis(sd.m.Timestamp)); err != nil {
			return internal("update read state", err)
		}
	}
	return nil
}
