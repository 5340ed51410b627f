package aoba

import (
	"context"
	"unicode/utf8"
)

// Register creates an account. It returns EINVALID for a bad username or
// password (see ValidateNewUsername and ValidateNewPassword) and ECONFLICT
// when the username is taken in any case.
func (s *Service) Register(ctx context.Context, username, password string) (*User, error) {
	if err := ValidateNewUsername(username); err != nil {
		return nil, err
	} else if err := ValidateNewPassword(password); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(password)
	if err != nil {
		return nil, err
	}
	u := &User{ID: NewID(), Username: username, PasswordHash: hash, CreatedAt: Now()}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if ErrorCode(err) == ECONFLICT {
			return nil, Errorf(ECONFLICT, "Username is already taken.")
		}
		return nil, err
	}
	return u, nil
}

// Me returns the caller's account, or EUNAUTHORIZED when it no longer exists.
func (s *Service) Me(ctx context.Context, c Claims) (*User, error) {
	u, err := s.store.FindUserByID(ctx, c.UserID)
	if ErrorCode(err) == ENOTFOUND {
		return nil, Errorf(EUNAUTHORIZED, "The account no longer exists.")
	}
	return u, err
}

// ChangeUsername renames the caller. It returns EINVALID for a bad name (see
// ValidateNewUsername) and
// ECONFLICT when another account holds it in any case.
func (s *Service) ChangeUsername(ctx context.Context, c Claims, username string) (*User, error) {
	if err := ValidateNewUsername(username); err != nil {
		return nil, err
	}
	u, err := s.store.UpdateUsername(ctx, c.UserID, username)
	switch ErrorCode(err) {
	case "":
		s.announceDirectory(ctx, DirectoryChange{UserID: c.UserID})
		return u, nil
	case ECONFLICT:
		return nil, Errorf(ECONFLICT, "Username is already taken.")
	case ENOTFOUND:
		return nil, Errorf(EUNAUTHORIZED, "The account no longer exists.")
	}
	return nil, err
}

// ChangePassword replaces the caller's password after checking the current
// one, then signs out every other session of the caller. It returns EINVALID
// for a bad new password (see ValidateNewPassword) and EFORBIDDEN for a
// wrong current one.
func (s *Service) ChangePassword(ctx context.Context, c Claims, current, next string) error {
	if current == "" {
		return Errorf(EINVALID, "Current password is required.")
	} else if err := ValidateNewPassword(next); err != nil {
		return err
	}
	u, err := s.Me(ctx, c)
	if err != nil {
		return err
	}
	if len(current) > PasswordMaxLen*utf8.UTFMax {
		return Errorf(EFORBIDDEN, "Current password is incorrect.")
	}
	ok, err := s.hasher.Verify(u.PasswordHash, current)
	if err != nil {
		return err
	} else if !ok {
		return Errorf(EFORBIDDEN, "Current password is incorrect.")
	}
	hash, err := s.hasher.Hash(next)
	if err != nil {
		return err
	}
	if err := s.store.UpdatePasswordHash(ctx, u.ID, hash); err != nil {
		return err
	}
	if err := s.revokeUserSessions(ctx, u.ID, c.SessionID); err != nil {
		return err
	}
	s.closeSessions(ctx, u.ID, CloseOrder{Code: CloseSessionRevoked, Reason: "password changed", KeepSession: c.SessionID})
	return nil
}

// DeleteAccount signs out every session of the caller, hands their owned
// groups on (see leaveAllGroups), cancels their pending invitations and
// deletes the account.
func (s *Service) DeleteAccount(ctx context.Context, c Claims) error {
	u, err := s.Me(ctx, c)
	if err != nil {
		return err
	}
	return s.deleteAccount(ctx, u)
}

// deleteAccount is DeleteAccount of the account u, asked by its owner or
// by an administrator (AdminDeleteUser).
func (s *Service) deleteAccount(ctx context.Context, u *User) error {
	if err := s.revokeUserSessions(ctx, u.ID, ""); err != nil {
		return err
	}
	if err := s.leaveAllGroups(ctx, u); err != nil {
		return err
	}
	invs, err := s.store.FindInvitations(ctx, InvitationFilter{InviteeID: u.ID, Status: InvitationPending})
	if err != nil {
		return err
	}
	for _, inv := range invs {
		if _, err := s.store.RespondInvitation(ctx, inv.ID, InvitationCancelled, Now()); err != nil && ErrorCode(err) != ECONFLICT {
			return err
		}
	}
	// The store announces the deletion on DirectoryTopic (announcingStore).
	if err := s.store.DeleteUser(ctx, u.ID); err != nil && ErrorCode(err) != ENOTFOUND {
		return err
	}
	s.closeSessions(ctx, u.ID, CloseOrder{Code: CloseSessionRevoked, Reason: "account deleted"})
	return nil
}

