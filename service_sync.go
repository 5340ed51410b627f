package aoba

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
)

// SyncLag is how long after its id was made an item (message or event) is
// assumed to be committed. Ids are made on the pod before the write, so two
// writes on two pods can commit out of id order: a reader may see the
// later id before the earlier one commits. A sync cursor never moves past
// "now − SyncLag" until the items beyond it have been read again, so an
// item that commits late is not skipped; the price is that items of the
// last SyncLag may be returned twice. It also absorbs clock differences
// between pods smaller than itself.
const SyncLag = 2 * time.Second

// Sync page sizes.
const (
	SyncDefaultLimit = 100
	SyncMaxLimit     = 500
)

// Hello is the data of the `hello` frame: the socket's session, the sync
// cursor of the moment the socket opened (everything addressed to the user
// after it is either live on this socket or returned by GET /api/sync from
// it) and the server's ping interval in seconds.
type Hello struct {
	SessionID string `json:"session_id"`
	Sync      string `json:"sync"`
	Heartbeat int    `json:"heartbeat"`
}

// IDAt returns the smallest UUID version 7 string of the millisecond of t:
// every id NewID makes at t or later sorts after or equal to it, and every
// id made earlier sorts before it.
func IDAt(t time.Time) string {
	var u uuid.UUID
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(t.UnixMilli()))
	copy(u[:6], ms[2:])
	u[6] = 0x70 // version 7, no sub-millisecond bits
	u[8] = 0x80 // RFC 4122 variant, no random bits
	return u.String()
}

// SyncCursorAt returns the cursor of GET /api/sync that hello carries for a
// socket opened at t: the id of t − SyncLag.
func SyncCursorAt(t time.Time) string {
	return IDAt(t.Add(-SyncLag))
}

// syncCursor is the position of a client in its sync stream. Every item
// with an id up to floor has been returned; pos is where the current pass
// resumes. They differ only inside a pass that went past "now − SyncLag":
// the pass goes on from pos, and once it ends (more false) the next one
// starts again at floor, to pick up whatever committed late.
//
// Encoded, it is the floor id alone when pos equals floor, else
// "<floor>.<pos>"; clients treat it as opaque.
type syncCursor struct {
	floor, pos string
}

// String returns the encoded cursor.
func (c syncCursor) String() string {
	if c.pos == c.floor {
		return c.floor
	}
	return c.floor + "." + c.pos
}

// parseSyncCursor decodes s; it returns EINVALID unless s is one id or two
// ids "<floor>.<pos>" with floor ≤ pos.
func parseSyncCursor(s string) (syncCursor, error) {
	floor, pos, two := strings.Cut(s, ".")
	if !two {
		pos = floor
	}
	if !IsValidID(floor) || !IsValidID(pos) || pos < floor {
		return syncCursor{}, Errorf(EINVALID, "since must be a cursor returned by the server.")
	}
	return syncCursor{floor: strings.ToLower(floor), pos: strings.ToLower(pos)}, nil
}

// SyncResult is one page of GET /api/sync.
type SyncResult struct {
	Messages []*MessageView `json:"messages"`
	Events   []*EventView   `json:"events"`
	Next     string         `json:"next"`
	More     bool           `json:"more"`
}

