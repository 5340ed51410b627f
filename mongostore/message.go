package mongostore

import (
	"context"
	"errors"
	"time"

	"github.com/aoba-chat/aoba"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// messageDoc is a message in the messages collection; its _id is the
// time-sortable message id, so id order is creation order.
type messageDoc struct {
	ID           string     `bson:"_id"`
	Conversation string     `bson:"conversation"`
	FromID       string     `bson:"from_id"`
	ToID         string     `bson:"to_id"`
	FromName     string     `bson:"from_name"`
	ToName       string     `bson:"to_name"`
	Content      string     `bson:"content"`
	Type         string     `bson:"type"`
	Timestamp    time.Time  `bson:"timestamp"`
	ClientID     string     `bson:"client_id,omitempty"`
	EditedAt     *time.Time `bson:"edited_at,omitempty"`
	Deleted      bool       `bson:"deleted,omitempty"`
}

// messageClaimDoc reserves a sender's client id for one message: its _id is
// messageClaimID(from, clientID), so the server's _id uniqueness lets one
// claim, hence one message id, hold it. It is written before the message
// and kept as long as it (claims are never removed but for an id clash).
type messageClaimDoc struct {
	ID        string    `bson:"_id"`
	MessageID string    `bson:"message_id"`
	Timestamp time.Time `bson:"timestamp"`
}

// messageClaimID returns the _id of the claim of clientID by the sender
// fromID. User ids hold no ':', so the key is unambiguous.
func messageClaimID(fromID, clientID string) string { return fromID + ":" + clientID }

// claimGrace is how long a claim without its message belongs to its
// claimer, who stores the message between the two inserts: a retry waits
// for it, polling every claimPoll. An older claim without a message is the
// leftover of a crash, and the retry stores its own message in its place.
const (
	claimGrace = 5 * time.Second
	claimPoll  = 20 * time.Millisecond
)

func toMessageDoc(m *aoba.Message) *messageDoc {
	return &messageDoc{
		ID:           m.ID,
		Conversation: m.Conversation,
		FromID:       m.FromID,
		ToID:         m.ToID,
		FromName:     m.FromName,
		ToName:       m.ToName,
		Content:      m.Content,
		Type:         string(m.Type),
		Timestamp:    utc(m.Timestamp),
		ClientID:     m.ClientID,
		EditedAt:     utcPtr(m.EditedAt),
		Deleted:      m.Deleted,
	}
}

func toMessage(d *messageDoc) *aoba.Message {
	return &aoba.Message{
		ID:           d.ID,
		Conversation: d.Conversation,
		FromID:       d.FromID,
		ToID:         d.ToID,
		FromName:     d.FromName,
		ToName:       d.ToName,
		Content:      d.Content,
		Type:         aoba.MessageType(d.Type),
		Timestamp:    utc(d.Timestamp),
		ClientID:     d.ClientID,
		EditedAt:     utcPtr(d.EditedAt),
		Deleted:      d.Deleted,
	}
}

func errMessageIDTaken() error {
	return aoba.Errorf(aoba.ECONFLICT, "A message with this id already exists.")
}

// CreateMessage stores m with the server's acknowledgement. It returns an
// *aoba.DuplicateMessageError holding the stored message when the sender
// already claimed m.ClientID (claims are kept as long as their message,
// beyond aoba.ClientIDWindow), and ECONFLICT when the message id is in use.
//
// A message with a ClientID first claims it (a messageClaimDoc naming m.ID
// and m.Timestamp), then is inserted. A caller that finds the claim taken
// returns the claimed message in an *aoba.DuplicateMessageError, waiting up
// to claimGrace for its claimer to store it. After that the claim is a
// crash's leftover (the claimer died between the two inserts, so the
// message was never acknowledged): the caller stores its own message under
// the claimed id and timestamp and returns it as the duplicate, so that
// every retry from then on gets that message. The message's _id is where
// racing callers meet: whoever inserts it first decides the content, and a
// claimer overtaken by a repair gets that message as a duplicate too.
func (s *Store) CreateMessage(ctx context.Context, m *aoba.Message) error {
	if m.ClientID == "" {
		return s.insertMessage(ctx, m)
	}
	claim := messageClaimDoc{ID: messageClaimID(m.FromID, m.ClientID), MessageID: m.ID, Timestamp: utc(m.Timestamp)}
	for {
		_, err := s.messageClaims.InsertOne(ctx, claim)
		if err == nil {
			return s.insertClaimed(ctx, m, claim.ID)
		} else if !mongo.IsDuplicateKeyError(err) {
			return wrapErr(err, "claim client id")
		}
		if retry, err := s.followClaim(ctx, m, claim.ID); !retry {
			return err
		}
	}
}

// insertMessage inserts m, then records it in its conversation's state
// (recordMessage). It returns ECONFLICT when its id is in use.
func (s *Store) insertMessage(ctx context.Context, m *aoba.Message) error {
	if _, err := s.messages.InsertOne(ctx, toMessageDoc(m)); mongo.IsDuplicateKeyError(err) {
		return errMessageIDTaken()
	} else if err != nil {
		return wrapErr(err, "insert message")
	}
	return s.recordMessage(ctx, m)
}

// insertClaimed inserts m once its claim claimID is held. When a repair
// stored the claimed message first, it returns that message in an
// *aoba.DuplicateMessageError; when the id is another message's, it drops
// the claim and returns ECONFLICT.
func (s *Store) insertClaimed(ctx context.Context, m *aoba.Message, claimID string) error {
	err := s.insertMessage(ctx, m)
	if aoba.ErrorCode(err) != aoba.ECONFLICT {
		return err
	}
	stored, err := s.findMessage(ctx, m.ID)
	if err != nil {
		return err
	} else if stored != nil && sameClientID(stored, m) {
		return &aoba.DuplicateMessageError{Message: stored}
	}
	if _, err := s.messageClaims.DeleteOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: claimID}, {Key: "message_id", Value: m.ID}}); err != nil {
		return wrapErr(err, "release client id claim")
	}
	return errMessageIDTaken()
}

