package hub_test

import (
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// newClient returns a client of srv closed when t ends.
func newClient(t testing.TB, srv *redistest.Server) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatalf("parse %s: %v", srv.URL(), err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}
