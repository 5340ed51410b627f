package aoba

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// FrameReceipt is the server event of a read marker that moved (data
// ReceiptEvent).
const FrameReceipt = "receipt"

// EventReceipt is the sync event type of a receipt.
const EventReceipt = FrameReceipt

// GroupSummary is a group as a conversation names it.
type GroupSummary struct {
	ID   string `json:"group_id"`
	Name string `json:"name"`
}

// ConversationView is a conversation as its caller sees it: ID is the group
// id for a group and the other user's id for a 1:1 conversation; Peer is
// set for chat, Group for groupchat. Unread is kept by the server, the same
// on every device; ReadUpTo is the caller's marker (null before any).
type ConversationView struct {
	ID          string        `json:"id"`
	Type        MessageType   `json:"type"`
	Peer        *User         `json:"peer,omitempty"`
	Group       *GroupSummary `json:"group,omitempty"`
	LastMessage *MessageView  `json:"last_message"`
	Unread      int64         `json:"unread"`
	ReadUpTo    *string       `json:"read_up_to"`
	UpdatedAt   time.Time     `json:"updated_at"`
}

// ConversationPage is one page of GET /api/conversations.
type ConversationPage struct {
	Conversations []*ConversationView `json:"conversations"`
	More          bool                `json:"more"`
}

// Receipt is one participant's read marker.
type Receipt struct {
	UserID   string    `json:"user_id"`
	Username string    `json:"username"`
	ReadUpTo string    `json:"read_up_to"`
	ReadAt   time.Time `json:"read_at"`
}

// ReceiptEvent is the data of a `receipt` frame; Conversation is the
// conversation id as its recipient sees it.
type ReceiptEvent struct {
	Conversation string `json:"conversation"`
	UserID       string `json:"user_id"`
	Username     string `json:"username"`
	ReadUpTo     string `json:"read_up_to"`
}

// directPeer returns the other user of the 1:1 conversation key as seen by
// userID, or "" when key is not a 1:1 conversation.
func directPeer(key, userID string) string {
	rest, ok := strings.CutPrefix(key, "d:")
	if !ok {
		return ""
	}
	a, b, _ := strings.Cut(rest, ":")
	if a == userID {
		return b
	}
	return a
}

// conversationRef is a resolved conversation id.
type conversationRef struct {
	key   string
	peer  *User
	group *Group
}

// resolveConversation returns the conversation id names for the caller: a
// group the caller is a member of, else a user other than the caller. It
// returns ENOTFOUND otherwise.
func (s *Service) resolveConversation(ctx context.Context, c Claims, id string) (*conversationRef, error) {
	if !IsValidID(id) {
		return nil, Errorf(ENOTFOUND, "Conversation not found.")
	}
	if acc, err := s.authorize(ctx, c, id, ActionRead); err == nil {
		return &conversationRef{key: GroupConversation(acc.group.ID), group: acc.group}, nil
	} else if ErrorCode(err) != ENOTFOUND {
		return nil, err
	}
	u, err := s.store.FindUserByID(ctx, id)
	if ErrorCode(err) == ENOTFOUND || (err == nil && u.ID == c.UserID) {
		return nil, Errorf(ENOTFOUND, "Conversation not found.")
	} else if err != nil {
		return nil, err
	}
	return &conversationRef{key: DirectConversation(c.UserID, u.ID), peer: u}, nil
}

// conversationView returns the view of conv for userID with its marker r
// (nil: none), its peer or group and current usernames names; its last
// message is null when conv has none (a group without messages).
func conversationView(conv *ConversationState, r *ReadState, peer *User, g *Group, names map[string]string) *ConversationView {
	v := &ConversationView{Unread: Unread(conv, r), UpdatedAt: conv.UpdatedAt}
	if conv.LastMessage != nil {
		v.LastMessage = messageView(conv.LastMessage, names)
	}
	if r != nil {
		v.ReadUpTo = &r.ReadUpTo
	}
	switch {
	case g != nil:
		v.ID, v.Type, v.Group = g.ID, MessageGroupChat, &GroupSummary{ID: g.ID, Name: g.Name}
	case peer != nil:
		v.ID, v.Type, v.Peer = peer.ID, MessageChat, peer
	}
	return v
}

// joinKey returns where a group without messages sorts in its member's
// conversation list, which is by last message id, newest first: the
// group's id with the time part of joined (a UUIDv7 starts with its Unix
// time in milliseconds), so it sorts as a message sent when the member
// joined would.
func joinKey(groupID string, joined time.Time) string {
	ms := uint64(joined.UnixMilli())
	return fmt.Sprintf("%08x-%04x", ms>>16, ms&0xffff) + groupID[13:]
}

