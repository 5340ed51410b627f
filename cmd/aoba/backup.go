package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aoba-chat/aoba/sqlitestore"
)

// A backup is a tar archive (gzip-compressed when its name ends in .gz or
// .tgz) of three files, each mode 0600:
//
//	aoba-backup.json  the manifest: format, creation time, the aoba build
//	aoba.db           a consistent copy of the embedded store (sqlitestore.Backup)
//	jwt-secret        the data directory's JWT secret, when it has one
//
// Unpacked into an empty directory (by `aoba restore` or by tar), it is a
// data directory a server starts on, whose tokens still verify. It holds
// password hashes and the secret that signs tokens: keep it as private as
// the data directory.
const (
	manifestName  = "aoba-backup.json"
	secretName    = "jwt-secret"
	backupFormat  = 1
	backupTimeout = time.Hour
)

// backupManifest is aoba-backup.json.
type backupManifest struct {
	Format    int       `json:"format"`
	CreatedAt time.Time `json:"created_at"`
	Version   string    `json:"aoba_version"`
	Files     []string  `json:"files"`
}

// backupCommand is `aoba backup FILE`.
func backupCommand(args, environ []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("backup", "backup FILE\n\nCopies the embedded store of AOBA_DATA_DIR and its JWT secret into FILE, a tar archive\n(gzip-compressed when FILE ends in .gz or .tgz), while the server keeps serving.\nRestore with `aoba restore FILE` into an empty AOBA_DATA_DIR.", stderr)
	c, file, code, ok := embeddedFileArgs(fs, args, environ, "back MongoDB up with mongodump", stderr)
	if !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), backupTimeout)
	defer cancel()
	m, err := writeBackup(ctx, c.DataDir, file)
	if err != nil {
		fmt.Fprintln(stderr, "aoba backup:", errorText(err))
		return 1
	}
	fmt.Fprintf(stdout, "backed up %s to %s: %s\n", c.DataDir, fs.Arg(0), strings.Join(m.Files, ", "))
	if !slices.Contains(m.Files, secretName) {
		fmt.Fprintf(stdout, "%s holds no %s: tokens are signed with AOBA_JWT_SECRET, which you keep with your configuration\n", c.DataDir, secretName)
	}
	return 0
}

