package hub

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/aoba-chat/aoba"
)

// revokerSnapshot is the file form of a MemoryRevoker.
type revokerSnapshot struct {
	Sessions map[string]time.Time    `json:"sessions"`
	Users    map[string]snapshotUser `json:"users"`
}

type snapshotUser struct {
	Before int64     `json:"before_ms"`
	Keep   string    `json:"keep,omitempty"`
	Until  time.Time `json:"until"`
}

// OpenFileRevoker returns a MemoryRevoker loaded from the JSON file at
// path (none yet is fine) that rewrites the file, atomically, at each
// revocation. Revocations are rare (logout, password change, account
// deletion), so a whole-file rewrite costs little. It returns an EINTERNAL
// error when the file cannot be read or parsed.
func OpenFileRevoker(path string) (*MemoryRevoker, error) {
	r := NewMemoryRevoker()
	r.path = path
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	} else if err != nil {
		return nil, aoba.Errorf(aoba.EINTERNAL, "read revocation list: %v", err)
	}
	var snap revokerSnapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, aoba.Errorf(aoba.EINTERNAL, "parse revocation list %s: %v", path, err)
	}
	now := time.Now()
	for id, until := range snap.Sessions {
		if until.After(now) {
			r.sessions[id] = until
		}
	}
	for id, u := range snap.Users {
		if u.Until.After(now) {
			r.users[id] = memoryCutoff{userCutoff: userCutoff{Before: u.Before, Keep: u.Keep}, until: u.Until}
		}
	}
	return r, nil
}

// save writes the snapshot file, if any, through a temporary file and a
// rename; r.mu is held.
func (r *MemoryRevoker) save() error {
	if r.path == "" {
		return nil
	}
	snap := revokerSnapshot{Sessions: r.sessions, Users: make(map[string]snapshotUser, len(r.users))}
	for id, u := range r.users {
		snap.Users[id] = snapshotUser{Before: u.Before, Keep: u.Keep, Until: u.until}
	}
	b, err := json.Marshal(snap)
	if err != nil {
		return aoba.Errorf(aoba.EINTERNAL, "encode revocation list: %v", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(r.path), filepath.Base(r.path)+".tmp-*")
	if err != nil {
		return aoba.Errorf(aoba.EINTERNAL, "save revocation list: %v", err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), r.path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return aoba.Errorf(aoba.EINTERNAL, "save revocation list: %v", err)
	}
	return nil
}
