package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/sqlitestore"
)

// lockWriter takes the database's write lock in dir from a second
// connection (BEGIN IMMEDIATE), so that the store's committer blocks in its
// next BEGIN until the returned release is called. release is idempotent
// and also runs when the test ends.
func lockWriter(t *testing.T, dir string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlitestore.FileName)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatalf("open second connection: %v", err)
	}
	conn, err := db.Conn(testCtx(t))
	if err != nil {
		t.Fatalf("second connection: %v", err)
	}
	if _, err := conn.ExecContext(testCtx(t), "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("BEGIN IMMEDIATE: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
				t.Errorf("ROLLBACK: %v", err)
			}
			conn.Close()
			db.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// waitFor polls cond until it is true, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// storedContents returns the content of every message of conv, by id.
func storedContents(t *testing.T, s *sqlitestore.Store, conv string) map[string]string {
	t.Helper()
	msgs, _, err := s.FindMessages(testCtx(t), aoba.MessageFilter{Conversations: []string{conv}})
	if err != nil {
		t.Fatalf("FindMessages: %v", err)
	}
	out := make(map[string]string, len(msgs))
	for _, m := range msgs {
		out[m.ID] = m.Content
	}
	return out
}

// newMessage returns a message of conv with content.
func newMessage(conv, content string) *aoba.Message {
	return &aoba.Message{ID: aoba.NewID(), Conversation: conv, FromID: "a", ToID: "b", FromName: "a", ToName: "b",
		Content: content, Type: aoba.MessageChat, Timestamp: aoba.Now()}
}

// createConcurrently stores n messages of conv, numbered 0 to n-1, from n
// goroutines at once, and returns once every call has.
func createConcurrently(t *testing.T, ctx context.Context, s *sqlitestore.Store, conv string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.CreateMessage(ctx, newMessage(conv, fmt.Sprint(i))); err != nil {
				t.Errorf("CreateMessage: %v", err)
			}
		}()
	}
	wg.Wait()
}

// result is the outcome of one asynchronous CreateMessage.
type result struct {
	m   *aoba.Message
	err error
}

// createAsync calls CreateMessage(ctx, m) in a goroutine and returns the
// channel that receives its result.
func createAsync(ctx context.Context, s *sqlitestore.Store, m *aoba.Message) <-chan result {
	ch := make(chan result, 1)
	go func() { ch <- result{m, s.CreateMessage(ctx, m)} }()
	return ch
}

// blockCommitter takes the write lock of the store in dir and stores one
// message with ctx, returning once the committer has taken it (and is
// blocked in BEGIN). The message's result arrives after release.
func blockCommitter(t *testing.T, ctx context.Context, s *sqlitestore.Store, dir, conv string) (release func(), blocker <-chan result) {
	t.Helper()
	release = lockWriter(t, dir)
	taken := sqlitestore.MessagesTaken(s)
	blocker = createAsync(ctx, s, newMessage(conv, "blocker"))
	waitFor(t, "the committer to take the first message", func() bool { return sqlitestore.MessagesTaken(s) == taken+1 })
	return release, blocker
}

