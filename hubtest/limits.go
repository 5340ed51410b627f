package hubtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aoba-chat/aoba"
)

// WatchLimit is the limit the registries given to RunWatchRegistryTests
// must have.
const WatchLimit = 5

// NewWatchRegistryFunc returns a new, empty watch registry whose limit is
// WatchLimit.
type NewWatchRegistryFunc func(t *testing.T) aoba.WatchRegistry

// RunWatchRegistryTests runs the aoba.WatchRegistry contract against the
// registries that newRegistry returns.
func RunWatchRegistryTests(t *testing.T, newRegistry NewWatchRegistryFunc) {
	ctx := context.Background()
	ids := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("w%d", i))
		}
		return out
	}
	watch := func(t *testing.T, r aoba.WatchRegistry, user string, ids []string) int {
		t.Helper()
		n, err := r.Watch(ctx, user, ids)
		if err != nil {
			t.Fatalf("watch %v: %v", ids, err)
		}
		return n
	}
	refused := func(t *testing.T, r aoba.WatchRegistry, user string, ids []string) {
		t.Helper()
		_, err := r.Watch(ctx, user, ids)
		if aoba.ErrorCode(err) != aoba.EINVALID || !strings.Contains(aoba.ErrorMessage(err), fmt.Sprint(WatchLimit)) {
			t.Fatalf("watch %v: %v, want %s naming the limit %d", ids, err, aoba.EINVALID, WatchLimit)
		}
	}

	t.Run("UpToTheLimit", func(t *testing.T) {
		r := newRegistry(t)
		if n := watch(t, r, "u", ids(0, 3)); n != 3 {
			t.Fatalf("added %d, want 3", n)
		}
		if n := watch(t, r, "u", ids(3, WatchLimit)); n != WatchLimit-3 {
			t.Fatalf("added %d, want %d", n, WatchLimit-3)
		}
		refused(t, r, "u", ids(WatchLimit, WatchLimit+1))
		// Other users have their own limit.
		watch(t, r, "v", ids(0, WatchLimit))
	})

	t.Run("AllOrNone", func(t *testing.T) {
		r := newRegistry(t)
		watch(t, r, "u", ids(0, 3))
		refused(t, r, "u", ids(2, WatchLimit+1))
		// Nothing of the refused call was counted.
		if n := watch(t, r, "u", ids(3, WatchLimit)); n != WatchLimit-3 {
			t.Fatalf("added %d after a refused call, want %d", n, WatchLimit-3)
		}
	})

	t.Run("DistinctAcrossSockets", func(t *testing.T) {
		r := newRegistry(t)
		// Two sockets watching the same ids count them once.
		watch(t, r, "u", ids(0, WatchLimit))
		if n := watch(t, r, "u", ids(0, WatchLimit)); n != 0 {
			t.Fatalf("added %d for ids already watched, want 0", n)
		}
		refused(t, r, "u", ids(WatchLimit, WatchLimit+1))
		// One socket letting go keeps the other's references.
		if err := r.Unwatch(ctx, "u", ids(0, WatchLimit)); err != nil {
			t.Fatal(err)
		}
		refused(t, r, "u", ids(WatchLimit, WatchLimit+1))
		if err := r.Unwatch(ctx, "u", ids(0, 1)); err != nil {
			t.Fatal(err)
		}
		if n := watch(t, r, "u", ids(WatchLimit, WatchLimit+1)); n != 1 {
			t.Fatalf("added %d, want 1", n)
		}
	})

	t.Run("DuplicatesAndUnknown", func(t *testing.T) {
		r := newRegistry(t)
		if n := watch(t, r, "u", []string{"a", "a", "b"}); n != 2 {
			t.Fatalf("added %d, want 2", n)
		}
		if err := r.Unwatch(ctx, "u", []string{"zz", "a"}); err != nil {
			t.Fatal(err)
		}
		if err := r.Unwatch(ctx, "nobody", []string{"a"}); err != nil {
			t.Fatal(err)
		}
		if n := watch(t, r, "u", nil); n != 0 {
			t.Fatalf("added %d for no ids", n)
		}
		if n := watch(t, r, "u", ids(0, WatchLimit-1)); n != WatchLimit-1 {
			t.Fatalf("added %d, want %d", n, WatchLimit-1)
		}
	})

	t.Run("ExactlyTheLimitInParallel", func(t *testing.T) {
		r := newRegistry(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := 0; i < 3*WatchLimit; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.Watch(ctx, "u", ids(i, i+1)); err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if ok != WatchLimit {
			t.Fatalf("%d distinct watches allowed, want %d", ok, WatchLimit)
		}
	})
}

