package mongostore

import (
	"context"
	"time"

	"github.com/aoba-chat/aoba"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// blockDoc is one block in the blocks collection. Its _id is
// blockKey(blocker, blocked): the _id carries the uniqueness of the pair,
// a blocker's blocks are one _id range, and the checks of a pair in either
// direction are _id lookups, the queries FerretDB serves from an index.
type blockDoc struct {
	Key       string    `bson:"_id"`
	BlockerID string    `bson:"blocker_id"`
	BlockedID string    `bson:"blocked_id"`
	CreatedAt time.Time `bson:"created_at"`
}

// blockKey returns the _id of the block of blocked by blocker. User ids
// are UUIDs and hold no ':', so blocker+";" bounds the blocker's range
// from above.
func blockKey(blocker, blocked string) string { return blocker + ":" + blocked }

func toBlock(d *blockDoc) *aoba.Block {
	return &aoba.Block{BlockerID: d.BlockerID, BlockedID: d.BlockedID, CreatedAt: utc(d.CreatedAt)}
}

// CreateBlock inserts b. It returns ECONFLICT when the pair is stored
// already (a duplicate _id).
func (s *Store) CreateBlock(ctx context.Context, b *aoba.Block) error {
	_, err := s.blocks.InsertOne(ctx, &blockDoc{Key: blockKey(b.BlockerID, b.BlockedID), BlockerID: b.BlockerID,
		BlockedID: b.BlockedID, CreatedAt: utc(b.CreatedAt)})
	if err != nil && aoba.ErrorCode(wrapErr(err, "insert block")) == aoba.ECONFLICT {
		return aoba.Errorf(aoba.ECONFLICT, "The user is blocked already.")
	}
	return wrapErr(err, "insert block")
}

// DeleteBlock deletes the block of blockedID by blockerID by its _id. It
// returns ENOTFOUND when there is none.
func (s *Store) DeleteBlock(ctx context.Context, blockerID, blockedID string) error {
	res, err := s.blocks.DeleteOne(ctx, bson.D{{Key: "_id", Value: blockKey(blockerID, blockedID)}})
	if err != nil {
		return wrapErr(err, "delete block")
	} else if res.DeletedCount == 0 {
		return notFound("Block")
	}
	return nil
}

// FindBlocksByBlocker returns the blocks of blockerID by an _id range.
func (s *Store) FindBlocksByBlocker(ctx context.Context, blockerID string) ([]*aoba.Block, error) {
	return s.findBlocks(ctx, bson.D{{Key: "_id", Value: bson.D{
		{Key: "$gt", Value: blockerID + ":"},
		{Key: "$lt", Value: blockerID + ";"},
	}}})
}

// FindBlocksBetween returns the blocks in either direction between userID
// and others with one _id $in lookup of both keys of each pair.
func (s *Store) FindBlocksBetween(ctx context.Context, userID string, others []string) ([]*aoba.Block, error) {
	if len(others) == 0 {
		return []*aoba.Block{}, nil
	}
	keys := make([]string, 0, 2*len(others))
	for _, o := range others {
		keys = append(keys, blockKey(userID, o), blockKey(o, userID))
	}
	return s.findBlocks(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}})
}

// findBlocks returns the blocks matching filter, in _id order.
func (s *Store) findBlocks(ctx context.Context, filter bson.D) ([]*aoba.Block, error) {
	cur, err := s.blocks.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, wrapErr(err, "find blocks")
	}
	bs, err := findAll(ctx, cur, toBlock, "blocks")
	if err != nil {
		return nil, err
	}
	if bs == nil {
		bs = []*aoba.Block{}
	}
	return bs, nil
}
