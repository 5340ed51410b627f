package hub

import (
	"context"
	"slices"
	"sync"

	"github.com/aoba-chat/aoba"
)

var (
	_ aoba.WatchRegistry  = (*MemoryWatches)(nil)
	_ aoba.SocketRegistry = (*MemorySockets)(nil)
)

// MemoryWatches is the in-process WatchRegistry of the single-binary mode:
// per user, a count of the user's sockets watching each watched id.
type MemoryWatches struct {
	limit int
	mu    sync.Mutex
	users map[string]map[string]int // user id → watched id → sockets watching it
}

// NewMemoryWatches returns an empty MemoryWatches that lets a user watch at
// most limit distinct users (aoba.MaxWatchedPerUser when limit is not
// positive). It never fails.
func NewMemoryWatches(limit int) *MemoryWatches {
	if limit <= 0 {
		limit = aoba.MaxWatchedPerUser
	}
	return &MemoryWatches{limit: limit, users: make(map[string]map[string]int)}
}

// Watch adds one reference to each of watchedIDs for userID, all or none. It
// returns the number of ids the user did not watch before, and an EINVALID
// error naming the limit when the user's distinct watched ids would exceed
// it.
func (w *MemoryWatches) Watch(ctx context.Context, userID string, watchedIDs []string) (int, error) {
	ids := dedupe(watchedIDs)
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.users[userID]
	added := 0
	for _, id := range ids {
		if m[id] == 0 {
			added++
		}
	}
	if len(m)+added > w.limit {
		return 0, aoba.ErrTooManyWatched(w.limit)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	if m == nil {
		m = make(map[string]int, len(ids))
		w.users[userID] = m
	}
	for _, id := range ids {
		m[id]++
	}
	return added, nil
}

// Unwatch gives back one reference to each of watchedIDs for userID;
// unknown ids are ignored. It never fails.
func (w *MemoryWatches) Unwatch(ctx context.Context, userID string, watchedIDs []string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.users[userID]
	for _, id := range dedupe(watchedIDs) {
		if m[id] <= 1 {
			delete(m, id)
		} else {
			m[id]--
		}
	}
	if m != nil && len(m) == 0 {
		delete(w.users, userID)
	}
	return nil
}

// dedupe returns ids without repeats, in their first order.
func dedupe(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; !ok && id != "" {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// MemorySockets is the in-process SocketRegistry of the single-binary mode:
// per user, the open connection ids in the order they opened.
type MemorySockets struct {
	mu    sync.Mutex
	users map[string][]string // user id → connection ids, oldest first
}

// NewMemorySockets returns an empty MemorySockets. It never fails.
func NewMemorySockets() *MemorySockets {
	return &MemorySockets{users: make(map[string][]string)}
}

// Open records connID as userID's newest socket and forgets and returns the
// oldest ones beyond limit, oldest first. It never fails.
func (s *MemorySockets) Open(ctx context.Context, userID, connID string, limit int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := append(s.users[userID], connID)
	var evicted []string
	if limit > 0 && len(conns) > limit {
		evicted = slices.Clone(conns[:len(conns)-limit])
		conns = slices.Clone(conns[len(conns)-limit:])
	}
	s.users[userID] = conns
	return evicted, nil
}

// Close forgets connID; an unknown one is ignored. It never fails.
func (s *MemorySockets) Close(ctx context.Context, userID, connID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := slices.DeleteFunc(s.users[userID], func(id string) bool { return id == connID })
	if len(conns) == 0 {
		delete(s.users, userID)
	} else {
		s.users[userID] = conns
	}
	return nil
}

// Count returns the number of open sockets of each of userIDs. It never
// fails.
func (s *MemorySockets) Count(ctx context.Context, userIDs []string) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(userIDs))
	for _, id := range userIDs {
		out[id] = len(s.users[id])
	}
	return out, nil
}
