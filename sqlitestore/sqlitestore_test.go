package sqlitestore_test

import (
	"context"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/sqlitestore"
	"github.com/aoba-chat/aoba/storetest"
)

// testCtx returns a context bounded in time for one test.
func testCtx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// mustOpen opens a store in dir and closes it when the test ends.
func mustOpen(t testing.TB, dir string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(testCtx(t), dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreContract(t *testing.T) {
	storetest.RunStoreTests(t, func(t *testing.T) aoba.Store {
		return mustOpen(t, t.TempDir())
	})
}
