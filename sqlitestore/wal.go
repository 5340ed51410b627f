package sqlitestore

import (
	"os"
	"sync"
)

// walFile is the database's write-ahead log (FileName + "-wal"), opened
// only to sync it: the message committer commits with synchronous=NORMAL,
// which writes a transaction's frames to the log without syncing them, and
// then syncs the log through this file itself, outside SQLite's write lock,
// before it answers the transaction's callers (see commitLoop). On Linux
// fsync makes durable every write to the file made before it was called,
// through any descriptor, so a sync that starts after a commit returned
// covers that commit: its frames, and the log header SQLite rewrites when it
// restarts the log after a checkpoint (SQLite syncs the log before every
// checkpoint itself, even with synchronous=NORMAL).
//
// SQLite deletes the log only when the last connection to the database
// closes, after checkpointing it into the database file and syncing that.
// Should that happen while the store runs (another process, or the pool
// reopening every connection), a later log is a new file: sync compares the
// file at the path with the open one and opens the new one when they
// differ. It is safe for concurrent use.
type walFile struct {
	path string

	mu   sync.Mutex // guards f, info, old and shut
	f    *os.File
	info os.FileInfo
	old  []*os.File // replaced files, closed by close (a sync may still use them)
	shut bool
}

// file returns the open log, opening it again when the path names another
// file than the open one. It returns the error of stat or open.
func (w *walFile) file() (*os.File, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.shut {
		return nil, os.ErrClosed
	}
	info, err := os.Stat(w.path)
	if err != nil {
		return nil, err
	}
	if w.f != nil && os.SameFile(info, w.info) {
		return w.f, nil
	}
	f, err := os.Open(w.path)
	if err != nil {
		return nil, err
	}
	if w.f != nil {
		w.old = append(w.old, w.f)
	}
	w.f, w.info = f, info
	return f, nil
}

// sync syncs the log to disk. It returns EINTERNAL when the log cannot be
// opened or synced.
func (w *walFile) sync() error {
	f, err := w.file()
	if err != nil {
		return internal("open write-ahead log", err)
	}
	if err := f.Sync(); err != nil {
		return internal("sync write-ahead log", err)
	}
	return nil
}

// close closes the log's files; later syncs fail. It returns the first
// error.
func (w *walFile) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.shut = true
	var first error
	for _, f := range append(w.old, w.f) {
		if f == nil {
			continue
		}
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	w.f, w.old = nil, nil
	return first
}
