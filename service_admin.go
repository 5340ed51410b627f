package aoba

import (
	"context"
	"time"
	"unicode/utf8"
)

// errDisabled answers a login to an account an administrator disabled,
// once its password is known to be right (so the answer tells a guesser
// nothing).
var errDisabled = &Error{Code: EFORBIDDEN, Message: "This account has been disabled by an administrator."}

// errDisabledSession answers a token of a disabled account.
var errDisabledSession = &Error{Code: EUNAUTHORIZED, Message: "The account has been disabled."}

// AdminUser is an account as the admin API shows it. Sockets counts its
// open WebSockets across pods and Online says whether presence sees it
// online; both are null when the hub cannot be reached. Sessions counts
// its open sessions (signed-in devices). LastSeen is the later of the
// close of its last socket and the last use of one of its sessions (to
// within five minutes); null when neither is known.
type AdminUser struct {
	ID         string     `json:"id"`
	Username   string     `json:"username"`
	CreatedAt  time.Time  `json:"created_at"`
	Disabled   bool       `json:"disabled"`
	DisabledAt *time.Time `json:"disabled_at"`
	Sessions   int        `json:"sessions"`
	Sockets    *int       `json:"sockets"`
	Online     *bool      `json:"online"`
	LastSeen   *time.Time `json:"last_seen"`
}

// AdminSearch selects the users the admin API lists: those whose username
// contains Query (case-insensitive; every user when empty), page Page
// (from 1) of Limit (1 to MaxPageSize) users, ordered by username.
type AdminSearch struct {
	Query string
	Page  int
	Limit int
}

// AdminUsers returns one page of the users matching q, with their sockets,
// sessions and last-seen time, and the total number of matches. It returns
// EINVALID for a bad page, limit or a query over SearchQueryMaxLen.
func (s *Service) AdminUsers(ctx context.Context, q AdminSearch) ([]*AdminUser, int, error) {
	switch {
	case utf8.RuneCountInString(q.Query) > SearchQueryMaxLen:
		return nil, 0, Errorf(EINVALID, "Query must be at most %d characters long.", SearchQueryMaxLen)
	case q.Page < 1:
		return nil, 0, Errorf(EINVALID, "Page must be at least 1.")
	case q.Limit < 1 || q.Limit > MaxPageSize:
		return nil, 0, Errorf(EINVALID, "Limit must be between 1 and 100.")
	case q.Page-1 > MaxOffset/q.Limit:
		return nil, 0, Errorf(EINVALID, "Page is too large: (page-1) times limit must be at most %d.", MaxOffset)
	}
	users, total, err := s.store.FindUsers(ctx, UserFilter{Query: q.Query, Offset: (q.Page - 1) * q.Limit, Limit: q.Limit})
	if err != nil {
		return nil, 0, err
	}
	views, err := s.adminViews(ctx, users)
	if err != nil {
		return nil, 0, err
	}
	return views, total, nil
}

// AdminUser returns the account ref names: a user id, or else a username.
// It returns ENOTFOUND when there is none.
func (s *Service) AdminUser(ctx context.Context, ref string) (*AdminUser, error) {
	u, err := s.findUserByRef(ctx, ref)
	if err != nil {
		return nil, err
	}
	return s.adminView(ctx, u)
}

// DisableUser disables the account ref names (see AdminUser): it is marked
// disabled in the store first, so that no new login or session check lets
// it in, then every session is revoked and every socket closed with
// CloseSessionRevoked. Disabling a disabled account keeps its DisabledAt
// and revokes again. It returns ENOTFOUND for an unknown account and
// EUNAVAILABLE when the session cache cannot record the revocation (the
// account is disabled; call again).
func (s *Service) DisableUser(ctx context.Context, ref string) (*AdminUser, error) {
	u, err := s.findUserByRef(ctx, ref)
	if err != nil {
		return nil, err
	}
	if u.DisabledAt == nil {
		now := Now()
		if u, err = s.updateDisabled(ctx, u.ID, &now); err != nil {
			return nil, err
		}
	}
	if err := s.revokeUserSessions(ctx, u.ID, ""); err != nil {
		return nil, err
	}
	s.closeSessions(ctx, u.ID, CloseOrder{Code: CloseSessionRevoked, Reason: "account disabled"})
	return s.adminView(ctx, u)
}