// NewSocketRegistryFunc returns a new, empty socket registry.
type NewSocketRegistryFunc func(t *testing.T) aoba.SocketRegistry

// RunSocketRegistryTests runs the aoba.SocketRegistry contract against the
// registries that newRegistry returns.
func RunSocketRegistryTests(t *testing.T, newRegistry NewSocketRegistryFunc) {
	ctx := context.Background()
	open := func(t *testing.T, r aoba.SocketRegistry, user, conn string, limit int) []string {
		t.Helper()
		ev, err := r.Open(ctx, user, conn, limit)
		if err != nil {
			t.Fatalf("open %s: %v", conn, err)
		}
		return ev
	}

	t.Run("EvictsTheOldest", func(t *testing.T) {
		r := newRegistry(t)
		for _, c := range []string{"c1", "c2", "c3"} {
			if ev := open(t, r, "u", c, 3); len(ev) != 0 {
				t.Fatalf("open %s evicted %v within the limit", c, ev)
			}
		}
		if ev := open(t, r, "u", "c4", 3); !slices.Equal(ev, []string{"c1"}) {
			t.Fatalf("evicted %v, want [c1]", ev)
		}
		// A closed socket frees its place.
		if err := r.Close(ctx, "u", "c3"); err != nil {
			t.Fatal(err)
		}
		if ev := open(t, r, "u", "c5", 3); len(ev) != 0 {
			t.Fatalf("evicted %v after a close", ev)
		}
		// A lower limit evicts several, oldest first.
		if ev := open(t, r, "u", "c6", 2); !slices.Equal(ev, []string{"c2", "c4"}) {
			t.Fatalf("evicted %v, want [c2 c4]", ev)
		}
		// Other users are apart; no limit evicts nothing.
		if ev := open(t, r, "v", "d1", 1); len(ev) != 0 {
			t.Fatalf("another user's socket evicted %v", ev)
		}
		if ev := open(t, r, "u", "c7", 0); len(ev) != 0 {
			t.Fatalf("no limit evicted %v", ev)
		}
	})

	t.Run("CloseUnknown", func(t *testing.T) {
		r := newRegistry(t)
		if err := r.Close(ctx, "u", "nope"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Count", func(t *testing.T) {
		r := newRegistry(t)
		count := func(t *testing.T, users ...string) map[string]int {
			t.Helper()
			n, err := r.Count(ctx, users)
			if err != nil {
				t.Fatalf("count: %v", err)
			}
			return n
		}
		if n := count(t); len(n) != 0 {
			t.Fatalf("count of nobody = %v", n)
		}
		open(t, r, "u", "c1", 0)
		open(t, r, "u", "c2", 0)
		open(t, r, "v", "d1", 0)
		if n := count(t, "u", "v", "w"); n["u"] != 2 || n["v"] != 1 || n["w"] != 0 || len(n) != 3 {
			t.Fatalf("counts = %v, want u:2 v:1 w:0", n)
		}
		// Closes and evictions are counted out.
		if err := r.Close(ctx, "u", "c1"); err != nil {
			t.Fatal(err)
		}
		open(t, r, "v", "d2", 1)
		if n := count(t, "u", "v"); n["u"] != 1 || n["v"] != 1 {
			t.Fatalf("counts = %v, want u:1 v:1", n)
		}
	})
}
