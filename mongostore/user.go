package mongostore

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/aoba-chat/aoba"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// staleClaimAge is how old a username claim must be before another user may
// take it over when its holder does not carry the name: older than any
// create or rename in progress, so only the leftover of a crash qualifies.
const staleClaimAge = time.Minute

// userDoc is a user in the users collection. UsernameLower keeps the
// case-insensitive key of lookups, search and ordering.
type userDoc struct {
	ID            string    `bson:"_id"`
	Username      string    `bson:"username"`
	UsernameLower string    `bson:"username_lower"`
	PasswordHash  string    `bson:"password_hash"`
	CreatedAt     time.Time `bson:"created_at"`
	// DisabledAt is set while an administrator keeps the account disabled.
	DisabledAt *time.Time `bson:"disabled_at,omitempty"`
}

// usernameDoc claims a username: its _id is the lowercased name, so the
// server's _id uniqueness makes the claim exclusive.
type usernameDoc struct {
	ID        string    `bson:"_id"`
	UserID    string    `bson:"user_id"`
	ClaimedAt time.Time `bson:"claimed_at"`
}

func toUserDoc(u *aoba.User) *userDoc {
	return &userDoc{
		ID:            u.ID,
		Username:      u.Username,
		UsernameLower: strings.ToLower(u.Username),
		PasswordHash:  u.PasswordHash,
		CreatedAt:     utc(u.CreatedAt),
		DisabledAt:    utcPtr(u.DisabledAt),
	}
}

func toUser(d *userDoc) *aoba.User {
	return &aoba.User{ID: d.ID, Username: d.Username, PasswordHash: d.PasswordHash, CreatedAt: utc(d.CreatedAt), DisabledAt: utcPtr(d.DisabledAt)}
}

func errUsernameTaken() error {
	return aoba.Errorf(aoba.ECONFLICT, "Username is already taken.")
}

// CreateUser stores u after claiming its username. It returns ECONFLICT when
// the username is taken in any case or the id is in use.
func (s *Store) CreateUser(ctx context.Context, u *aoba.User) error {
	lower := strings.ToLower(u.Username)
	if err := s.claimUsername(ctx, lower, u.ID); err != nil {
		return err
	}
	if _, err := s.users.InsertOne(ctx, toUserDoc(u)); err != nil {
		s.releaseUsername(context.WithoutCancel(ctx), lower, u.ID)
		if mongo.IsDuplicateKeyError(err) {
			return aoba.Errorf(aoba.ECONFLICT, "A user with this id already exists.")
		}
		return wrapErr(err, "insert user")
	}
	return nil
}

// claimUsername makes userID the holder of the lowercased name lower. It
// returns ECONFLICT when another user holds it; a claim that userID already
// holds succeeds. A claim left behind by a crash (old, and its holder does
// not carry the name) is taken over.
func (s *Store) claimUsername(ctx context.Context, lower, userID string) error {
	for attempt := 0; ; attempt++ {
		_, err := s.usernames.InsertOne(ctx, usernameDoc{ID: lower, UserID: userID, ClaimedAt: aoba.Now()})
		if err == nil {
			return nil
		} else if !mongo.IsDuplicateKeyError(err) {
			return wrapErr(err, "claim username")
		}
		var claim usernameDoc
		if err := s.usernames.FindOne(ctx, bson.D{{Key: "_id", Value: lower}}).Decode(&claim); errors.Is(err, mongo.ErrNoDocuments) {
			continue // released meanwhile: try again
		} else if err != nil {
			return wrapErr(err, "find username claim")
		}
		if claim.UserID == userID {
			return nil
		}
		if attempt > 0 || time.Since(claim.ClaimedAt) < staleClaimAge {
			return errUsernameTaken()
		}
		// An old claim: keep it if its holder carries the name.
		holder, err := s.users.CountDocuments(ctx, bson.D{{Key: "_id", Value: claim.UserID}, {Key: "username_lower", Value: lower}})
		if err != nil {
			return wrapErr(err, "check username claim")
		} else if holder > 0 {
			return errUsernameTaken()
		}
		if _, err := s.usernames.DeleteOne(ctx, bson.D{{Key: "_id", Value: lower}, {Key: "user_id", Value: claim.UserID}, {Key: "claimed_at", Value: claim.ClaimedAt}}); err != nil {
			return wrapErr(err, "remove stale username claim")
		}
	}
}

// releaseUsername drops userID's claim on lower, if it holds it. A failure
// only leaves a stale claim, which claimUsername later takes over.
func (s *Store) releaseUsername(ctx context.Context, lower, userID string) {
	s.usernames.DeleteOne(ctx, bson.D{{Key: "_id", Value: lower}, {Key: "user_id", Value: userID}})
}

// FindUserByID returns ENOTFOUND when no user has that id.
func (s *Store) FindUserByID(ctx context.Context, id string) (*aoba.User, error) {
	var d userDoc
	if err := s.users.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFound("User")
	} else if err != nil {
		return nil, wrapErr(err, "find user")
	}
	return toUser(&d), nil
}

