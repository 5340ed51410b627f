package aoba_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aoba-chat/aoba"
)

// membershipReads counts the store's FindMembership calls and holds the
// one that hold is armed for.
type membershipReads struct {
	aoba.Store
	n    *atomic.Int64
	hold *readHold
}

func (s membershipReads) FindMembership(ctx context.Context, groupID, userID string) (*aoba.Membership, error) {
	s.n.Add(1)
	m, err := s.Store.FindMembership(ctx, groupID, userID)
	s.hold.wait(userID)
	return m, err
}

// readHold holds the next membership read of one user, once read, until
// released.
type readHold struct {
	mu            sync.Mutex
	user          string
	read, release chan struct{}
}

// arm holds the next membership read of user: read is closed once it has
// read the store, and it returns when release is closed.
func (h *readHold) arm(user string) (read, release chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.user, h.read, h.release = user, make(chan struct{}), make(chan struct{})
	return h.read, h.release
}

func (h *readHold) wait(user string) {
	h.mu.Lock()
	if h.user != user || h.read == nil {
		h.mu.Unlock()
		return
	}
	read, release := h.read, h.release
	h.read, h.release = nil, nil
	h.mu.Unlock()
	close(read)
	<-release
}

// TestService_MemberCache checks that a removed member (also one removed
// while a send of theirs was reading the membership), a member who left,
// the members of a deleted group and a deleted account can no longer send
// to the group once they have sent to it before, with the memberships
// cached (the Service hears the directory topic, as main sets it up) as
// without; and that, cached, a member's later messages read no membership
// from the store.
func TestService_MemberCache(t *testing.T) {
	for _, cached := range []bool{false, true} {
		name := map[bool]string{false: "Uncached", true: "Cached"}[cached]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			reads, hold := new(atomic.Int64), new(readHold)
			opts := []serviceOption{withStore(func(s aoba.Store) aoba.Store { return membershipReads{Store: s, n: reads, hold: hold} })}
			if !cached {
				opts = append(opts, withoutCaches())
			}
			ts := newService(t, opts...)
			ctx := context.Background()
			owner := ts.MustRegister(t, "owner")
			kicked := ts.MustRegister(t, "kicked")
			leaver := ts.MustRegister(t, "leaver")
			gone := ts.MustRegister(t, "gone")
			g := ts.MustCreateGroup(t, owner, "club", kicked.As(aoba.RoleMember), leaver.As(aoba.RoleAdmin), gone.As(aoba.RoleMember))
			send := func(a Account, group string) error {
				_, err := ts.SendMessage(ctx, a.Claims, aoba.SendInput{To: group, Type: aoba.MessageGroupChat, Content: "hi"}, "")
				return err
			}
			for _, a := range []Account{owner, kicked, leaver, gone} {
				if err := send(a, g.ID); err != nil {
					t.Fatalf("%s: first send: %v", a.Username, err)
				}
			}

			t.Run("MembershipReads", func(t *testing.T) {
				before := reads.Load()
				for range 5 {
					if err := send(owner, g.ID); err != nil {
						t.Fatal(err)
					}
				}
				got, want := reads.Load()-before, int64(5)
				if cached {
					want = 0
				}
				if got != want {
					t.Fatalf("%d membership reads for 5 messages, want %d", got, want)
				}
			})
			t.Run("Removed", func(t *testing.T) {
				if err := ts.RemoveMember(ctx, owner.Claims, g.ID, "kicked"); err != nil {
					t.Fatal(err)
				}
				wantCode(t, send(kicked, g.ID), aoba.ENOTFOUND)
			})
			t.Run("Left", func(t *testing.T) {
				if err := ts.LeaveGroup(ctx, leaver.Claims, g.ID); err != nil {
					t.Fatal(err)
				}
				wantCode(t, send(leaver, g.ID), aoba.ENOTFOUND)
			})
			t.Run("RemovedDuringASend", func(t *testing.T) {
				// A send reads the membership, then the member is removed
				// before the send goes on: that send may go through, as it
				// began first, but must leave nothing cached.
				if _, err := ts.AddMember(ctx, owner.Claims, g.ID, "kicked", "member"); err != nil {
					t.Fatal(err)
				}
				read, release := hold.arm(kicked.ID)
				sent := make(chan error, 1)
				go func() { sent <- send(kicked, g.ID) }()
				select {
				case <-read:
				case err := <-sent: // served from the cache: the earlier removal was not forgotten
					close(release)
					t.Fatalf("a send after a removal and a new add read no membership (err %v)", err)
				}
				if err := ts.RemoveMember(ctx, owner.Claims, g.ID, "kicked"); err != nil {
					t.Fatal(err)
				}
				close(release)
				if err := <-sent; err != nil {
					t.Fatalf("the send that began before the removal: %v", err)
				}
				wantCode(t, send(kicked, g.ID), aoba.ENOTFOUND)
			})
			t.Run("AddedAgain", func(t *testing.T) {
				if _, err := ts.AddMember(ctx, owner.Claims, g.ID, "kicked", "member"); err != nil {
					t.Fatal(err)
				}
				if err := send(kicked, g.ID); err != nil {
					t.Fatalf("send after being added again: %v", err)
				}
			})
			t.Run("AccountDeleted", func(t *testing.T) {
				if err := ts.DeleteAccount(ctx, gone.Claims); err != nil {
					t.Fatal(err)
				}
				if err := send(gone, g.ID); err == nil {
					t.Fatal("a deleted account sent to its former group")
				}
			})
			t.Run("GroupDeleted", func(t *testing.T) {
				if err := ts.DeleteGroup(ctx, owner.Claims, g.ID); err != nil {
					t.Fatal(err)
				}
				for _, a := range []Account{owner, kicked} {
					wantCode(t, send(a, g.ID), aoba.ENOTFOUND)
				}
			})
		})
	}
}

