package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"

	"github.com/aoba-chat/aoba"
	"golang.org/x/crypto/argon2"
)

var _ aoba.PasswordHasher = (*Argon2id)(nil)

// Argon2Params are argon2id cost parameters.
type Argon2Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// OWASPParams are the OWASP Password Storage Cheat Sheet's minimum for
// argon2id: 19 MiB of memory, 2 iterations, 1 degree of parallelism.
var OWASPParams = Argon2Params{MemoryKiB: 19 * 1024, Iterations: 2, Parallelism: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// Argon2id hashes passwords with argon2id into PHC strings
// ($argon2id$v=19$m=..,t=..,p=..$salt$hash). Hashes never truncate the
// password. A semaphore bounds concurrent hashes so that a login burst
// cannot exhaust memory.
type Argon2id struct {
	params Argon2Params
	sem    chan struct{}
	dummy  string
}

// NewArgon2id returns a hasher with the given parameters. It returns an
// error when a parameter is zero.
func NewArgon2id(p Argon2Params) (*Argon2id, error) {
	if p.MemoryKiB == 0 || p.Iterations == 0 || p.Parallelism == 0 {
		return nil, fmt.Errorf("auth: argon2id parameters must be positive")
	}
	h := &Argon2id{params: p, sem: make(chan struct{}, 2*runtime.GOMAXPROCS(0))}
	var err error
	if h.dummy, err = h.Hash(rand.Text()); err != nil {
		return nil, err
	}
	return h, nil
}

// Hash returns the PHC string of pw with a fresh random salt.
func (h *Argon2id) Hash(pw string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", aoba.Errorf(aoba.EINTERNAL, "read salt: %v", err)
	}
	key := h.derive(pw, salt, h.params)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.params.MemoryKiB, h.params.Iterations, h.params.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether pw matches the PHC string hash, using the
// parameters stored in it. It returns an EINTERNAL error for a malformed
// hash.
func (h *Argon2id) Verify(hash, pw string) (bool, error) {
	p, salt, key, err := decode(hash)
	if err != nil {
		return false, err
	}
	got := h.derive(pw, salt, p)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// dummyPassword is what Dummy verifies: a fixed input of typical length,
// so that the client's input (however long) never reaches argon2 for an
// unknown user.
const dummyPassword = "not-a-password-of-anyone"

// Dummy verifies a fixed password against a hash of a random one, so that
// an unknown user costs as much as a wrong password.
func (h *Argon2id) Dummy() {
	_, _ = h.Verify(h.dummy, dummyPassword)
}

// NeedsRehash reports whether hash is weaker than this hasher's parameters
// in memory, iterations or parallelism, or cannot be read.
func (h *Argon2id) NeedsRehash(hash string) bool {
	p, _, key, err := decode(hash)
	if err != nil {
		return true
	}
	return p.MemoryKiB < h.params.MemoryKiB || p.Iterations < h.params.Iterations ||
		p.Parallelism < h.params.Parallelism || len(key) < keyLen
}

// derive runs argon2id under the concurrency bound.
func (h *Argon2id) derive(pw string, salt []byte, p Argon2Params) []byte {
	h.sem <- struct{}{}
	defer func() { <-h.sem }()
	return argon2.IDKey([]byte(pw), salt, p.Iterations, p.MemoryKiB, p.Parallelism, keyLen)
}

// decode parses a PHC argon2id string.
func decode(hash string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	var version int
	parts := strings.Split(hash, "$")
	bad := aoba.Errorf(aoba.EINTERNAL, "malformed password hash")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, bad
	}
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, bad
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil {
		return p, nil, nil, bad
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 || p.MemoryKiB == 0 || p.Iterations == 0 || p.Parallelism == 0 {
		return p, nil, nil, bad
	}
	return p, salt, key, nil
}
