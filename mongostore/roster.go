package mongostore

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/aoba-chat/aoba"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// rosterPutAttempts bounds how many times PutRosterItem goes from insert to
// rename and back while concurrent puts and deletes of the same pair keep
// changing the answer.
const rosterPutAttempts = 5

// rosterDoc is one item in the roster collection. Its _id is
// rosterKey(owner, contact): the _id carries the uniqueness of the pair and
// an owner's items are one _id range, the queries FerretDB serves from an
// index. Put is a fresh id per write, so that a put that must take back
// the item it inserted does not delete another put's.
type rosterDoc struct {
	Key       string    `bson:"_id"`
	UserID    string    `bson:"user_id"`
	ContactID string    `bson:"contact_id"`
	Name      string    `bson:"name"`
	CreatedAt time.Time `bson:"created_at"`
	Put       string    `bson:"put"`
}

// rosterKey returns the _id of the item of contact in owner's roster. User
// ids are UUIDs and hold no ':', so owner+";" bounds the owner's range from
// above.
func rosterKey(owner, contact string) string { return owner + ":" + contact }

// rosterRange returns the filter of every item of owner's roster.
func rosterRange(owner string) bson.D {
	return bson.D{{Key: "_id", Value: bson.D{
		{Key: "$gt", Value: owner + ":"},
		{Key: "$lt", Value: owner + ";"},
	}}}
}

func toRosterItem(d *rosterDoc) *aoba.RosterItem {
	return &aoba.RosterItem{UserID: d.UserID, ContactID: d.ContactID, Name: d.Name, CreatedAt: utc(d.CreatedAt)}
}

// PutRosterItem inserts item or, when its _id is taken, renames the stored
// item. Without transactions the limit is checked after the insert: a put
// that then counts more than aoba.MaxRosterItems items in the roster
// deletes its own item again and returns ErrRosterFull's ECONFLICT. Of
// concurrent puts of new contacts into an almost full roster, some may
// thus be refused although the last one would have fitted, but the roster
// never keeps more than the limit, with one exception: when another put of
// the same pair renames the item between the insert and the count, the
// insert is refused but the item stays, with that put's name, beyond the
// limit. Readers may see a refused item between its insert and its
// deletion.
func (s *Store) PutRosterItem(ctx context.Context, item *aoba.RosterItem) error {
	key := rosterKey(item.UserID, item.ContactID)
	for range rosterPutAttempts {
		put := aoba.NewID()
		_, err := s.roster.InsertOne(ctx, &rosterDoc{Key: key, UserID: item.UserID, ContactID: item.ContactID,
			Name: item.Name, CreatedAt: utc(item.CreatedAt), Put: put})
		if err == nil {
			return s.checkRosterSize(ctx, item.UserID, key, put)
		} else if !mongo.IsDuplicateKeyError(err) {
			return wrapErr(err, "insert roster item")
		}
		res, err := s.roster.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: item.Name}, {Key: "put", Value: aoba.NewID()}}}})
		if err != nil {
			return wrapErr(err, "rename roster item")
		} else if res.MatchedCount > 0 {
			return nil
		}
		// Deleted since the insert failed: insert again.
	}
	return aoba.Errorf(aoba.EUNAVAILABLE, "The roster item keeps changing; try again.")
}

// checkRosterSize counts owner's items after the put put inserted the item
// key. When they are more than aoba.MaxRosterItems (s.rosterLimit) it deletes that item,
// unless another put rewrote it since, and returns ErrRosterFull. When
// they cannot be counted it deletes the item too and returns the error.
func (s *Store) checkRosterSize(ctx context.Context, owner, key, put string) error {
	n, err := s.roster.CountDocuments(ctx, rosterRange(owner))
	if err == nil && n <= s.rosterLimit {
		return nil
	}
	// The item must go even when ctx has ended.
	if _, derr := s.roster.DeleteOne(context.WithoutCancel(ctx),
		bson.D{{Key: "_id", Value: key}, {Key: "put", Value: put}}); derr != nil && err == nil {
		err = derr
	}
	if err != nil {
		return wrapErr(err, "count roster items")
	}
	return aoba.ErrRosterFull()
}

// DeleteRosterItem deletes the item of contactID from userID's roster by
// its _id. It returns ENOTFOUND when there is none.
func (s *Store) DeleteRosterItem(ctx context.Context, userID, contactID string) error {
	res, err := s.roster.DeleteOne(ctx, bson.D{{Key: "_id", Value: rosterKey(userID, contactID)}})
	if err != nil {
		return wrapErr(err, "delete roster item")
	} else if res.DeletedCount == 0 {
		return notFound("Roster item")
	}
	return nil
}

// FindRosterItems reads userID's items by an _id range and returns them
// oldest first (by CreatedAt, then ContactID).
func (s *Store) FindRosterItems(ctx context.Context, userID string) ([]*aoba.RosterItem, error) {
	cur, err := s.roster.Find(ctx, rosterRange(userID))
	if err != nil {
		return nil, wrapErr(err, "find roster items")
	}
	items, err := findAll(ctx, cur, toRosterItem, "roster items")
	if err != nil {
		return nil, err
	}
	if items == nil {
		items = []*aoba.RosterItem{}
	}
	sort.Slice(items, func(i, j int) bool {
		if a, b := items[i].CreatedAt, items[j].CreatedAt; !a.Equal(b) {
			return a.Before(b)
		}
		return items[i].ContactID < items[j].ContactID
	})
	return items, nil
}

// deleteRosterOf deletes the items of userID's roster (an _id range) and
// the items whose contact userID is (through the contact index).
func (s *Store) deleteRosterOf(ctx context.Context, userID string) error {
	_, err1 := s.roster.DeleteMany(ctx, rosterRange(userID))
	_, err2 := s.roster.DeleteMany(ctx, bson.D{{Key: "contact_id", Value: userID}})
	if err := errors.Join(err1, err2); err != nil {
		return wrapErr(err, "delete roster items of user")
	}
	return nil
}
