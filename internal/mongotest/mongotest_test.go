package mongotest_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba/internal/mongotest"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestMain(m *testing.M) { os.Exit(mongotest.Run(m)) }

func TestDatabaseName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
	t.Run("Valid", func(t *testing.T) {
		for _, prefix := range []string{"", "TestX/sub test#1", strings.Repeat("Ü.b-", 40)} {
			name := mongotest.DatabaseName(prefix)
			if !valid.MatchString(name) {
				t.Fatalf("DatabaseName(%q) = %q, not a valid database name", prefix, name)
			}
		}
	})
	t.Run("Unique", func(t *testing.T) {
		if a, b := mongotest.DatabaseName("same"), mongotest.DatabaseName("same"); a == b {
			t.Fatalf("DatabaseName returned %q twice", a)
		}
	})
}

func TestNew(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uri, db := mongotest.New(t)
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer client.Disconnect(ctx)
	col := client.Database(db).Collection("c")
	if _, err := col.InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}}); err != nil {
		t.Fatalf("InsertOne: %v", err)
	}
	t.Run("Isolated", func(t *testing.T) {
		_, other := mongotest.New(t)
		if other == db {
			t.Fatalf("two tests share database %q", db)
		}
		n, err := client.Database(other).Collection("c").CountDocuments(ctx, bson.D{})
		if err != nil || n != 0 {
			t.Fatalf("other test's database holds %d documents, %v; want 0", n, err)
		}
	})
	if uri2 := mongotest.URI(t); uri2 != uri {
		t.Fatalf("URI changed from %q to %q: want one server per process", uri, uri2)
	}
}
