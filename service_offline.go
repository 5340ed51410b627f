package aoba

import "context"

// OfflineNotifier announces stored messages to the recipients who are not
// connected (mobile push). The Service calls NotifyOffline once per stored
// message, on the pod that stored it, and on no other pod: so one message
// starts at most one announcement per recipient across pods.
type OfflineNotifier interface {
	// NotifyOffline queues m; it never blocks and reports nothing (a full
	// queue drops m, counted by the implementation). The implementation
	// later calls Service.OfflineRecipients to learn whom to announce it
	// to, off the sender's path.
	NotifyOffline(m *MessageView)
}

// OfflineRecipients returns the users m is addressed to who have no open
// socket on any pod right now: for chat the recipient (none for a message
// to oneself), for groupchat the group's members other than the sender,
// checked with one FindPresence call. It returns the store's error when the
// members or users cannot be read and the presence registry's when
// presence cannot be.
func (s *Service) OfflineRecipients(ctx context.Context, m *MessageView) ([]*User, error) {
	var candidates []string
	switch m.Type {
	case MessageGroupChat:
		ms, err := s.store.FindMembershipsByGroup(ctx, m.ToID)
		if err != nil {
			return nil, err
		}
		for _, mb := range ms {
			if mb.UserID != m.FromID {
				candidates = append(candidates, mb.UserID)
			}
		}
	default:
		if m.ToID != m.FromID {
			candidates = []string{m.ToID}
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	ps, err := s.presence.FindPresence(ctx, candidates)
	if err != nil {
		return nil, err
	}
	var offline []string
	for _, id := range candidates {
		if ps[id].Status != StatusOnline {
			offline = append(offline, id)
		}
	}
	if len(offline) == 0 {
		return nil, nil
	}
	return s.store.FindUsersByIDs(ctx, offline)
}
