// Package mongostore implements aoba.Store on MongoDB.
//
// Documents are shaped so that the code runs unchanged on MongoDB and on
// FerretDB, which has no multi-document transactions, no positional
// operator and no atomic conditional update: every rule that must hold
// under concurrent calls rests on the uniqueness of a document _id, the one
// guarantee both servers give. Usernames are claimed through a document
// whose _id is the lowercased name; memberships are one document each with
// _id groupID+":"+userID; a pending invitation holds a slot document keyed
// by group and invitee; an invitation's response and each ownership
// transfer are claimed by inserting a document with a predictable _id
// before the change is written, and so is a sender's client id before the
// message that carries it (collection message_claims, _id
// "<from_id>:<client_id>"). A crash between the claim and the change
// leaves a claim that the next caller detects and repairs (a username claim
// once it is a minute old). Each message of a conversation takes the next
// number by inserting a document with _id "<conversation>#<n>", from
// which the conversation's count, last message and the sender's read
// marker are published (see Store.recordMessage). Sessions are the one
// exception: a rotation is a filtered update, atomic on MongoDB but not on
// FerretDB, where the later of two concurrent rotations wins (see
// Store.RotateSession); so is a read marker moved by PUT .../read (see
// Store.MarkRead), and the roster limit, checked by counting the roster
// after an insert (see Store.PutRosterItem).
//
// Besides the codes each method documents, every method returns an
// EUNAVAILABLE error when the server cannot be reached in time and an
// EINTERNAL error for any other driver failure.
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/aoba-chat/aoba"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// Collection names.
const (
	colUsers               = "users"
	colUsernames           = "usernames"
	colGroups              = "groups"
	colMemberships         = "memberships"
	colInvitations         = "invitations"
	colInvitationSlots     = "invitation_slots"
	colMessages            = "messages"
	colInvitationResponses = "invitation_responses"
	colOwnerTransfers      = "owner_transfers"
	colSessions            = "sessions"
	colMessageClaims       = "message_claims"
	colEvents              = "events"
	colBlocks              = "blocks"
	colConversations       = "conversations"
	colReadStates          = "read_states"
	colConversationSeqs    = "conversation_seqs"
	colRoster              = "roster"
)

// connectTimeout bounds how long Open waits for the server.
const connectTimeout = 5 * time.Second

var _ aoba.Store = (*Store)(nil)

// Store is an aoba.Store backed by one MongoDB database. It is safe for
// concurrent use.
type Store struct {
	client *mongo.Client
	db     *mongo.Database

	users           *mongo.Collection
	usernames       *mongo.Collection
	groups          *mongo.Collection
	memberships     *mongo.Collection
	invitations     *mongo.Collection
	invitationSlots *mongo.Collection
	responses       *mongo.Collection
	transfers       *mongo.Collection
	messages        *mongo.Collection
	messageClaims   *mongo.Collection
	sessions        *mongo.Collection
	events          *mongo.Collection
	blocks          *mongo.Collection
	conversations   *mongo.Collection
	readStates      *mongo.Collection
	seqs            *mongo.Collection
	roster          *mongo.Collection

	// rosterLimit is aoba.MaxRosterItems; tests lower it (FerretDB counts
	// a roster by reading the whole collection).
	rosterLimit int64
}

