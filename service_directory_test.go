package aoba_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/aoba-chat/aoba"
)

// countingStore counts the store reads of the send path.
type countingStore struct {
	aoba.Store
	byName, byID, blocks atomic.Int64
}

func (s *countingStore) FindUserByUsername(ctx context.Context, name string) (*aoba.User, error) {
	s.byName.Add(1)
	return s.Store.FindUserByUsername(ctx, name)
}

func (s *countingStore) FindUserByID(ctx context.Context, id string) (*aoba.User, error) {
	s.byID.Add(1)
	return s.Store.FindUserByID(ctx, id)
}

func (s *countingStore) FindBlocksBetween(ctx context.Context, userID string, others []string) ([]*aoba.Block, error) {
	s.blocks.Add(1)
	return s.Store.FindBlocksBetween(ctx, userID, others)
}

// send sends a 1:1 message from a to the user named to through svc.
func send(svc *aoba.Service, a Account, to string) (*aoba.MessageView, error) {
	return svc.SendMessage(context.Background(), a.Claims, aoba.SendInput{To: to, Content: "hi"}, "")
}

// mustSend is send that fails the test on an error.
func mustSend(t *testing.T, svc *aoba.Service, a Account, to string) *aoba.MessageView {
	t.Helper()
	v, err := send(svc, a, to)
	if err != nil {
		t.Fatalf("SendMessage(%s -> %s): %v", a.Username, to, err)
	}
	return v
}