// FindUserByUsername returns ENOTFOUND for an unknown or malformed name.
func (s *Service) FindUserByUsername(ctx context.Context, username string) (*User, error) {
	if ValidateUsername(username) != nil {
		return nil, Errorf(ENOTFOUND, "User not found.")
	}
	u, err := s.store.FindUserByUsername(ctx, username)
	if ErrorCode(err) == ENOTFOUND {
		return nil, Errorf(ENOTFOUND, "User not found.")
	}
	return u, err
}

// UserSearch is a search request: q of 2 to 100 characters, page >= 1,
// limit 1 to 100, (page-1)*limit at most MaxOffset, at most 100 excluded
// ids.
type UserSearch struct {
	Query   string
	Page    int
	Limit   int
	Exclude []string
}

// SearchUsers returns one page of users whose username contains the query
// and the total number of matches. It returns EINVALID for a bad request.
func (s *Service) SearchUsers(ctx context.Context, q UserSearch) ([]*User, int, error) {
	if n := utf8.RuneCountInString(q.Query); n < SearchQueryMinLen || n > SearchQueryMaxLen {
		return nil, 0, Errorf(EINVALID, "Query must be 2 to 100 characters long.")
	} else if q.Page < 1 {
		return nil, 0, Errorf(EINVALID, "Page must be at least 1.")
	} else if q.Limit < 1 || q.Limit > MaxPageSize {
		return nil, 0, Errorf(EINVALID, "Limit must be between 1 and 100.")
	} else if q.Page-1 > MaxOffset/q.Limit {
		return nil, 0, Errorf(EINVALID, "Page is too large: (page-1) times limit must be at most %d.", MaxOffset)
	} else if len(q.Exclude) > MaxBatchIDs {
		return nil, 0, Errorf(EINVALID, "At most 100 ids may be excluded.")
	}
	for _, id := range q.Exclude {
		if !IsValidID(id) {
			return nil, 0, Errorf(EINVALID, "Exclude must be a comma-separated list of UUIDs.")
		}
	}
	return s.store.FindUsers(ctx, UserFilter{Query: q.Query, Exclude: q.Exclude, Offset: (q.Page - 1) * q.Limit, Limit: q.Limit})
}

// metadata returns the public metadata of u.
func (s *Service) metadata(u *User) *Metadata {
	return &Metadata{ID: u.ID, Username: u.Username, Domain: s.domain, DisplayName: u.Username}
}

// FindMetadata returns the metadata of one user. It returns EINVALID for a
// malformed id and ENOTFOUND for an unknown one.
func (s *Service) FindMetadata(ctx context.Context, id string) (*Metadata, error) {
	u, err := s.findUserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.metadata(u), nil
}

// findUserByID looks up a user by an id from the client. It returns
// EINVALID for a malformed id and ENOTFOUND for an unknown one.
func (s *Service) findUserByID(ctx context.Context, id string) (*User, error) {
	if !IsValidID(id) {
		return nil, Errorf(EINVALID, "User id must be a UUID.")
	}
	u, err := s.store.FindUserByID(ctx, id)
	if ErrorCode(err) == ENOTFOUND {
		return nil, Errorf(ENOTFOUND, "User not found.")
	}
	return u, err
}

// FindMetadataBatch returns the metadata of the known users among ids, in
// the order asked. It returns EINVALID for more than 100 ids or a malformed
// one.
func (s *Service) FindMetadataBatch(ctx context.Context, ids []string) ([]*Metadata, error) {
	if err := validateIDs(ids, "userIds"); err != nil {
		return nil, err
	}
	users, err := s.store.FindUsersByIDs(ctx, uniq(ids))
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*User, len(users))
	for _, u := range users {
		byID[u.ID] = u
	}
	out := make([]*Metadata, 0, len(users))
	for _, id := range uniq(ids) {
		if u, ok := byID[id]; ok {
			out = append(out, s.metadata(u))
		}
	}
	return out, nil
}

// validateIDs returns EINVALID unless ids holds 1 to 100 UUIDs.
func validateIDs(ids []string, field string) error {
	if len(ids) == 0 {
		return Errorf(EINVALID, "%s must hold at least one id.", field)
	} else if len(ids) > MaxBatchIDs {
		return Errorf(EINVALID, "%s must hold at most 100 ids.", field)
	}
	for _, id := range ids {
		if !IsValidID(id) {
			return Errorf(EINVALID, "%s must hold UUIDs only.", field)
		}
	}
	return nil
}
