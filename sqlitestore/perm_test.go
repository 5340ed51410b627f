package sqlitestore_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/sqlitestore"
)

// umaskChildEnv, when set, makes TestFileModes act as the child process
// that opens a store under umask 0 in that directory.
const umaskChildEnv = "AOBA_SQLITESTORE_UMASK_CHILD_DIR"

// TestFileModes proves that the data directory is 0700 and the database,
// its -wal and its -shm files 0600 even under umask 0. The store runs in a
// child process, so that the umask does not leak into other tests.
func TestFileModes(t *testing.T) {
	if dir := os.Getenv(umaskChildEnv); dir != "" {
		syscall.Umask(0)
		ctx := context.Background()
		s, err := sqlitestore.Open(ctx, dir)
		if err != nil {
			t.Fatalf("child Open: %v", err)
		}
		u := &aoba.User{ID: aoba.NewID(), Username: "alice", PasswordHash: "x", CreatedAt: aoba.Now()}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("child CreateUser: %v", err)
		}
		// The -wal and -shm files exist while the store is open.
		wantModes(t, dir)
		if err := s.Close(); err != nil {
			t.Fatalf("child Close: %v", err)
		}
		return
	}

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"New", func(*testing.T, string) {}},
		{"WideFilesNarrowed", func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, suffix := range []string{"", "-wal", "-shm"} {
				if err := os.WriteFile(filepath.Join(dir, sqlitestore.FileName+suffix), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(dir, sqlitestore.FileName+suffix), 0o666); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			tc.setup(t, dir)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFileModes$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), umaskChildEnv+"="+dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("child under umask 0: %v\n%s", err, out)
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o700 {
				t.Errorf("data directory mode %o, want 700", got)
			}
			if fi, err := os.Stat(filepath.Join(dir, sqlitestore.FileName)); err != nil {
				t.Error(err)
			} else if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("database after Close: mode %o, want 600", got)
			}
		})
	}
}

// wantModes fails t unless the database, -wal and -shm files in dir exist
// with mode 0600 and dir itself has mode 0700.
func wantModes(t *testing.T, dir string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		p := filepath.Join(dir, sqlitestore.FileName+suffix)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), got)
		}
	}
	if fi, err := os.Stat(dir); err != nil {
		t.Error(err)
	} else if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("data directory: mode %o, want 700", got)
	}
}