func TestService_DirectoryCache(t *testing.T) {
	ctx := context.Background()

	t.Run("SendsReadTheStoreOnce", func(t *testing.T) {
		cs := &countingStore{}
		ts := newService(t, withStore(func(s aoba.Store) aoba.Store { cs.Store = s; return cs }))
		alice, bob := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob")
		byName, byID, blocks := cs.byName.Load(), cs.byID.Load(), cs.blocks.Load()
		for range 3 {
			mustSend(t, ts.Service, bob, "alice")
			mustSend(t, ts.Service, bob, "ALICE")
		}
		if err := ts.Typing(ctx, bob.Claims, "alice", aoba.MessageChat, aoba.TypingComposing); err != nil {
			t.Fatalf("Typing: %v", err)
		}
		if n := cs.byName.Load() - byName; n != 1 {
			t.Errorf("%d reads of the recipient by name for 6 sends and a typing notice, want 1", n)
		}
		if n := cs.byID.Load() - byID; n != 1 {
			t.Errorf("%d reads of the sender by id, want 1", n)
		}
		if n := cs.blocks.Load() - blocks; n != 1 {
			t.Errorf("%d reads of the blocks between them, want 1", n)
		}
		mustSend(t, ts.Service, alice, "bob") // the other direction: bob by name, alice by id; their blocks are cached
		if n := cs.blocks.Load() - blocks; n != 1 {
			t.Errorf("%d reads of the blocks after the reply, want 1 (one pair)", n)
		}
	})

	t.Run("RenameOnThisPod", func(t *testing.T) {
		ts := newService(t)
		alice, bob := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob")
		mustSend(t, ts.Service, bob, "alice")
		if _, err := ts.ChangeUsername(ctx, alice.Claims, "alicia"); err != nil {
			t.Fatalf("ChangeUsername: %v", err)
		}
		_, err := send(ts.Service, bob, "alice")
		wantCode(t, err, aoba.ENOTFOUND)
		if v := mustSend(t, ts.Service, bob, "alicia"); v.To != "alicia" || v.ToID != alice.ID {
			t.Fatalf("sent to %s (%s), want alicia (%s)", v.To, v.ToID, alice.ID)
		}
		// The sender's own name, cached by id, follows their rename.
		if _, err := ts.ChangeUsername(ctx, bob.Claims, "robert"); err != nil {
			t.Fatalf("ChangeUsername: %v", err)
		}
		if v := mustSend(t, ts.Service, bob, "alicia"); v.From != "robert" {
			t.Fatalf("sent from %q after the sender's rename, want robert", v.From)
		}
		// A new account may take the old name at once.
		carol := ts.MustRegister(t, "alice")
		if v := mustSend(t, ts.Service, bob, "alice"); v.ToID != carol.ID {
			t.Fatalf("message to the name's new holder went to %s, want %s", v.ToID, carol.ID)
		}
	})

	t.Run("DeletedAccountOnThisPod", func(t *testing.T) {
		ts := newService(t)
		carol, bob := ts.MustRegister(t, "carol"), ts.MustRegister(t, "bob")
		mustSend(t, ts.Service, bob, "carol")
		mustSend(t, ts.Service, carol, "bob")
		if err := ts.DeleteAccount(ctx, carol.Claims); err != nil {
			t.Fatalf("DeleteAccount: %v", err)
		}
		_, err := send(ts.Service, bob, "carol")
		wantCode(t, err, aoba.ENOTFOUND)
		// The deleted sender's claims no longer send, even with their
		// row cached before.
		_, err = send(ts.Service, carol, "bob")
		wantCode(t, err, aoba.EUNAUTHORIZED)
	})

	t.Run("BlockOnThisPod", func(t *testing.T) {
		ts := newService(t)
		alice, bob := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob")
		mustSend(t, ts.Service, bob, "alice")
		if err := ts.BlockUser(ctx, alice.Claims, "bob"); err != nil {
			t.Fatalf("BlockUser: %v", err)
		}
		_, err := send(ts.Service, bob, "alice")
		wantCode(t, err, aoba.EFORBIDDEN)
		if err := ts.UnblockUser(ctx, alice.Claims, "bob"); err != nil {
			t.Fatalf("UnblockUser: %v", err)
		}
		mustSend(t, ts.Service, bob, "alice")
	})

	t.Run("ChangesFromAnotherPod", func(t *testing.T) {
		ts := newService(t)
		other := ts.startPod(t)
		alice, bob := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob")
		carol := ts.MustRegister(t, "carol")
		mustSend(t, other, bob, "alice")
		mustSend(t, other, bob, "carol")

		// A change to the store that no pod announces is not seen: the
		// other pod serves the send from its cache.
		if _, err := ts.Store.UpdateUsername(ctx, alice.ID, "alicia"); err != nil {
			t.Fatalf("UpdateUsername: %v", err)
		}
		if v := mustSend(t, other, bob, "alice"); v.ToID != alice.ID || v.To != "alice" {
			t.Fatalf("unannounced rename: sent to %s (%s), want the cached alice", v.To, v.ToID)
		}

		// Renamed, deleted and blocked on the first pod, announced: the
		// other pod drops what it had.
		if _, err := ts.ChangeUsername(ctx, alice.Claims, "alina"); err != nil {
			t.Fatalf("ChangeUsername: %v", err)
		}
		if err := ts.DeleteAccount(ctx, carol.Claims); err != nil {
			t.Fatalf("DeleteAccount: %v", err)
		}
		ts.flush(t)
		for _, name := range []string{"alice", "alicia", "carol"} {
			_, err := send(other, bob, name)
			wantCode(t, err, aoba.ENOTFOUND)
		}
		mustSend(t, other, bob, "alina")
		if err := ts.BlockUser(ctx, alice.Claims, "bob"); err != nil {
			t.Fatalf("BlockUser: %v", err)
		}
		ts.flush(t)
		_, err := send(other, bob, "alina")
		wantCode(t, err, aoba.EFORBIDDEN)
	})

	t.Run("ResyncEmptiesTheCache", func(t *testing.T) {
		// After the broker lost its connection, changes may have been
		// missed: its resync order empties the cache.
		ts := newService(t)
		alice, bob := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob")
		mustSend(t, ts.Service, bob, "alice")
		if _, err := ts.Store.UpdateUsername(ctx, alice.ID, "alicia"); err != nil {
			t.Fatalf("UpdateUsername: %v", err)
		}
		mustSend(t, ts.Service, bob, "alice") // still cached
		ts.DirectoryChanged(aoba.Envelope{Close: &aoba.CloseOrder{Code: aoba.CloseResync}})
		_, err := send(ts.Service, bob, "alice")
		wantCode(t, err, aoba.ENOTFOUND)
		mustSend(t, ts.Service, bob, "alicia")
	})

	t.Run("OffUntilSubscribed", func(t *testing.T) {
		// A Service that does not hear the directory topic caches
		// nothing: every send reads the store.
		ts := newService(t)
		svc := aoba.NewService(ts.cfg)
		alice, bob := ts.MustRegister(t, "alice"), ts.MustRegister(t, "bob")
		mustSend(t, svc, bob, "alice")
		if _, err := ts.Store.UpdateUsername(ctx, alice.ID, "alicia"); err != nil {
			t.Fatalf("UpdateUsername: %v", err)
		}
		_, err := send(svc, bob, "alice")
		wantCode(t, err, aoba.ENOTFOUND)
	})
}
