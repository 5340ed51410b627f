package storemetrics

import (
	"context"
	"time"

	"github.com/aoba-chat/aoba"
)

// One method per method of aoba.Store but Ping and Close, each the same two
// lines (CreateMessage, which also counts, is in storemetrics.go).
// TestEveryOperationTimed fails when one is missing.

// AppendEvents is the wrapped store's, timed.
func (s *Store) AppendEvents(ctx context.Context, events []*aoba.Event) (err error) {
	defer s.observe("AppendEvents", time.Now(), &err)
	return s.Store.AppendEvents(ctx, events)
}

// CreateBlock is the wrapped store's, timed.
func (s *Store) CreateBlock(ctx context.Context, b *aoba.Block) (err error) {
	defer s.observe("CreateBlock", time.Now(), &err)
	return s.Store.CreateBlock(ctx, b)
}

// CreateGroup is the wrapped store's, timed.
func (s *Store) CreateGroup(ctx context.Context, g *aoba.Group, owner *aoba.Membership) (err error) {
	defer s.observe("CreateGroup", time.Now(), &err)
	return s.Store.CreateGroup(ctx, g, owner)
}

// CreateInvitation is the wrapped store's, timed.
func (s *Store) CreateInvitation(ctx context.Context, inv *aoba.Invitation) (err error) {
	defer s.observe("CreateInvitation", time.Now(), &err)
	return s.Store.CreateInvitation(ctx, inv)
}

// CreateMembership is the wrapped store's, timed.
func (s *Store) CreateMembership(ctx context.Context, m *aoba.Membership) (err error) {
	defer s.observe("CreateMembership", time.Now(), &err)
	return s.Store.CreateMembership(ctx, m)
}

// CreateSession is the wrapped store's, timed.
func (s *Store) CreateSession(ctx context.Context, sess *aoba.Session) (err error) {
	defer s.observe("CreateSession", time.Now(), &err)
	return s.Store.CreateSession(ctx, sess)
}

// CreateUser is the wrapped store's, timed.
func (s *Store) CreateUser(ctx context.Context, u *aoba.User) (err error) {
	defer s.observe("CreateUser", time.Now(), &err)
	return s.Store.CreateUser(ctx, u)
}

// DeleteBlock is the wrapped store's, timed.
func (s *Store) DeleteBlock(ctx context.Context, blockerID, blockedID string) (err error) {
	defer s.observe("DeleteBlock", time.Now(), &err)
	return s.Store.DeleteBlock(ctx, blockerID, blockedID)
}

// DeleteEventsBefore is the wrapped store's, timed.
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time) (_ int, err error) {
	defer s.observe("DeleteEventsBefore", time.Now(), &err)
	return s.Store.DeleteEventsBefore(ctx, t)
}

// DeleteExpiredSessions is the wrapped store's, timed.
func (s *Store) DeleteExpiredSessions(ctx context.Context, before time.Time) (_ int, err error) {
	defer s.observe("DeleteExpiredSessions", time.Now(), &err)
	return s.Store.DeleteExpiredSessions(ctx, before)
}

// DeleteGroup is the wrapped store's, timed.
func (s *Store) DeleteGroup(ctx context.Context, id string) (err error) {
	defer s.observe("DeleteGroup", time.Now(), &err)
	return s.Store.DeleteGroup(ctx, id)
}

// DeleteMembership is the wrapped store's, timed.
func (s *Store) DeleteMembership(ctx context.Context, groupID, userID string) (err error) {
	defer s.observe("DeleteMembership", time.Now(), &err)
	return s.Store.DeleteMembership(ctx, groupID, userID)
}

// DeleteRosterItem is the wrapped store's, timed.
func (s *Store) DeleteRosterItem(ctx context.Context, userID, contactID string) (err error) {
	defer s.observe("DeleteRosterItem", time.Now(), &err)
	return s.Store.DeleteRosterItem(ctx, userID, contactID)
}

