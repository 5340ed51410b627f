package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// buildBinary builds cmd/aoba, with the extra `go build` flags given, into
// a directory of tb and returns its path. The build cache makes every
// build after the first a link only.
func buildBinary(tb testing.TB, flags ...string) string {
	tb.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		if goTool, err = exec.LookPath("go"); err != nil {
			tb.Skip("no go tool to build cmd/aoba")
		}
	}
	bin := filepath.Join(tb.TempDir(), "aoba")
	args := append(append([]string{"build", "-o", bin}, flags...), "github.com/aoba-chat/aoba/cmd/aoba")
	out, err := exec.Command(goTool, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("build cmd/aoba: %v\n%s", err, out)
	}
	return bin
}

// proc is one aoba process in the embedded mode, driven over HTTP through
// the server helpers of main_test.go.
type proc struct {
	*server
	cmd  *exec.Cmd
	done chan struct{}
	err  error // of Wait, once done is closed
}

// startProc starts bin on dataDir in the embedded mode (no MongoDB, no
// Redis, no AOBA_JWT_SECRET, no drain delay), or with the "NAME=value"
// entries of extra over that, and waits for its "aoba started" log line.
// The process is killed when the test ends if it is still running.
func startProc(t *testing.T, bin, dataDir string, extra ...string) *proc {
	t.Helper()
	loadSpec(t)
	logs := &logBuffer{}
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"AOBA_ADDR=127.0.0.1:0",
		"AOBA_DATA_DIR=" + dataDir,
		"AOBA_ARGON2_MEMORY_KIB=1024",
		"AOBA_ARGON2_ITERATIONS=1",
		"AOBA_RATE_STANDARD=1000000",
		"AOBA_RATE_BATCH=1000000",
		"AOBA_RATE_SEARCH=1000000",
		"AOBA_LOG_LEVEL=info",
		"AOBA_DRAIN_DELAY=0",
	}
	cmd.Env = append(cmd.Env, extra...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		// Copy every log line, and hand over the address of the start line.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = logs.Write(append(append([]byte(nil), line...), '\n'))
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "aoba started" {
				select {
				case addr <- rec.Addr:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("aoba log:\n%s", tail([]byte(logs.String()), 6000))
		}
	})
	select {
	case a := <-addr:
		p.server = &server{base: "http://" + a, logs: logs, hc: &http.Client{Timeout: 30 * time.Second}}
	case <-p.done:
		t.Fatalf("aoba exited at start-up (%v):\n%s", p.err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("aoba did not start within 30 s:\n%s", logs.String())
	}
	return p
}

// tail returns the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// terminate sends SIGTERM and fails the test unless the process exits 0
// within bound.
func (p *proc) terminate(t *testing.T, bound time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit after SIGTERM: %v, want status 0", p.err)
		}
		t.Logf("graceful stop took %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(bound):
		t.Fatalf("still running %v after SIGTERM", bound)
	}
}

// kill9 sends SIGKILL and waits for the process to be gone.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	<-p.done
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("exit = %v, want killed by SIGKILL", p.err)
	}
}

// health returns the decoded /health answer, which must be a 200.
func (s *server) health(t *testing.T) (h struct {
	Status string            `json:"status"`
	Mode   string            `json:"mode"`
	Store  string            `json:"store"`
	Hub    string            `json:"hub"`
	Checks map[string]string `json:"checks"`
}) {
	t.Helper()
	s.do(t, "GET", "/health", "", nil).want(t, 200).decode(t, &h)
	return h
}

// historyPage is one page of GET /api/messages.
type historyPage struct {
	Messages []aoba.MessageView `json:"messages"`
	Total    int                `json:"total"`
}

// fullHistory reads the whole conversation with `with`, newest first, in
// pages of 100, and checks that the pages add up to the reported total.
func (s *server) fullHistory(t *testing.T, token, with string) []aoba.MessageView {
	t.Helper()
	var all []aoba.MessageView
	for offset := 0; ; offset += 100 {
		var page historyPage
		q := url.Values{"with": {with}, "limit": {"100"}, "offset": {fmt.Sprint(offset)}}
		s.do(t, "GET", "/api/messages?"+q.Encode(), token, nil).want(t, 200).decode(t, &page)
		all = append(all, page.Messages...)
		if len(page.Messages) < 100 {
			if len(all) != page.Total {
				t.Fatalf("history with %s: read %d messages, total says %d", with, len(all), page.Total)
			}
			return all
		}
	}
}

