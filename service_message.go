package aoba

import (
	"time"

	"context"
	"errors"
	"strings"
	"unicode/utf8"
)

// SendInput is a message to send: To is a username for chat and a group id
// for groupchat; Type defaults to chat. ClientID, when not nil, is the
// sender's idempotency key for this message (see SendMessage); nil (the
// field omitted or null) means none.
type SendInput struct {
	To       string      `json:"to"`
	Content  string      `json:"content"`
	Type     MessageType `json:"type"`
	ClientID *string     `json:"client_id,omitempty"`
}

// ClientID returns a pointer to id, for SendInput.ClientID.
func ClientID(id string) *string { return &id }

// ValidClientID reports whether id is a valid client id (see validClientID).
func ValidClientID(id string) bool { return validClientID(id) }

// validClientID reports whether id is a valid client id: 1 to
// ClientIDMaxLen characters, each an ASCII letter or digit or one of
// "._:-" (enough for UUIDs, ULIDs and "device:counter" keys).
func validClientID(id string) bool {
	if id == "" || len(id) > ClientIDMaxLen {
		return false
	}
	for _, r := range id {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', strings.ContainsRune("._:-", r):
		default:
			return false
		}
	}
	return true
}

// target is the resolved recipient of a message or typing notice.
type target struct {
	typ          MessageType
	toID, toName string
	conversation string
	recipients   []string // chat: user ids whose sockets receive the frame; groupchat: none, the group topic does
}

// resolveTarget checks that the caller may address `to` with type typ and
// returns who receives it. For a group it checks only the caller's own
// membership (see memberOf): the frame goes once to the group's topic, not
// to a list of members. It returns EINVALID for a bad type or id, ENOTFOUND for an
// unknown user or a group the caller is not in, and EFORBIDDEN for a user
// who blocks the caller or whom the caller blocks (see checkDirect).
func (s *Service) resolveTarget(ctx context.Context, c Claims, to string, typ MessageType) (*target, error) {
	if to == "" {
		return nil, Errorf(EINVALID, "to is required.")
	}
	switch typ {
	case MessageChat:
		u, err := s.userNamed(ctx, to)
		if err != nil {
			return nil, err
		}
		if err := s.checkDirect(ctx, c.UserID, u.ID); err != nil {
			return nil, err
		}
		return &target{typ: typ, toID: u.ID, toName: u.Username, conversation: DirectConversation(c.UserID, u.ID),
			recipients: []string{u.ID, c.UserID}}, nil
	case MessageGroupChat:
		id, err := s.memberOf(ctx, c, to)
		if err != nil {
			return nil, err
		}
		return &target{typ: typ, toID: id, toName: id, conversation: GroupConversation(id)}, nil
	}
	return nil, Errorf(EINVALID, "type must be chat or groupchat.")
}

// memberOf returns the stored id of the group groupID when the caller is
// one of its members, who may all send (ActionRead), with the errors of
// authorize otherwise. Once the member cache is armed (CacheDirectory), a
// sender's later messages to the group read nothing from the store; a
// group id given in another form than the stored one (upper case) is read
// every time.
func (s *Service) memberOf(ctx context.Context, c Claims, groupID string) (string, error) {
	gen, ok := s.members.lookup(groupID, c.UserID)
	if ok {
		return groupID, nil
	}
	acc, err := s.authorize(ctx, c, groupID, ActionRead)
	if err != nil {
		return "", err
	}
	if acc.group.ID == groupID {
		s.members.remember(groupID, c.UserID, gen)
	}
	return acc.group.ID, nil
}

