package aoba

import "context"

// presenceOf returns the presence views of users.
func (s *Service) presenceOf(ctx context.Context, users []*User) ([]*UserPresence, error) {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	var pres map[string]Presence
	if len(ids) > 0 {
		var err error
		if pres, err = s.presence.FindPresence(ctx, ids); err != nil {
			return nil, Errorf(EUNAVAILABLE, "The presence service is unavailable.")
		}
	}
	out := make([]*UserPresence, len(users))
	for i, u := range users {
		p := pres[u.ID]
		out[i] = &UserPresence{UserID: u.ID, Username: u.Username, Status: StatusOffline, LastSeen: p.LastSeen}
		if p.Status == StatusOnline {
			out[i].Status = StatusOnline
		}
	}
	return out, nil
}

// PresenceByUsername returns one user's presence, or ENOTFOUND.
func (s *Service) PresenceByUsername(ctx context.Context, username string) (*UserPresence, error) {
	u, err := s.FindUserByUsername(ctx, username)
	if err != nil {
		return nil, err
	}
	ps, err := s.presenceOf(ctx, []*User{u})
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// PresenceByID returns one user's presence. It returns EINVALID for a
// malformed id and ENOTFOUND for an unknown one.
func (s *Service) PresenceByID(ctx context.Context, id string) (*UserPresence, error) {
	u, err := s.findUserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	ps, err := s.presenceOf(ctx, []*User{u})
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// PresenceByUsernames returns the presence of the known users among
// usernames (1 to 100). Unknown names are left out.
func (s *Service) PresenceByUsernames(ctx context.Context, usernames []string) ([]*UserPresence, error) {
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
	return s.presenceOf(ctx, users)
}

// PresenceByIDs returns the presence of the known users among ids (1 to 100
// UUIDs). Unknown ids are left out; a malformed one is EINVALID.
func (s *Service) PresenceByIDs(ctx context.Context, ids []string) ([]*UserPresence, error) {
	if err := validateIDs(ids, "userIds"); err != nil {
		return nil, err
	}
	users, err := s.store.FindUsersByIDs(ctx, uniq(ids))
	if err != nil {
		return nil, err
	}
	return s.presenceOf(ctx, users)
}

// PresenceChanged publishes a `presence` event to the sockets subscribed to
// the user. The presence registry calls it once per change, on one pod.
func (s *Service) PresenceChanged(p Presence) {
	ctx := context.Background()
	names, err := s.usernames(ctx, []string{p.UserID})
	if err != nil {
		s.log.Warn("presence event: username lookup failed", "err", err)
	}
	v := &UserPresence{UserID: p.UserID, Username: names[p.UserID], Status: p.Status, LastSeen: p.LastSeen}
	frame, err := EncodeFrame(FramePresence, "", v)
	if err != nil {
		s.log.Error("encode presence frame", "err", err)
		return
	}
	s.publish(ctx, Publication{Topic: PresenceTopic(p.UserID), Envelope: Envelope{Frame: frame}})
}