func TestGroupCommit(t *testing.T) {
	conv := aoba.DirectConversation("a", "b")

	t.Run("ConcurrentCallersAllStored", func(t *testing.T) {
		const callers, perCaller = 64, 50
		s := mustOpen(t, t.TempDir())
		ctx := testCtx(t)
		commits := sqlitestore.MessageCommits(s)
		ids := make([][]string, callers)
		errs := make(chan error, callers*perCaller)
		var wg sync.WaitGroup
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perCaller {
					m := newMessage(conv, fmt.Sprintf("%d/%d", c, i))
					if err := s.CreateMessage(ctx, m); err != nil {
						errs <- fmt.Errorf("caller %d message %d: %w", c, i, err)
						continue
					}
					ids[c] = append(ids[c], m.ID)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("CreateMessage: %v", err)
		}
		stored := storedContents(t, s, conv)
		if len(stored) != callers*perCaller {
			t.Fatalf("stored %d messages, want %d", len(stored), callers*perCaller)
		}
		for c := range callers {
			for i, id := range ids[c] {
				if want := fmt.Sprintf("%d/%d", c, i); stored[id] != want {
					t.Fatalf("message %s content = %q, want %q", id, stored[id], want)
				}
			}
		}
		if n := sqlitestore.MessageCommits(s) - commits; n >= callers*perCaller {
			t.Fatalf("%d commits for %d concurrent messages: nothing was grouped", n, callers*perCaller)
		}
	})

	t.Run("LoneDuplicate", func(t *testing.T) {
		// One caller at a time: every batch is a single row.
		s := mustOpen(t, t.TempDir())
		ctx := testCtx(t)
		m := newMessage(conv, "original")
		if err := s.CreateMessage(ctx, m); err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}
		dup := *m
		dup.Content = "copy"
		if err := s.CreateMessage(ctx, &dup); aoba.ErrorCode(err) != aoba.ECONFLICT {
			t.Fatalf("CreateMessage with a stored id: %v, want %s", err, aoba.ECONFLICT)
		}
		next := newMessage(conv, "next")
		if err := s.CreateMessage(ctx, next); err != nil {
			t.Fatalf("CreateMessage after a conflict: %v", err)
		}
		stored := storedContents(t, s, conv)
		if len(stored) != 2 || stored[m.ID] != "original" || stored[next.ID] != "next" {
			t.Fatalf("stored %v, want original and next", stored)
		}
	})

	t.Run("DuplicateFailsOnlyItsCaller", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, dir)
		ctx := testCtx(t)
		existing := newMessage(conv, "original")
		if err := s.CreateMessage(ctx, existing); err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}
		release, blocker := blockCommitter(t, ctx, s, dir, conv)
		commits := sqlitestore.MessageCommits(s)

		// One batch: fresh messages, a copy of a stored id, and two
		// callers with the same new id.
		var fresh []<-chan result
		for i := range 10 {
			fresh = append(fresh, createAsync(ctx, s, newMessage(conv, fmt.Sprintf("fresh %d", i))))
		}
		dupOfStored := *existing
		dupOfStored.Content = "copy"
		dup := createAsync(ctx, s, &dupOfStored)
		twin := newMessage(conv, "twin")
		twin2 := *twin
		twins := []<-chan result{createAsync(ctx, s, twin), createAsync(ctx, s, &twin2)}
		for i := range 10 {
			fresh = append(fresh, createAsync(ctx, s, newMessage(conv, fmt.Sprintf("fresh %d", 10+i))))
		}
		waitFor(t, "23 queued callers", func() bool { return sqlitestore.MessagesWaiting(s) == 23 })
		release()

		if r := <-blocker; r.err != nil {
			t.Fatalf("blocker: %v", r.err)
		}
		if r := <-dup; aoba.ErrorCode(r.err) != aoba.ECONFLICT {
			t.Fatalf("duplicate of a stored id: %v, want %s", r.err, aoba.ECONFLICT)
		}
		var twinErrs []error
		for _, ch := range twins {
			twinErrs = append(twinErrs, (<-ch).err)
		}
		if !(twinErrs[0] == nil && aoba.ErrorCode(twinErrs[1]) == aoba.ECONFLICT) &&
			!(twinErrs[1] == nil && aoba.ErrorCode(twinErrs[0]) == aoba.ECONFLICT) {
			t.Fatalf("two callers with one new id: %v, want one nil and one %s", twinErrs, aoba.ECONFLICT)
		}
		var ok []*aoba.Message
		for _, ch := range fresh {
			r := <-ch
			if r.err != nil {
				t.Fatalf("batch-mate %q of the duplicates: %v", r.m.Content, r.err)
			}
			ok = append(ok, r.m)
		}
		if n := sqlitestore.MessageCommits(s) - commits; n != 2 {
			t.Fatalf("%d commits after the lock, want 2 (the blocker's, then one for all 23)", n)
		}
		stored := storedContents(t, s, conv)
		if stored[existing.ID] != "original" || stored[twin.ID] != "twin" || len(stored) != 1+1+1+len(ok) {
			t.Fatalf("stored %v", stored)
		}
		for _, m := range ok {
			if stored[m.ID] != m.Content {
				t.Fatalf("message %q missing", m.Content)
			}
		}
	})

	t.Run("ClientIDDuplicateInOneBatch", func(t *testing.T) {
		// One batch: fresh messages, a reuse of a stored client id, and
		// three callers with one new client id. Each duplicate gets the
		// message stored with its client id, the batch commits once.
		dir := t.TempDir()
		s := mustOpen(t, dir)
		ctx := testCtx(t)
		existing := newMessage(conv, "original")
		existing.ClientID = "stored"
		if err := s.CreateMessage(ctx, existing); err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}
		release, blocker := blockCommitter(t, ctx, s, dir, conv)
		commits := sqlitestore.MessageCommits(s)

		var fresh, triplets []<-chan result
		for i := range 5 {
			fresh = append(fresh, createAsync(ctx, s, newMessage(conv, fmt.Sprintf("fresh %d", i))))
		}
		reuse := newMessage(conv, "reuse")
		reuse.ClientID = "stored"
		reused := createAsync(ctx, s, reuse)
		for i := range 3 {
			m := newMessage(conv, fmt.Sprintf("triplet %d", i))
			m.ClientID = "new"
			triplets = append(triplets, createAsync(ctx, s, m))
		}
		waitFor(t, "9 queued callers", func() bool { return sqlitestore.MessagesWaiting(s) == 9 })
		release()

		if r := <-blocker; r.err != nil {
			t.Fatalf("blocker: %v", r.err)
		}
		var dup *aoba.DuplicateMessageError
		if r := <-reused; !errors.As(r.err, &dup) || dup.Message.ID != existing.ID || dup.Message.Content != "original" {
			t.Fatalf("reuse of a stored client id: %v, want the stored message", r.err)
		}
		var winner *aoba.Message
		var dups []*aoba.Message
		for _, ch := range triplets {
			switch r := <-ch; {
			case r.err == nil && winner == nil:
				winner = r.m
			case errors.As(r.err, &dup):
				dups = append(dups, dup.Message)
			default:
				t.Fatalf("triplet %q: %v, want one stored and two duplicates", r.m.Content, r.err)
			}
		}
		if winner == nil || len(dups) != 2 {
			t.Fatalf("triplets: stored %v, %d duplicates; want one stored and two duplicates", winner, len(dups))
		}
		for _, d := range dups {
			if d.ID != winner.ID || d.Content != winner.Content || d.ClientID != "new" {
				t.Fatalf("duplicate %+v, want the stored %+v", d, winner)
			}
		}
		for _, ch := range fresh {
			if r := <-ch; r.err != nil {
				t.Fatalf("batch-mate %q of the duplicates: %v", r.m.Content, r.err)
			}
		}
		if n := sqlitestore.MessageCommits(s) - commits; n != 2 {
			t.Fatalf("%d commits after the lock, want 2 (the blocker's, then one for all 9)", n)
		}
		if stored := storedContents(t, s, conv); len(stored) != 1+1+1+len(fresh) || stored[winner.ID] != winner.Content {
			t.Fatalf("stored %v", stored)
		}
	})

	t.Run("OtherRowFailureRetriesTheRest", func(t *testing.T) {
		// A trigger fails one row with an error that is not a uniqueness
		// violation: its caller gets EINTERNAL, its batch-mates, before
		// and after it, are committed.
		dir := t.TempDir()
		s := mustOpen(t, dir)
		ctx := testCtx(t)
		if err := s.CreateMessage(ctx, newMessage(conv, "warm-up")); err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}
		db, err := sql.Open("sqlite", filepath.Join(dir, sqlitestore.FileName))
		if err != nil {
			t.Fatalf("open second connection: %v", err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, `CREATE TRIGGER reject BEFORE INSERT ON messages
WHEN NEW.content = 'reject' BEGIN SELECT RAISE(ABORT, 'rejected by test'); END`); err != nil {
			t.Fatalf("create trigger: %v", err)
		}
		release, blocker := blockCommitter(t, ctx, s, dir, conv)
		var mates []<-chan result
		for i := range 5 {
			mates = append(mates, createAsync(ctx, s, newMessage(conv, fmt.Sprintf("before %d", i))))
		}
		waitFor(t, "5 queued callers", func() bool { return sqlitestore.MessagesWaiting(s) == 5 })
		rejected := createAsync(ctx, s, newMessage(conv, "reject"))
		waitFor(t, "6 queued callers", func() bool { return sqlitestore.MessagesWaiting(s) == 6 })
		for i := range 5 {
			mates = append(mates, createAsync(ctx, s, newMessage(conv, fmt.Sprintf("after %d", i))))
		}
		waitFor(t, "11 queued callers", func() bool { return sqlitestore.MessagesWaiting(s) == 11 })
		release()

		if r := <-blocker; r.err != nil {
			t.Fatalf("blocker: %v", r.err)
		}
		r := <-rejected
		if aoba.ErrorCode(r.err) != aoba.EINTERNAL {
			t.Fatalf("rejected row: %v, want %s", r.err, aoba.EINTERNAL)
		}
		// The rejected caller is answered at once; its batch-mates after
		// their retried commit.
		var ok []*aoba.Message
		for _, ch := range mates {
			r := <-ch
			if r.err != nil {
				t.Fatalf("batch-mate %q: %v", r.m.Content, r.err)
			}
			ok = append(ok, r.m)
		}
		stored := storedContents(t, s, conv)
		for _, m := range ok {
			if stored[m.ID] != m.Content {
				t.Fatalf("batch-mate %q missing", m.Content)
			}
		}
		if _, ok := stored[r.m.ID]; ok || len(stored) != 1+1+len(mates) {
			t.Fatalf("stored %v, want warm-up, blocker and the 10 batch-mates", stored)
		}
	})

	t.Run("CancelledBeforeCall", func(t *testing.T) {
		s := mustOpen(t, t.TempDir())
		ctx, cancel := context.WithCancel(testCtx(t))
		cancel()
		if err := s.CreateMessage(ctx, newMessage(conv, "never")); !errors.Is(err, context.Canceled) {
			t.Fatalf("CreateMessage with a cancelled context: %v, want %v", err, context.Canceled)
		}
		if stored := storedContents(t, s, conv); len(stored) != 0 {
			t.Fatalf("stored %v, want nothing", stored)
		}
	})

	t.Run("CancelledWhileQueued", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, dir)
		blockerCtx, cancelBlocker := context.WithCancel(testCtx(t))
		defer cancelBlocker()
		release, blocker := blockCommitter(t, blockerCtx, s, dir, conv)

		queuedCtx, cancelQueued := context.WithCancel(testCtx(t))
		queued := createAsync(queuedCtx, s, newMessage(conv, "queued"))
		waitFor(t, "a queued caller", func() bool { return sqlitestore.MessagesWaiting(s) == 1 })
		cancelQueued()
		if r := <-queued; !errors.Is(r.err, context.Canceled) {
			t.Fatalf("queued caller after cancel: %v, want %v", r.err, context.Canceled)
		}

		// The blocker was taken: cancelling it does not end the call,
		// which returns the commit's result.
		cancelBlocker()
		select {
		case r := <-blocker:
			t.Fatalf("taken caller returned %v before its commit", r.err)
		case <-time.After(50 * time.Millisecond):
		}
		release()
		b := <-blocker
		if b.err != nil {
			t.Fatalf("taken caller whose context ended: %v, want nil", b.err)
		}
		stored := storedContents(t, s, conv)
		if len(stored) != 1 || stored[b.m.ID] != "blocker" {
			t.Fatalf("stored %v, want only the blocker", stored)
		}
	})

	t.Run("CloseFailsQueuedWrites", func(t *testing.T) {
		dir := t.TempDir()
		s, err := sqlitestore.Open(testCtx(t), dir)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		ctx := testCtx(t)
		release, blocker := blockCommitter(t, ctx, s, dir, conv)
		queued := createAsync(ctx, s, newMessage(conv, "queued"))
		waitFor(t, "a queued caller", func() bool { return sqlitestore.MessagesWaiting(s) == 1 })

		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		if r := <-queued; aoba.ErrorCode(r.err) != aoba.EUNAVAILABLE {
			t.Fatalf("queued caller during Close: %v, want %s", r.err, aoba.EUNAVAILABLE)
		}
		select {
		case err := <-closed:
			t.Fatalf("Close returned %v before the batch being committed was answered", err)
		case <-time.After(50 * time.Millisecond):
		}
		release()
		b := <-blocker
		if b.err != nil {
			t.Fatalf("caller taken before Close: %v, want nil", b.err)
		}
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.CreateMessage(ctx, newMessage(conv, "late")); aoba.ErrorCode(err) != aoba.EUNAVAILABLE {
			t.Fatalf("CreateMessage after Close: %v, want %s", err, aoba.EUNAVAILABLE)
		}

		s = mustOpen(t, dir)
		stored := storedContents(t, s, conv)
		if len(stored) != 1 || stored[b.m.ID] != "blocker" {
			t.Fatalf("stored after reopen %v, want only the blocker", stored)
		}
	})
}