// SendMessage validates, stores and then publishes a message. The sender's
// connection exceptConn (empty for REST) gets no copy: it gets the returned
// message as its acknowledgement. Once stored, a publication failure does
// not fail the call: history has the message.
//
// With a ClientID, the send is idempotent: when the sender already has a
// message with that client id (sent at most ClientIDWindow ago, or longer:
// the stores remember it as long as the message), on this pod or any
// other, SendMessage stores and publishes nothing and returns that message
// as it was first stored (same id, timestamp and content), exactly as a
// fresh send would return it. The recipients got the first send's frame,
// or find the message in history, so a retry never shows them a second
// copy. The earlier message is returned even when the retry's content,
// recipient or type differ: a client that reuses a client id means the
// same message, and answering with what was stored lets it reconcile its
// outgoing message rather than fail it. The retry is still validated and
// authorized like a fresh send. A fresh message, once published, is handed
// to the OfflineNotifier (when configured), which never blocks; a retry is
// not. It returns EINVALID for a client id that is
// empty, longer than ClientIDMaxLen or has characters outside
// [A-Za-z0-9._:-].
func (s *Service) SendMessage(ctx context.Context, c Claims, in SendInput, exceptConn string) (*MessageView, error) {
	if in.Type == "" {
		in.Type = MessageChat
	}
	var clientID string
	if in.ClientID != nil {
		if clientID = *in.ClientID; !validClientID(clientID) {
			return nil, Errorf(EINVALID, "client_id must be 1 to %d ASCII letters, digits, dots, underscores, colons or hyphens.", ClientIDMaxLen)
		}
	}
	if err := validateContent(in.Content); err != nil {
		return nil, err
	}
	t, err := s.resolveTarget(ctx, c, in.To, in.Type)
	if err != nil {
		return nil, err
	}
	me, err := s.sendingUser(ctx, c)
	if err != nil {
		return nil, err
	}
	m := &Message{ID: NewID(), Conversation: t.conversation, FromID: me.ID, ToID: t.toID, FromName: me.Username,
		ToName: t.toName, Content: in.Content, Type: t.typ, Timestamp: Now(), ClientID: clientID}
	var dup *DuplicateMessageError
	if err := s.store.CreateMessage(ctx, m); errors.As(err, &dup) {
		return messageView(dup.Message, nil), nil
	} else if err != nil {
		return nil, err
	}
	v := messageView(m, nil)
	if t.typ == MessageGroupChat {
		s.publishGroupFrame(ctx, FrameMessage, v, t.toID, "", exceptConn)
	} else {
		s.publishFrame(ctx, FrameMessage, v, t.recipients, me.ID, exceptConn)
	}
	if s.offline != nil {
		s.offline.NotifyOffline(v)
	}
	return v, nil
}

// validateContent returns EINVALID unless content is valid UTF-8 of 1 to
// MessageMaxLen characters, not all blank: the rule of a send and an edit.
func validateContent(content string) error {
	if strings.TrimSpace(content) == "" {
		return Errorf(EINVALID, "content is required.")
	} else if utf8.RuneCountInString(content) > MessageMaxLen {
		return Errorf(EINVALID, "content must be at most 10240 characters.")
	} else if !utf8.ValidString(content) {
		return Errorf(EINVALID, "content must be valid UTF-8.")
	}
	return nil
}

// EditInput is the body of PATCH /api/messages/{messageId}.
type EditInput struct {
	Content string `json:"content"`
}

// errMessageNotFound is returned for unknown messages and for messages the
// caller may not see alike.
func errMessageNotFound() error { return Errorf(ENOTFOUND, "Message not found.") }

