package aoba

import (
	"strconv"
	"testing"
	"time"
)

// The directory cache's guards that the public surface cannot time: a
// store read that raced a change, entries past their TTL, an unarmed cache.
func TestDirectoryCacheGuards(t *testing.T) {
	u := directoryUser{ID: "u1", Username: "Alice"}

	t.Run("ReadThatRacedAChange", func(t *testing.T) {
		var d directoryCache
		d.reset()
		gen := d.start()                         // a lookup reads the store...
		d.apply(DirectoryChange{UserID: u.ID})   // ...the user is renamed meanwhile...
		d.putUser(gen, u)                        // ...and the old row comes back
		d.putBlocks(gen, "u1", "u2", []*Block{}) // same for blocks
		if _, ok := d.userByName("alice"); ok {
			t.Fatal("a value read before a change was cached after it")
		}
		if _, ok := d.blocksBetween("u2", "u1"); ok {
			t.Fatal("blocks read before a change were cached after it")
		}
		d.putUser(d.start(), u)
		if got, ok := d.userByName("ALICE"); !ok || got != u {
			t.Fatalf("userByName(ALICE) = %v, %v; want %v", got, ok, u)
		}
	})

	t.Run("TTL", func(t *testing.T) {
		var d directoryCache
		d.reset()
		d.putUser(d.start(), u)
		d.byID[u.ID] = cached[directoryUser]{v: u, at: time.Now().Add(-DirectoryCacheTTL)}
		if _, ok := d.userByID(u.ID); ok {
			t.Fatal("an entry past DirectoryCacheTTL was used")
		}
	})

	t.Run("Unarmed", func(t *testing.T) {
		var d directoryCache
		d.putUser(d.start(), u)
		if _, ok := d.userByID(u.ID); ok {
			t.Fatal("an unarmed cache kept a value")
		}
	})

	t.Run("Bounded", func(t *testing.T) {
		var d directoryCache
		d.reset()
		for i := range directoryCacheMax + 1 {
			d.putBlocks(d.start(), "a", strconv.Itoa(i), nil)
		}
		if n := len(d.blocks); n > directoryCacheMax {
			t.Fatalf("%d entries, want at most %d", n, directoryCacheMax)
		}
	})
}
