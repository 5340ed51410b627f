package sqlitestore

// MessagesWaiting returns how many CreateMessage calls of s wait for the
// committer to take them.
func MessagesWaiting(s *Store) int64 { return s.waiting.Load() }

// MaxSyncs is the number of syncs of the write-ahead log that may be in
// progress at a time.
const MaxSyncs = maxSyncs

// MessagesHeld returns how many messages the committer of s has received
// and keeps for its next transaction while every sync slot is busy.
func MessagesHeld(s *Store) int64 { return s.held.Load() }

// MessagesTaken returns how many messages the committer of s has taken.
func MessagesTaken(s *Store) int64 { return s.taken.Load() }

// MessageCommits returns how many message transactions s has committed.
func MessageCommits(s *Store) int64 { return s.commits.Load() }

// Migration returns the schema step of version v (1-based).
func Migration(v int) string { return migrations[v-1] }

// SetRestartFrames sets the log length past which the checkpointer holds
// the committer back so that the log starts over.
func SetRestartFrames(s *Store, n int64) { s.restartFrames.Store(n) }

// LogFrames returns the number of pages in the write-ahead log at the last
// checkpoint of s.
func LogFrames(s *Store) int64 { return s.logFrames.Load() }

// WriterAutocheckpoint returns the wal_autocheckpoint setting of the writer
// connection of s.
func WriterAutocheckpoint(s *Store) (int, error) {
	var v int
	err := s.write.QueryRow("PRAGMA wal_autocheckpoint").Scan(&v)
	return v, err
}

// WrapSyncWAL makes every sync of the write-ahead log of s call wrap with
// the real sync. Call it before the first CreateMessage.
func WrapSyncWAL(s *Store, wrap func(sync func() error) error) {
	sync := s.wal.sync
	s.syncWAL = func() error { return wrap(sync) }
}

// WriterSynchronous returns the synchronous setting of the writer
// connection of s (2 is FULL, 1 NORMAL), as the store's other writes find
// it.
func WriterSynchronous(s *Store) (int, error) {
	var v int
	err := s.write.QueryRow("PRAGMA synchronous").Scan(&v)
	return v, err
}
