package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aoba-chat/aoba"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// groupDoc is a group in the groups collection. OwnerSeq counts ownership
// transfers: transfer number n is claimed by inserting the ownerTransferDoc
// with _id transferID(group, n), which exactly one caller can do.
type groupDoc struct {
	ID        string    `bson:"_id"`
	Name      string    `bson:"name"`
	OwnerID   string    `bson:"owner_id"`
	OwnerSeq  int64     `bson:"owner_seq"`
	CreatedAt time.Time `bson:"created_at"`
}

// ownerTransferDoc records one ownership transfer of a group.
type ownerTransferDoc struct {
	ID         string    `bson:"_id"`
	GroupID    string    `bson:"group_id"`
	FromUserID string    `bson:"from_user_id"`
	ToUserID   string    `bson:"to_user_id"`
	At         time.Time `bson:"at"`
}

// transferID returns the _id of transfer number seq of groupID.
func transferID(groupID string, seq int64) string { return fmt.Sprintf("%s:%d", groupID, seq) }

// membershipDoc is one membership; its _id is membershipID(group, user), so
// a user is a member of a group at most once.
type membershipDoc struct {
	ID       string    `bson:"_id"`
	GroupID  string    `bson:"group_id"`
	UserID   string    `bson:"user_id"`
	Role     string    `bson:"role"`
	JoinedAt time.Time `bson:"joined_at"`
}

// membershipID returns the _id of the membership of userID in groupID.
func membershipID(groupID, userID string) string { return groupID + ":" + userID }

func toGroupDoc(g *aoba.Group) *groupDoc {
	return &groupDoc{ID: g.ID, Name: g.Name, OwnerID: g.OwnerID, CreatedAt: utc(g.CreatedAt)}
}

func toGroup(d *groupDoc) *aoba.Group {
	return &aoba.Group{ID: d.ID, Name: d.Name, OwnerID: d.OwnerID, CreatedAt: utc(d.CreatedAt)}
}

func toMembershipDoc(m *aoba.Membership) *membershipDoc {
	return &membershipDoc{
		ID:       membershipID(m.GroupID, m.UserID),
		GroupID:  m.GroupID,
		UserID:   m.UserID,
		Role:     string(m.Role),
		JoinedAt: utc(m.JoinedAt),
	}
}

func toMembership(d *membershipDoc) *aoba.Membership {
	return &aoba.Membership{GroupID: d.GroupID, UserID: d.UserID, Role: aoba.Role(d.Role), JoinedAt: utc(d.JoinedAt)}
}

// CreateGroup stores g and then the owner's membership; when the membership
// cannot be stored it removes the group again. It returns ECONFLICT when the
// group id is in use.
func (s *Store) CreateGroup(ctx context.Context, g *aoba.Group, owner *aoba.Membership) error {
	if _, err := s.groups.InsertOne(ctx, toGroupDoc(g)); mongo.IsDuplicateKeyError(err) {
		return aoba.Errorf(aoba.ECONFLICT, "A group with this id already exists.")
	} else if err != nil {
		return wrapErr(err, "insert group")
	}
	if err := s.CreateMembership(ctx, owner); err != nil {
		s.groups.DeleteOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: g.ID}})
		return err
	}
	return nil
}

// FindGroupByID returns ENOTFOUND when no group has that id.
func (s *Store) FindGroupByID(ctx context.Context, id string) (*aoba.Group, error) {
	var d groupDoc
	if err := s.groups.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFound("Group")
	} else if err != nil {
		return nil, wrapErr(err, "find group")
	}
	return toGroup(&d), nil
}

// FindGroupsByIDs returns the groups among ids that exist, in any order.
func (s *Store) FindGroupsByIDs(ctx context.Context, ids []string) ([]*aoba.Group, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cur, err := s.groups.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, wrapErr(err, "find groups by ids")
	}
	return findAll(ctx, cur, toGroup, "groups")
}

// DeleteGroup removes the group, then its memberships, invitations and
// their bookkeeping documents. It returns ENOTFOUND when no group has that id.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	res, err := s.groups.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return wrapErr(err, "delete group")
	} else if res.DeletedCount == 0 {
		return notFound("Group")
	}
	byGroup := bson.D{{Key: "group_id", Value: id}}
	for _, col := range []*mongo.Collection{s.memberships, s.invitations, s.invitationSlots, s.responses, s.transfers} {
		if _, err := col.DeleteMany(ctx, byGroup); err != nil {
			return wrapErr(err, "delete group's "+col.Name())
		}
	}
	return nil
}