// DeleteUser is the wrapped store's, timed.
func (s *Store) DeleteUser(ctx context.Context, id string) (err error) {
	defer s.observe("DeleteUser", time.Now(), &err)
	return s.Store.DeleteUser(ctx, id)
}

// FindBlocksBetween is the wrapped store's, timed.
func (s *Store) FindBlocksBetween(ctx context.Context, userID string, others []string) (_ []*aoba.Block, err error) {
	defer s.observe("FindBlocksBetween", time.Now(), &err)
	return s.Store.FindBlocksBetween(ctx, userID, others)
}

// FindBlocksByBlocker is the wrapped store's, timed.
func (s *Store) FindBlocksByBlocker(ctx context.Context, blockerID string) (_ []*aoba.Block, err error) {
	defer s.observe("FindBlocksByBlocker", time.Now(), &err)
	return s.Store.FindBlocksByBlocker(ctx, blockerID)
}

// FindConversation is the wrapped store's, timed.
func (s *Store) FindConversation(ctx context.Context, key string) (_ *aoba.ConversationState, err error) {
	defer s.observe("FindConversation", time.Now(), &err)
	return s.Store.FindConversation(ctx, key)
}

// FindConversationReadStates is the wrapped store's, timed.
func (s *Store) FindConversationReadStates(ctx context.Context, key string) (_ []*aoba.ReadState, err error) {
	defer s.observe("FindConversationReadStates", time.Now(), &err)
	return s.Store.FindConversationReadStates(ctx, key)
}

// FindConversations is the wrapped store's, timed.
func (s *Store) FindConversations(ctx context.Context, userID string, keys []string, before string, limit int) (_ []*aoba.ConversationState, err error) {
	defer s.observe("FindConversations", time.Now(), &err)
	return s.Store.FindConversations(ctx, userID, keys, before, limit)
}

// FindEvents is the wrapped store's, timed.
func (s *Store) FindEvents(ctx context.Context, userID, afterID string, limit int) (_ []*aoba.Event, err error) {
	defer s.observe("FindEvents", time.Now(), &err)
	return s.Store.FindEvents(ctx, userID, afterID, limit)
}

// FindGroupByID is the wrapped store's, timed.
func (s *Store) FindGroupByID(ctx context.Context, id string) (_ *aoba.Group, err error) {
	defer s.observe("FindGroupByID", time.Now(), &err)
	return s.Store.FindGroupByID(ctx, id)
}

// FindGroupsByIDs is the wrapped store's, timed.
func (s *Store) FindGroupsByIDs(ctx context.Context, ids []string) (_ []*aoba.Group, err error) {
	defer s.observe("FindGroupsByIDs", time.Now(), &err)
	return s.Store.FindGroupsByIDs(ctx, ids)
}

// FindInvitationByID is the wrapped store's, timed.
func (s *Store) FindInvitationByID(ctx context.Context, id string) (_ *aoba.Invitation, err error) {
	defer s.observe("FindInvitationByID", time.Now(), &err)
	return s.Store.FindInvitationByID(ctx, id)
}

// FindInvitations is the wrapped store's, timed.
func (s *Store) FindInvitations(ctx context.Context, f aoba.InvitationFilter) (_ []*aoba.Invitation, err error) {
	defer s.observe("FindInvitations", time.Now(), &err)
	return s.Store.FindInvitations(ctx, f)
}

// FindMembership is the wrapped store's, timed.
func (s *Store) FindMembership(ctx context.Context, groupID, userID string) (_ *aoba.Membership, err error) {
	defer s.observe("FindMembership", time.Now(), &err)
	return s.Store.FindMembership(ctx, groupID, userID)
}

// FindMembershipsByGroup is the wrapped store's, timed.
func (s *Store) FindMembershipsByGroup(ctx context.Context, groupID string) (_ []*aoba.Membership, err error) {
	defer s.observe("FindMembershipsByGroup", time.Now(), &err)
	return s.Store.FindMembershipsByGroup(ctx, groupID)
}

