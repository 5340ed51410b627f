package mongostore

import (
	"context"
	"time"

	"github.com/aoba-chat/aoba"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// messageDoc is a message in the messages collection; its _id is the
// time-sortable message id, so id order is creation order.
type messageDoc struct {
	ID           string    `bson:"_id"`
	Conversation string    `bson:"conversation"`
	FromID       string    `bson:"from_id"`
	ToID         string    `bson:"to_id"`
	FromName     string    `bson:"from_name"`
	ToName       string    `bson:"to_name"`
	Content      string    `bson:"content"`
	Type         string    `bson:"type"`
	Timestamp    time.Time `bson:"timestamp"`
}

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
	}
}

// CreateMessage stores m with the server's acknowledgement. It returns
// ECONFLICT when the message id is in use.
func (s *Store) CreateMessage(ctx context.Context, m *aoba.Message) error {
	if _, err := s.messages.InsertOne(ctx, toMessageDoc(m)); mongo.IsDuplicateKeyError(err) {
		return aoba.Errorf(aoba.ECONFLICT, "A message with this id already exists.")
	} else if err != nil {
		return wrapErr(err, "insert message")
	}
	return nil
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
