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

// sessionDoc is a session in the sessions collection. RevokedAt is stored
// as null until the session is revoked, so that {revoked_at: null} selects
// the unrevoked sessions.
type sessionDoc struct {
	ID         string     `bson:"_id"`
	UserID     string     `bson:"user_id"`
	TokenID    string     `bson:"token_id"`
	CreatedAt  time.Time  `bson:"created_at"`
	LastSeenAt time.Time  `bson:"last_seen_at"`
	ExpiresAt  time.Time  `bson:"expires_at"`
	UserAgent  string     `bson:"user_agent"`
	IP         string     `bson:"ip"`
	RevokedAt  *time.Time `bson:"revoked_at"`
}

func toSessionDoc(ss *aoba.Session) *sessionDoc {
	d := &sessionDoc{
		ID:         ss.ID,
		UserID:     ss.UserID,
		TokenID:    ss.TokenID,
		CreatedAt:  utc(ss.CreatedAt),
		LastSeenAt: utc(ss.LastSeenAt),
		ExpiresAt:  utc(ss.ExpiresAt),
		UserAgent:  ss.UserAgent,
		IP:         ss.IP,
	}
	d.RevokedAt = utcPtr(ss.RevokedAt)
	return d
}

func toSession(d *sessionDoc) *aoba.Session {
	ss := &aoba.Session{
		ID:         d.ID,
		UserID:     d.UserID,
		TokenID:    d.TokenID,
		CreatedAt:  utc(d.CreatedAt),
		LastSeenAt: utc(d.LastSeenAt),
		ExpiresAt:  utc(d.ExpiresAt),
		UserAgent:  d.UserAgent,
		IP:         d.IP,
	}
	ss.RevokedAt = utcPtr(d.RevokedAt)
	return ss
}

// CreateSession stores ss. It returns ECONFLICT when the id exists.
func (s *Store) CreateSession(ctx context.Context, ss *aoba.Session) error {
	if _, err := s.sessions.InsertOne(ctx, toSessionDoc(ss)); mongo.IsDuplicateKeyError(err) {
		return aoba.Errorf(aoba.ECONFLICT, "A session with this id already exists.")
	} else if err != nil {
		return wrapErr(err, "insert session")
	}
	return nil
}

// FindSessionByID returns the session with that id. It returns ENOTFOUND
// when no session has that id.
func (s *Store) FindSessionByID(ctx context.Context, id string) (*aoba.Session, error) {
	var d sessionDoc
	if err := s.sessions.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFound("Session")
	} else if err != nil {
		return nil, wrapErr(err, "find session")
	}
	return toSession(&d), nil
}

// FindSessionsByUser returns every stored session of the user, revoked and
// expired ones included, oldest first (ties broken by id). It returns
// EUNAVAILABLE or EINTERNAL when the query fails.
func (s *Store) FindSessionsByUser(ctx context.Context, userID string) ([]*aoba.Session, error) {
	cur, err := s.sessions.Find(ctx, bson.D{{Key: "user_id", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, wrapErr(err, "find sessions")
	}
	return findAll(ctx, cur, toSession, "sessions")
}

// RotateSession makes toTokenID the session's token, expiring at
// expiresAt, if fromTokenID is its token now and it is not revoked. It
// returns ENOTFOUND for an unknown session and ECONFLICT when the session
// is revoked or its token is no longer fromTokenID.
//
// The change is one UpdateOne filtered on the current token. On MongoDB
// that is an atomic compare-and-set: of concurrent rotations from the same
// token, one succeeds. FerretDB does not make a filtered update atomic, so
// there two concurrent rotations of the same token may both succeed; the
// later write wins, and the token that the earlier one issued then no
// longer matches the session's token_id and is refused. No token outlives
// a rotation unnoticed: every token but the stored one is refused.
func (s *Store) RotateSession(ctx context.Context, id, fromTokenID, toTokenID string, expiresAt time.Time) error {
	res, err := s.sessions.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "token_id", Value: fromTokenID}, {Key: "revoked_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "token_id", Value: toTokenID}, {Key: "expires_at", Value: utc(expiresAt)}}}})
	if err != nil {
		return wrapErr(err, "rotate session")
	} else if res.MatchedCount > 0 {
		return nil
	}
	// Nothing matched: tell an unknown session from a refused one.
	var d sessionDoc
	err = s.sessions.FindOne(ctx, bson.D{{Key: "_id", Value: id}},
		options.FindOne().SetProjection(bson.D{{Key: "token_id", Value: 1}, {Key: "revoked_at", Value: 1}})).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return notFound("Session")
	case err != nil:
		return wrapErr(err, "find session")
	case d.RevokedAt != nil:
		return aoba.Errorf(aoba.ECONFLICT, "The session is revoked.")
	default:
		return aoba.Errorf(aoba.ECONFLICT, "The session's token has been replaced.")
	}
}

// TouchSession sets the session's LastSeenAt to at. An unknown id is not
// an error. It returns EUNAVAILABLE or EINTERNAL when the write fails.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := s.sessions.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "last_seen_at", Value: utc(at)}}}})
	return wrapErr(err, "touch session")
}

// RevokeSession sets the session's RevokedAt to at unless it is set
// already (revoking a revoked session changes nothing and succeeds). It
// returns ENOTFOUND for an unknown session. On FerretDB, whose filtered
// updates are not atomic, two concurrent revocations may both write, the
// later RevokedAt winning; the session is revoked either way.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time) error {
	res, err := s.sessions.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "revoked_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: utc(at)}}}})
	if err != nil {
		return wrapErr(err, "revoke session")
	} else if res.MatchedCount > 0 {
		return nil
	}
	if ok, err := exists(ctx, s.sessions, id); err != nil {
		return err
	} else if !ok {
		return notFound("Session")
	}
	return nil // already revoked
}

// RevokeUserSessions revokes, at at, every unrevoked session of the user
// except keepID (when not empty). It returns EUNAVAILABLE or EINTERNAL
// when the write fails.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, keepID string, at time.Time) error {
	filter := bson.D{{Key: "user_id", Value: userID}, {Key: "revoked_at", Value: nil}}
	if keepID != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$ne", Value: keepID}}})
	}
	_, err := s.sessions.UpdateMany(ctx, filter,
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: utc(at)}}}})
	return wrapErr(err, "revoke user sessions")
}

// DeleteExpiredSessions removes the sessions that expired before `before`
// and returns how many. It returns EUNAVAILABLE or EINTERNAL when the
// deletion fails.
func (s *Store) DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error) {
	res, err := s.sessions.DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: utc(before)}}}})
	if err != nil {
		return 0, wrapErr(err, "delete expired sessions")
	}
	return int(res.DeletedCount), nil
}
