package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBackupRestore: `aoba backup` of a running server under a write
// load, then `aoba restore` into an empty directory: a server starts on
// the copy, every message acknowledged before the backup started is
// there, and a token issued before the backup still verifies.
func TestBackupRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	p := startProc(t, bin, dir)
	alice, bob := p.register(t, "alice"), p.register(t, "bob")

	// The load: writers send alice → bob until told to stop, recording
	// each acknowledged message with the time its 201 arrived.
	type ack struct {
		id string
		at time.Time
	}
	var (
		mu     sync.Mutex
		acks   []ack
		failed atomic.Value
		stop   atomic.Bool
		wg     sync.WaitGroup
	)
	hc := &http.Client{Timeout: 30 * time.Second}
	send := func(n int) error {
		body := fmt.Sprintf(`{"to":%q,"content":"load %d"}`, bob.Name, n)
		req, err := http.NewRequest("POST", p.base+"/api/messages", strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		data, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusCreated {
			return fmt.Errorf("send: %d %s", res.StatusCode, data)
		}
		var m struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(data, &m); err != nil || m.ID == "" {
			return fmt.Errorf("send: %s: %v", data, err)
		}
		mu.Lock()
		acks = append(acks, ack{m.ID, time.Now()})
		mu.Unlock()
		return nil
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				if err := send(w*1_000_000 + i); err != nil {
					failed.Store(err)
					return
				}
			}
		}(w)
	}
	acked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acks)
	}
	for deadline := time.Now().Add(20 * time.Second); acked() < 100; time.Sleep(5 * time.Millisecond) {
		if err, _ := failed.Load().(error); err != nil {
			t.Fatal(err)
		} else if time.Now().After(deadline) {
			t.Fatalf("only %d messages acknowledged in 20 s", acked())
		}
	}

	file := filepath.Join(t.TempDir(), "aoba.tar.gz")
	started := time.Now()
	r := runBinary(t, bin, []string{"AOBA_DATA_DIR=" + dir}, "backup", file).want(t, 0)
	ended := time.Now()
	if !strings.Contains(r.Stdout, "aoba.db, jwt-secret") {
		t.Fatalf("backup said %q, want the database and the secret", r.Stdout)
	}
	// The load goes on past the backup, then stops.
	for n := acked(); acked() < n+20; time.Sleep(5 * time.Millisecond) {
		if err, _ := failed.Load().(error); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	var before []string
	during := 0
	for _, a := range acks {
		if a.at.Before(started) {
			before = append(before, a.id)
		} else if a.at.Before(ended) {
			during++
		}
	}
	t.Logf("backup took %v; %d messages acknowledged before it started, %d while it ran, %d in all",
		ended.Sub(started).Round(time.Millisecond), len(before), during, len(acks))

	// Refusals: the file exists; the MongoDB store is not ours to copy.
	runBinary(t, bin, []string{"AOBA_DATA_DIR=" + dir}, "backup", file).want(t, 1)
	r = runBinary(t, bin, []string{"AOBA_MONGO_URI=mongodb://127.0.0.1:1"}, "backup", filepath.Join(t.TempDir(), "x.tar")).want(t, 1)
	if !strings.Contains(r.Stderr, "mongodump") {
		t.Fatalf("backup with MongoDB said %q, want a pointer to mongodump", r.Stderr)
	}

	// Restore into a new directory and start a second server on it.
	restored := filepath.Join(t.TempDir(), "data")
	runBinary(t, bin, []string{"AOBA_DATA_DIR=" + restored}, "restore", file).want(t, 0)
	r = runBinary(t, bin, []string{"AOBA_DATA_DIR=" + restored}, "restore", file).want(t, 1)
	if !strings.Contains(r.Stderr, "already holds") {
		t.Fatalf("restore over a database said %q", r.Stderr)
	}
	for _, name := range []string{"jwt-secret", "aoba.db"} {
		fi, err := os.Stat(filepath.Join(restored, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("restored %s: %v (mode %v), want mode 0600", name, err, fi.Mode().Perm())
		}
	}
	orig, _ := os.ReadFile(filepath.Join(dir, "jwt-secret"))
	if copied, _ := os.ReadFile(filepath.Join(restored, "jwt-secret")); !bytes.Equal(orig, copied) {
		t.Fatal("the restored JWT secret differs")
	}

	q := startProc(t, bin, restored)
	// Tokens issued before the backup verify on the restored server.
	q.do(t, "GET", "/api/users/me", alice.Token, nil).want(t, 200)
	q.do(t, "GET", "/api/users/me", bob.Token, nil).want(t, 200)
	have := map[string]bool{}
	for _, m := range q.fullHistory(t, bob.Token, alice.Name) {
		have[m.ID] = true
	}
	for _, id := range before {
		if !have[id] {
			t.Fatalf("message %s, acknowledged before the backup started, is missing after the restore (%d of %d there)", id, len(have), len(acks))
		}
	}
	// The restored server takes writes of its own.
	q.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": "after the restore"}).want(t, 201)
}
