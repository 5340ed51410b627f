package aoba

import (
	"context"
	"unicode/utf8"
)

// RosterEntry is one contact of a user's XMPP roster: Name is the user's
// own name for the contact ("" for none).
type RosterEntry struct {
	UserID   string
	Username string
	Name     string
}

// rosterPages bounds the conversation pages Roster reads.
const rosterPages = MaxRosterItems / MaxPageSize

// Roster returns the caller's roster: the contacts they added, then their
// 1:1 conversation partners not among them, most recent first. Deleted
// users are left out. It returns the store's errors.
func (s *Service) Roster(ctx context.Context, c Claims) ([]*RosterEntry, error) {
	items, err := s.store.FindRosterItems(ctx, c.UserID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ContactID
	}
	users, err := s.store.FindUsersByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(users))
	for _, u := range users {
		names[u.ID] = u.Username
	}
	out := make([]*RosterEntry, 0, len(items))
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if name, ok := names[it.ContactID]; ok {
			out = append(out, &RosterEntry{UserID: it.ContactID, Username: name, Name: it.Name})
			seen[it.ContactID] = true
		}
	}
	before := ""
	for page := 0; page < rosterPages && len(out) < MaxRosterItems; page++ {
		p, err := s.ListConversations(ctx, c, MaxPageSize, before)
		if err != nil {
			return nil, err
		}
		for _, cv := range p.Conversations {
			if cv.Peer != nil && !seen[cv.Peer.ID] && cv.Peer.ID != c.UserID {
				out = append(out, &RosterEntry{UserID: cv.Peer.ID, Username: cv.Peer.Username})
				seen[cv.Peer.ID] = true
			}
		}
		if !p.More || len(p.Conversations) == 0 {
			break
		}
		last := p.Conversations[len(p.Conversations)-1]
		if last.LastMessage != nil {
			before = last.LastMessage.ID
		} else if last.Group != nil {
			before = last.Group.ID
		} else {
			break
		}
	}
	return out, nil
}

// AddRosterItem adds the user contactID to the caller's roster under name,
// or renames the contact. It returns EINVALID for a bad id, the caller
// themselves or a name over RosterNameMaxLen, ENOTFOUND for an unknown
// user and ECONFLICT for a full roster.
func (s *Service) AddRosterItem(ctx context.Context, c Claims, contactID, name string) (*RosterEntry, error) {
	if utf8.RuneCountInString(name) > RosterNameMaxLen || !utf8.ValidString(name) {
		return nil, Errorf(EINVALID, "A roster name has at most %d characters.", RosterNameMaxLen)
	}
	if contactID == c.UserID {
		return nil, Errorf(EINVALID, "You cannot add yourself to your roster.")
	}
	u, err := s.findUserByID(ctx, contactID)
	if err != nil {
		return nil, err
	}
	item := &RosterItem{UserID: c.UserID, ContactID: u.ID, Name: name, CreatedAt: Now()}
	if err := s.store.PutRosterItem(ctx, item); err != nil {
		return nil, err
	}
	return &RosterEntry{UserID: u.ID, Username: u.Username, Name: name}, nil
}

// RemoveRosterItem removes contactID from the caller's added contacts (a
// conversation partner stays on the roster). It returns ENOTFOUND when the
// caller did not add them.
func (s *Service) RemoveRosterItem(ctx context.Context, c Claims, contactID string) error {
	return s.store.DeleteRosterItem(ctx, c.UserID, contactID)
}
