package auth_test

import (
	"strings"
	"testing"

	"github.com/aoba-chat/aoba/auth"
)

var cheap = auth.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

func TestArgon2id(t *testing.T) {
	h, err := auth.NewArgon2id(cheap)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		hash, err := h.Hash("correct horse")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Fatalf("hash = %q", hash)
		}
		if ok, err := h.Verify(hash, "correct horse"); err != nil || !ok {
			t.Fatalf("Verify(right) = %v, %v", ok, err)
		}
		if ok, err := h.Verify(hash, "correct horsE"); err != nil || ok {
			t.Fatalf("Verify(wrong) = %v, %v", ok, err)
		}
	})
	t.Run("SaltedDifferently", func(t *testing.T) {
		a, _ := h.Hash("same password")
		b, _ := h.Hash("same password")
		if a == b {
			t.Fatal("two hashes of one password are equal")
		}
	})
	t.Run("NotTruncated", func(t *testing.T) {
		long := strings.Repeat("x", 100)
		hash, _ := h.Hash(long + "A")
		if ok, _ := h.Verify(hash, long+"B"); ok {
			t.Fatal("passwords equal in their first 100 bytes verify against each other")
		}
	})
	t.Run("StoredParametersWin", func(t *testing.T) {
		other, _ := auth.NewArgon2id(auth.Argon2Params{MemoryKiB: 128, Iterations: 2, Parallelism: 1})
		hash, _ := other.Hash("pass word")
		if ok, err := h.Verify(hash, "pass word"); err != nil || !ok {
			t.Fatalf("a hash made with other parameters did not verify: %v, %v", ok, err)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		for _, bad := range []string{"", "$argon2id$", "$2a$10$abcdefghijklmnopqrstuv", "$argon2id$v=19$m=0,t=1,p=1$c2FsdA$a2V5", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$a2V5"} {
			if _, err := h.Verify(bad, "x"); err == nil {
				t.Errorf("Verify(%q) accepted a malformed hash", bad)
			}
		}
	})
	t.Run("NeedsRehash", func(t *testing.T) {
		own, _ := h.Hash("pass word")
		weaker, _ := auth.NewArgon2id(auth.Argon2Params{MemoryKiB: 32, Iterations: 1, Parallelism: 1})
		weak, _ := weaker.Hash("pass word")
		stronger, _ := auth.NewArgon2id(auth.Argon2Params{MemoryKiB: 128, Iterations: 2, Parallelism: 1})
		strong, _ := stronger.Hash("pass word")
		for hash, want := range map[string]bool{own: false, weak: true, strong: false, "garbage": true} {
			if got := h.NeedsRehash(hash); got != want {
				t.Errorf("NeedsRehash(%q) = %v, want %v", hash, got, want)
			}
		}
	})
	t.Run("ErrZeroParams", func(t *testing.T) {
		if _, err := auth.NewArgon2id(auth.Argon2Params{}); err == nil {
			t.Fatal("zero parameters accepted")
		}
	})
	t.Run("OWASPDefault", func(t *testing.T) {
		if auth.OWASPParams.MemoryKiB < 19*1024 || auth.OWASPParams.Iterations < 2 {
			t.Fatalf("OWASPParams = %+v is below the cheat sheet's minimum", auth.OWASPParams)
		}
	})
}

func BenchmarkArgon2idOWASP(b *testing.B) {
	h, err := auth.NewArgon2id(auth.OWASPParams)
	if err != nil {
		b.Fatal(err)
	}
	hash, _ := h.Hash("benchmark password")
	b.ResetTimer()
	for b.Loop() {
		_, _ = h.Verify(hash, "benchmark password")
	}
}