// EnableUser lets the account ref names sign in again (its sessions stay
// revoked: its devices sign in anew). Enabling an enabled account changes
// nothing. It returns ENOTFOUND for an unknown account.
func (s *Service) EnableUser(ctx context.Context, ref string) (*AdminUser, error) {
	u, err := s.findUserByRef(ctx, ref)
	if err != nil {
		return nil, err
	}
	if u.DisabledAt != nil {
		if u, err = s.updateDisabled(ctx, u.ID, nil); err != nil {
			return nil, err
		}
	}
	return s.adminView(ctx, u)
}

// ForceLogout revokes every session of the account ref names and closes
// its sockets with CloseSessionRevoked; it may sign in again. It returns
// ENOTFOUND for an unknown account and EUNAVAILABLE when the session cache
// cannot record the revocation.
func (s *Service) ForceLogout(ctx context.Context, ref string) (*AdminUser, error) {
	u, err := s.findUserByRef(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := s.revokeUserSessions(ctx, u.ID, ""); err != nil {
		return nil, err
	}
	s.closeSessions(ctx, u.ID, CloseOrder{Code: CloseSessionRevoked, Reason: "signed out by an administrator"})
	return s.adminView(ctx, u)
}

// AdminDeleteUser deletes the account ref names as its owner would (see
// DeleteAccount) and returns it as it was. It returns ENOTFOUND for an
// unknown account.
func (s *Service) AdminDeleteUser(ctx context.Context, ref string) (*User, error) {
	u, err := s.findUserByRef(ctx, ref)
	if err != nil {
		return nil, err
	}
	if err := s.deleteAccount(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// updateDisabled sets the user's DisabledAt in the store.
func (s *Service) updateDisabled(ctx context.Context, id string, at *time.Time) (*User, error) {
	u, err := s.store.UpdateUserDisabled(ctx, id, at)
	if ErrorCode(err) == ENOTFOUND {
		return nil, Errorf(ENOTFOUND, "User not found.")
	}
	return u, err
}

// findUserByRef returns the user whose id is ref or, failing that, whose
// username is ref (usernames are never UUIDs, see ValidateNewUsername). It
// returns ENOTFOUND when there is none.
func (s *Service) findUserByRef(ctx context.Context, ref string) (*User, error) {
	if IsValidID(ref) {
		u, err := s.store.FindUserByID(ctx, ref)
		if ErrorCode(err) != ENOTFOUND {
			return u, err
		}
	}
	return s.FindUserByUsername(ctx, ref)
}

// adminView returns the admin view of u.
func (s *Service) adminView(ctx context.Context, u *User) (*AdminUser, error) {
	views, err := s.adminViews(ctx, []*User{u})
	if err != nil {
		return nil, err
	}
	return views[0], nil
}

// adminViews returns the admin views of users, in their order. Sockets
// and presence come from the hub: when it cannot be reached they are
// left null (logged), so that an operator can still act during an outage.
// It returns the store's error when sessions cannot be read.
func (s *Service) adminViews(ctx context.Context, users []*User) ([]*AdminUser, error) {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	var sockets map[string]int
	if s.sockets != nil && len(ids) > 0 {
		var err error
		if sockets, err = s.sockets.Count(ctx, ids); err != nil {
			s.log.Warn("admin: socket counts unavailable", "err", err)
		}
	}
	var pres map[string]Presence
	if len(ids) > 0 {
		var err error
		if pres, err = s.presence.FindPresence(ctx, ids); err != nil {
			s.log.Warn("admin: presence unavailable", "err", err)
		}
	}
	now := time.Now()
	out := make([]*AdminUser, len(users))
	for i, u := range users {
		v := &AdminUser{ID: u.ID, Username: u.Username, CreatedAt: u.CreatedAt, Disabled: u.DisabledAt != nil, DisabledAt: u.DisabledAt}
		if n, ok := sockets[u.ID]; ok {
			v.Sockets = &n
		}
		if p, ok := pres[u.ID]; ok {
			online := p.Status == StatusOnline
			v.Online = &online
			v.LastSeen = p.LastSeen
		}
		sessions, err := s.store.FindSessionsByUser(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		for _, sess := range sessions {
			if sess.Active(now) {
				v.Sessions++
			}
			if seen := sess.LastSeenAt; v.LastSeen == nil || seen.After(*v.LastSeen) {
				v.LastSeen = &seen
			}
		}
		out[i] = v
	}
	return out, nil
}