// syncGate holds every sync of a store's write-ahead log until the test
// gives it a verdict: nil runs the real sync, an error fails it instead.
// When the test ends, held and later syncs run for real.
type syncGate struct {
	calls chan chan<- error
	open  chan struct{}
}

// gateSyncs installs a syncGate on s, before its first CreateMessage.
func gateSyncs(t *testing.T, s *sqlitestore.Store) *syncGate {
	g := &syncGate{calls: make(chan chan<- error, 64), open: make(chan struct{})}
	sqlitestore.WrapSyncWAL(s, func(sync func() error) error {
		verdict := make(chan error, 1)
		g.calls <- verdict
		select {
		case err := <-verdict:
			if err != nil {
				return err
			}
		case <-g.open:
		}
		return sync()
	})
	t.Cleanup(func() { close(g.open) }) // runs before mustOpen's Close
	return g
}

// next returns the verdict channel of the next sync, failing the test when
// none starts within 10 s.
func (g *syncGate) next(t *testing.T) chan<- error {
	t.Helper()
	select {
	case v := <-g.calls:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a sync of the write-ahead log")
		return nil
	}
}

// pending fails the test when one of chs already has a result.
func pending(t *testing.T, what string, chs ...<-chan result) {
	t.Helper()
	for _, ch := range chs {
		select {
		case r := <-ch:
			t.Fatalf("%s answered (%v) before its sync", what, r.err)
		default:
		}
	}
}

