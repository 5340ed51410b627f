package mongostore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/internal/mongotest"
	"github.com/aoba-chat/aoba/mongostore"
	"github.com/aoba-chat/aoba/storetest"
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

func TestStore(t *testing.T) {
	storetest.RunStoreTests(t, func(t *testing.T) aoba.Store { return mustOpen(t) })
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
