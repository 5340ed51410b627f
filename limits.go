package aoba

import "context"

// MaxWatchedPerUser is the largest number of distinct users one user may
// watch the presence of, across all their sockets and pods.
const MaxWatchedPerUser = 1000

// DefaultMaxSocketsPerUser is the default number of sockets one user may
// hold open across all pods (AOBA_MAX_SOCKETS_PER_USER).
const DefaultMaxSocketsPerUser = 16

// WatchRegistry counts, across all pods, the distinct users each user
// watches the presence of, so that a user's sockets together stay within a
// limit (MaxWatchedPerUser unless the implementation is given another).
// Each watched id carries one reference per socket of the user watching
// it.
type WatchRegistry interface {
	// Watch adds one reference from one socket of userID to each of
	// watchedIDs (ids that socket does not watch yet, each once), all or
	// none: when the user's distinct watched users would exceed the limit
	// it changes nothing and returns an EINVALID error that names the
	// limit. It returns the number of ids no socket of the user watched
	// before, and an EUNAVAILABLE error when the registry cannot be
	// reached.
	Watch(ctx context.Context, userID string, watchedIDs []string) (added int, err error)
	// Unwatch gives back one reference of a socket of userID to each of
	// watchedIDs; an id without references left is no longer counted.
	// Unknown ids are ignored. It returns an EUNAVAILABLE error when the
	// registry cannot be reached.
	Unwatch(ctx context.Context, userID string, watchedIDs []string) error
}

// SocketRegistry orders the open sockets of each user across all pods, so
// that a user over the socket limit loses their oldest sockets.
type SocketRegistry interface {
	// Open records connID as the newest socket of userID. When the user
	// then has more than limit sockets, it forgets the oldest ones and
	// returns their ids, oldest first, for the caller to close with
	// CloseTooManySockets; a limit that is not positive means no limit.
	// It returns an EUNAVAILABLE error when the registry cannot be
	// reached.
	Open(ctx context.Context, userID, connID string, limit int) (evicted []string, err error)
	// Close forgets connID; an unknown one is ignored. It returns an
	// EUNAVAILABLE error when the registry cannot be reached.
	Close(ctx context.Context, userID, connID string) error
	// Count returns the number of open sockets of each of userIDs across
	// all pods (0 for a user without any). It returns an EUNAVAILABLE
	// error when the registry cannot be reached.
	Count(ctx context.Context, userIDs []string) (map[string]int, error)
}

// ErrTooManyWatched returns the EINVALID error of a WatchRegistry refusing
// to let a user watch more than limit users.
func ErrTooManyWatched(limit int) error {
	return Errorf(EINVALID, "A user may watch at most %d users across all their connections.", limit)
}
