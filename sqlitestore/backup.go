package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/aoba-chat/aoba"
)

// Backup writes a consistent copy of the database of data directory dir
// to the new file dst (FileMode), while a server may be writing to it,
// from this process or another on the same host.
//
// It runs SQLite's VACUUM INTO on a read-only connection: one read
// transaction, so the copy is the database as of one commit, with every
// write committed before Backup began and none that committed after the
// snapshot was taken. In WAL mode the reader blocks no writer (the
// server's sends go on; the WAL only grows until the copy ends). The copy
// is a compacted, self-contained database (no -wal file), checked with
// PRAGMA quick_check before Backup returns.
//
// It returns an EINVALID error when dir holds no database or dst exists,
// and an EINTERNAL error when the copy fails (a partial dst is removed).
func Backup(ctx context.Context, dir, dst string) error {
	src := filepath.Join(dir, FileName)
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		return aoba.Errorf(aoba.EINVALID, "no embedded store in %s (no %s)", dir, FileName)
	} else if err != nil {
		return aoba.Errorf(aoba.EINTERNAL, "stat %s: %v", src, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return aoba.Errorf(aoba.EINVALID, "%s already exists", dst)
	}
	if strings.ContainsRune(src, '?') {
		return aoba.Errorf(aoba.EINVALID, "data directory %s must not contain '?'", dir)
	}
	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return aoba.Errorf(aoba.EINTERNAL, "open %s: %v", src, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		_ = os.Remove(dst)
		return aoba.Errorf(aoba.EINTERNAL, "copy %s: %v", src, err)
	}
	if err := os.Chmod(dst, FileMode); err != nil {
		_ = os.Remove(dst)
		return aoba.Errorf(aoba.EINTERNAL, "restrict %s: %v", dst, err)
	}
	if err := Check(ctx, dst); err != nil {
		_ = os.Remove(dst)
		return err
	}
	return nil
}

// Check runs PRAGMA quick_check on the database file path, opened
// read-only, and reads its schema version. It returns an EINVALID error
// when the file is not a sound Aoba database, or one of a newer schema
// than this package migrates to.
func Check(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return aoba.Errorf(aoba.EINTERNAL, "open %s: %v", path, err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
		return aoba.Errorf(aoba.EINVALID, "%s is not a readable SQLite database: %v", path, err)
	} else if res != "ok" {
		return aoba.Errorf(aoba.EINVALID, "%s fails its integrity check: %s", path, res)
	}
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil || !v.Valid {
		return aoba.Errorf(aoba.EINVALID, "%s is not an Aoba database (no schema version)", path)
	} else if int(v.Int64) > len(migrations) {
		return aoba.Errorf(aoba.EINVALID, "%s has schema version %d, newer than this binary's %d", path, v.Int64, len(migrations))
	}
	return nil
}
