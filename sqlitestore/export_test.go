package sqlitestore

// MessagesWaiting returns how many CreateMessage calls of s wait for the
// committer to take them.
func MessagesWaiting(s *Store) int64 { return s.waiting.Load() }

// MessagesTaken returns how many messages the committer of s has taken.
func MessagesTaken(s *Store) int64 { return s.taken.Load() }

// MessageCommits returns how many message transactions s has committed.
func MessageCommits(s *Store) int64 { return s.commits.Load() }

// Migration returns the schema step of version v (1-based).
func Migration(v int) string { return migrations[v-1] }
