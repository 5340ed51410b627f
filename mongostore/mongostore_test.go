package mongostore_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/internal/mongotest"
	"github.com/aoba-chat/aoba/mongostore"
	"github.com/aoba-chat/aoba/storetest"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestMain(m *testing.M) { os.Exit(mongotest.Run(m)) }

// mustOpen opens a store on a database of the test's own and closes it when
// the test ends.
func mustOpen(tb testing.TB) *mongostore.Store {
	tb.Helper()
	uri, db := mongotest.New(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := mongostore.Open(ctx, uri, db)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// testRosterLimit is the roster limit of the contract suite's stores:
// filling a roster of aoba.MaxRosterItems on FerretDB, which scans the
// collection to count it, takes minutes.
const testRosterLimit = 40

func TestStore(t *testing.T) {
	storetest.RunStoreTests(t, func(t *testing.T) aoba.Store {
		s := mustOpen(t)
		mongostore.SetRosterLimit(s, testRosterLimit)
		return s
	}, storetest.RosterLimit(testRosterLimit))
}

func TestOpen(t *testing.T) {
	t.Run("ErrUnreachable", func(t *testing.T) {
		// Nothing listens on port 1 of the loopback address.
		start := time.Now()
		s, err := mongostore.Open(context.Background(), "mongodb://127.0.0.1:1/?connectTimeoutMS=500", "aoba")
		if err == nil {
			s.Close()
			t.Fatal("Open succeeded on an unreachable server")
		}
		if code := aoba.ErrorCode(err); code != aoba.EUNAVAILABLE {
			t.Fatalf("error code = %q, want %q (err: %v)", code, aoba.EUNAVAILABLE, err)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Fatalf("Open took %v on an unreachable server", d)
		}
	})
	t.Run("ErrCancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := mongostore.Open(ctx, "mongodb://127.0.0.1:1/", "aoba")
		if code := aoba.ErrorCode(err); code != aoba.EUNAVAILABLE {
			t.Fatalf("error code = %q, want %q (err: %v)", code, aoba.EUNAVAILABLE, err)
		}
	})
	t.Run("ErrInvalidURI", func(t *testing.T) {
		_, err := mongostore.Open(context.Background(), "http://example", "aoba")
		if code := aoba.ErrorCode(err); code != aoba.EINVALID {
			t.Fatalf("error code = %q, want %q (err: %v)", code, aoba.EINVALID, err)
		}
	})
	t.Run("ErrNoDatabase", func(t *testing.T) {
		_, err := mongostore.Open(context.Background(), mongotest.URI(t), "")
		if code := aoba.ErrorCode(err); code != aoba.EINVALID {
			t.Fatalf("error code = %q, want %q (err: %v)", code, aoba.EINVALID, err)
		}
	})
	t.Run("Reopen", func(t *testing.T) {
		// Opening an existing database again finds its data and its indexes.
		uri, db := mongotest.New(t)
		ctx := context.Background()
		s, err := mongostore.Open(ctx, uri, db)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		u := &aoba.User{ID: aoba.NewID(), Username: "Persisted", PasswordHash: "h", CreatedAt: aoba.Now()}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		s.Close()
		s, err = mongostore.Open(ctx, uri, db)
		if err != nil {
			t.Fatalf("Open again: %v", err)
		}
		defer s.Close()
		got, err := s.FindUserByUsername(ctx, "persisted")
		if err != nil || got.ID != u.ID {
			t.Fatalf("FindUserByUsername after reopen = %+v, %v", got, err)
		}
	})
}

func TestPing(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s := mustOpen(t)
		if err := s.Ping(context.Background()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("ErrClosed", func(t *testing.T) {
		uri, db := mongotest.New(t)
		s, err := mongostore.Open(context.Background(), uri, db)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if code := aoba.ErrorCode(s.Ping(ctx)); code != aoba.EUNAVAILABLE {
			t.Fatalf("Ping after Close: code %q, want %q", code, aoba.EUNAVAILABLE)
		}
	})
	t.Run("ErrNotFoundMessagesAreSafe", func(t *testing.T) {
		s := mustOpen(t)
		_, err := s.FindUserByID(context.Background(), aoba.NewID())
		if msg := aoba.ErrorMessage(err); msg != "User not found." {
			t.Fatalf("message = %q, want a client-safe sentence", msg)
		}
	})
}

// TestMessageClaims covers what the contract suite cannot reach: a client id
// claim whose message is not stored yet, or never will be.
func TestMessageClaims(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uri, db := mongotest.New(t)
	s, err := mongostore.Open(ctx, uri, db)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer client.Disconnect(context.Background())
	claims, messages := client.Database(db).Collection("message_claims"), client.Database(db).Collection("messages")
	a, b := aoba.NewID(), aoba.NewID()
	conv := aoba.DirectConversation(a, b)
	msg := func(content, clientID string) *aoba.Message {
		return &aoba.Message{ID: aoba.NewID(), Conversation: conv, FromID: a, ToID: b, FromName: "a", ToName: "b",
			Content: content, Type: aoba.MessageChat, Timestamp: aoba.Now(), ClientID: clientID}
	}
	// claim inserts the claim a claimer makes before its message.
	claim := func(clientID, messageID string, at time.Time) {
		t.Helper()
		if _, err := claims.InsertOne(ctx, bson.D{{Key: "_id", Value: a + ":" + clientID}, {Key: "message_id", Value: messageID}, {Key: "timestamp", Value: at}}); err != nil {
			t.Fatalf("insert claim: %v", err)
		}
	}
	duplicateOf := func(err error) *aoba.Message {
		t.Helper()
		var dup *aoba.DuplicateMessageError
		if !errors.As(err, &dup) {
			t.Fatalf("CreateMessage with a claimed client id: %v, want a DuplicateMessageError", err)
		}
		return dup.Message
	}

	t.Run("CrashLeftoverIsRepaired", func(t *testing.T) {
		// The claimer died a minute ago between its two inserts: the retry
		// stores its own content under the claimed id and time.
		id, at := aoba.NewID(), aoba.Now().Add(-time.Minute)
		claim("crashed", id, at)
		got := duplicateOf(s.CreateMessage(ctx, msg("retried", "crashed")))
		if got.ID != id || !got.Timestamp.Equal(at) || got.Content != "retried" {
			t.Fatalf("repaired message %+v, want id %s at %v with the retry's content", got, id, at)
		}
		if again := duplicateOf(s.CreateMessage(ctx, msg("again", "crashed"))); again.ID != id || again.Content != "retried" {
			t.Fatalf("second retry got %+v, want the repaired message", again)
		}
		ms, _, err := s.FindMessages(ctx, aoba.MessageFilter{Conversations: []string{conv}})
		if err != nil || len(ms) != 1 || ms[0].ID != id {
			t.Fatalf("FindMessages = %+v, %v; want the repaired message only", ms, err)
		}
	})
	t.Run("FreshClaimWaitsForItsClaimer", func(t *testing.T) {
		// The claimer is between its two inserts: the retry waits for its
		// message and returns it, content included.
		first := msg("first", "inflight")
		claim("inflight", first.ID, first.Timestamp)
		done := make(chan error, 1)
		go func() { done <- s.CreateMessage(ctx, msg("retried", "inflight")) }()
		time.Sleep(200 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("CreateMessage returned %v before the claimer stored its message", err)
		default:
		}
		if _, err := messages.InsertOne(ctx, bson.D{{Key: "_id", Value: first.ID}, {Key: "conversation", Value: conv},
			{Key: "from_id", Value: a}, {Key: "to_id", Value: b}, {Key: "from_name", Value: "a"}, {Key: "to_name", Value: "b"},
			{Key: "content", Value: "first"}, {Key: "type", Value: "chat"}, {Key: "timestamp", Value: first.Timestamp},
			{Key: "client_id", Value: "inflight"}}); err != nil {
			t.Fatalf("insert the claimer's message: %v", err)
		}
		if got := duplicateOf(<-done); got.ID != first.ID || got.Content != "first" {
			t.Fatalf("retry got %+v, want the claimer's message", got)
		}
	})
}

// seedMessages stores n messages spread over ten 1:1 conversations of one
// user and returns that user's id and the first conversation.
func seedMessages(b *testing.B, s *mongostore.Store, n int) (string, string) {
	b.Helper()
	ctx := context.Background()
	me := aoba.NewID()
	peers := make([]string, 10)
	for i := range peers {
		peers[i] = aoba.NewID()
	}
	for i := range n {
		to := peers[i%len(peers)]
		m := &aoba.Message{ID: aoba.NewID(), Conversation: aoba.DirectConversation(me, to), FromID: me, ToID: to,
			FromName: "me", ToName: "peer", Content: "hello", Type: aoba.MessageChat, Timestamp: aoba.Now()}
		if err := s.CreateMessage(ctx, m); err != nil {
			b.Fatalf("CreateMessage: %v", err)
		}
	}
	return me, aoba.DirectConversation(me, peers[0])
}

func BenchmarkCreateMessage(b *testing.B) {
	s := mustOpen(b)
	ctx := context.Background()
	from, to := aoba.NewID(), aoba.NewID()
	conv := aoba.DirectConversation(from, to)
	b.ResetTimer()
	for b.Loop() {
		m := &aoba.Message{ID: aoba.NewID(), Conversation: conv, FromID: from, ToID: to,
			FromName: "a", ToName: "b", Content: "hello", Type: aoba.MessageChat, Timestamp: aoba.Now()}
		if err := s.CreateMessage(ctx, m); err != nil {
			b.Fatalf("CreateMessage: %v", err)
		}
	}
}

func BenchmarkFindMessages(b *testing.B) {
	s := mustOpen(b)
	me, conv := seedMessages(b, s, 1000)
	ctx := context.Background()
	b.Run("Conversation", func(b *testing.B) {
		for b.Loop() {
			ms, _, err := s.FindMessages(ctx, aoba.MessageFilter{Conversations: []string{conv}, Limit: 50})
			if err != nil || len(ms) != 50 {
				b.Fatalf("FindMessages = %d, %v", len(ms), err)
			}
		}
	})
	b.Run("Participant", func(b *testing.B) {
		for b.Loop() {
			ms, _, err := s.FindMessages(ctx, aoba.MessageFilter{ParticipantID: me, Limit: 50})
			if err != nil || len(ms) != 50 {
				b.Fatalf("FindMessages = %d, %v", len(ms), err)
			}
		}
	})
}