func TestDeferredSync(t *testing.T) {
	conv := aoba.DirectConversation("a", "b")

	t.Run("NextBatchCommitsWhileOneSyncs", func(t *testing.T) {
		// The first batch's sync is held: its row is committed (readers
		// see it) but its caller is not answered. The second batch
		// commits meanwhile and its sync starts without waiting for the
		// first; so do batches up to MaxSyncs in progress. A last batch
		// of five gathers while they are all held; its sync fails, which
		// fails its five callers and nobody else.
		s := mustOpen(t, t.TempDir())
		ctx := testCtx(t)
		g := gateSyncs(t, s)

		first := newMessage(conv, "first")
		firstRes := createAsync(ctx, s, first)
		firstSync := g.next(t)
		if stored := storedContents(t, s, conv); stored[first.ID] != "first" {
			t.Fatalf("stored %v while the first sync is held, want the first row committed", stored)
		}
		pending(t, "the first caller", firstRes)

		var others []<-chan result
		var otherSyncs []chan<- error
		for i := 1; i < sqlitestore.MaxSyncs; i++ {
			m := newMessage(conv, fmt.Sprintf("other %d", i))
			others = append(others, createAsync(ctx, s, m))
			otherSyncs = append(otherSyncs, g.next(t)) // started while the first is still held
			if stored := storedContents(t, s, conv); stored[m.ID] != m.Content {
				t.Fatalf("stored %v while %d syncs are held, want row %q committed", stored, i, m.Content)
			}
		}

		var third []<-chan result
		var thirdIDs []string
		for i := range 5 {
			m := newMessage(conv, fmt.Sprintf("third %d", i))
			thirdIDs = append(thirdIDs, m.ID)
			third = append(third, createAsync(ctx, s, m))
		}
		waitFor(t, "5 writes held by the committer", func() bool {
			return sqlitestore.MessagesHeld(s) == 5 && sqlitestore.MessagesWaiting(s) == 0
		})
		stored := storedContents(t, s, conv)
		for _, id := range thirdIDs {
			if _, ok := stored[id]; ok {
				t.Fatalf("held write %s committed while every sync slot is busy", id)
			}
		}
		commits := sqlitestore.MessageCommits(s)
		firstSync <- nil
		if r := <-firstRes; r.err != nil {
			t.Fatalf("first caller after its sync: %v", r.err)
		}
		thirdSync := g.next(t)
		if n := sqlitestore.MessageCommits(s) - commits; n != 1 {
			t.Fatalf("%d commits for the five held writes, want 1", n)
		}
		pending(t, "a caller of the third batch", third...)
		thirdSync <- errors.New("disk on fire")
		for _, ch := range third {
			if r := <-ch; aoba.ErrorCode(r.err) != aoba.EINTERNAL {
				t.Fatalf("caller of the batch whose sync failed: %v, want %s", r.err, aoba.EINTERNAL)
			}
		}
		pending(t, "a caller of a batch synced before the failed one", others...)
		for i, v := range otherSyncs {
			v <- nil
			if r := <-others[i]; r.err != nil {
				t.Fatalf("caller %q after its sync: %v", r.m.Content, r.err)
			}
		}

		// Later batches sync for real again.
		next := createAsync(ctx, s, newMessage(conv, "next"))
		g.next(t) <- nil
		if r := <-next; r.err != nil {
			t.Fatalf("CreateMessage after a failed sync: %v", r.err)
		}
	})

	t.Run("OtherWritesStayFull", func(t *testing.T) {
		// The committer's transactions run with synchronous=NORMAL; the
		// writer connection goes back to FULL for every other write.
		s := mustOpen(t, t.TempDir())
		createConcurrently(t, testCtx(t), s, conv, 20)
		if v, err := sqlitestore.WriterSynchronous(s); err != nil || v != 2 {
			t.Fatalf("writer connection synchronous = %d, %v; want 2 (FULL)", v, err)
		}
	})

	t.Run("CloseWaitsForSyncs", func(t *testing.T) {
		dir := t.TempDir()
		s, err := sqlitestore.Open(testCtx(t), dir)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		ctx := testCtx(t)
		g := gateSyncs(t, s)
		m := newMessage(conv, "syncing")
		res := createAsync(ctx, s, m)
		verdict := g.next(t)
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		select {
		case err := <-closed:
			t.Fatalf("Close returned %v while a sync was in progress", err)
		case <-time.After(50 * time.Millisecond):
		}
		verdict <- nil
		if r := <-res; r.err != nil {
			t.Fatalf("caller whose sync was in progress at Close: %v", r.err)
		}
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		s = mustOpen(t, dir)
		if stored := storedContents(t, s, conv); stored[m.ID] != "syncing" {
			t.Fatalf("stored after reopen %v, want the synced row", stored)
		}
	})
}

