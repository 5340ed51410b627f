package aoba

import (
	"context"
	"sort"
	"strings"
)

// Blocks: the rules.
//
//   - A user may block any other user by name: blocking oneself is
//     EINVALID, an unknown name ENOTFOUND, blocking twice changes nothing.
//     Unblocking someone not blocked changes nothing either (both answer
//     204): the outcome the caller asked for holds.
//   - The blocked user is not told. Their 1:1 messages and typing notices
//     to the blocker, and their invitations of the blocker into a group,
//     are EFORBIDDEN ("You cannot message this user."), and the blocker
//     looks offline to them with a null lastSeen, in every presence lookup,
//     presence.subscribe and group member list, and in live presence
//     events: the live events of the blocker skip the blocked user's
//     sockets (Envelope.ExceptUsers), which get an offline event, to them
//     alone (Envelope.OnlyUser), when the block starts and the true
//     presence when it ends. A presence change racing a block may still
//     reach them once.
//   - The blocker may not message or send typing notices to the blocked
//     user either, until they unblock them (as in Signal and WhatsApp): a
//     one-way conversation whose replies are refused helps no one. They
//     may still invite them, and still see their presence.
//   - Groups are unaffected: group messages and typing reach every member.
//   - Blocking and unblocking store a `block` event for the blocker's own
//     devices (live on their sockets, and in GET /api/sync), never for the
//     blocked user.

// FrameBlock is the type of the frame, and of the sync event, that tells a
// user's devices that the user blocked or unblocked someone (data
// BlockEvent).
const FrameBlock = "block"

// Block event kinds.
const (
	BlockBlocked   = "blocked"
	BlockUnblocked = "unblocked"
)

// BlockEvent is the data of a `block` frame: Event is blocked or unblocked,
// UserID and Username name the user the caller blocked or unblocked.
type BlockEvent struct {
	Event    string `json:"event"`
	UserID   string `json:"user_id"`
	Username string `json:"username"`
}

// errBlockedByPeer answers a blocked user's 1:1 message, typing notice or
// invitation to the blocker.
func errBlockedByPeer() error { return Errorf(EFORBIDDEN, "You cannot message this user.") }

// blockTarget resolves the user that the caller blocks or unblocks. It
// returns ENOTFOUND for an unknown name and EINVALID for the caller's own.
func (s *Service) blockTarget(ctx context.Context, c Claims, username string) (*User, error) {
	u, err := s.FindUserByUsername(ctx, username)
	if err != nil {
		return nil, err
	}
	if u.ID == c.UserID {
		return nil, Errorf(EINVALID, "You cannot block yourself.")
	}
	return u, nil
}

// ListBlocks returns the users the caller blocks, by username
// (case-insensitive). Blocked accounts deleted since are left out. It
// returns the store's error when they cannot be read.
func (s *Service) ListBlocks(ctx context.Context, c Claims) ([]*User, error) {
	bs, err := s.store.FindBlocksByBlocker(ctx, c.UserID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(bs))
	for i, b := range bs {
		ids[i] = b.BlockedID
	}
	users := []*User{}
	if len(ids) > 0 {
		if users, err = s.store.FindUsersByIDs(ctx, ids); err != nil {
			return nil, err
		}
	}
	sort.Slice(users, func(i, j int) bool {
		return strings.ToLower(users[i].Username) < strings.ToLower(users[j].Username)
	})
	return users, nil
}

// BlockUser makes the caller block the user named username; blocking a
// user blocked already changes nothing. A new block is announced to the
// caller's devices with a `block` event, and the blocked user's sockets
// that watch the caller's presence see the caller go offline. It returns
// ENOTFOUND for an unknown user, EINVALID for the caller themself and the
// store's error when the block cannot be stored.
func (s *Service) BlockUser(ctx context.Context, c Claims, username string) error {
	u, err := s.blockTarget(ctx, c, username)
	if err != nil {
		return err
	}
	err = s.store.CreateBlock(ctx, &Block{BlockerID: c.UserID, BlockedID: u.ID, CreatedAt: Now()})
	if ErrorCode(err) == ECONFLICT {
		return nil
	} else if err != nil {
		return err
	}
	s.announceDirectory(ctx, DirectoryChange{Pair: [2]string{c.UserID, u.ID}})
	s.publishEvent(ctx, EventBlock, BlockEvent{Event: BlockBlocked, UserID: u.ID, Username: u.Username}, []string{c.UserID})
	s.publishPresenceTo(ctx, Presence{UserID: c.UserID, Status: StatusOffline}, u.ID)
	return nil
}

// UnblockUser ends the caller's block of the user named username;
// unblocking a user not blocked changes nothing. An ended block is
// announced to the caller's devices with a `block` event, and the
// unblocked user's sockets that watch the caller's presence get it again.
// It returns ENOTFOUND for an unknown user, EINVALID for the caller
// themself and the store's error when the block cannot be removed.
func (s *Service) UnblockUser(ctx context.Context, c Claims, username string) error {
	u, err := s.blockTarget(ctx, c, username)
	if err != nil {
		return err
	}
	err = s.store.DeleteBlock(ctx, c.UserID, u.ID)
	if ErrorCode(err) == ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	s.announceDirectory(ctx, DirectoryChange{Pair: [2]string{c.UserID, u.ID}})
	s.publishEvent(ctx, EventBlock, BlockEvent{Event: BlockUnblocked, UserID: u.ID, Username: u.Username}, []string{c.UserID})
	if pres, err := s.presence.FindPresence(ctx, []string{c.UserID}); err != nil {
		s.log.Warn("unblock: presence lookup failed", "err", err)
	} else {
		p := pres[c.UserID]
		p.UserID = c.UserID
		s.publishPresenceTo(ctx, p, u.ID)
	}
	return nil
}

// checkDirect returns EFORBIDDEN when either of the caller and the peer of
// a 1:1 conversation blocks the other: errBlockedByPeer when the peer
// blocks the caller, a request to unblock first when the caller blocks the
// peer. It returns the store's error when the blocks cannot be read.
func (s *Service) checkDirect(ctx context.Context, userID, peerID string) error {
	if userID == peerID {
		return nil
	}
	bs, err := s.blocksBetween(ctx, userID, peerID)
	if err != nil {
		return err
	}
	for _, b := range bs {
		if b.BlockerID == peerID {
			return errBlockedByPeer()
		}
	}
	if len(bs) > 0 {
		return Errorf(EFORBIDDEN, "You blocked this user: unblock them to message them.")
	}
	return nil
}

// blockersOf returns the ids among userIDs of the users who block viewerID.
// It returns the store's error when the blocks cannot be read.
func (s *Service) blockersOf(ctx context.Context, viewerID string, userIDs []string) (map[string]bool, error) {
	out := make(map[string]bool)
	if viewerID == "" || len(userIDs) == 0 {
		return out, nil
	}
	bs, err := s.store.FindBlocksBetween(ctx, viewerID, userIDs)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		if b.BlockedID == viewerID {
			out[b.BlockerID] = true
		}
	}
	return out, nil
}