// followClaim answers a call whose client id claim claimID is taken: it
// returns the claimed message in an *aoba.DuplicateMessageError, waiting
// for it or repairing it as CreateMessage describes. It returns retry true
// when the claim is gone, or was dropped here because its id names another
// sender's message, so that the caller claims again.
func (s *Store) followClaim(ctx context.Context, m *aoba.Message, claimID string) (retry bool, err error) {
	for {
		var claim messageClaimDoc
		if err := s.messageClaims.FindOne(ctx, bson.D{{Key: "_id", Value: claimID}}).Decode(&claim); errors.Is(err, mongo.ErrNoDocuments) {
			return true, nil
		} else if err != nil {
			return false, wrapErr(err, "find client id claim")
		}
		stored, err := s.findMessage(ctx, claim.MessageID)
		if err != nil {
			return false, err
		}
		if stored == nil && time.Since(claim.Timestamp) >= claimGrace {
			repair := *m
			repair.ID, repair.Timestamp = claim.MessageID, utc(claim.Timestamp)
			if err := s.insertMessage(ctx, &repair); err == nil {
				return false, &aoba.DuplicateMessageError{Message: &repair}
			} else if aoba.ErrorCode(err) != aoba.ECONFLICT {
				return false, err
			}
			if stored, err = s.findMessage(ctx, claim.MessageID); err != nil {
				return false, err
			}
		}
		switch {
		case stored != nil && sameClientID(stored, m):
			return false, &aoba.DuplicateMessageError{Message: stored}
		case stored != nil:
			_, err := s.messageClaims.DeleteOne(ctx, bson.D{{Key: "_id", Value: claimID}, {Key: "message_id", Value: claim.MessageID}})
			return err == nil, wrapErr(err, "drop client id claim")
		}
		select {
		case <-ctx.Done():
			return false, wrapErr(ctx.Err(), "wait for claimed message")
		case <-time.After(claimPoll):
		}
	}
}

// findMessage returns the message with that id, or nil when there is none.
func (s *Store) findMessage(ctx context.Context, id string) (*aoba.Message, error) {
	var d messageDoc
	if err := s.messages.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	} else if err != nil {
		return nil, wrapErr(err, "find message")
	}
	return toMessage(&d), nil
}

// sameClientID reports whether a and b have the same sender and client id.
func sameClientID(a, b *aoba.Message) bool {
	return a.FromID == b.FromID && a.ClientID == b.ClientID
}