// listed is a conversation of a list page and the key it sorts by: its
// last message id, or joinKey for a group without messages.
type listed struct {
	conv *ConversationState
	key  string
}

// ListConversations returns one page of the caller's conversations: their
// 1:1 conversations and their groups, most recent activity first, at most
// limit (1..MaxPageSize). A conversation sorts by its last message; a group
// without messages by the time the caller joined it (or created it), with
// last_message null and updated_at that time. before, when set, is the
// last_message id of the previous page's last conversation or, when that
// has no message (a group), its id; the page holds what sorts after it.
// It reads only per-conversation state, never history. It returns EINVALID
// for bad paging and the store's error when a read fails.
func (s *Service) ListConversations(ctx context.Context, c Claims, limit int, before string) (*ConversationPage, error) {
	if limit < 1 || limit > MaxPageSize {
		return nil, Errorf(EINVALID, "limit must be between 1 and 100.")
	} else if before != "" && !IsValidID(before) {
		return nil, Errorf(EINVALID, "before must be a message id or a group id.")
	}
	ms, err := s.store.FindMembershipsByUser(ctx, c.UserID)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(ms))
	joined := make(map[string]*Membership, len(ms))
	for i, m := range ms {
		keys[i] = GroupConversation(m.GroupID)
		joined[keys[i]] = m
	}
	bound := strings.ToLower(before)
	if m := joined[GroupConversation(bound)]; m != nil {
		bound = joinKey(m.GroupID, m.JoinedAt)
	}
	convs, err := s.store.FindConversations(ctx, c.UserID, keys, bound, limit+1)
	if err != nil {
		return nil, err
	}
	items, err := s.withQuietGroups(ctx, convs, joined, bound, limit)
	if err != nil {
		return nil, err
	}
	page := &ConversationPage{Conversations: []*ConversationView{}, More: len(items) > limit}
	items = items[:min(len(items), limit)]
	var convKeys, userIDs, groupIDs []string
	for _, it := range items {
		convKeys = append(convKeys, it.conv.Key)
		if it.conv.LastMessage != nil {
			userIDs = append(userIDs, it.conv.LastMessage.FromID)
		}
		if p := directPeer(it.conv.Key, c.UserID); p != "" {
			userIDs = append(userIDs, p)
		} else {
			groupIDs = append(groupIDs, strings.TrimPrefix(it.conv.Key, "g:"))
		}
	}
	rs, err := s.store.FindReadStates(ctx, c.UserID, convKeys)
	if err != nil {
		return nil, err
	}
	reads := make(map[string]*ReadState, len(rs))
	for _, r := range rs {
		reads[r.Conversation] = r
	}
	users, err := s.store.FindUsersByIDs(ctx, uniq(userIDs))
	if err != nil {
		return nil, err
	}
	byID, names := make(map[string]*User, len(users)), make(map[string]string, len(users))
	for _, u := range users {
		byID[u.ID], names[u.ID] = u, u.Username
	}
	gs, err := s.store.FindGroupsByIDs(ctx, groupIDs)
	if err != nil {
		return nil, err
	}
	groups := make(map[string]*Group, len(gs))
	for _, g := range gs {
		groups[g.ID] = g
	}
	for _, it := range items {
		var peer *User
		var g *Group
		if p := directPeer(it.conv.Key, c.UserID); p != "" {
			if peer = byID[p]; peer == nil {
				continue // the peer's account is gone
			}
		} else if g = groups[strings.TrimPrefix(it.conv.Key, "g:")]; g == nil {
			continue
		}
		page.Conversations = append(page.Conversations, conversationView(it.conv, reads[it.conv.Key], peer, g, names))
	}
	return page, nil
}