// visibleMessage returns the message id when the caller may see it: a 1:1
// message they sent or received, or a message of a group they are a member
// of now, with the caller's role in that group (empty for a 1:1 message).
// It returns EINVALID for a malformed id, ENOTFOUND for an unknown message
// or one the caller may not see, and the store's error otherwise.
func (s *Service) visibleMessage(ctx context.Context, c Claims, id string) (*Message, Role, error) {
	if !IsValidID(id) {
		return nil, "", Errorf(EINVALID, "Message id must be a UUID.")
	}
	m, err := s.store.FindMessageByID(ctx, id)
	if ErrorCode(err) == ENOTFOUND {
		return nil, "", errMessageNotFound()
	} else if err != nil {
		return nil, "", err
	}
	switch m.Type {
	case MessageChat:
		if c.UserID != m.FromID && c.UserID != m.ToID {
			return nil, "", errMessageNotFound()
		}
		return m, "", nil
	case MessageGroupChat:
		acc, err := s.authorize(ctx, c, m.ToID, ActionRead)
		if ErrorCode(err) == ENOTFOUND {
			return nil, "", errMessageNotFound()
		} else if err != nil {
			return nil, "", err
		}
		return m, acc.role, nil
	}
	return nil, "", errMessageNotFound()
}

// participants returns the ids of the users who see m: both ends of a 1:1
// message, the current members of a group. It returns the store's error.
func (s *Service) participants(ctx context.Context, m *Message) ([]string, error) {
	if m.Type == MessageChat {
		return []string{m.FromID, m.ToID}, nil
	}
	ms, err := s.store.FindMembershipsByGroup(ctx, m.ToID)
	if err != nil {
		return nil, err
	}
	return memberIDs(ms), nil
}

// announceMessageChange records the event typ (EventMessageUpdated or
// EventMessageDeleted) for every participant of m, for GET /api/sync, and
// publishes it live to their sockets, the caller's other devices
// included. A failure to list the participants is logged, not returned:
// the change is stored and history shows it.
func (s *Service) announceMessageChange(ctx context.Context, typ string, m *Message) {
	ids, err := s.participants(ctx, m)
	if err != nil {
		s.log.Warn("message change not announced", "type", typ, "err", err)
		return
	}
	vs, err := s.messageViews(ctx, []*Message{m})
	if err != nil {
		vs = []*MessageView{messageView(m, nil)}
	}
	s.publishEvent(ctx, typ, vs[0], ids)
}