// Sync returns what is addressed to the caller after the cursor since,
// oldest first by id across messages and events, at most limit items
// (1..SyncMaxLimit) in all:
//   - messages: the 1:1 messages the caller sent or received, and the
//     messages of the groups the caller is a member of now (found through
//     the caller's memberships: a group message is one row, whatever the
//     group's size);
//   - events: the invitation, group, block, message.updated and
//     message.deleted events stored for the caller (an edit or deletion is
//     an event, so it reaches a client whose cursor is past the message).
//
// An empty since, or one older than EventRetention, starts at the
// beginning of the retention window. More says whether to call again with
// Next at once. Next never passes "now − SyncLag" for good: a pass that
// reads items newer than that ends (more false) with a Next that reads
// them again, so items may be returned twice across calls, never skipped;
// clients de-duplicate by id. It returns EINVALID for a bad cursor or
// limit and the store's error when a read fails.
func (s *Service) Sync(ctx context.Context, c Claims, since string, limit int) (*SyncResult, error) {
	if limit < 1 || limit > SyncMaxLimit {
		return nil, Errorf(EINVALID, "limit must be between 1 and %d.", SyncMaxLimit)
	}
	now := time.Now()
	start := IDAt(now.Add(-EventRetention))
	cur := syncCursor{floor: start, pos: start}
	if since != "" {
		var err error
		if cur, err = parseSyncCursor(since); err != nil {
			return nil, err
		}
		cur.floor, cur.pos = max(cur.floor, start), max(cur.pos, start)
	}
	horizon := IDAt(now.Add(-SyncLag))

	ms, err := s.store.FindMembershipsByUser(ctx, c.UserID)
	if err != nil {
		return nil, err
	}
	f := MessageFilter{ParticipantID: c.UserID, AfterID: cur.pos, Limit: limit + 1, SkipTotal: true}
	for _, m := range ms {
		f.Conversations = append(f.Conversations, GroupConversation(m.GroupID))
	}
	msgs, _, err := s.store.FindMessages(ctx, f)
	if err != nil {
		return nil, err
	}
	evs, err := s.store.FindEvents(ctx, c.UserID, cur.pos, limit+1)
	if err != nil {
		return nil, err
	}

	// Merge the two id-ordered lists and keep the first limit items.
	var nm, ne int
	last := cur.pos
	for nm+ne < limit && (nm < len(msgs) || ne < len(evs)) {
		if ne == len(evs) || (nm < len(msgs) && msgs[nm].ID < evs[ne].ID) {
			last = msgs[nm].ID
			nm++
		} else {
			last = evs[ne].ID
			ne++
		}
	}
	more := nm < len(msgs) || ne < len(evs)

	next := cur
	if cur.pos == cur.floor {
		// This call read from the floor: everything visible after it up
		// to last was returned, and everything up to the horizon is
		// visible.
		if more {
			next.floor = max(cur.floor, min(last, horizon))
		} else {
			next.floor = max(cur.floor, horizon)
		}
	}
	if more {
		next.pos = max(last, next.floor)
	} else {
		next.pos = next.floor
	}

	views, err := s.messageViews(ctx, msgs[:nm])
	if err != nil {
		return nil, err
	}
	out := &SyncResult{Messages: views, Events: make([]*EventView, ne), Next: next.String(), More: more}
	for i, e := range evs[:ne] {
		out.Events[i] = &EventView{ID: e.ID, Type: e.Type, Data: e.Data, CreatedAt: e.CreatedAt}
	}
	return out, nil
}

// publishEvent stores one event of type typ with data for each of userIDs
// and then publishes the live frame to their user topics, so that nothing
// a socket gets live is missing from GET /api/sync. A storage failure is
// logged, not returned: the change the event announces is already stored,
// and the live frame still goes out.
func (s *Service) publishEvent(ctx context.Context, typ string, data any, userIDs []string) {
	ids := uniq(userIDs)
	if len(ids) == 0 {
		return
	}
	raw, err := json.Marshal(data)
	var frame []byte
	if err == nil {
		frame, err = json.Marshal(Frame{Type: typ, Data: raw})
	}
	if err != nil {
		s.log.Error("encode frame", "type", typ, "err", err)
		return
	}
	id, at := NewID(), Now()
	evs := make([]*Event, len(ids))
	for i, u := range ids {
		evs[i] = &Event{ID: id, UserID: u, Type: typ, Data: raw, CreatedAt: at}
	}
	if err := s.store.AppendEvents(ctx, evs); err != nil {
		s.log.Warn("events not stored", "type", typ, "recipients", len(evs), "err", err)
	}
	pubs := make([]Publication, len(ids))
	for i, u := range ids {
		pubs[i] = Publication{Topic: UserTopic(u), Envelope: Envelope{Frame: frame}}
	}
	s.publish(ctx, pubs...)
}