// TestObserveCommits: the commit observer hears of every message
// transaction once it is synced, with the messages it stored (a resent
// client id stores none), until it is removed.
func TestObserveCommits(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	ctx := testCtx(t)
	conv := aoba.DirectConversation("a", "b")
	var mu sync.Mutex
	var seen []sqlitestore.CommitStats
	s.ObserveCommits(func(cs sqlitestore.CommitStats) {
		mu.Lock()
		seen = append(seen, cs)
		mu.Unlock()
	})
	observed := func() (txs, msgs int) {
		mu.Lock()
		defer mu.Unlock()
		for _, cs := range seen {
			if cs.Queued < 0 || cs.Commit <= 0 || cs.Sync <= 0 {
				t.Errorf("stats %+v: want positive durations", cs)
			}
			msgs += cs.Messages
		}
		return len(seen), msgs
	}
	const n = 40
	createConcurrently(t, ctx, s, conv, n)
	// The observer runs after the callers are answered.
	waitFor(t, "40 messages observed", func() bool { _, msgs := observed(); return msgs == n })
	txs, _ := observed()
	if commits := int(sqlitestore.MessageCommits(s)); txs != commits {
		t.Errorf("%d transactions observed, %d committed", txs, commits)
	}

	once := newMessage(conv, "once")
	once.ClientID = "c1"
	if err := s.CreateMessage(ctx, once); err != nil {
		t.Fatal(err)
	}
	again := newMessage(conv, "again")
	again.ClientID = "c1"
	var dup *aoba.DuplicateMessageError
	if err := s.CreateMessage(ctx, again); !errors.As(err, &dup) {
		t.Fatalf("resent client id: %v, want a duplicate", err)
	}
	waitFor(t, "both transactions observed", func() bool { txs2, _ := observed(); return txs2 == txs+2 })
	if _, msgs := observed(); msgs != n+1 {
		t.Errorf("%d messages observed, want %d: the resent client id stored nothing", msgs, n+1)
	}

	s.ObserveCommits(nil)
	if err := s.CreateMessage(ctx, newMessage(conv, "unobserved")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if txs3, _ := observed(); txs3 != txs+2 {
		t.Errorf("%d transactions observed after the observer was removed, want %d", txs3, txs+2)
	}
}