// FindUserByUsername looks the name up case-insensitively. It returns
// ENOTFOUND when no user has that name.
func (s *Store) FindUserByUsername(ctx context.Context, username string) (*aoba.User, error) {
	var d userDoc
	err := s.users.FindOne(ctx, bson.D{{Key: "username_lower", Value: strings.ToLower(username)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFound("User")
	} else if err != nil {
		return nil, wrapErr(err, "find user by username")
	}
	return toUser(&d), nil
}

// FindUsersByIDs returns the users among ids that exist, in any order.
func (s *Store) FindUsersByIDs(ctx context.Context, ids []string) ([]*aoba.User, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cur, err := s.users.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, wrapErr(err, "find users by ids")
	}
	return findAll(ctx, cur, toUser, "users")
}

// FindUsersByUsernames returns the users among usernames (case-insensitive)
// that exist, in any order.
func (s *Store) FindUsersByUsernames(ctx context.Context, usernames []string) ([]*aoba.User, error) {
	if len(usernames) == 0 {
		return nil, nil
	}
	lower := make([]string, len(usernames))
	for i, name := range usernames {
		lower[i] = strings.ToLower(name)
	}
	cur, err := s.users.Find(ctx, bson.D{{Key: "username_lower", Value: bson.D{{Key: "$in", Value: lower}}}})
	if err != nil {
		return nil, wrapErr(err, "find users by usernames")
	}
	return findAll(ctx, cur, toUser, "users")
}

// FindUsers returns the users whose name contains f.Query, case-insensitive
// and taken literally, except those in f.Exclude, ordered by lowercased
// name, one page of them and the total number of matches. Limit 0 means no
// limit.
func (s *Store) FindUsers(ctx context.Context, f aoba.UserFilter) ([]*aoba.User, int, error) {
	filter := bson.D{}
	if f.Query != "" {
		pattern := regexp.QuoteMeta(strings.ToLower(f.Query))
		filter = append(filter, bson.E{Key: "username_lower", Value: bson.D{{Key: "$regex", Value: pattern}}})
	}
	if len(f.Exclude) > 0 {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$nin", Value: f.Exclude}}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "username_lower", Value: 1}, {Key: "_id", Value: 1}})
	if f.Offset > 0 {
		opts.SetSkip(int64(f.Offset))
	}
	if f.Limit > 0 {
		opts.SetLimit(int64(f.Limit))
	}
	cur, err := s.users.Find(ctx, filter, opts)
	if err != nil {
		return nil, 0, wrapErr(err, "find users")
	}
	users, err := findAll(ctx, cur, toUser, "users")
	if err != nil {
		return nil, 0, err
	}
	total, err := countPage(ctx, s.users, filter, f.Offset, f.Limit, len(users))
	if err != nil {
		return nil, 0, err
	}
	return users, total, nil
}

// UpdateUsername renames the user: it claims the new name, updates the user
// if it still has the name it was read with, then releases the old name, so
// that two users never hold one name. It returns ENOTFOUND for an unknown id
// and ECONFLICT when another user holds the name in any case, or when the
// user was renamed concurrently.
func (s *Store) UpdateUsername(ctx context.Context, id, username string) (*aoba.User, error) {
	u, err := s.FindUserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	oldLower, newLower := strings.ToLower(u.Username), strings.ToLower(username)
	if oldLower != newLower {
		if err := s.claimUsername(ctx, newLower, id); err != nil {
			return nil, err
		}
	}
	res, err := s.users.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "username_lower", Value: oldLower}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "username", Value: username}, {Key: "username_lower", Value: newLower}}}})
	if err != nil || res.MatchedCount == 0 {
		if oldLower != newLower {
			s.releaseUsername(context.WithoutCancel(ctx), newLower, id)
		}
		if err != nil {
			return nil, wrapErr(err, "update username")
		}
		if ok, err := exists(ctx, s.users, id); err != nil {
			return nil, err
		} else if !ok {
			return nil, notFound("User")
		}
		return nil, aoba.Errorf(aoba.ECONFLICT, "The user was renamed concurrently.")
	}
	if oldLower != newLower {
		s.releaseUsername(context.WithoutCancel(ctx), oldLower, id)
	}
	u.Username = username
	return u, nil
}

// UpdatePasswordHash replaces the stored hash. It returns ENOTFOUND for an
// unknown id.
func (s *Store) UpdatePasswordHash(ctx context.Context, id, hash string) error {
	res, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "password_hash", Value: hash}}}})
	if err != nil {
		return wrapErr(err, "update password hash")
	} else if res.MatchedCount == 0 {
		return notFound("User")
	}
	return nil
}

// UpdateUserDisabled sets disabled_at to at, or removes it when at is nil,
// and returns the user. It returns ENOTFOUND for an unknown id.
func (s *Store) UpdateUserDisabled(ctx context.Context, id string, at *time.Time) (*aoba.User, error) {
	update := bson.D{{Key: "$unset", Value: bson.D{{Key: "disabled_at", Value: ""}}}}
	if at != nil {
		update = bson.D{{Key: "$set", Value: bson.D{{Key: "disabled_at", Value: utc(*at)}}}}
	}
	var d userDoc
	err := s.users.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}}, update,
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFound("User")
	} else if err != nil {
		return nil, wrapErr(err, "update user disabled")
	}
	return toUser(&d), nil
}

// DeleteUser deletes the roster items the user owns or is the contact of,
// then removes the account and releases its username. It returns
// ENOTFOUND for an unknown id. Without transactions, an item put while the
// account is being deleted may outlive it; when the items cannot be
// deleted the account is kept, so that the call can be retried.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if err := s.deleteRosterOf(ctx, id); err != nil {
		return err
	}
	var d userDoc
	if err := s.users.FindOneAndDelete(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); errors.Is(err, mongo.ErrNoDocuments) {
		return notFound("User")
	} else if err != nil {
		return wrapErr(err, "delete user")
	}
	s.releaseUsername(context.WithoutCancel(ctx), d.UsernameLower, id)
	return nil
}