// groupSend sends a message from a to the group through svc.
func groupSend(svc *aoba.Service, a Account, group string) error {
	_, err := svc.SendMessage(context.Background(), a.Claims, aoba.SendInput{To: group, Type: aoba.MessageGroupChat, Content: "hi"}, "")
	return err
}

// TestService_MemberCacheAcrossPods: a pod that cached a membership
// forgets it when another pod announces its removal (member removed, member
// left, group deleted, account deleted), and when its broker orders a
// resync or hands it a malformed change; a removal that nobody announces
// stays unseen (the cache is used).
func TestService_MemberCacheAcrossPods(t *testing.T) {
	ctx := context.Background()
	ts := newService(t)
	other := ts.startPod(t)
	owner := ts.MustRegister(t, "owner")
	kicked, leaver := ts.MustRegister(t, "kicked"), ts.MustRegister(t, "leaver")
	gone, quiet := ts.MustRegister(t, "gone"), ts.MustRegister(t, "quiet")
	g := ts.MustCreateGroup(t, owner, "club", kicked.As(aoba.RoleMember), leaver.As(aoba.RoleMember),
		gone.As(aoba.RoleMember), quiet.As(aoba.RoleMember))
	for _, a := range []Account{owner, kicked, leaver, gone, quiet} {
		if err := groupSend(other, a, g.ID); err != nil { // the other pod caches each membership
			t.Fatalf("%s: first send: %v", a.Username, err)
		}
	}

	t.Run("Unannounced", func(t *testing.T) {
		if err := ts.Store.DeleteMembership(ctx, g.ID, quiet.ID); err != nil {
			t.Fatal(err)
		}
		if err := groupSend(other, quiet, g.ID); err != nil {
			t.Fatalf("a removal nobody announced was seen: the membership is not cached: %v", err)
		}
	})
	t.Run("Removed", func(t *testing.T) {
		if err := ts.RemoveMember(ctx, owner.Claims, g.ID, "kicked"); err != nil {
			t.Fatal(err)
		}
		ts.flush(t)
		wantCode(t, groupSend(other, kicked, g.ID), aoba.ENOTFOUND)
	})
	t.Run("Left", func(t *testing.T) {
		if err := ts.LeaveGroup(ctx, leaver.Claims, g.ID); err != nil {
			t.Fatal(err)
		}
		ts.flush(t)
		wantCode(t, groupSend(other, leaver, g.ID), aoba.ENOTFOUND)
	})
	t.Run("AccountDeleted", func(t *testing.T) {
		if err := ts.DeleteAccount(ctx, gone.Claims); err != nil {
			t.Fatal(err)
		}
		ts.flush(t)
		if err := groupSend(other, gone, g.ID); err == nil {
			t.Fatal("a deleted account sent to its former group")
		}
	})
	t.Run("Resync", func(t *testing.T) {
		if err := groupSend(other, quiet, g.ID); err != nil {
			t.Fatalf("still cached: %v", err)
		}
		other.DirectoryChanged(aoba.Envelope{Close: &aoba.CloseOrder{Code: aoba.CloseResync}})
		wantCode(t, groupSend(other, quiet, g.ID), aoba.ENOTFOUND)
	})
	t.Run("Malformed", func(t *testing.T) {
		if _, err := ts.AddMember(ctx, owner.Claims, g.ID, "quiet", "member"); err != nil {
			t.Fatal(err)
		}
		if err := groupSend(other, quiet, g.ID); err != nil {
			t.Fatal(err)
		}
		if err := ts.Store.DeleteMembership(ctx, g.ID, quiet.ID); err != nil {
			t.Fatal(err)
		}
		if err := groupSend(other, quiet, g.ID); err != nil {
			t.Fatalf("still cached: %v", err)
		}
		other.DirectoryChanged(aoba.Envelope{Frame: []byte("{not json")})
		wantCode(t, groupSend(other, quiet, g.ID), aoba.ENOTFOUND)
	})
	t.Run("GroupDeleted", func(t *testing.T) {
		if err := groupSend(other, owner, g.ID); err != nil {
			t.Fatal(err)
		}
		if err := ts.DeleteGroup(ctx, owner.Claims, g.ID); err != nil {
			t.Fatal(err)
		}
		ts.flush(t)
		wantCode(t, groupSend(other, owner, g.ID), aoba.ENOTFOUND)
	})
}
