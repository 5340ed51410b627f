package storetest

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// rosterEntries returns the items as "contact=name" strings, in their
// order.
func rosterEntries(items []*aoba.RosterItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ContactID + "=" + it.Name
	}
	return out
}

// wantRoster fails the test unless userID's roster reads as want, in
// order ("contact=name" each), every item owned by userID.
func wantRoster(t *testing.T, s aoba.Store, userID string, want ...string) []*aoba.RosterItem {
	t.Helper()
	items, err := s.FindRosterItems(ctx(t), userID)
	if err != nil {
		t.Fatalf("FindRosterItems: %v", err)
	}
	if items == nil {
		t.Fatal("FindRosterItems returned nil, want a slice")
	}
	for _, it := range items {
		if it.UserID != userID {
			t.Fatalf("roster of %s holds an item of %s", userID, it.UserID)
		}
	}
	if want == nil {
		want = []string{}
	}
	wantStrings(t, "roster of "+userID, rosterEntries(items), want)
	return items
}

// mustPutRosterItem puts the item of contactID named name into userID's
// roster.
func mustPutRosterItem(t *testing.T, s aoba.Store, userID, contactID, name string, at time.Time) {
	t.Helper()
	if err := s.PutRosterItem(ctx(t), &aoba.RosterItem{UserID: userID, ContactID: contactID, Name: name, CreatedAt: at}); err != nil {
		t.Fatalf("PutRosterItem(%s, %s): %v", userID, contactID, err)
	}
}

