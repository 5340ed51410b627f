package mongostore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aoba-chat/aoba"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// conversationDoc is the state of one conversation, _id its key: seq, the
// number of its messages, and last_id, the greatest id among its messages
// numbered 1 to seq (see seqDoc); for a 1:1 conversation, its two users
// (for listing a user's conversations). seq and last_id are always written
// together, with $set, from the numbers the writer has read, so every
// version of the document is true of some prefix of the conversation: seq
// never exceeds the number of messages numbered, and last_id is the
// greatest of the first seq.
type conversationDoc struct {
	ID     string   `bson:"_id"`
	Users  []string `bson:"users,omitempty"`
	Seq    int64    `bson:"seq"`
	LastID string   `bson:"last_id"`
}

// seqDoc gives one message of a conversation its number n, from 1: its
// _id is seqID(conversation, n). Inserting it is how a sender takes the
// number: _id uniqueness lets one message hold each number, the one atomic
// step both MongoDB and FerretDB v1.24 give ($inc and $max are a read then
// a write on FerretDB: counting messages with them lost about two sends in
// three when twenty raced). A sender tries the number after the
// conversation's seq, then the next ones until an insert succeeds, so the
// numbers taken are always 1 to some n without a gap. Number documents are
// written once and never changed.
type seqDoc struct {
	ID        string `bson:"_id"`
	MessageID string `bson:"message_id"`
	FromID    string `bson:"from_id"`
}

// seqID returns the _id of the number n of the conversation key.
func seqID(key string, n int64) string { return key + "#" + strconv.FormatInt(n, 10) }

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

// seen is what a sender knows of its conversation's numbers: every
// message up to seq is numbered, lastID is the greatest id among them, and
// own and ownID the sender's last number and greatest message id among
// them (0 and "" when unknown).
type seen struct {
	seq, own     int64
	lastID       string
	ownID        string
	sender, conv string
}

// add records d, the number s.seq+1.
func (s *seen) add(d *seqDoc) {
	s.seq++
	s.lastID = max(s.lastID, d.MessageID)
	if d.FromID == s.sender {
		s.own, s.ownID = s.seq, max(s.ownID, d.MessageID)
	}
}

// findSeq returns the number n of key, or nil when it is free. It reads by
// _id equality: FerretDB v1.24 answers an _id $in by scanning the
// collection.
func (s *Store) findSeq(ctx context.Context, key string, n int64) (*seqDoc, error) {
	var d seqDoc
	if err := s.seqs.FindOne(ctx, bson.D{{Key: "_id", Value: seqID(key, n)}}).Decode(&d); errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	} else if err != nil {
		return nil, wrapErr(err, "find conversation number")
	}
	return &d, nil
}

// recordMessage numbers m in its conversation, then publishes the
// conversation's state and the sender's read marker; it runs after m is
// stored, and every read and write goes by _id.
//
// It reads the conversation's document (seq h) and inserts the number h+1;
// when that is taken, it reads the numbers from there up to the first free
// one (concurrent senders') and tries that. Then it publishes what it
// knows: the conversation's seq and last_id ($set, see conversationDoc)
// and the sender's marker ($max of their greatest message id and their
// last number, so that a sender has read every message before their own),
// and reads the number after the last it knows. When that is taken, it
// reads on to the first free one and publishes again (the marker only if
// the sender's own messages moved it). Uncontended, that is five reads or
// writes by _id after the message's insert, three more than $inc and $max
// took; the two writes of a publication run at once.
//
// This makes the state exact once sends stop, on MongoDB and on FerretDB
// alike: the last write to the document was followed by its writer's read
// of the next number, which was free then, and whoever takes that number
// later writes after it. A concurrent writer may briefly put back an older
// state (FerretDB replaces whole documents) but then reads the newer
// numbers and publishes again; so for a marker moved by the same user's
// sends racing each other. What remains: a process that dies after
// numbering a message and before publishing leaves the state one message
// behind until the conversation's next message, and one that dies between
// storing the message and numbering it leaves that message out of the
// counts (unread is one too low, never negative).
func (s *Store) recordMessage(ctx context.Context, m *aoba.Message) error {
	var conv conversationDoc
	if err := s.conversations.FindOne(ctx, bson.D{{Key: "_id", Value: m.Conversation}}).Decode(&conv); err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return wrapErr(err, "find conversation")
	}
	k := seen{seq: conv.Seq, lastID: conv.LastID, sender: m.FromID, conv: m.Conversation}
	for {
		own := &seqDoc{ID: seqID(m.Conversation, k.seq+1), MessageID: m.ID, FromID: m.FromID}
		_, err := s.seqs.InsertOne(ctx, own)
		if err == nil {
			k.add(own)
			break
		} else if !mongo.IsDuplicateKeyError(err) {
			return wrapErr(err, "number message")
		}
		if found, err := s.readSeqs(ctx, &k); err != nil {
			return err
		} else if !found {
			return aoba.Errorf(aoba.EINTERNAL, "mongostore: number %d of %s is taken but not found", k.seq+1, m.Conversation)
		}
	}
	var users bson.A
	if m.Type == aoba.MessageChat {
		users = bson.A{min(m.FromID, m.ToID), max(m.FromID, m.ToID)}
	}
	var marked int64 // the sender's number last written into their marker
	for {
		if err := s.publish(ctx, m, &k, users, k.own != marked); err != nil {
			return err
		}
		marked = k.own
		if found, err := s.readSeqs(ctx, &k); err != nil || !found {
			return err
		}
	}
}

