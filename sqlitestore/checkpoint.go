package sqlitestore

import (
	"context"
	"time"
)

// Checkpoints copy the write-ahead log back into the database file so that
// the log can start over. SQLite runs them, by default, inside the commit
// that takes the log past 1,000 pages, on the committing connection: the
// message committer would then stop for a checkpoint's copy and its two
// syncs (tens to hundreds of milliseconds on a busy disk) while every
// sender waits. The writer connection therefore never checkpoints
// (wal_autocheckpoint 0); checkpointLoop does, on a read connection,
// concurrently with the commits.
const (
	// checkpointInterval is the time between two passive checkpoints. A
	// checkpoint with nothing to copy costs no I/O.
	checkpointInterval = 250 * time.Millisecond
	// defaultRestartFrames is the log length (in pages, 32 MiB of 4 KiB
	// pages) past which a checkpoint briefly holds the committer back: a
	// passive checkpoint never copies the pages committed while it runs,
	// and SQLite starts the log over only when a write transaction begins
	// with every page copied.
	defaultRestartFrames = 8192
	// restartBackoff is the shortest time between two such checkpoints,
	// should the log not start over (a reader, or another process's
	// writer, was using it).
	restartBackoff = 2 * time.Second
)

// checkpointLoop runs a passive checkpoint every checkpointInterval until
// Close. When the log holds s.restartFrames pages or more, it runs one more
// holding the committer between two transactions (gate): that one copies
// only the pages of the last commits, and the committer's next transaction
// starts the log over. Failures are ignored: the next tick tries again.
func (s *Store) checkpointLoop() {
	defer close(s.checkpointerDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	var lastRestart time.Time
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		frames, err := s.checkpoint()
		if err != nil {
			continue
		}
		s.logFrames.Store(int64(frames))
		if int64(frames) < s.restartFrames.Load() || time.Since(lastRestart) < restartBackoff {
			continue
		}
		lastRestart = time.Now()
		s.gate.Lock()
		_, _ = s.checkpoint()
		s.gate.Unlock()
	}
}

// checkpoint runs a passive checkpoint, which copies the log pages that no
// reader needs into the database file and syncs it, without waiting for
// any lock. It returns the number of pages in the log, or EINTERNAL.
func (s *Store) checkpoint() (frames int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var busy, copied int
	if err := s.read.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		return 0, internal("checkpoint", err)
	}
	return frames, nil
}
