package aoba

import (
	"strconv"
	"testing"
	"time"
)

// The member cache's guards that the public surface cannot time: entries
// past their TTL, a store read that raced a removal, an unarmed cache, the
// size bound, and what each announced change forgets.
func TestMemberCacheGuards(t *testing.T) {
	const g1, g2 = "g1", "g2"

	t.Run("TTL", func(t *testing.T) {
		var m memberCache
		m.reset()
		m.remember(g1, "u1", m.gen)
		if _, ok := m.lookup(g1, "u1"); !ok {
			t.Fatal("a fresh entry was not used")
		}
		m.known[g1]["u1"] = time.Now().Add(-DirectoryCacheTTL)
		if _, ok := m.lookup(g1, "u1"); ok {
			t.Fatal("an entry past DirectoryCacheTTL was used")
		}
	})

	t.Run("ReadThatRacedARemoval", func(t *testing.T) {
		var m memberCache
		m.reset()
		gen, _ := m.lookup(g1, "u1")                      // a send reads the store...
		m.apply(DirectoryChange{Group: g1, Member: "u2"}) // ...a member is removed meanwhile...
		m.remember(g1, "u1", gen)                         // ...and the old answer comes back
		if _, ok := m.lookup(g1, "u1"); ok {
			t.Fatal("a membership read before a removal was cached after it")
		}
		gen, _ = m.lookup(g1, "u1")
		m.apply(DirectoryChange{Pair: [2]string{"u1", "u2"}}) // a block changes no membership
		m.remember(g1, "u1", gen)
		if _, ok := m.lookup(g1, "u1"); !ok {
			t.Fatal("a block announced during a read kept the membership out of the cache")
		}
	})

	t.Run("Unarmed", func(t *testing.T) {
		var m memberCache
		gen, _ := m.lookup(g1, "u1")
		m.remember(g1, "u1", gen)
		if _, ok := m.lookup(g1, "u1"); ok {
			t.Fatal("an unarmed cache kept a membership")
		}
	})

	t.Run("Bounded", func(t *testing.T) {
		var m memberCache
		m.reset()
		for i := range memberCacheMax + 1 {
			m.remember(g1, strconv.Itoa(i), m.gen)
		}
		n := 0
		for _, members := range m.known {
			n += len(members)
		}
		if n > memberCacheMax || n != m.n {
			t.Fatalf("%d entries (counted %d), want at most %d", n, m.n, memberCacheMax)
		}
	})

	t.Run("Forgets", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			ch   DirectoryChange
			gone [][2]string // group, user no longer cached; the others stay
		}{
			{"MemberRemoved", DirectoryChange{Group: g1, Member: "u1"}, [][2]string{{g1, "u1"}}},
			{"GroupDeleted", DirectoryChange{Group: g1}, [][2]string{{g1, "u1"}, {g1, "u2"}}},
			{"UserDeleted", DirectoryChange{UserID: "u1"}, [][2]string{{g1, "u1"}, {g2, "u1"}}},
			{"Block", DirectoryChange{Pair: [2]string{"u1", "u2"}}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var m memberCache
				m.reset()
				all := [][2]string{{g1, "u1"}, {g1, "u2"}, {g2, "u1"}, {g2, "u2"}}
				for _, e := range all {
					m.remember(e[0], e[1], m.gen)
				}
				m.apply(tc.ch)
				gone := make(map[[2]string]bool)
				for _, e := range tc.gone {
					gone[e] = true
				}
				for _, e := range all {
					if _, ok := m.lookup(e[0], e[1]); ok == gone[e] {
						t.Errorf("%s in %s cached: %v, want %v", e[1], e[0], ok, !gone[e])
					}
				}
				if want := len(all) - len(tc.gone); m.n != want {
					t.Errorf("%d entries counted, want %d", m.n, want)
				}
			})
		}
	})

	t.Run("ResyncEmpties", func(t *testing.T) {
		var m memberCache
		m.reset()
		m.remember(g1, "u1", m.gen)
		m.reset()
		if _, ok := m.lookup(g1, "u1"); ok {
			t.Fatal("a reset kept a membership")
		}
	})
}
