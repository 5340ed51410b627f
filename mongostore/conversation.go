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

// conversationDoc is the state of one conversation, _id its key: the
// number of its messages (seq, raised with $inc as each message is
// stored), its greatest message id and, for a 1:1 conversation, its two
// users (for listing a user's conversations).
//
// $inc and $max are applied to one document. MongoDB applies them
// atomically; FerretDB v1.24 does not: it reads the document and writes it
// back, so concurrent sends to one conversation lose increments (the
// contract suite shows it: 20 concurrent sends counted as about 7) and may
// keep an older last_id until the next message. The unread counts of a
// busy conversation are then too low on FerretDB (never negative); a
// FerretDB-exact count needs a counter built on _id uniqueness (a slot
// document per message), which costs round trips on every send and is not
// done here.
type conversationDoc struct {
	ID     string   `bson:"_id"`
	Users  []string `bson:"users,omitempty"`
	Seq    int64    `bson:"seq"`
	LastID string   `bson:"last_id"`
}

// readStateDoc is one user's read marker in one conversation, _id
// readStateID(user, conversation).
type readStateDoc struct {
	ID           string    `bson:"_id"`
	UserID       string    `bson:"user_id"`
	Conversation string    `bson:"conversation"`
	ReadUpTo     string    `bson:"read_up_to"`
	ReadCount    int64     `bson:"read_count"`
	ReadAt       time.Time `bson:"read_at"`
}

// readStateID returns the _id of the read marker of userID in key.
func readStateID(userID, key string) string { return userID + ":" + key }

func toReadState(d *readStateDoc) *aoba.ReadState {
	return &aoba.ReadState{UserID: d.UserID, Conversation: d.Conversation, ReadUpTo: d.ReadUpTo, ReadCount: d.ReadCount, ReadAt: utc(d.ReadAt)}
}

// upsertRetry runs an upsert, once more when a concurrent upsert of the
// same _id made it fail with a duplicate key (the second run updates).
func upsertRetry(fn func() error) error {
	err := fn()
	if mongo.IsDuplicateKeyError(err) {
		err = fn()
	}
	return err
}

// recordMessage updates the state of m's conversation and the sender's read
// marker after m is stored: two single-document updates by _id.
func (s *Store) recordMessage(ctx context.Context, m *aoba.Message) error {
	set := bson.D{}
	if m.Type == aoba.MessageChat {
		a, b := min(m.FromID, m.ToID), max(m.FromID, m.ToID)
		set = bson.D{{Key: "users", Value: bson.A{a, b}}}
	}
	update := bson.D{
		{Key: "$inc", Value: bson.D{{Key: "seq", Value: 1}}},
		{Key: "$max", Value: bson.D{{Key: "last_id", Value: m.ID}}},
	}
	if len(set) > 0 {
		update = append(update, bson.E{Key: "$setOnInsert", Value: set})
	}
	var conv conversationDoc
	err := upsertRetry(func() error {
		return s.conversations.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: m.Conversation}}, update,
			options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&conv)
	})
	if err != nil {
		return wrapErr(err, "update conversation")
	}
	err = upsertRetry(func() error {
		_, err := s.readStates.UpdateOne(ctx, bson.D{{Key: "_id", Value: readStateID(m.FromID, m.Conversation)}}, bson.D{
			{Key: "$set", Value: bson.D{{Key: "user_id", Value: m.FromID}, {Key: "conversation", Value: m.Conversation}}},
			{Key: "$max", Value: bson.D{{Key: "read_up_to", Value: m.ID}, {Key: "read_count", Value: conv.Seq}, {Key: "read_at", Value: utc(m.Timestamp)}}},
		}, options.UpdateOne().SetUpsert(true))
		return err
	})
	return wrapErr(err, "update read state")
}

// conversationStates returns the states of docs, in their order, with
// their last messages read by _id.
func (s *Store) conversationStates(ctx context.Context, docs []*conversationDoc) ([]*aoba.ConversationState, error) {
	ids := make(bson.A, len(docs))
	for i, d := range docs {
		ids[i] = d.LastID
	}
	cur, err := s.messages.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, wrapErr(err, "find last messages")
	}
	msgs, err := findAll(ctx, cur, toMessage, "last messages")
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*aoba.Message, len(msgs))
	for _, m := range msgs {
		byID[m.ID] = m
	}
	out := make([]*aoba.ConversationState, 0, len(docs))
	for _, d := range docs {
		if m := byID[d.LastID]; m != nil {
			out = append(out, &aoba.ConversationState{Key: d.ID, Seq: d.Seq, LastMessage: m, UpdatedAt: m.Timestamp})
		}
	}
	return out, nil
}