// withQuietGroups returns convs, the first page of conversations with
// messages sorting below bound (at most limit+1), merged with the groups
// of joined (by conversation key) that have no message yet and sort below
// bound, newest first. Only groups that sort above convs' (limit+1)th are
// looked up, in one store call: the others cannot be on this page.
func (s *Service) withQuietGroups(ctx context.Context, convs []*ConversationState, joined map[string]*Membership, bound string, limit int) ([]listed, error) {
	items := make([]listed, 0, len(convs))
	onPage := make(map[string]bool, len(convs))
	for _, conv := range convs {
		items = append(items, listed{conv: conv, key: conv.LastMessage.ID})
		onPage[conv.Key] = true
	}
	var floor string
	if len(convs) > limit {
		floor = convs[limit].LastMessage.ID
	}
	quiet := map[string]listed{}
	var keys []string
	for key, m := range joined {
		jk := joinKey(m.GroupID, m.JoinedAt)
		if onPage[key] || (bound != "" && jk >= bound) || jk <= floor {
			continue
		}
		quiet[key] = listed{conv: &ConversationState{Key: key, UpdatedAt: m.JoinedAt}, key: jk}
		keys = append(keys, key)
	}
	if len(keys) > 0 {
		started, err := s.store.FindConversationKeys(ctx, keys)
		if err != nil {
			return nil, err
		}
		for _, k := range started {
			delete(quiet, k)
		}
	}
	for _, it := range quiet {
		items = append(items, it)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].key > items[j].key })
	return items, nil
}

// MarkRead moves the caller's read marker in the conversation id (a group
// id or the other user's id) to the message upTo, unless it is there or
// further already (it never moves backwards), and returns the
// conversation. When the marker moves, a `receipt` event goes to the
// conversation's other participants and to the reader's sockets, and is
// stored for their sync. It returns EINVALID when upTo is not an id and
// ENOTFOUND for an unknown conversation or a message not in it.
func (s *Service) MarkRead(ctx context.Context, c Claims, id, upTo string) (*ConversationView, error) {
	if !IsValidID(upTo) {
		return nil, Errorf(EINVALID, "up_to must be a message id.")
	}
	ref, err := s.resolveConversation(ctx, c, id)
	if err != nil {
		return nil, err
	}
	me, err := s.Me(ctx, c)
	if err != nil {
		return nil, err
	}
	before, err := s.store.FindReadStates(ctx, c.UserID, []string{ref.key})
	if err != nil {
		return nil, err
	}
	r, err := s.store.MarkRead(ctx, c.UserID, ref.key, strings.ToLower(upTo), Now())
	if err != nil {
		return nil, err
	}
	conv, err := s.store.FindConversation(ctx, ref.key)
	if err != nil {
		return nil, err
	}
	names, err := s.usernames(ctx, []string{conv.LastMessage.FromID, conv.LastMessage.ToID})
	if err != nil {
		return nil, err
	}
	if len(before) == 0 || before[0].ReadUpTo < r.ReadUpTo {
		s.publishReceipt(ctx, ref, me, r.ReadUpTo)
	}
	return conversationView(conv, r, ref.peer, ref.group, names), nil
}

// publishReceipt sends and stores the receipt of me's marker readUpTo in
// ref: to the peer (or the group's members) and to me.
func (s *Service) publishReceipt(ctx context.Context, ref *conversationRef, me *User, readUpTo string) {
	ev := ReceiptEvent{UserID: me.ID, Username: me.Username, ReadUpTo: readUpTo}
	if ref.group != nil {
		ms, err := s.store.FindMembershipsByGroup(ctx, ref.group.ID)
		if err != nil {
			s.log.Warn("receipt not sent", "err", err)
			return
		}
		ids := []string{me.ID}
		for _, m := range ms {
			ids = append(ids, m.UserID)
		}
		ev.Conversation = ref.group.ID
		s.publishEvent(ctx, EventReceipt, ev, ids)
		return
	}
	ev.Conversation = me.ID
	s.publishEvent(ctx, EventReceipt, ev, []string{ref.peer.ID})
	ev.Conversation = ref.peer.ID
	s.publishEvent(ctx, EventReceipt, ev, []string{me.ID})
}

// Receipts returns the read markers of the conversation id's participants
// (every user who has one, the caller included), by user id. It returns
// ENOTFOUND for an unknown conversation and the store's error when a read
// fails.
func (s *Service) Receipts(ctx context.Context, c Claims, id string) ([]*Receipt, error) {
	ref, err := s.resolveConversation(ctx, c, id)
	if err != nil {
		return nil, err
	}
	rs, err := s.store.FindConversationReadStates(ctx, ref.key)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.UserID
	}
	names, err := s.usernames(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := []*Receipt{}
	for _, r := range rs {
		if n, ok := names[r.UserID]; ok {
			out = append(out, &Receipt{UserID: r.UserID, Username: n, ReadUpTo: r.ReadUpTo, ReadAt: r.ReadAt})
		}
	}
	return out, nil
}