// FindMembershipsByUser is the wrapped store's, timed.
func (s *Store) FindMembershipsByUser(ctx context.Context, userID string) (_ []*aoba.Membership, err error) {
	defer s.observe("FindMembershipsByUser", time.Now(), &err)
	return s.Store.FindMembershipsByUser(ctx, userID)
}

// FindMessageByID is the wrapped store's, timed.
func (s *Store) FindMessageByID(ctx context.Context, id string) (_ *aoba.Message, err error) {
	defer s.observe("FindMessageByID", time.Now(), &err)
	return s.Store.FindMessageByID(ctx, id)
}

// FindMessages is the wrapped store's, timed.
func (s *Store) FindMessages(ctx context.Context, f aoba.MessageFilter) (_ []*aoba.Message, _ int, err error) {
	defer s.observe("FindMessages", time.Now(), &err)
	return s.Store.FindMessages(ctx, f)
}

// FindReadStates is the wrapped store's, timed.
func (s *Store) FindReadStates(ctx context.Context, userID string, keys []string) (_ []*aoba.ReadState, err error) {
	defer s.observe("FindReadStates", time.Now(), &err)
	return s.Store.FindReadStates(ctx, userID, keys)
}

// FindRosterItems is the wrapped store's, timed.
func (s *Store) FindRosterItems(ctx context.Context, userID string) (_ []*aoba.RosterItem, err error) {
	defer s.observe("FindRosterItems", time.Now(), &err)
	return s.Store.FindRosterItems(ctx, userID)
}

// FindSessionByID is the wrapped store's, timed.
func (s *Store) FindSessionByID(ctx context.Context, id string) (_ *aoba.Session, err error) {
	defer s.observe("FindSessionByID", time.Now(), &err)
	return s.Store.FindSessionByID(ctx, id)
}

// FindSessionsByUser is the wrapped store's, timed.
func (s *Store) FindSessionsByUser(ctx context.Context, userID string) (_ []*aoba.Session, err error) {
	defer s.observe("FindSessionsByUser", time.Now(), &err)
	return s.Store.FindSessionsByUser(ctx, userID)
}

// FindUserByID is the wrapped store's, timed.
func (s *Store) FindUserByID(ctx context.Context, id string) (_ *aoba.User, err error) {
	defer s.observe("FindUserByID", time.Now(), &err)
	return s.Store.FindUserByID(ctx, id)
}

// FindUserByUsername is the wrapped store's, timed.
func (s *Store) FindUserByUsername(ctx context.Context, username string) (_ *aoba.User, err error) {
	defer s.observe("FindUserByUsername", time.Now(), &err)
	return s.Store.FindUserByUsername(ctx, username)
}

// FindUsers is the wrapped store's, timed.
func (s *Store) FindUsers(ctx context.Context, f aoba.UserFilter) (_ []*aoba.User, _ int, err error) {
	defer s.observe("FindUsers", time.Now(), &err)
	return s.Store.FindUsers(ctx, f)
}

// FindUsersByIDs is the wrapped store's, timed.
func (s *Store) FindUsersByIDs(ctx context.Context, ids []string) (_ []*aoba.User, err error) {
	defer s.observe("FindUsersByIDs", time.Now(), &err)
	return s.Store.FindUsersByIDs(ctx, ids)
}

// FindUsersByUsernames is the wrapped store's, timed.
func (s *Store) FindUsersByUsernames(ctx context.Context, usernames []string) (_ []*aoba.User, err error) {
	defer s.observe("FindUsersByUsernames", time.Now(), &err)
	return s.Store.FindUsersByUsernames(ctx, usernames)
}

// MarkRead is the wrapped store's, timed.
func (s *Store) MarkRead(ctx context.Context, userID, key, upTo string, at time.Time) (_ *aoba.ReadState, err error) {
	defer s.observe("MarkRead", time.Now(), &err)
	return s.Store.MarkRead(ctx, userID, key, upTo, at)
}