// snapshot is what a restart must keep, as clients read it.
type snapshot struct {
	Me         map[string]json.RawMessage // username → GET /api/users/me
	Admin      json.RawMessage            // GET /api/groups/{id}/admin by the owner
	Members    json.RawMessage            // GET /api/groups/{id}/members by a member
	Invitation json.RawMessage            // GET /api/invitations by the invitee
	Direct     []aoba.MessageView         // alice's history with bob
	Group      []aoba.MessageView         // carol's history of the group
}

// sameJSON fails the test unless a and b are the same JSON value.
func sameJSON(t *testing.T, what string, a, b []byte) {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !reflect.DeepEqual(va, vb) {
		t.Errorf("%s changed across the restart:\nbefore %s\nafter  %s", what, a, b)
	}
}

func TestRestartKeepsState(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()

	p1 := startProc(t, bin, dir)
	if h := p1.health(t); h.Mode != "embedded" || h.Store != "sqlite" || h.Hub != "memory" || h.Checks["store"] != "ok" {
		t.Fatalf("health = %+v, want embedded on sqlite with the in-process hub", h)
	}
	if _, err := os.Stat(filepath.Join(dir, "jwt-secret")); err != nil {
		t.Fatalf("generated JWT secret: %v", err)
	}
	alice := p1.register(t, "alice") // the group's owner
	bob := p1.register(t, "bob")     // admin
	carol := p1.register(t, "carol") // member, renamed
	dave := p1.register(t, "dave")   // invited, pending
	oldCarol := carol.Name

	var g createdGroup
	p1.do(t, "POST", "/api/groups", alice.Token, map[string]any{"name": "Durable"}).want(t, 201).decode(t, &g)
	gid := g.Group.ID
	p1.do(t, "POST", "/api/groups/"+gid+"/members", alice.Token, map[string]string{"username": bob.Name, "role": "admin"}).want(t, 201)
	p1.do(t, "POST", "/api/groups/"+gid+"/members", bob.Token, map[string]string{"username": carol.Name, "role": "member"}).want(t, 201)
	var inv aoba.InvitationView
	p1.do(t, "POST", "/api/groups/"+gid+"/invitations", carol.Token, map[string]string{"username": dave.Name}).want(t, 201).decode(t, &inv)

	carol.Name = newName("carol_renamed")
	p1.do(t, "PUT", "/api/users/me/username", carol.Token, map[string]string{"username": carol.Name}).want(t, 200)
	// A fresh session after the rename: the old token may be tied to the old name.
	carol.Token = p1.login(t, carol.Name, carol.Password)

	direct := []struct {
		from *user
		to   *user
		text string
	}{
		{alice, bob, "hello bob"}, {bob, alice, "hi alice"}, {alice, bob, "are you there?"}, {bob, alice, "still here"},
	}
	for _, m := range direct {
		p1.do(t, "POST", "/api/messages", m.from.Token, map[string]string{"to": m.to.Name, "content": m.text, "type": "chat"}).want(t, 201)
	}
	groupTexts := []struct {
		from *user
		text string
	}{{alice, "welcome"}, {carol, "thanks"}, {bob, "glad you made it"}}
	for _, m := range groupTexts {
		p1.do(t, "POST", "/api/messages", m.from.Token, map[string]string{"to": gid, "content": m.text, "type": "groupchat"}).want(t, 201)
	}

	revoked := p1.login(t, alice.Name, alice.Password)
	p1.do(t, "POST", "/api/auth/logout", revoked, nil).want(t, 200)
	p1.do(t, "GET", "/api/users/me", revoked, nil).want(t, 401)

	read := func(s *server) snapshot {
		t.Helper()
		snap := snapshot{Me: map[string]json.RawMessage{}}
		for _, u := range []*user{alice, bob, carol, dave} {
			snap.Me[u.Name] = s.do(t, "GET", "/api/users/me", u.Token, nil).want(t, 200).Body
		}
		snap.Admin = s.do(t, "GET", "/api/groups/"+gid+"/admin", alice.Token, nil).want(t, 200).Body
		snap.Members = s.do(t, "GET", "/api/groups/"+gid+"/members", carol.Token, nil).want(t, 200).Body
		snap.Invitation = s.do(t, "GET", "/api/invitations", dave.Token, nil).want(t, 200).Body
		snap.Direct = s.fullHistory(t, alice.Token, bob.Name)
		snap.Group = s.fullHistory(t, carol.Token, gid)
		return snap
	}
	before := read(p1.server)
	p1.terminate(t, 15*time.Second)
	if !contains(p1.logs.String(), "aoba stopped") {
		t.Errorf("no \"aoba stopped\" line after SIGTERM")
	}

	p2 := startProc(t, bin, dir)
	if !contains(p2.logs.String(), "aoba started") || contains(p2.logs.String(), "generated a JWT secret") {
		t.Fatalf("second start generated a new JWT secret:\n%s", p2.logs.String())
	}
	after := read(p2.server)

	t.Run("Users", func(t *testing.T) {
		for name, body := range before.Me {
			sameJSON(t, "GET /api/users/me of "+name, body, after.Me[name])
		}
		var me struct {
			ID       string `json:"id"`
			Username string `json:"username"`
		}
		if err := json.Unmarshal(after.Me[carol.Name], &me); err != nil || me.Username != carol.Name || me.ID != carol.ID {
			t.Errorf("renamed user = %s (%v), want %s %s", after.Me[carol.Name], err, carol.ID, carol.Name)
		}
		p2.do(t, "GET", "/api/users/"+carol.Name, alice.Token, nil).want(t, 200)
		p2.do(t, "GET", "/api/users/"+oldCarol, alice.Token, nil).want(t, 404)
	})
	t.Run("Group", func(t *testing.T) {
		sameJSON(t, "the admin view", before.Admin, after.Admin)
		sameJSON(t, "the member list", before.Members, after.Members)
		var admin struct {
			Group struct {
				Name          string `json:"name"`
				OwnerUsername string `json:"owner_username"`
			} `json:"group"`
			Members []aoba.Member `json:"members"`
		}
		if err := json.Unmarshal(after.Admin, &admin); err != nil {
			t.Fatal(err)
		}
		roles := map[string]string{}
		for _, m := range admin.Members {
			roles[m.Username] = string(m.Role)
		}
		want := map[string]string{alice.Name: "owner", bob.Name: "admin", carol.Name: "member"}
		if admin.Group.Name != "Durable" || admin.Group.OwnerUsername != alice.Name || !reflect.DeepEqual(roles, want) {
			t.Errorf("group after restart = %s, want roles %v", after.Admin, want)
		}
		// The roles still grant what they did: bob (admin) may see the
		// admin view, carol (member) may not.
		p2.do(t, "GET", "/api/groups/"+gid+"/admin", bob.Token, nil).want(t, 200)
		p2.do(t, "GET", "/api/groups/"+gid+"/admin", carol.Token, nil).want(t, 403)
	})
	t.Run("Invitation", func(t *testing.T) {
		sameJSON(t, "dave's invitations", before.Invitation, after.Invitation)
		var out struct {
			Invitations []aoba.InvitationView `json:"invitations"`
		}
		if err := json.Unmarshal(after.Invitation, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Invitations) != 1 || out.Invitations[0].ID != inv.ID || out.Invitations[0].Status != aoba.InvitationPending ||
			out.Invitations[0].GroupID != gid {
			t.Fatalf("invitations = %s, want %s pending", after.Invitation, inv.ID)
		}
		// Still actionable.
		p2.do(t, "POST", "/api/invitations/"+inv.ID+"/accept", dave.Token, nil).want(t, 200)
	})
	t.Run("Messages", func(t *testing.T) {
		if !reflect.DeepEqual(before.Direct, after.Direct) {
			t.Errorf("1:1 history changed:\nbefore %+v\nafter  %+v", before.Direct, after.Direct)
		}
		if !reflect.DeepEqual(before.Group, after.Group) {
			t.Errorf("group history changed:\nbefore %+v\nafter  %+v", before.Group, after.Group)
		}
		// Newest first: the reverse of the order they were sent in.
		if len(after.Direct) != len(direct) {
			t.Fatalf("1:1 history has %d messages, want %d", len(after.Direct), len(direct))
		}
		for i, m := range after.Direct {
			w := direct[len(direct)-1-i]
			if m.Content != w.text || m.FromID != w.from.ID || m.ToID != w.to.ID || m.Type != aoba.MessageChat {
				t.Errorf("1:1 message %d = %+v, want %q from %s", i, m, w.text, w.from.Name)
			}
		}
		if len(after.Group) != len(groupTexts) {
			t.Fatalf("group history has %d messages, want %d", len(after.Group), len(groupTexts))
		}
		for i, m := range after.Group {
			w := groupTexts[len(groupTexts)-1-i]
			if m.Content != w.text || m.FromID != w.from.ID || m.To != gid || m.Type != aoba.MessageGroupChat {
				t.Errorf("group message %d = %+v, want %q from %s", i, m, w.text, w.from.Name)
			}
		}
	})
	t.Run("Sessions", func(t *testing.T) {
		p2.do(t, "GET", "/api/users/me", revoked, nil).want(t, 401)
		p2.do(t, "GET", "/api/users/me", alice.Token, nil).want(t, 200)
		p2.login(t, alice.Name, alice.Password)
		p2.login(t, carol.Name, carol.Password)
		p2.do(t, "POST", "/api/auth/login", "", map[string]string{"username": oldCarol, "password": carol.Password}).want(t, 401)
		p2.do(t, "POST", "/api/auth/login", "", map[string]string{"username": alice.Name, "password": "not the password"}).want(t, 401)
	})
	p2.terminate(t, 15*time.Second)
}