// FindConversations returns the conversations among keys and the 1:1
// conversations of userID, most recent first, with a last message id below
// before when set, at most limit (no limit when 0).
func (s *Store) FindConversations(ctx context.Context, userID string, keys []string, before string, limit int) ([]*aoba.ConversationState, error) {
	if keys == nil {
		keys = []string{}
	}
	filter := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}},
		bson.D{{Key: "users", Value: userID}},
	}}}
	if before != "" {
		filter = append(filter, bson.E{Key: "last_id", Value: bson.D{{Key: "$lt", Value: before}}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "last_id", Value: -1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	cur, err := s.conversations.Find(ctx, filter, opts)
	if err != nil {
		return nil, wrapErr(err, "find conversations")
	}
	docs, err := findAll(ctx, cur, func(d *conversationDoc) *conversationDoc { return d }, "conversations")
	if err != nil {
		return nil, err
	}
	return s.conversationStates(ctx, docs)
}

// FindConversation returns the state of key; ENOTFOUND when it has no
// message.
func (s *Store) FindConversation(ctx context.Context, key string) (*aoba.ConversationState, error) {
	var d conversationDoc
	if err := s.conversations.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&d); errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFound("Conversation")
	} else if err != nil {
		return nil, wrapErr(err, "find conversation")
	}
	out, err := s.conversationStates(ctx, []*conversationDoc{&d})
	if err != nil {
		return nil, err
	} else if len(out) == 0 {
		return nil, notFound("Conversation")
	}
	return out[0], nil
}

// FindReadStates returns the read markers of userID among keys, read by
// _id.
func (s *Store) FindReadStates(ctx context.Context, userID string, keys []string) ([]*aoba.ReadState, error) {
	ids := make(bson.A, len(keys))
	for i, k := range keys {
		ids[i] = readStateID(userID, k)
	}
	cur, err := s.readStates.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, wrapErr(err, "find read states")
	}
	return findAll(ctx, cur, toReadState, "read states")
}

// FindConversationReadStates returns every read marker of key.
func (s *Store) FindConversationReadStates(ctx context.Context, key string) ([]*aoba.ReadState, error) {
	cur, err := s.readStates.Find(ctx, bson.D{{Key: "conversation", Value: key}}, options.Find().SetSort(bson.D{{Key: "user_id", Value: 1}}))
	if err != nil {
		return nil, wrapErr(err, "find read states")
	}
	return findAll(ctx, cur, toReadState, "read states")
}

// MarkRead moves the marker of userID in key forward to upTo. The update
// is filtered on the stored marker being behind upTo; on FerretDB that
// filter and the write are not one atomic step, so of two concurrent marks
// the later write wins even when it is the smaller one (the next mark
// corrects it). It returns ENOTFOUND when upTo is not a message of key.
func (s *Store) MarkRead(ctx context.Context, userID, key, upTo string, at time.Time) (*aoba.ReadState, error) {
	m, err := s.findMessage(ctx, upTo)
	if err != nil {
		return nil, err
	} else if m == nil || m.Conversation != key {
		return nil, notFound("Message")
	}
	var conv conversationDoc
	if err := s.conversations.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&conv); err != nil {
		return nil, wrapErr(err, "find conversation")
	}
	after, err := s.messages.CountDocuments(ctx, bson.D{{Key: "conversation", Value: key}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: upTo}}}})
	if err != nil {
		return nil, wrapErr(err, "count unread")
	}
	id := readStateID(userID, key)
	_, err = s.readStates.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "read_up_to", Value: bson.D{{Key: "$lt", Value: upTo}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "user_id", Value: userID}, {Key: "conversation", Value: key},
			{Key: "read_up_to", Value: upTo}, {Key: "read_count", Value: max(0, conv.Seq-after)}, {Key: "read_at", Value: utc(at)}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) { // duplicate: the marker is there or further
		return nil, wrapErr(err, "mark read")
	}
	var d readStateDoc
	if err := s.readStates.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		return nil, wrapErr(err, "find read state")
	}
	return toReadState(&d), nil
}
