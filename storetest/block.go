package storetest

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// blockPairs returns the blocks as sorted "blocker>blocked" strings.
func blockPairs(bs []*aoba.Block) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.BlockerID + ">" + b.BlockedID
	}
	sort.Strings(out)
	return out
}

// wantPairs fails the test unless got holds exactly the pairs want.
func wantPairs(t *testing.T, what string, got []*aoba.Block, want ...string) {
	t.Helper()
	sort.Strings(want)
	if g := blockPairs(got); strings.Join(g, ",") != strings.Join(want, ",") {
		t.Fatalf("%s = %v, want %v", what, g, want)
	}
}

func runBlockTests(t *testing.T, open OpenFunc) {
	t.Run("CreateFindDelete", func(t *testing.T) {
		s := open(t)
		a, b, c := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob"), mustCreateUser(t, s, "carol")
		at := aoba.Now().Add(-time.Minute)
		if err := s.CreateBlock(ctx(t), &aoba.Block{BlockerID: a.ID, BlockedID: b.ID, CreatedAt: at}); err != nil {
			t.Fatalf("CreateBlock: %v", err)
		}
		if err := s.CreateBlock(ctx(t), &aoba.Block{BlockerID: a.ID, BlockedID: c.ID, CreatedAt: at}); err != nil {
			t.Fatalf("CreateBlock: %v", err)
		}
		bs, err := s.FindBlocksByBlocker(ctx(t), a.ID)
		if err != nil {
			t.Fatalf("FindBlocksByBlocker: %v", err)
		}
		wantPairs(t, "alice's blocks", bs, a.ID+">"+b.ID, a.ID+">"+c.ID)
		wantTime(t, "CreatedAt", bs[0].CreatedAt, at)
		if bs, err := s.FindBlocksByBlocker(ctx(t), b.ID); err != nil || bs == nil || len(bs) != 0 {
			t.Fatalf("bob's blocks = %v, %v; want an empty slice", bs, err)
		}

		wantCode(t, s.CreateBlock(ctx(t), &aoba.Block{BlockerID: a.ID, BlockedID: b.ID, CreatedAt: aoba.Now()}), aoba.ECONFLICT)
		bs, _ = s.FindBlocksByBlocker(ctx(t), a.ID)
		wantPairs(t, "alice's blocks after a second block", bs, a.ID+">"+b.ID, a.ID+">"+c.ID)

		if err := s.DeleteBlock(ctx(t), a.ID, b.ID); err != nil {
			t.Fatalf("DeleteBlock: %v", err)
		}
		wantCode(t, s.DeleteBlock(ctx(t), a.ID, b.ID), aoba.ENOTFOUND)
		wantCode(t, s.DeleteBlock(ctx(t), b.ID, a.ID), aoba.ENOTFOUND)
		bs, _ = s.FindBlocksByBlocker(ctx(t), a.ID)
		wantPairs(t, "alice's blocks after unblocking bob", bs, a.ID+">"+c.ID)
		if err := s.CreateBlock(ctx(t), &aoba.Block{BlockerID: a.ID, BlockedID: b.ID, CreatedAt: aoba.Now()}); err != nil {
			t.Fatalf("CreateBlock after DeleteBlock: %v", err)
		}
	})

	t.Run("Between", func(t *testing.T) {
		s := open(t)
		a, b, c, d := mustCreateUser(t, s, "alice"), mustCreateUser(t, s, "bob"), mustCreateUser(t, s, "carol"), mustCreateUser(t, s, "dave")
		for _, p := range [][2]string{{a.ID, b.ID}, {c.ID, a.ID}, {b.ID, c.ID}, {d.ID, b.ID}} {
			if err := s.CreateBlock(ctx(t), &aoba.Block{BlockerID: p[0], BlockedID: p[1], CreatedAt: aoba.Now()}); err != nil {
				t.Fatalf("CreateBlock: %v", err)
			}
		}
		bs, err := s.FindBlocksBetween(ctx(t), a.ID, []string{b.ID, c.ID, d.ID})
		if err != nil {
			t.Fatalf("FindBlocksBetween: %v", err)
		}
		wantPairs(t, "blocks between alice and the others", bs, a.ID+">"+b.ID, c.ID+">"+a.ID)
		bs, _ = s.FindBlocksBetween(ctx(t), b.ID, []string{a.ID})
		wantPairs(t, "blocks between bob and alice", bs, a.ID+">"+b.ID)
		bs, _ = s.FindBlocksBetween(ctx(t), d.ID, []string{a.ID, c.ID})
		wantPairs(t, "blocks between dave and alice, carol", bs)
		if bs, err := s.FindBlocksBetween(ctx(t), a.ID, nil); err != nil || bs == nil || len(bs) != 0 {
			t.Fatalf("FindBlocksBetween(none) = %v, %v; want an empty slice", bs, err)
		}
	})
}