// Open connects to the MongoDB server at uri, checks that it answers and
// creates the indexes of database. It returns an EINVALID error for a
// malformed uri or database name, an EUNAVAILABLE error when the server does
// not answer within a few seconds, and an EINTERNAL error when the indexes
// cannot be created.
func Open(ctx context.Context, uri, database string) (*Store, error) {
	if database == "" {
		return nil, aoba.Errorf(aoba.EINVALID, "The MongoDB database name is empty.")
	}
	opts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(connectTimeout).
		SetConnectTimeout(connectTimeout)
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, aoba.Errorf(aoba.EINVALID, "The MongoDB connection string is invalid.")
	}
	pingCtx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := client.Ping(pingCtx, readpref.Primary()); err != nil {
		client.Disconnect(context.Background())
		return nil, wrapErr(err, "ping MongoDB")
	}
	db := client.Database(database)
	s := &Store{
		client:          client,
		db:              db,
		users:           db.Collection(colUsers),
		usernames:       db.Collection(colUsernames),
		groups:          db.Collection(colGroups),
		memberships:     db.Collection(colMemberships),
		invitations:     db.Collection(colInvitations),
		invitationSlots: db.Collection(colInvitationSlots),
		responses:       db.Collection(colInvitationResponses),
		transfers:       db.Collection(colOwnerTransfers),
		messages:        db.Collection(colMessages),
		messageClaims:   db.Collection(colMessageClaims),
		sessions:        db.Collection(colSessions),
		events:          db.Collection(colEvents),
		blocks:          db.Collection(colBlocks),
		conversations:   db.Collection(colConversations),
		readStates:      db.Collection(colReadStates),
		seqs:            db.Collection(colConversationSeqs),
		roster:          db.Collection(colRoster),
		rosterLimit:     aoba.MaxRosterItems,
	}
	if err := s.createIndexes(ctx); err != nil {
		client.Disconnect(context.Background())
		return nil, err
	}
	return s, nil
}

// index is one secondary index: its name and its keys, "-" marking a
// descending key.
type index struct {
	name string
	keys []string
}

// indexes lists the secondary indexes every query relies on, by
// collection. Only _id carries uniqueness, so none of them is unique.
var indexes = map[string][]index{
	colUsers: {{"username_lower", []string{"username_lower"}}},
	colMemberships: {
		{"group_joined", []string{"group_id", "joined_at", "user_id"}},
		{"user_joined", []string{"user_id", "joined_at", "group_id"}},
	},
	colInvitations: {
		{"invitee_created", []string{"invitee_id", "created_at"}},
		{"group_created", []string{"group_id", "created_at"}},
	},
	colInvitationSlots:     {{"group", []string{"group_id"}}},
	colInvitationResponses: {{"group", []string{"group_id"}}},
	colOwnerTransfers:      {{"group", []string{"group_id"}}},
	colMessages: {
		{"conversation_id", []string{"conversation", "-_id"}},
		{"from_type_id", []string{"from_id", "type", "-_id"}},
		{"to_type_id", []string{"to_id", "type", "-_id"}},
	},
	colSessions: {{"user_created", []string{"user_id", "created_at", "_id"}}},
	// Events are read by an _id range (see eventDoc); this one serves the
	// retention sweep.
	colEvents:        {{"created", []string{"created_at"}}},
	colConversations: {{"users_last", []string{"users", "-last_id"}}, {"last", []string{"-last_id"}}},
	colReadStates:    {{"conversation", []string{"conversation", "user_id"}}},
	// Roster items are read by an _id range (see rosterDoc); this one
	// serves the deletion of a user's account.
	colRoster: {{"contact", []string{"contact_id"}}},
}

// createIndexes creates the indexes that are missing. It does not re-create
// existing ones: FerretDB fails on re-creating some compound indexes.
func (s *Store) createIndexes(ctx context.Context) error {
	for col, want := range indexes {
		c := s.db.Collection(col)
		specs, err := c.Indexes().ListSpecifications(ctx)
		if err != nil {
			return wrapErr(err, "list indexes of "+col)
		}
		have := make(map[string]bool, len(specs))
		for _, spec := range specs {
			have[spec.Name] = true
		}
		var missing []mongo.IndexModel
		for _, idx := range want {
			if have[idx.name] {
				continue
			}
			keys := bson.D{}
			for _, k := range idx.keys {
				if k[0] == '-' {
					keys = append(keys, bson.E{Key: k[1:], Value: -1})
				} else {
					keys = append(keys, bson.E{Key: k, Value: 1})
				}
			}
			missing = append(missing, mongo.IndexModel{Keys: keys, Options: options.Index().SetName(idx.name)})
		}
		if len(missing) == 0 {
			continue
		}
		if _, err := c.Indexes().CreateMany(ctx, missing); err != nil {
			return wrapErr(err, "create indexes on "+col)
		}
	}
	return nil
}