// writeBackup writes the backup of data directory dir to the new file
// path, through a temporary file beside it that is synced, then renamed.
// It returns the backup's manifest, or an error when path exists or
// anything fails (path is then not created).
func writeBackup(ctx context.Context, dir, path string) (*backupManifest, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%s already exists", path)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".aoba-backup-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	db := filepath.Join(tmp, sqlitestore.FileName)
	if err := sqlitestore.Backup(ctx, dir, db); err != nil {
		return nil, err
	}
	m := &backupManifest{Format: backupFormat, CreatedAt: time.Now().UTC(), Version: Build().Version, Files: []string{sqlitestore.FileName}}
	secret, err := os.ReadFile(filepath.Join(dir, secretName))
	switch {
	case err == nil:
		m.Files = append(m.Files, secretName)
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read the JWT secret: %w", err)
	}

	archive := filepath.Join(tmp, "archive")
	f, err := os.OpenFile(archive, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := writeArchive(f, compressed(path), m, db, secret); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(archive, path); err != nil {
		return nil, err
	}
	syncDir(filepath.Dir(path))
	return m, nil
}

// compressed reports whether the backup at path is gzip-compressed, by its
// name.
func compressed(path string) bool {
	return strings.HasSuffix(path, ".gz") || strings.HasSuffix(path, ".tgz")
}

// writeArchive writes the manifest, the database file db and, when not
// nil, the secret to w as a tar archive, gzipped when zip is set.
func writeArchive(w io.Writer, zip bool, m *backupManifest, db string, secret []byte) error {
	var zw *gzip.Writer
	if zip {
		zw = gzip.NewWriter(w)
		w = zw
	}
	tw := tar.NewWriter(w)
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	add := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: m.CreatedAt, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if err := add(manifestName, int64(len(manifest)+1), bytes.NewReader(append(manifest, '\n'))); err != nil {
		return err
	}
	f, err := os.Open(db)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := add(sqlitestore.FileName, fi.Size(), f); err != nil {
		return err
	}
	if secret != nil {
		if err := add(secretName, int64(len(secret)), bytes.NewReader(secret)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if zw != nil {
		return zw.Close()
	}
	return nil
}

// embeddedFileArgs parses the flags and the one FILE argument of a backup
// or restore command and the configuration of environ, which must be the
// embedded mode (mongoHint says what to use with MongoDB instead). When
// ok is false the command exits with code, the reason written to stderr.
func embeddedFileArgs(fs *flag.FlagSet, args, environ []string, mongoHint string, stderr io.Writer) (c Config, file string, code int, ok bool) {
	if code, ok := parseFlags(fs, args); !ok {
		return c, "", code, false
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return c, "", 2, false
	}
	c, err := configOf(environ)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return c, "", 1, false
	}
	if !c.embedded() {
		fmt.Fprintf(stderr, "%s: AOBA_MONGO_URI is set: %s (README.md, \"Backup and restore\")\n", fs.Name(), mongoHint)
		return c, "", 1, false
	}
	return c, fs.Arg(0), 0, true
}

// restoreCommand is `aoba restore FILE`.
func restoreCommand(args, environ []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("restore", "restore FILE\n\nUnpacks a backup made by `aoba backup` into AOBA_DATA_DIR, which must not hold a database\nyet (move the old directory aside). Then start the server on it.", stderr)
	c, file, code, ok := embeddedFileArgs(fs, args, environ, "restore MongoDB with mongorestore", stderr)
	if !ok {
		return code
	}
	ctx, cancel := context.WithTimeout(context.Background(), backupTimeout)
	defer cancel()
	m, err := restoreBackup(ctx, file, c.DataDir)
	if err != nil {
		fmt.Fprintln(stderr, "aoba restore:", errorText(err))
		return 1
	}
	fmt.Fprintf(stdout, "restored %s (made %s by aoba %s) into %s: %s\n", fs.Arg(0), m.CreatedAt.Format(time.RFC3339), m.Version, c.DataDir, strings.Join(m.Files, ", "))
	return 0
}

// restoreBackup unpacks the backup at path into the data directory dir
// (created when missing), which must hold neither a database nor a JWT
// secret. Each file is written to a temporary name, the database checked
// (sqlitestore.Check), then both renamed into place. It returns the
// backup's manifest.
func restoreBackup(ctx context.Context, path, dir string) (*backupManifest, error) {
	for _, name := range []string{sqlitestore.FileName, sqlitestore.FileName + "-wal", secretName} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return nil, fmt.Errorf("%s already holds %s: restore into an empty data directory (move the old one aside first)", dir, name)
		}
	}
	if err := os.MkdirAll(dir, sqlitestore.DirMode); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		r = zr
	}

	staged := map[string]string{} // name in the archive → temporary file in dir
	defer func() {
		for _, tmp := range staged {
			os.Remove(tmp)
		}
	}()
	var m *backupManifest
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s is not an aoba backup: %w", path, err)
		}
		switch {
		case h.Typeflag != tar.TypeReg:
			return nil, fmt.Errorf("%s is not an aoba backup: entry %q is not a regular file", path, h.Name)
		case h.Name == manifestName:
			m = &backupManifest{}
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(m); err != nil {
				return nil, fmt.Errorf("%s: unreadable manifest: %w", path, err)
			}
			if m.Format != backupFormat {
				return nil, fmt.Errorf("%s is a backup of format %d; this aoba reads format %d", path, m.Format, backupFormat)
			}
		case h.Name == sqlitestore.FileName || h.Name == secretName:
			if _, dup := staged[h.Name]; dup {
				return nil, fmt.Errorf("%s holds %s twice", path, h.Name)
			}
			tmp := filepath.Join(dir, ".restore-"+h.Name)
			staged[h.Name] = tmp
			if err := writeFileFrom(tmp, tr); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s is not an aoba backup: unexpected entry %q", path, h.Name)
		}
	}
	if m == nil || staged[sqlitestore.FileName] == "" {
		return nil, fmt.Errorf("%s is not an aoba backup: no %s or no database", path, manifestName)
	}
	if err := sqlitestore.Check(ctx, staged[sqlitestore.FileName]); err != nil {
		return nil, err
	}
	for _, name := range []string{secretName, sqlitestore.FileName} {
		if tmp, ok := staged[name]; ok {
			if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
				return nil, err
			}
			delete(staged, name)
		}
	}
	syncDir(dir)
	return m, nil
}

// writeFileFrom writes r to the new file path (mode 0600) and syncs it.
func writeFileFrom(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, sqlitestore.FileMode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir syncs the directory dir, so that a rename in it is durable. A
// failure is ignored: some file systems cannot sync a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