// EditMessage replaces the content of the message id, sent by the caller,
// sets its edited_at and announces it as a message.updated event to every
// participant (live and through GET /api/sync). It returns the updated
// message. It returns EINVALID for a malformed id or content (the rules of
// a send), ENOTFOUND for an unknown message or one the caller may not see,
// EFORBIDDEN when the caller is not its sender, ECONFLICT when it is
// deleted, and the store's error otherwise. Two concurrent edits are
// last-writer-wins.
func (s *Service) EditMessage(ctx context.Context, c Claims, id string, in EditInput) (*MessageView, error) {
	if !IsValidID(id) {
		return nil, Errorf(EINVALID, "Message id must be a UUID.")
	}
	if err := validateContent(in.Content); err != nil {
		return nil, err
	}
	m, _, err := s.visibleMessage(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if m.FromID != c.UserID {
		return nil, Errorf(EFORBIDDEN, "Only the sender can edit a message.")
	} else if m.Deleted {
		return nil, Errorf(ECONFLICT, "A deleted message cannot be edited.")
	}
	at := Now()
	m.Content, m.EditedAt = in.Content, &at
	if err := s.store.UpdateMessage(ctx, m); ErrorCode(err) == ENOTFOUND {
		return nil, errMessageNotFound()
	} else if err != nil {
		return nil, err
	}
	s.announceMessageChange(ctx, EventMessageUpdated, m)
	vs, err := s.messageViews(ctx, []*Message{m})
	if err != nil {
		return messageView(m, nil), nil
	}
	return vs[0], nil
}

// DeleteMessage marks the message id deleted: it stays in history with
// empty content and deleted true, and a message.deleted event goes to
// every participant (live and through GET /api/sync). The sender may
// delete their message; in a group, so may the owner and the admins.
// Deleting a deleted message succeeds again without a new event
// (idempotent: a retried DELETE gets 204). It returns EINVALID for a
// malformed id, ENOTFOUND for an unknown message or one the caller may not
// see, EFORBIDDEN when the caller may not delete it, and the store's error
// otherwise.
func (s *Service) DeleteMessage(ctx context.Context, c Claims, id string) error {
	m, role, err := s.visibleMessage(ctx, c, id)
	if err != nil {
		return err
	}
	if m.FromID != c.UserID && (m.Type != MessageGroupChat || !Allowed(role, ActionDeleteMessage)) {
		return Errorf(EFORBIDDEN, "Only the sender or a group's owner or admin can delete a message.")
	}
	if m.Deleted {
		return nil
	}
	m.Content, m.Deleted = "", true
	if err := s.store.UpdateMessage(ctx, m); ErrorCode(err) == ENOTFOUND {
		return errMessageNotFound()
	} else if err != nil {
		return err
	}
	s.announceMessageChange(ctx, EventMessageDeleted, m)
	return nil
}

// messageView returns the client view of m, with current usernames from
// names where known and the names at sending time otherwise.
func messageView(m *Message, names map[string]string) *MessageView {
	v := &MessageView{ID: m.ID, FromID: m.FromID, ToID: m.ToID, From: m.FromName, To: m.ToName,
		Content: m.Content, Type: m.Type, Timestamp: m.Timestamp, Status: "sent", ClientID: m.ClientID,
		EditedAt: m.EditedAt, Deleted: m.Deleted}
	if n, ok := names[m.FromID]; ok {
		v.From = n
	}
	if n, ok := names[m.ToID]; ok && m.Type == MessageChat {
		v.To = n
	}
	return v
}

// HistoryQuery selects history: With narrows it to one conversation (a
// username or a group id); After and Before are message id cursors; Limit
// 1..100 and Offset 0..MaxOffset.
type HistoryQuery struct {
	With   string
	After  string
	Before string
	Limit  int
	Offset int
}

// History returns one page of the caller's messages and the total count.
// Newest first, or oldest first with After. A 1:1 message's status is
// "read" once its recipient's read marker reaches it, else "sent". It returns EINVALID for bad
// paging or cursors and ENOTFOUND for an unknown conversation.
func (s *Service) History(ctx context.Context, c Claims, q HistoryQuery) ([]*MessageView, int, error) {
	if q.Limit < 1 || q.Limit > MaxPageSize {
		return nil, 0, Errorf(EINVALID, "limit must be between 1 and 100.")
	} else if q.Offset < 0 || q.Offset > MaxOffset {
		return nil, 0, Errorf(EINVALID, "offset must be between 0 and %d.", MaxOffset)
	} else if q.After != "" && !IsValidID(q.After) {
		return nil, 0, Errorf(EINVALID, "after must be a message id.")
	} else if q.Before != "" && !IsValidID(q.Before) {
		return nil, 0, Errorf(EINVALID, "before must be a message id.")
	} else if q.After != "" && q.Before != "" {
		return nil, 0, Errorf(EINVALID, "after and before cannot be combined.")
	}
	f := MessageFilter{AfterID: q.After, BeforeID: q.Before, Offset: q.Offset, Limit: q.Limit}
	switch {
	case q.With == "":
		ms, err := s.store.FindMembershipsByUser(ctx, c.UserID)
		if err != nil {
			return nil, 0, err
		}
		for _, m := range ms {
			f.Conversations = append(f.Conversations, GroupConversation(m.GroupID))
		}
		f.ParticipantID = c.UserID
	case IsValidID(q.With):
		if _, err := s.authorize(ctx, c, q.With, ActionRead); err == nil {
			f.Conversations = []string{GroupConversation(q.With)}
			break
		} else if ErrorCode(err) != ENOTFOUND {
			return nil, 0, err
		}
		fallthrough
	default:
		u, err := s.FindUserByUsername(ctx, q.With)
		if err != nil {
			return nil, 0, Errorf(ENOTFOUND, "Conversation not found.")
		}
		f.Conversations = []string{DirectConversation(c.UserID, u.ID)}
	}
	msgs, total, err := s.store.FindMessages(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	out, err := s.messageViews(ctx, msgs)
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// messageViews returns the client views of msgs, in their order, with
// current usernames. It returns the store's error when the names cannot be
// read.
func (s *Service) messageViews(ctx context.Context, msgs []*Message) ([]*MessageView, error) {
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.FromID)
		if m.Type == MessageChat {
			ids = append(ids, m.ToID)
		}
	}
	names, err := s.usernames(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]*MessageView, len(msgs))
	for i, m := range msgs {
		out[i] = messageView(m, names)
	}
	if err := s.markReadStatus(ctx, msgs, out); err != nil {
		return nil, err
	}
	return out, nil
}