func TestKill9KeepsAcknowledgedMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()

	p1 := startProc(t, bin, dir)
	alice := p1.register(t, "alice")
	bob := p1.register(t, "bob")

	const writers, killAfter = 4, 200
	var (
		mu     sync.Mutex
		acked  []string
		ackedN atomic.Int64
		killed = make(chan struct{})
		wg     sync.WaitGroup
	)
	hc := &http.Client{Timeout: 10 * time.Second}
	post := func(w, i int) (string, error) {
		body, _ := json.Marshal(map[string]string{"to": bob.Name, "content": fmt.Sprintf("w%d-%d", w, i), "type": "chat"})
		req, err := http.NewRequest("POST", p1.base+"/api/messages", bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		res, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			return "", err // cut off mid-answer: not acknowledged
		}
		if res.StatusCode != http.StatusCreated {
			return "", fmt.Errorf("status %d: %s", res.StatusCode, raw)
		}
		var m aoba.MessageView
		if err := json.Unmarshal(raw, &m); err != nil || m.ID == "" {
			return "", fmt.Errorf("decode %s: %v", raw, err)
		}
		return m.ID, nil
	}
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id, err := post(w, i)
				if err != nil {
					select {
					case <-killed: // the process is gone: expected
					default:
						errs <- fmt.Errorf("writer %d before the kill: %w", w, err)
					}
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
				ackedN.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for ackedN.Load() < killAfter {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages acknowledged in 30 s", ackedN.Load())
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		time.Sleep(time.Millisecond)
	}
	close(killed)
	p1.kill9(t)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d messages acknowledged before SIGKILL", len(acked))

	p2 := startProc(t, bin, dir)
	if h := p2.health(t); h.Status != "ok" || h.Checks["store"] != "ok" {
		t.Fatalf("health after kill -9 = %+v", h)
	}
	// The old token still works: the generated secret survived the kill.
	history := p2.fullHistory(t, alice.Token, bob.Name)
	seen := make(map[string]int, len(history))
	for _, m := range history {
		seen[m.ID]++
		if seen[m.ID] == 2 {
			t.Errorf("message %s appears twice in history", m.ID)
		}
	}
	missing := 0
	for _, id := range acked {
		if seen[id] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged messages are missing from history after kill -9", missing, len(acked))
	}
	if len(history) < len(acked) || len(history) > len(acked)+writers {
		t.Errorf("history holds %d messages; %d were acknowledged and at most %d were in flight", len(history), len(acked), writers)
	}
	// The recovered store takes writes, and the newest message is the new one.
	var m aoba.MessageView
	p2.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": "after the crash", "type": "chat"}).want(t, 201).decode(t, &m)
	var page historyPage
	p2.do(t, "GET", "/api/messages?limit=1&with="+url.QueryEscape(alice.Name), bob.Token, nil).want(t, 200).decode(t, &page)
	if len(page.Messages) != 1 || page.Messages[0].ID != m.ID || page.Total != len(history)+1 {
		t.Errorf("newest message = %+v (total %d), want %s (total %d)", page.Messages, page.Total, m.ID, len(history)+1)
	}
	p2.terminate(t, 15*time.Second)
}