// readSeqs reads the numbers of k's conversation after k.seq into k, up to
// the first free one; it reports whether there were any.
func (s *Store) readSeqs(ctx context.Context, k *seen) (found bool, err error) {
	for {
		d, err := s.findSeq(ctx, k.conv, k.seq+1)
		if err != nil || d == nil {
			return found, err
		}
		k.add(d)
		found = true
	}
}

// publish writes k into the document of m's conversation (with users on
// its creation) and, when marker is set, into the marker of m's sender;
// the two writes run at once.
func (s *Store) publish(ctx context.Context, m *aoba.Message, k *seen, users bson.A, marker bool) error {
	markerErr := make(chan error, 1)
	if marker {
		go func() {
			markerErr <- wrapErr(upsertRetry(func() error {
				_, err := s.readStates.UpdateOne(ctx, bson.D{{Key: "_id", Value: readStateID(m.FromID, m.Conversation)}}, bson.D{
					{Key: "$set", Value: bson.D{{Key: "user_id", Value: m.FromID}, {Key: "conversation", Value: m.Conversation}}},
					{Key: "$max", Value: bson.D{{Key: "read_up_to", Value: k.ownID}, {Key: "read_count", Value: k.own}, {Key: "read_at", Value: utc(m.Timestamp)}}},
				}, options.UpdateOne().SetUpsert(true))
				return err
			}), "update read state")
		}()
	} else {
		markerErr <- nil
	}
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: k.seq}, {Key: "last_id", Value: k.lastID}}}}
	if users != nil {
		update = append(update, bson.E{Key: "$setOnInsert", Value: bson.D{{Key: "users", Value: users}}})
	}
	err := wrapErr(upsertRetry(func() error {
		_, err := s.conversations.UpdateOne(ctx, bson.D{{Key: "_id", Value: m.Conversation}}, update, options.UpdateOne().SetUpsert(true))
		return err
	}), "update conversation")
	return errors.Join(err, <-markerErr)
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

// FindConversationKeys returns those of keys that have a conversation
// document (a message), read one by one by _id: FerretDB v1.24 answers an
// _id $in by scanning the collection.
func (s *Store) FindConversationKeys(ctx context.Context, keys []string) ([]string, error) {
	var out []string
	for _, k := range keys {
		ok, err := exists(ctx, s.conversations, k)
		if err != nil {
			return nil, err
		} else if ok {
			out = append(out, k)
		}
	}
	return out, nil
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

// MarkRead moves the marker of userID in key forward to upTo. The read
// count is the conversation's seq minus the messages after upTo, counted
// first: a message stored before the count but not yet numbered and
// published when seq is read (a send in flight, a few round trips) makes
// it one too low, so unread shows one message too many until the marker
// moves again. The update is filtered on the stored marker being behind
// upTo; on FerretDB that filter and the write are not one atomic step, so
// of two concurrent marks (or a mark and the same user's send) the later
// write wins even when it is the smaller one (the next mark or send
// corrects it). It returns ENOTFOUND when upTo is not a message of key.
func (s *Store) MarkRead(ctx context.Context, userID, key, upTo string, at time.Time) (*aoba.ReadState, error) {
	m, err := s.findMessage(ctx, upTo)
	if err != nil {
		return nil, err
	} else if m == nil || m.Conversation != key {
		return nil, notFound("Message")
	}
	after, err := s.messages.CountDocuments(ctx, bson.D{{Key: "conversation", Value: key}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: upTo}}}})
	if err != nil {
		return nil, wrapErr(err, "count unread")
	}
	var conv conversationDoc
	if err := s.conversations.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&conv); err != nil {
		return nil, wrapErr(err, "find conversation")
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
