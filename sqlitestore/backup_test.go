package sqlitestore_test

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/sqlitestore"
)

// TestBackup copies the database while writers keep committing: every
// message committed before Backup began is in the copy, which opens as a
// store of its own.
func TestBackup(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	conv := aoba.GroupConversation("backup-test")

	var (
		mu      sync.Mutex
		acked   []string
		stop    atomic.Bool
		wg      sync.WaitGroup
		failure atomic.Value
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				m := &aoba.Message{ID: aoba.NewID(), Conversation: conv, FromID: "a", ToID: "backup-test",
					Content: strconv.Itoa(i), Type: aoba.MessageGroupChat, Timestamp: aoba.Now()}
				if err := s.CreateMessage(testCtx(t), m); err != nil {
					failure.Store(err)
					return
				}
				mu.Lock()
				acked = append(acked, m.ID)
				mu.Unlock()
			}
		}()
	}
	// Let the writers commit some, then take what is acknowledged now.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 {
			break
		}
		if err, _ := failure.Load().(error); err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	before := append([]string(nil), acked...)
	mu.Unlock()

	copyDir := t.TempDir()
	dst := filepath.Join(copyDir, sqlitestore.FileName)
	if err := sqlitestore.Backup(testCtx(t), dir, dst); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	stop.Store(true)
	wg.Wait()
	if err, _ := failure.Load().(error); err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	mu.Lock()
	during := len(acked) - len(before)
	mu.Unlock()
	t.Logf("%d messages acknowledged before the backup, %d during or after it", len(before), during)

	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != sqlitestore.FileMode {
		t.Fatalf("copy: %v, mode %v; want %o", err, fi.Mode().Perm(), sqlitestore.FileMode)
	}
	restored := mustOpen(t, copyDir)
	msgs, total, err := restored.FindMessages(testCtx(t), aoba.MessageFilter{Conversations: []string{conv}})
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		have[m.ID] = true
	}
	for _, id := range before {
		if !have[id] {
			t.Fatalf("message %s, acknowledged before the backup, is not in the copy (%d of %d messages there)", id, len(msgs), total)
		}
	}

	t.Run("ErrNoDatabase", func(t *testing.T) {
		err := sqlitestore.Backup(testCtx(t), t.TempDir(), filepath.Join(t.TempDir(), "x.db"))
		if aoba.ErrorCode(err) != aoba.EINVALID {
			t.Fatalf("Backup of an empty directory = %v, want EINVALID", err)
		}
	})
	t.Run("ErrTargetExists", func(t *testing.T) {
		if err := sqlitestore.Backup(testCtx(t), dir, dst); aoba.ErrorCode(err) != aoba.EINVALID {
			t.Fatalf("Backup onto an existing file = %v, want EINVALID", err)
		}
	})
	t.Run("CheckRefusesOtherFiles", func(t *testing.T) {
		junk := filepath.Join(t.TempDir(), "junk.db")
		if err := os.WriteFile(junk, []byte("not a database, not at all, not even close"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := sqlitestore.Check(testCtx(t), junk); aoba.ErrorCode(err) != aoba.EINVALID {
			t.Fatalf("Check(junk) = %v, want EINVALID", err)
		}
	})
}