// PutRosterItem is the wrapped store's, timed.
func (s *Store) PutRosterItem(ctx context.Context, item *aoba.RosterItem) (err error) {
	defer s.observe("PutRosterItem", time.Now(), &err)
	return s.Store.PutRosterItem(ctx, item)
}

// RespondInvitation is the wrapped store's, timed.
func (s *Store) RespondInvitation(ctx context.Context, id string, status aoba.InvitationStatus, at time.Time) (_ *aoba.Invitation, err error) {
	defer s.observe("RespondInvitation", time.Now(), &err)
	return s.Store.RespondInvitation(ctx, id, status, at)
}

// RevokeSession is the wrapped store's, timed.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time) (err error) {
	defer s.observe("RevokeSession", time.Now(), &err)
	return s.Store.RevokeSession(ctx, id, at)
}

// RevokeUserSessions is the wrapped store's, timed.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, keepID string, at time.Time) (err error) {
	defer s.observe("RevokeUserSessions", time.Now(), &err)
	return s.Store.RevokeUserSessions(ctx, userID, keepID, at)
}

// RotateSession is the wrapped store's, timed.
func (s *Store) RotateSession(ctx context.Context, id, fromTokenID, toTokenID string, expiresAt time.Time) (err error) {
	defer s.observe("RotateSession", time.Now(), &err)
	return s.Store.RotateSession(ctx, id, fromTokenID, toTokenID, expiresAt)
}

// TouchSession is the wrapped store's, timed.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) (err error) {
	defer s.observe("TouchSession", time.Now(), &err)
	return s.Store.TouchSession(ctx, id, at)
}

// TransferGroupOwnership is the wrapped store's, timed.
func (s *Store) TransferGroupOwnership(ctx context.Context, groupID, fromUserID, toUserID string) (err error) {
	defer s.observe("TransferGroupOwnership", time.Now(), &err)
	return s.Store.TransferGroupOwnership(ctx, groupID, fromUserID, toUserID)
}

// UpdateMembershipRole is the wrapped store's, timed.
func (s *Store) UpdateMembershipRole(ctx context.Context, groupID, userID string, role aoba.Role) (_ *aoba.Membership, err error) {
	defer s.observe("UpdateMembershipRole", time.Now(), &err)
	return s.Store.UpdateMembershipRole(ctx, groupID, userID, role)
}

// UpdateMessage is the wrapped store's, timed.
func (s *Store) UpdateMessage(ctx context.Context, m *aoba.Message) (err error) {
	defer s.observe("UpdateMessage", time.Now(), &err)
	return s.Store.UpdateMessage(ctx, m)
}

// UpdatePasswordHash is the wrapped store's, timed.
func (s *Store) UpdatePasswordHash(ctx context.Context, id, hash string) (err error) {
	defer s.observe("UpdatePasswordHash", time.Now(), &err)
	return s.Store.UpdatePasswordHash(ctx, id, hash)
}

// UpdateUsername is the wrapped store's, timed.
func (s *Store) UpdateUsername(ctx context.Context, id, username string) (_ *aoba.User, err error) {
	defer s.observe("UpdateUsername", time.Now(), &err)
	return s.Store.UpdateUsername(ctx, id, username)
}

// FindConversationKeys is the wrapped store's, timed.
func (s *Store) FindConversationKeys(ctx context.Context, keys []string) (_ []string, err error) {
	defer s.observe("FindConversationKeys", time.Now(), &err)
	return s.Store.FindConversationKeys(ctx, keys)
}

// UpdateUserDisabled is the wrapped store's, timed.
func (s *Store) UpdateUserDisabled(ctx context.Context, id string, at *time.Time) (_ *aoba.User, err error) {
	defer s.observe("UpdateUserDisabled", time.Now(), &err)
	return s.Store.UpdateUserDisabled(ctx, id, at)
}
