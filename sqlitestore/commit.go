package sqlitestore

import (
	"context"
	"database/sql"
	"runtime"

	"github.com/aoba-chat/aoba"
)

// maxBatch bounds the messages committed in one transaction, so that one
// commit, and the wait of the first caller in it, stays short.
const maxBatch = 256

// insertMessageSQL inserts one row of messageColumns.
const insertMessageSQL = "INSERT INTO messages (" + messageColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"

// messageWrite is one CreateMessage call handed to the committer.
type messageWrite struct {
	m    *aoba.Message
	done chan error // buffered: the committer never blocks answering
}

// errClosed returns the answer to a write that is not taken before Close.
func errClosed() error {
	return aoba.Errorf(aoba.EUNAVAILABLE, "The message store is closed.")
}

// commitLoop is the committer goroutine; it runs until Close. It takes one
// write, then every write whose caller is already waiting (up to maxBatch),
// commits them in one transaction and answers each caller.
func (s *Store) commitLoop() {
	defer close(s.committerDone)
	batch := make([]*messageWrite, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case <-s.stop:
			return
		case w := <-s.writes:
			batch = append(batch, w)
		}
		// Let the callers answered by the previous commit, which are
		// runnable but may not have queued their next write yet, run
		// first; without other runnable goroutines this returns at once.
		runtime.Gosched()
	gather:
		for len(batch) < maxBatch {
			select {
			case w := <-s.writes:
				batch = append(batch, w)
			default:
				break gather
			}
		}
		s.taken.Add(int64(len(batch)))
		for pending := batch; len(pending) > 0; {
			pending = s.commitMessages(pending)
		}
		clear(batch) // the callers' messages are theirs again
	}
}

// commitMessages inserts batch in one IMMEDIATE transaction, commits it
// (one sync to disk) and answers every caller. A row that violates a
// uniqueness constraint is answered with ECONFLICT and the others are still
// committed: SQLite undoes only the failed statement, not the transaction.
// Any other failure of a row may have rolled the whole transaction back, so
// that row is answered with its error and the other rows are returned, to
// be committed again by the caller in a new transaction. A failure to
// begin or commit is the answer of every row. A batch of one row is one
// autocommit statement, which is the same single synced transaction
// without the BEGIN and COMMIT round trips.
func (s *Store) commitMessages(batch []*messageWrite) (retry []*messageWrite) {
	// The callers' contexts do not bound the transaction: once taken, a
	// write is committed or failed, whatever its caller does meanwhile.
	ctx := context.Background()
	if len(batch) == 1 {
		err := execInsertMessage(ctx, s.insertMessage, batch[0].m)
		if err == nil {
			s.commits.Add(1)
		}
		batch[0].done <- translate(err, "create message", "", "Message already exists.")
		return nil
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		answerAll(batch, internal("begin transaction", err))
		return nil
	}
	defer tx.Rollback()
	stmt := tx.StmtContext(ctx, s.insertMessage)
	var conflicts []int
	for i, w := range batch {
		err := execInsertMessage(ctx, stmt, w.m)
		switch {
		case err == nil:
		case isUniqueViolation(err):
			conflicts = append(conflicts, i)
		default:
			w.done <- internal("create message", err)
			return append(batch[:i:i], batch[i+1:]...)
		}
	}
	if err := tx.Commit(); err != nil {
		answerAll(batch, internal("commit messages", err))
		return nil
	}
	s.commits.Add(1)
	for i, w := range batch {
		if len(conflicts) > 0 && conflicts[0] == i {
			conflicts = conflicts[1:]
			w.done <- aoba.Errorf(aoba.ECONFLICT, "Message already exists.")
			continue
		}
		w.done <- nil
	}
	return nil
}

// execInsertMessage inserts m with stmt, a statement of insertMessageSQL.
func execInsertMessage(ctx context.Context, stmt *sql.Stmt, m *aoba.Message) error {
	_, err := stmt.ExecContext(ctx, m.ID, m.Conversation, m.FromID, m.ToID, m.FromName, m.ToName, m.Content,
		string(m.Type), millis(m.Timestamp))
	return err
}

// answerAll answers every write of batch with err.
func answerAll(batch []*messageWrite, err error) {
	for _, w := range batch {
		w.done <- err
	}
}

// enqueueMessage hands m to the committer and waits for the commit that
// contains it. See CreateMessage.
func (s *Store) enqueueMessage(ctx context.Context, m *aoba.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &messageWrite{m: m, done: make(chan error, 1)}
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