// markReadStatus sets the status of the 1:1 messages of msgs (views, in the
// same order) to "read" where the recipient's read marker reaches them. It
// reads the markers of each 1:1 conversation of msgs once. It returns the
// store's error when a marker cannot be read.
func (s *Service) markReadStatus(ctx context.Context, msgs []*Message, views []*MessageView) error {
	markers := map[string]string{} // "<user>|<conversation>" -> read up to
	done := map[string]bool{}
	for _, m := range msgs {
		if m.Type != MessageChat || done[m.Conversation] {
			continue
		}
		done[m.Conversation] = true
		rs, err := s.store.FindConversationReadStates(ctx, m.Conversation)
		if err != nil {
			return err
		}
		for _, r := range rs {
			markers[r.UserID+"|"+r.Conversation] = r.ReadUpTo
		}
	}
	for i, m := range msgs {
		if up, ok := markers[m.ToID+"|"+m.Conversation]; ok && m.Type == MessageChat && up >= m.ID {
			views[i].Status = "read"
		}
	}
	return nil
}

// Typing states.
const (
	TypingComposing = "composing"
	TypingPaused    = "paused"
)

// TypingInterval is the shortest time between two typing notices relayed
// for the same sender and conversation.
const TypingInterval = time.Second

// TypingThrottleKey is the rate-limit key of the notices of userID in the
// conversation conversationID (the peer's id or the group's id), of which
// one per TypingInterval is relayed.
func TypingThrottleKey(userID, conversationID string) string {
	return ClassTyping + ":" + userID + ":" + conversationID
}

// Typing relays a typing notice to the peer or the group's other members;
// it is never stored. At most one notice per TypingInterval is relayed for
// the same sender and conversation, across all pods: the others succeed
// without being relayed. It returns EINVALID for a bad state, the errors of
// SendMessage for a bad recipient and EUNAVAILABLE when the rate limiter
// cannot be reached.
func (s *Service) Typing(ctx context.Context, c Claims, to string, typ MessageType, state string) error {
	if typ == "" {
		typ = MessageChat
	}
	if state != TypingComposing && state != TypingPaused {
		return Errorf(EINVALID, "state must be composing or paused.")
	}
	t, err := s.resolveTarget(ctx, c, to, typ)
	if err != nil {
		return err
	}
	if s.limiter != nil {
		res, err := s.limiter.Allow(ctx, TypingThrottleKey(c.UserID, t.toID), 1, TypingInterval)
		if err != nil {
			return Errorf(EUNAVAILABLE, "The rate limiter is unavailable.")
		}
		if !res.Allowed {
			return nil
		}
	}
	me, err := s.sendingUser(ctx, c)
	if err != nil {
		return err
	}
	ev := TypingEvent{From: me.Username, To: t.toName, Type: t.typ, State: state}
	if t.typ == MessageGroupChat {
		s.publishGroupFrame(ctx, FrameTyping, ev, t.toID, me.ID, "")
		return nil
	}
	recipients := make([]string, 0, len(t.recipients))
	for _, id := range t.recipients {
		if id != me.ID {
			recipients = append(recipients, id)
		}
	}
	s.publishFrame(ctx, FrameTyping, ev, recipients, "", "")
	return nil
}
