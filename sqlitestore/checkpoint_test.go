package sqlitestore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/sqlitestore"
)

// bigMessage returns a message of conv with 4,000 bytes of content, so
// that a few hundred of them fill the write-ahead log.
func bigMessage(conv string) *aoba.Message {
	return newMessage(conv, strings.Repeat("x", 4000))
}

func TestCheckpoints(t *testing.T) {
	conv := aoba.DirectConversation("a", "b")

	t.Run("OffTheCommitter", func(t *testing.T) {
		// The writer never checkpoints; the checkpointer copies the log
		// into the database file while the store is open.
		dir := t.TempDir()
		s := mustOpen(t, dir)
		ctx := testCtx(t)
		if v, err := sqlitestore.WriterAutocheckpoint(s); err != nil || v != 0 {
			t.Fatalf("writer wal_autocheckpoint = %d, %v; want 0", v, err)
		}
		db := filepath.Join(dir, sqlitestore.FileName)
		before, err := os.Stat(db)
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			if err := s.CreateMessage(ctx, bigMessage(conv)); err != nil {
				t.Fatalf("CreateMessage: %v", err)
			}
		}
		waitFor(t, "the database file to receive the messages", func() bool {
			fi, err := os.Stat(db)
			return err == nil && fi.Size() >= before.Size()+200*4000
		})
	})

	t.Run("LogStartsOver", func(t *testing.T) {
		// Under a steady stream of messages, passive checkpoints alone
		// never catch up with the log; once it is long enough, the
		// checkpointer holds the committer back for one checkpoint and
		// the log starts over.
		s := mustOpen(t, t.TempDir())
		sqlitestore.SetRestartFrames(s, 64)
		// Syncs cost nothing here, so that the committer commits back to
		// back and no passive checkpoint ever finds the log idle.
		sqlitestore.WrapSyncWAL(s, func(func() error) error { return nil })
		ctx, cancel := context.WithCancel(testCtx(t))
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if err := s.CreateMessage(ctx, bigMessage(conv)); err != nil && ctx.Err() == nil {
						t.Errorf("CreateMessage: %v", err)
						return
					}
				}
			}()
		}
		defer func() { cancel(); wg.Wait() }()
		var peak int64
		waitFor(t, "the log to start over", func() bool {
			n := sqlitestore.LogFrames(s)
			peak = max(peak, n)
			return peak >= 64 && n < peak/2
		})
	})
}
