package sqlitestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DirMode and FileMode are the permissions of the data directory this
// package creates and of the database files (aoba.db, aoba.db-wal and
// aoba.db-shm): the owner's only, whatever the umask, since they hold
// password hashes and every message.
const (
	DirMode  os.FileMode = 0o700
	FileMode os.FileMode = 0o600
)

// prepareFiles creates dir (DirMode) when missing and the database file at
// path (FileMode) before the driver opens it, and narrows to FileMode any
// of the database, -wal and -shm files that already exist with a wider
// mode. SQLite creates -wal and -shm with the main file's permissions, so
// they are FileMode too. An existing directory keeps its mode: it may be
// one the operator chose (AOBA_DATA_DIR=/srv/shared).
func prepareFiles(dir, path string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("create data directory %s: %w", dir, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stat %s: %w", filepath.Base(p), err)
		}
		if fi.Mode().Perm() != FileMode {
			if err := os.Chmod(p, FileMode); err != nil {
				return fmt.Errorf("restrict %s to mode %o: %w", p, FileMode, err)
			}
		}
	}
	return nil
}