func runRosterTests(t *testing.T, open OpenFunc, cfg config) {
	t.Run("PutFindDelete", func(t *testing.T) {
		s := open(t)
		a, b, c, d := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob"), mustCreateUser(t, s, "carol"), mustCreateUser(t, s, "dave")
		wantRoster(t, s, a.ID)

		t0 := aoba.Now().Add(-time.Hour)
		// Carol and dave are added at the same instant, after bob but
		// put before him: ties are ordered by contact id.
		mustPutRosterItem(t, s, a.ID, c.ID, "", t0.Add(time.Minute))
		mustPutRosterItem(t, s, a.ID, d.ID, "Dave", t0.Add(time.Minute))
		mustPutRosterItem(t, s, a.ID, b.ID, "Bobby", t0)
		tied := []string{c.ID + "=", d.ID + "=Dave"}
		sort.Strings(tied)
		items := wantRoster(t, s, a.ID, b.ID+"=Bobby", tied[0], tied[1])
		wantTime(t, "CreatedAt", items[0].CreatedAt, t0)
		wantTime(t, "CreatedAt", items[1].CreatedAt, t0.Add(time.Minute))
		wantRoster(t, s, b.ID)

		// A second put renames; the item keeps its first time and place.
		mustPutRosterItem(t, s, a.ID, b.ID, "Robert", aoba.Now())
		items = wantRoster(t, s, a.ID, b.ID+"=Robert", tied[0], tied[1])
		wantTime(t, "CreatedAt after rename", items[0].CreatedAt, t0)
		mustPutRosterItem(t, s, a.ID, d.ID, "", aoba.Now())
		tied = []string{c.ID + "=", d.ID + "="}
		sort.Strings(tied)
		wantRoster(t, s, a.ID, b.ID+"=Robert", tied[0], tied[1])

		// Rosters are one way: bob's is his own.
		mustPutRosterItem(t, s, b.ID, a.ID, "Al", t0)
		wantRoster(t, s, b.ID, a.ID+"=Al")

		if err := s.DeleteRosterItem(ctx(t), a.ID, b.ID); err != nil {
			t.Fatalf("DeleteRosterItem: %v", err)
		}
		wantCode(t, s.DeleteRosterItem(ctx(t), a.ID, b.ID), aoba.ENOTFOUND)
		wantCode(t, s.DeleteRosterItem(ctx(t), c.ID, a.ID), aoba.ENOTFOUND)
		wantRoster(t, s, a.ID, tied[0], tied[1])
		wantRoster(t, s, b.ID, a.ID+"=Al")

		// Put again after a delete, it is a new item, with its new time.
		at := aoba.Now()
		mustPutRosterItem(t, s, a.ID, b.ID, "Bob", at)
		items = wantRoster(t, s, a.ID, tied[0], tied[1], b.ID+"=Bob")
		wantTime(t, "CreatedAt after delete and put", items[2].CreatedAt, at)
	})

	t.Run("Limit", func(t *testing.T) {
		s := open(t)
		a, b := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		t0 := aoba.Now().Add(-time.Hour)
		contacts := make([]string, cfg.rosterLimit-1)
		for i := range contacts {
			contacts[i] = aoba.NewID()
			mustPutRosterItem(t, s, a.ID, contacts[i], fmt.Sprintf("c%d", i), t0.Add(time.Duration(i)*time.Millisecond))
		}

		// One place left: of concurrent puts of new contacts at most one
		// gets it, the others are refused.
		c := ctx(t)
		racers := make([]string, Concurrency)
		errs := race(func(i int) error {
			racers[i] = aoba.NewID()
			return s.PutRosterItem(c, &aoba.RosterItem{UserID: a.ID, ContactID: racers[i], CreatedAt: aoba.Now()})
		})
		won := ""
		for i, err := range errs {
			switch code := aoba.ErrorCode(err); code {
			case "":
				if won != "" {
					t.Fatalf("two puts filled the last place of the roster")
				}
				won = racers[i]
			case aoba.ECONFLICT:
			default:
				t.Fatalf("put %d: error code %q, want conflict (err: %v)", i, code, err)
			}
		}
		if won == "" {
			// Stores without transactions may refuse them all.
			won = aoba.NewID()
			mustPutRosterItem(t, s, a.ID, won, "", aoba.Now())
		}
		items, err := s.FindRosterItems(ctx(t), a.ID)
		if err != nil {
			t.Fatalf("FindRosterItems: %v", err)
		}
		if len(items) != cfg.rosterLimit {
			t.Fatalf("full roster holds %d items, want %d", len(items), cfg.rosterLimit)
		}
		for i, id := range contacts {
			if items[i].ContactID != id {
				t.Fatalf("item %d is %s, want %s (oldest first)", i, items[i].ContactID, id)
			}
		}
		if items[len(items)-1].ContactID != won {
			t.Fatalf("last item is %s, want the last put %s", items[len(items)-1].ContactID, won)
		}

		// Full: a new contact is refused, a rename is not, nor are other
		// users' puts.
		extra := aoba.NewID()
		err = s.PutRosterItem(ctx(t), &aoba.RosterItem{UserID: a.ID, ContactID: extra, CreatedAt: aoba.Now()})
		wantCode(t, err, aoba.ECONFLICT)
		wantCode(t, s.DeleteRosterItem(ctx(t), a.ID, extra), aoba.ENOTFOUND)
		mustPutRosterItem(t, s, a.ID, contacts[0], "renamed", aoba.Now())
		mustPutRosterItem(t, s, b.ID, a.ID, "", aoba.Now())

		items, err = s.FindRosterItems(ctx(t), a.ID)
		if err != nil || len(items) != cfg.rosterLimit {
			t.Fatalf("full roster after a refused put and a rename: %d items, %v", len(items), err)
		} else if first := items[0]; first.ContactID != contacts[0] || first.Name != "renamed" {
			t.Fatalf("first item after its rename = %+v, want %s named renamed", first, contacts[0])
		}

		// A delete makes room again.
		if err := s.DeleteRosterItem(ctx(t), a.ID, contacts[1]); err != nil {
			t.Fatalf("DeleteRosterItem: %v", err)
		}
		mustPutRosterItem(t, s, a.ID, extra, "", aoba.Now())
		wantCode(t, s.PutRosterItem(ctx(t), &aoba.RosterItem{UserID: a.ID, ContactID: contacts[1], CreatedAt: aoba.Now()}), aoba.ECONFLICT)
	})

	t.Run("ConcurrentPutsOfOnePair", func(t *testing.T) {
		s := open(t)
		a, b := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob")
		c := ctx(t)
		errs := race(func(i int) error {
			return s.PutRosterItem(c, &aoba.RosterItem{UserID: a.ID, ContactID: b.ID, Name: fmt.Sprintf("n%02d", i), CreatedAt: aoba.Now()})
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("put %d: %v", i, err)
			}
		}
		items, err := s.FindRosterItems(ctx(t), a.ID)
		if err != nil || len(items) != 1 || items[0].ContactID != b.ID || len(items[0].Name) != 3 {
			t.Fatalf("roster after concurrent puts of bob = %v, %v; want bob once, with one of the names", rosterEntries(items), err)
		}
	})

	t.Run("DeleteUser", func(t *testing.T) {
		s := open(t)
		a, b, c := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob"), mustCreateUser(t, s, "carol")
		at := aoba.Now()
		for _, p := range [][2]string{{a.ID, b.ID}, {a.ID, c.ID}, {b.ID, a.ID}, {b.ID, c.ID}, {c.ID, a.ID}} {
			mustPutRosterItem(t, s, p[0], p[1], "", at)
		}
		if err := s.DeleteUser(ctx(t), a.ID); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		wantRoster(t, s, a.ID)
		wantRoster(t, s, b.ID, c.ID+"=")
		wantRoster(t, s, c.ID)
		wantCode(t, s.DeleteRosterItem(ctx(t), a.ID, b.ID), aoba.ENOTFOUND)
		wantCode(t, s.DeleteUser(ctx(t), a.ID), aoba.ENOTFOUND)
		wantRoster(t, s, b.ID, c.ID+"=")
	})
}
