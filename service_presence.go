package aoba

import "context"

// presenceOf returns the presence views of users as the user viewerID
// sees them: a user who blocks the viewer is offline with a nil LastSeen.
// It returns EUNAVAILABLE when the presence registry cannot be reached and
// the store's error when the blocks cannot be read.
func (s *Service) presenceOf(ctx context.Context, viewerID string, users []*User) ([]*UserPresence, error) {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	var pres map[string]Presence
	blockers := map[string]bool{}
	if len(ids) > 0 {
		var err error
		if pres, err = s.presence.FindPresence(ctx, ids); err != nil {
			return nil, Errorf(EUNAVAILABLE, "The presence service is unavailable.")
		}
		if blockers, err = s.blockersOf(ctx, viewerID, ids); err != nil {
			return nil, err
		}
	}
	out := make([]*UserPresence, len(users))
	for i, u := range users {
		out[i] = &UserPresence{UserID: u.ID, Username: u.Username, Status: StatusOffline}
		if p := pres[u.ID]; !blockers[u.ID] {
			out[i].LastSeen = p.LastSeen
			if p.Status == StatusOnline {
				out[i].Status = StatusOnline
			}
		}
	}
	return out, nil
}

// PresenceByUsername returns one user's presence as the caller sees it
// (see presenceOf), or ENOTFOUND.
func (s *Service) PresenceByUsername(ctx context.Context, c Claims, username string) (*UserPresence, error) {
	u, err := s.FindUserByUsername(ctx, username)
	if err != nil {
		return nil, err
	}
	ps, err := s.presenceOf(ctx, c.UserID, []*User{u})
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// PresenceByID returns one user's presence as the caller sees it (see
// presenceOf). It returns EINVALID for a malformed id and ENOTFOUND for an
// unknown one.
func (s *Service) PresenceByID(ctx context.Context, c Claims, id string) (*UserPresence, error) {
	u, err := s.findUserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	ps, err := s.presenceOf(ctx, c.UserID, []*User{u})
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// PresenceByUsernames returns the presence, as the caller sees it (see
// presenceOf), of the known users among usernames (1 to 100). Unknown
// names are left out; EINVALID for no name or too many.
func (s *Service) PresenceByUsernames(ctx context.Context, c Claims, usernames []string) ([]*UserPresence, error) {
	if len(usernames) == 0 || len(usernames) > MaxBatchIDs {
		return nil, Errorf(EINVALID, "usernames must hold 1 to 100 names.")
	}
	var valid []string
	for _, n := range usernames {
		if ValidateUsername(n) == nil {
			valid = append(valid, n)
		}
	}
	users, err := s.store.FindUsersByUsernames(ctx, uniqFold(valid))
	if err != nil {
		return nil, err
	}
	return s.presenceOf(ctx, c.UserID, users)
}

// PresenceByIDs returns the presence, as the caller sees it (see
// presenceOf), of the known users among ids (1 to 100 UUIDs). Unknown ids
// are left out; a malformed one is EINVALID.
func (s *Service) PresenceByIDs(ctx context.Context, c Claims, ids []string) ([]*UserPresence, error) {
	if err := validateIDs(ids, "userIds"); err != nil {
		return nil, err
	}
	users, err := s.store.FindUsersByIDs(ctx, uniq(ids))
	if err != nil {
		return nil, err
	}
	return s.presenceOf(ctx, c.UserID, users)
}

// PresenceChanged publishes a `presence` event to the sockets subscribed to
// the user, except those of the users the user blocks (who keep seeing
// them offline). The presence registry calls it once per change, on one
// pod. When the blocks cannot be read the event is not published (logged):
// it must not reach a blocked user.
func (s *Service) PresenceChanged(p Presence) {
	ctx := context.Background()
	bs, err := s.store.FindBlocksByBlocker(ctx, p.UserID)
	if err != nil {
		s.log.Warn("presence event dropped: blocks lookup failed", "err", err)
		return
	}
	except := make([]string, len(bs))
	for i, b := range bs {
		except[i] = b.BlockedID
	}
	s.publishPresence(ctx, p, Envelope{ExceptUsers: except})
}

// publishPresenceTo publishes p on the user's presence topic to the
// sockets of the user onlyUser alone: the offline view a user gets when
// the watched user blocks them, and the true presence when they are
// unblocked.
func (s *Service) publishPresenceTo(ctx context.Context, p Presence, onlyUser string) {
	s.publishPresence(ctx, p, Envelope{OnlyUser: onlyUser})
}

// publishPresence publishes p, as a `presence` frame in env, on the user's
// presence topic.
func (s *Service) publishPresence(ctx context.Context, p Presence, env Envelope) {
	names, err := s.usernames(ctx, []string{p.UserID})
	if err != nil {
		s.log.Warn("presence event: username lookup failed", "err", err)
	}
	v := &UserPresence{UserID: p.UserID, Username: names[p.UserID], Status: p.Status, LastSeen: p.LastSeen}
	if env.Frame, err = EncodeFrame(FramePresence, "", v); err != nil {
		s.log.Error("encode presence frame", "err", err)
		return
	}
	s.publish(ctx, Publication{Topic: PresenceTopic(p.UserID), Envelope: env})
}
