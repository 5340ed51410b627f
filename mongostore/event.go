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

// eventDoc is one event for one recipient in the events collection. Its _id
// is eventKey(user, id): the recipient's events are one _id range, in id
// order, so reading them after a cursor is an _id range scan, the one kind
// of query FerretDB serves from an index, and the _id carries the
// uniqueness of (recipient, event).
type eventDoc struct {
	Key       string    `bson:"_id"`
	ID        string    `bson:"id"`
	UserID    string    `bson:"user_id"`
	Type      string    `bson:"type"`
	Data      string    `bson:"data"`
	CreatedAt time.Time `bson:"created_at"`
}

// eventKey returns the _id of event id of user userID. User ids are UUIDs
// and hold no ':', so userID+";" bounds the user's range from above.
func eventKey(userID, id string) string { return userID + ":" + id }

func toEventDoc(e *aoba.Event) *eventDoc {
	return &eventDoc{Key: eventKey(e.UserID, e.ID), ID: e.ID, UserID: e.UserID, Type: e.Type,
		Data: string(e.Data), CreatedAt: utc(e.CreatedAt)}
}

func toEvent(d *eventDoc) *aoba.Event {
	return &aoba.Event{ID: d.ID, UserID: d.UserID, Type: d.Type, Data: []byte(d.Data), CreatedAt: utc(d.CreatedAt)}
}

// AppendEvents inserts events with one unordered insertMany. A document
// whose _id exists already (the same event for the same user) is left as
// it is and does not fail the call. Without transactions, a failure may
// leave some of them stored.
func (s *Store) AppendEvents(ctx context.Context, events []*aoba.Event) error {
	if len(events) == 0 {
		return nil
	}
	docs := make([]any, len(events))
	for i, e := range events {
		docs[i] = toEventDoc(e)
	}
	_, err := s.events.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil || onlyDuplicates(err) {
		return nil
	}
	return wrapErr(err, "insert events")
}

// onlyDuplicates reports whether err is a bulk write failure whose every
// error is a duplicate key.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}

// FindEvents returns the events of userID after afterID, oldest first, at
// most limit (0: all), by an _id range.
func (s *Store) FindEvents(ctx context.Context, userID, afterID string, limit int) ([]*aoba.Event, error) {
	filter := bson.D{{Key: "_id", Value: bson.D{
		{Key: "$gt", Value: eventKey(userID, afterID)},
		{Key: "$lt", Value: userID + ";"},
	}}}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	cur, err := s.events.Find(ctx, filter, opts)
	if err != nil {
		return nil, wrapErr(err, "find events")
	}
	evs, err := findAll(ctx, cur, toEvent, "events")
	if err != nil {
		return nil, err
	}
	if evs == nil {
		evs = []*aoba.Event{}
	}
	return evs, nil
}

// DeleteEventsBefore deletes the events created before t and returns their
// number.
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time) (int, error) {
	res, err := s.events.DeleteMany(ctx, bson.D{{Key: "created_at", Value: bson.D{{Key: "$lt", Value: utc(t)}}}})
	if err != nil {
		return 0, wrapErr(err, "delete events")
	}
	return int(res.DeletedCount), nil
}
