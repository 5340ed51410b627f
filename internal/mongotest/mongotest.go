// Package mongotest gives tests a MongoDB server and a database of their own.
//
// When AOBA_TEST_MONGO_URI is set, tests use that server. Otherwise the first
// call starts one embedded FerretDB (SQLite backend in a temporary
// directory, listening on 127.0.0.1) for the whole test process; every test
// then works in its own database, dropped when the test ends, so that tests
// never see each other's data.
package mongotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// EnvURI is the environment variable that points the tests at an existing
// MongoDB server instead of the embedded FerretDB.
const EnvURI = "AOBA_TEST_MONGO_URI"

// EnvLog is the environment variable that, when set, makes the embedded
// FerretDB log its warnings and errors to standard error.
const EnvLog = "AOBA_TEST_FERRETDB_LOG"

var server struct {
	once   sync.Once
	uri    string
	err    error
	dir    string
	cancel context.CancelFunc
	done   chan struct{}
}

// URI returns the connection string of the test server, starting the
// embedded FerretDB on first use. It fails tb when the server cannot start.
func URI(tb testing.TB) string {
	tb.Helper()
	server.once.Do(start)
	if server.err != nil {
		tb.Fatalf("mongotest: %v", server.err)
	}
	return server.uri
}

// Database returns a database name unique to this test, derived from the
// test's name, and drops that database when the test ends. It fails tb when
// the server cannot start.
func Database(tb testing.TB) string {
	tb.Helper()
	uri := URI(tb)
	name := DatabaseName(tb.Name())
	tb.Cleanup(func() { drop(uri, name) })
	return name
}

// New returns the server's connection string and a database of this test's
// own, as URI and Database do. It fails tb when the server cannot start.
func New(tb testing.TB) (uri, database string) {
	tb.Helper()
	return URI(tb), Database(tb)
}

// DatabaseName returns a fresh database name built from prefix: its letters
// and digits (at most 40 of them) followed by a random suffix. The result is
// valid on MongoDB and FerretDB alike.
func DatabaseName(prefix string) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range prefix {
		if b.Len() >= 42 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + 'a' - 'A')
		default:
			b.WriteByte('_')
		}
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		panic(fmt.Sprintf("mongotest: random suffix: %v", err))
	}
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(suffix[:]))
	return b.String()
}

// Run runs the tests of m and then stops the embedded FerretDB, if one was
// started, and removes its files. It returns m.Run's exit code; use it as
// `func TestMain(m *testing.M) { os.Exit(mongotest.Run(m)) }`.
func Run(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the embedded FerretDB, if one was started, and removes its
// files. Later calls of URI fail.
func Stop() {
	server.once.Do(func() { server.err = fmt.Errorf("the test server was stopped") })
	if server.cancel == nil {
		return
	}
	server.cancel()
	select {
	case <-server.done:
	case <-time.After(10 * time.Second):
	}
	server.cancel = nil
	if server.dir != "" {
		os.RemoveAll(server.dir)
	}
}

// start sets server.uri: AOBA_TEST_MONGO_URI, or the address of a new
// embedded FerretDB.
func start() {
	if uri := os.Getenv(EnvURI); uri != "" {
		server.uri = uri
		return
	}
	dir, err := os.MkdirTemp("", "aoba-ferretdb-")
	if err != nil {
		server.err = fmt.Errorf("create FerretDB directory: %w", err)
		return
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:    logger(),
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	})
	if err != nil {
		os.RemoveAll(dir)
		server.err = fmt.Errorf("configure FerretDB: %w", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	server.dir, server.cancel, server.done = dir, cancel, done
	server.uri = f.MongoDBURI()

	// Wait until the server answers, so that the first test does not race
	// the listener.
	pingCtx, pingCancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer pingCancel()
	client, err := mongo.Connect(options.Client().ApplyURI(server.uri))
	if err != nil {
		server.err = fmt.Errorf("connect to FerretDB: %w", err)
		return
	}
	defer client.Disconnect(context.Background())
	if err := client.Ping(pingCtx, nil); err != nil {
		server.err = fmt.Errorf("ping FerretDB at %s: %w", server.uri, err)
	}
}

// logger returns FerretDB's logger: silent, unless EnvLog is set, when it
// writes warnings and errors to standard error.
func logger() *slog.Logger {
	if os.Getenv(EnvLog) == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// drop removes a test's database; failures only leave garbage behind.
func drop(uri, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return
	}
	defer client.Disconnect(ctx)
	client.Database(name).Drop(ctx)
}