// TransferGroupOwnership sets the group's owner to toUserID if and only if
// it is fromUserID now. The transfer is claimed by inserting the record of
// the group's next transfer, which exactly one concurrent caller can do
// (FerretDB does not make conditional updates atomic), and then applied
// with a conditional update. A claimed transfer that was not applied (its
// caller died) is applied by the next caller. It returns ENOTFOUND for an
// unknown group and ECONFLICT when the owner is no longer fromUserID.
func (s *Store) TransferGroupOwnership(ctx context.Context, groupID, fromUserID, toUserID string) error {
	for attempt := 0; attempt < 5; attempt++ {
		var g groupDoc
		if err := s.groups.FindOne(ctx, bson.D{{Key: "_id", Value: groupID}}).Decode(&g); errors.Is(err, mongo.ErrNoDocuments) {
			return notFound("Group")
		} else if err != nil {
			return wrapErr(err, "find group")
		}
		if g.OwnerID != fromUserID {
			return errOwnerChanged()
		}
		next := g.OwnerSeq + 1
		claim := ownerTransferDoc{ID: transferID(groupID, next), GroupID: groupID, FromUserID: fromUserID, ToUserID: toUserID, At: aoba.Now()}
		_, err := s.transfers.InsertOne(ctx, claim)
		if err == nil {
			return s.applyTransfer(ctx, &claim, g.OwnerSeq)
		} else if !mongo.IsDuplicateKeyError(err) {
			return wrapErr(err, "claim ownership transfer")
		}
		// Another caller claimed this transfer: make sure it is applied,
		// then look at the owner again.
		if err := s.transfers.FindOne(ctx, bson.D{{Key: "_id", Value: claim.ID}}).Decode(&claim); err != nil {
			return wrapErr(err, "find ownership transfer")
		}
		if err := s.applyTransfer(ctx, &claim, g.OwnerSeq); err != nil && aoba.ErrorCode(err) != aoba.ENOTFOUND {
			return err
		}
	}
	return errOwnerChanged()
}

// applyTransfer moves the group from transfer number seq to the claimed
// one, unless that is done already. It returns ENOTFOUND when the group is
// gone.
func (s *Store) applyTransfer(ctx context.Context, claim *ownerTransferDoc, seq int64) error {
	res, err := s.groups.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: claim.GroupID}, {Key: "owner_seq", Value: seq}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "owner_id", Value: claim.ToUserID}, {Key: "owner_seq", Value: seq + 1}}}})
	if err != nil {
		return wrapErr(err, "apply ownership transfer")
	} else if res.MatchedCount > 0 {
		return nil
	}
	if ok, err := exists(ctx, s.groups, claim.GroupID); err != nil {
		return err
	} else if !ok {
		return notFound("Group")
	}
	return nil // applied by another caller meanwhile
}

func errOwnerChanged() error {
	return aoba.Errorf(aoba.ECONFLICT, "The group's owner has changed.")
}

// CreateMembership stores m. It returns ECONFLICT when the user is already
// a member of the group.
func (s *Store) CreateMembership(ctx context.Context, m *aoba.Membership) error {
	if _, err := s.memberships.InsertOne(ctx, toMembershipDoc(m)); mongo.IsDuplicateKeyError(err) {
		return aoba.Errorf(aoba.ECONFLICT, "The user is already a member of the group.")
	} else if err != nil {
		return wrapErr(err, "insert membership")
	}
	return nil
}

// FindMembership returns ENOTFOUND when the user is not a member.
func (s *Store) FindMembership(ctx context.Context, groupID, userID string) (*aoba.Membership, error) {
	var d membershipDoc
	err := s.memberships.FindOne(ctx, bson.D{{Key: "_id", Value: membershipID(groupID, userID)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFound("Membership")
	} else if err != nil {
		return nil, wrapErr(err, "find membership")
	}
	return toMembership(&d), nil
}

// FindMembershipsByGroup returns the group's memberships, oldest first, ties
// broken by user id.
func (s *Store) FindMembershipsByGroup(ctx context.Context, groupID string) ([]*aoba.Membership, error) {
	cur, err := s.memberships.Find(ctx, bson.D{{Key: "group_id", Value: groupID}},
		options.Find().SetSort(bson.D{{Key: "joined_at", Value: 1}, {Key: "user_id", Value: 1}}))
	if err != nil {
		return nil, wrapErr(err, "find memberships by group")
	}
	return findAll(ctx, cur, toMembership, "memberships")
}

// FindMembershipsByUser returns the user's memberships, oldest first, ties
// broken by group id.
func (s *Store) FindMembershipsByUser(ctx context.Context, userID string) ([]*aoba.Membership, error) {
	cur, err := s.memberships.Find(ctx, bson.D{{Key: "user_id", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "joined_at", Value: 1}, {Key: "group_id", Value: 1}}))
	if err != nil {
		return nil, wrapErr(err, "find memberships by user")
	}
	return findAll(ctx, cur, toMembership, "memberships")
}

// UpdateMembershipRole sets the stored role and returns the updated
// membership. It returns ENOTFOUND when the user is not a member.
func (s *Store) UpdateMembershipRole(ctx context.Context, groupID, userID string, role aoba.Role) (*aoba.Membership, error) {
	var d membershipDoc
	err := s.memberships.FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: membershipID(groupID, userID)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "role", Value: string(role)}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFound("Membership")
	} else if err != nil {
		return nil, wrapErr(err, "update membership role")
	}
	return toMembership(&d), nil
}

// DeleteMembership returns ENOTFOUND when the user is not a member.
func (s *Store) DeleteMembership(ctx context.Context, groupID, userID string) error {
	res, err := s.memberships.DeleteOne(ctx, bson.D{{Key: "_id", Value: membershipID(groupID, userID)}})
	if err != nil {
		return wrapErr(err, "delete membership")
	} else if res.DeletedCount == 0 {
		return notFound("Membership")
	}
	return nil
}