// Ping returns an EUNAVAILABLE error when the server does not answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return wrapErr(err, "ping MongoDB")
	}
	return nil
}

// Close disconnects from the server. It returns an EINTERNAL error when the
// disconnection fails.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := s.client.Disconnect(ctx); err != nil && !errors.Is(err, mongo.ErrClientDisconnected) {
		return wrapErr(err, "disconnect from MongoDB")
	}
	return nil
}

// wrapErr turns a driver error into a domain error: duplicate key is
// ECONFLICT, no document ENOTFOUND, unreachable server or timeout
// EUNAVAILABLE, anything else EINTERNAL with what and the cause in its
// message. Domain errors pass through unchanged.
func wrapErr(err error, what string) error {
	var e *aoba.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return err
	case mongo.IsDuplicateKeyError(err):
		return aoba.Errorf(aoba.ECONFLICT, "The object already exists.")
	case errors.Is(err, mongo.ErrNoDocuments):
		return aoba.Errorf(aoba.ENOTFOUND, "The object was not found.")
	case isUnavailable(err):
		return aoba.Errorf(aoba.EUNAVAILABLE, "The database is unavailable.")
	default:
		return aoba.Errorf(aoba.EINTERNAL, "mongostore: %s: %v", what, err)
	}
}

// isUnavailable reports whether err says that the server could not be
// reached in time, rather than that it refused the operation.
func isUnavailable(err error) bool {
	var netErr net.Error
	return mongo.IsTimeout(err) ||
		mongo.IsNetworkError(err) ||
		errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, mongo.ErrClientDisconnected) ||
		errors.As(err, &topology.ServerSelectionError{}) ||
		errors.As(err, &netErr)
}

// notFound returns an ENOTFOUND error whose message names the object.
func notFound(object string) error {
	return aoba.Errorf(aoba.ENOTFOUND, "%s not found.", object)
}

// exists reports whether col holds a document with that _id.
func exists(ctx context.Context, col *mongo.Collection, id string) (bool, error) {
	err := col.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return false, nil
	default:
		return false, wrapErr(err, fmt.Sprintf("find %s", col.Name()))
	}
}

// findAll decodes every document that cur yields through conv.
func findAll[D any, T any](ctx context.Context, cur *mongo.Cursor, conv func(*D) *T, what string) ([]*T, error) {
	defer cur.Close(ctx)
	var out []*T
	for cur.Next(ctx) {
		var d D
		if err := cur.Decode(&d); err != nil {
			return nil, wrapErr(err, "decode "+what)
		}
		out = append(out, conv(&d))
	}
	if err := cur.Err(); err != nil {
		return nil, wrapErr(err, "read "+what)
	}
	return out, nil
}

// countPage returns the number of documents of col matching filter, given
// that the page at offset with limit (0: no limit) held n of them. A short,
// non-empty page (or a full result without limit) tells the total without
// asking the server.
func countPage(ctx context.Context, col *mongo.Collection, filter bson.D, offset, limit, n int) (int, error) {
	if (n > 0 || offset == 0) && (limit <= 0 || n < limit) {
		return offset + n, nil
	}
	total, err := col.CountDocuments(ctx, filter)
	if err != nil {
		return 0, wrapErr(err, "count "+col.Name())
	}
	return int(total), nil
}

// utc returns t in UTC, as the domain keeps every time.
func utc(t time.Time) time.Time { return t.UTC() }

// utcPtr returns t in UTC, or nil when t is nil.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := utc(*t)
	return &u
}