// messageFilter returns the query of f without paging, or nil when f
// selects no conversation at all.
func messageFilter(f aoba.MessageFilter) bson.D {
	var or bson.A
	if len(f.Conversations) > 0 {
		or = append(or, bson.D{{Key: "conversation", Value: bson.D{{Key: "$in", Value: f.Conversations}}}})
	}
	if f.ParticipantID != "" {
		or = append(or,
			bson.D{{Key: "from_id", Value: f.ParticipantID}, {Key: "type", Value: string(aoba.MessageChat)}},
			bson.D{{Key: "to_id", Value: f.ParticipantID}, {Key: "type", Value: string(aoba.MessageChat)}})
	}
	if len(or) == 0 {
		return nil
	}
	var filter bson.D
	if len(or) == 1 {
		filter = append(filter, or[0].(bson.D)...)
	} else {
		filter = bson.D{{Key: "$or", Value: or}}
	}
	var id bson.D
	if f.AfterID != "" {
		id = append(id, bson.E{Key: "$gt", Value: f.AfterID})
	}
	if f.BeforeID != "" {
		id = append(id, bson.E{Key: "$lt", Value: f.BeforeID})
	}
	if len(id) > 0 {
		filter = append(filter, bson.E{Key: "_id", Value: id})
	}
	return filter
}

// FindMessages returns one page of messages matching f and the number of
// messages matching f without Offset and Limit (0 with f.SkipTotal):
// oldest first after f.AfterID, newest first otherwise. A filter without conversations or
// participant matches nothing.
func (s *Store) FindMessages(ctx context.Context, f aoba.MessageFilter) ([]*aoba.Message, int, error) {
	filter := messageFilter(f)
	if filter == nil {
		return nil, 0, nil
	}
	order := -1
	if f.AfterID != "" {
		order = 1
	}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: order}})
	if f.Offset > 0 {
		opts.SetSkip(int64(f.Offset))
	}
	if f.Limit > 0 {
		opts.SetLimit(int64(f.Limit))
	}
	cur, err := s.messages.Find(ctx, filter, opts)
	if err != nil {
		return nil, 0, wrapErr(err, "find messages")
	}
	msgs, err := findAll(ctx, cur, toMessage, "messages")
	if err != nil {
		return nil, 0, err
	}
	if f.SkipTotal {
		return msgs, 0, nil
	}
	total, err := countPage(ctx, s.messages, filter, f.Offset, f.Limit, len(msgs))
	if err != nil {
		return nil, 0, err
	}
	return msgs, total, nil
}

// FindMessageByID returns the message with that id, read by _id. It
// returns ENOTFOUND when there is none.
func (s *Store) FindMessageByID(ctx context.Context, id string) (*aoba.Message, error) {
	m, err := s.findMessage(ctx, id)
	if err != nil {
		return nil, err
	} else if m == nil {
		return nil, notFound("Message")
	}
	return m, nil
}

// UpdateMessage sets m.Content, m.EditedAt and m.Deleted on the document
// with _id m.ID (an _id filter, efficient on FerretDB). UpdateOne is no
// compare-and-swap on FerretDB v1.24, so concurrent updates are
// last-writer-wins: an edit racing a deletion of the same message may land
// last and bring content back; history shows whichever write landed last.
// Edits are rare and made by the sender, so this is accepted. It returns
// ENOTFOUND when there is no such message.
func (s *Store) UpdateMessage(ctx context.Context, m *aoba.Message) error {
	set := bson.D{{Key: "content", Value: m.Content}, {Key: "deleted", Value: m.Deleted}}
	update := bson.D{{Key: "$set", Value: set}}
	if m.EditedAt != nil {
		update[0].Value = append(set, bson.E{Key: "edited_at", Value: utc(*m.EditedAt)})
	} else {
		update = append(update, bson.E{Key: "$unset", Value: bson.D{{Key: "edited_at", Value: ""}}})
	}
	res, err := s.messages.UpdateOne(ctx, bson.D{{Key: "_id", Value: m.ID}}, update)
	if err != nil {
		return wrapErr(err, "update message")
	} else if res.MatchedCount == 0 {
		return notFound("Message")
	}
	return nil
}
