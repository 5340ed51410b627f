package sqlitestore_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/sqlitestore"
	"github.com/aoba-chat/aoba/storetest"
)

// testCtx returns a context bounded in time for one test.
func testCtx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// mustOpen opens a store in dir and closes it when the test ends.
func mustOpen(t testing.TB, dir string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(testCtx(t), dir)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreContract(t *testing.T) {
	storetest.RunStoreTests(t, func(t *testing.T) aoba.Store {
		return mustOpen(t, t.TempDir())
	}, storetest.AtomicRotate())
}

// at returns a fixed UTC time plus d, at millisecond precision.
func at(d time.Duration) time.Time {
	return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(d)
}

func TestOpen(t *testing.T) {
	t.Run("CreatesDirectory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nested", "data")
		s := mustOpen(t, dir)
		if err := s.Ping(testCtx(t)); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, sqlitestore.FileName)); err != nil {
			t.Fatalf("database file: %v", err)
		}
	})

	t.Run("MigrationsIdempotentOnReopen", func(t *testing.T) {
		dir := t.TempDir()
		s := mustOpen(t, dir)
		v1, err := s.SchemaVersion(testCtx(t))
		if err != nil {
			t.Fatalf("SchemaVersion: %v", err)
		}
		if v1 < 1 {
			t.Fatalf("schema version = %d after Open, want >= 1", v1)
		}
		if err := s.CreateUser(testCtx(t), &aoba.User{ID: aoba.NewID(), Username: "keeper", PasswordHash: "h", CreatedAt: at(0)}); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for i := 0; i < 2; i++ {
			s2, err := sqlitestore.Open(testCtx(t), dir)
			if err != nil {
				t.Fatalf("reopen %d: %v", i, err)
			}
			v2, err := s2.SchemaVersion(testCtx(t))
			if err != nil {
				t.Fatalf("SchemaVersion: %v", err)
			}
			if v2 != v1 {
				t.Fatalf("schema version after reopen = %d, want %d", v2, v1)
			}
			if _, err := s2.FindUserByUsername(testCtx(t), "KEEPER"); err != nil {
				t.Fatalf("FindUserByUsername after reopen: %v", err)
			}
			if err := s2.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
	})

	t.Run("ClosedStore", func(t *testing.T) {
		s, err := sqlitestore.Open(testCtx(t), t.TempDir())
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if code := aoba.ErrorCode(s.Ping(testCtx(t))); code != aoba.EUNAVAILABLE {
			t.Fatalf("Ping after Close: code %q, want %q", code, aoba.EUNAVAILABLE)
		}
		_, err = s.FindUserByID(testCtx(t), aoba.NewID())
		if code := aoba.ErrorCode(err); code != aoba.EINTERNAL {
			t.Fatalf("FindUserByID after Close: code %q, want %q (err %v)", code, aoba.EINTERNAL, err)
		}
	})
}

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	alice := &aoba.User{ID: aoba.NewID(), Username: "Alice", PasswordHash: "hash-a", CreatedAt: at(0)}
	bob := &aoba.User{ID: aoba.NewID(), Username: "bob", PasswordHash: "hash-b", CreatedAt: at(time.Second)}
	group := &aoba.Group{ID: aoba.NewID(), Name: "Friends", OwnerID: alice.ID, CreatedAt: at(2 * time.Second)}
	owner := &aoba.Membership{GroupID: group.ID, UserID: alice.ID, Role: aoba.RoleOwner, JoinedAt: group.CreatedAt}
	member := &aoba.Membership{GroupID: group.ID, UserID: bob.ID, Role: aoba.RoleMember, JoinedAt: at(3 * time.Second)}
	pending := &aoba.Invitation{ID: aoba.NewID(), GroupID: group.ID, InviterID: alice.ID, InviteeID: aoba.NewID(),
		Status: aoba.InvitationPending, CreatedAt: at(4 * time.Second)}
	answered := &aoba.Invitation{ID: aoba.NewID(), GroupID: group.ID, InviterID: alice.ID, InviteeID: bob.ID,
		Status: aoba.InvitationPending, CreatedAt: at(5 * time.Second)}
	direct := &aoba.Message{ID: aoba.NewID(), Conversation: aoba.DirectConversation(alice.ID, bob.ID),
		FromID: alice.ID, ToID: bob.ID, FromName: "Alice", ToName: "bob", Content: "hi bob",
		Type: aoba.MessageChat, Timestamp: at(6 * time.Second)}
	inGroup := &aoba.Message{ID: aoba.NewID(), Conversation: aoba.GroupConversation(group.ID),
		FromID: bob.ID, ToID: group.ID, FromName: "bob", ToName: "Friends", Content: "hi all",
		Type: aoba.MessageGroupChat, Timestamp: at(7 * time.Second)}
	respondedAt := at(8 * time.Second)
	now := aoba.Now()
	newSession := func(userID string, d time.Duration) *aoba.Session {
		return &aoba.Session{ID: aoba.NewID(), UserID: userID, TokenID: aoba.NewID(), CreatedAt: now.Add(d),
			LastSeenAt: now.Add(d), ExpiresAt: now.Add(time.Hour), UserAgent: "test", IP: "127.0.0.1"}
	}
	revoked := newSession(alice.ID, 0)
	rotated := newSession(alice.ID, time.Second)
	cut := newSession(bob.ID, 0)
	kept := newSession(bob.ID, time.Second)
	revokedAt, cutAt := now.Add(time.Minute), now.Add(2*time.Minute)
	rotatedTo, rotatedExp := aoba.NewID(), now.Add(2*time.Hour)

	s, err := sqlitestore.Open(ctx, dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("CreateUser alice", s.CreateUser(ctx, alice))
	must("CreateUser bob", s.CreateUser(ctx, bob))
	must("CreateGroup", s.CreateGroup(ctx, group, owner))
	must("CreateMembership", s.CreateMembership(ctx, member))
	must("CreateInvitation pending", s.CreateInvitation(ctx, pending))
	must("CreateInvitation answered", s.CreateInvitation(ctx, answered))
	_, err = s.RespondInvitation(ctx, answered.ID, aoba.InvitationAccepted, respondedAt)
	must("RespondInvitation", err)
	must("CreateMessage direct", s.CreateMessage(ctx, direct))
	_, err = s.UpdateUsername(ctx, alice.ID, "ALICE2")
	must("UpdateUsername", err)
	alice.Username = "ALICE2"
	_, err = s.UpdateMembershipRole(ctx, group.ID, bob.ID, aoba.RoleAdmin)
	must("UpdateMembershipRole", err)
	member.Role = aoba.RoleAdmin
	must("CreateMessage group", s.CreateMessage(ctx, inGroup))
	for _, ss := range []*aoba.Session{revoked, rotated, cut, kept} {
		must("CreateSession", s.CreateSession(ctx, ss))
	}
	must("RevokeSession", s.RevokeSession(ctx, revoked.ID, revokedAt))
	must("RotateSession", s.RotateSession(ctx, rotated.ID, rotated.TokenID, rotatedTo, rotatedExp))
	must("RevokeUserSessions", s.RevokeUserSessions(ctx, bob.ID, kept.ID, cutAt))
	must("Close", s.Close())

	s = mustOpen(t, dir)

	t.Run("Users", func(t *testing.T) {
		got, err := s.FindUserByUsername(ctx, "alice2")
		if err != nil {
			t.Fatalf("FindUserByUsername: %v", err)
		}
		if *got != *alice {
			t.Fatalf("user = %+v, want %+v", got, alice)
		}
		if _, err := s.FindUserByUsername(ctx, "alice"); aoba.ErrorCode(err) != aoba.ENOTFOUND {
			t.Fatalf("old username after rename and reopen: %v, want not found", err)
		}
		if err := s.CreateUser(ctx, &aoba.User{ID: aoba.NewID(), Username: "BOB", PasswordHash: "x", CreatedAt: at(0)}); aoba.ErrorCode(err) != aoba.ECONFLICT {
			t.Fatalf("CreateUser BOB after reopen: %v, want conflict", err)
		}
	})
	t.Run("Groups", func(t *testing.T) {
		got, err := s.FindGroupByID(ctx, group.ID)
		if err != nil {
			t.Fatalf("FindGroupByID: %v", err)
		}
		if *got != *group {
			t.Fatalf("group = %+v, want %+v", got, group)
		}
		ms, err := s.FindMembershipsByGroup(ctx, group.ID)
		if err != nil {
			t.Fatalf("FindMembershipsByGroup: %v", err)
		}
		if len(ms) != 2 || *ms[0] != *owner || *ms[1] != *member {
			t.Fatalf("memberships = %+v, want owner then member", ms)
		}
	})
	t.Run("Invitations", func(t *testing.T) {
		got, err := s.FindInvitationByID(ctx, answered.ID)
		if err != nil {
			t.Fatalf("FindInvitationByID: %v", err)
		}
		if got.Status != aoba.InvitationAccepted || got.RespondedAt == nil || !got.RespondedAt.Equal(respondedAt) ||
			got.RespondedAt.Location() != time.UTC || !got.CreatedAt.Equal(answered.CreatedAt) {
			t.Fatalf("answered invitation = %+v", got)
		}
		list, err := s.FindInvitations(ctx, aoba.InvitationFilter{GroupID: group.ID, Status: aoba.InvitationPending})
		if err != nil {
			t.Fatalf("FindInvitations: %v", err)
		}
		if len(list) != 1 || list[0].ID != pending.ID || list[0].RespondedAt != nil {
			t.Fatalf("pending invitations = %+v, want only %s", list, pending.ID)
		}
		dup := *pending
		dup.ID = aoba.NewID()
		if err := s.CreateInvitation(ctx, &dup); aoba.ErrorCode(err) != aoba.ECONFLICT {
			t.Fatalf("duplicate pending invitation after reopen: %v, want conflict", err)
		}
	})
	t.Run("Messages", func(t *testing.T) {
		msgs, total, err := s.FindMessages(ctx, aoba.MessageFilter{
			Conversations: []string{aoba.GroupConversation(group.ID)}, ParticipantID: alice.ID})
		if err != nil {
			t.Fatalf("FindMessages: %v", err)
		}
		if total != 2 || len(msgs) != 2 || *msgs[0] != *inGroup || *msgs[1] != *direct {
			t.Fatalf("messages = %+v (total %d), want group then direct message", msgs, total)
		}
	})
	t.Run("Sessions", func(t *testing.T) {
		// Revocations and rotations are durable: a reopened store refuses
		// what it refused before.
		find := func(id string) *aoba.Session {
			t.Helper()
			got, err := s.FindSessionByID(ctx, id)
			if err != nil {
				t.Fatalf("FindSessionByID(%s) after reopen: %v", id, err)
			}
			return got
		}
		if got := find(revoked.ID); got.RevokedAt == nil || !got.RevokedAt.Equal(revokedAt) {
			t.Errorf("revoked session after reopen: RevokedAt = %v, want %v", got.RevokedAt, revokedAt)
		}
		if got := find(cut.ID); got.RevokedAt == nil || !got.RevokedAt.Equal(cutAt) {
			t.Errorf("session revoked with its user's after reopen: RevokedAt = %v, want %v", got.RevokedAt, cutAt)
		}
		if got := find(kept.ID); got.RevokedAt != nil {
			t.Errorf("kept session after reopen: RevokedAt = %v, want nil", got.RevokedAt)
		}
		if got := find(rotated.ID); got.TokenID != rotatedTo || !got.ExpiresAt.Equal(rotatedExp) || got.RevokedAt != nil {
			t.Errorf("rotated session after reopen = %+v, want token %s expiring at %v", got, rotatedTo, rotatedExp)
		}
		err := s.RotateSession(ctx, revoked.ID, revoked.TokenID, aoba.NewID(), now.Add(time.Hour))
		if code := aoba.ErrorCode(err); code != aoba.ECONFLICT {
			t.Errorf("RotateSession of a revoked session after reopen: %v, want conflict", err)
		}
		err = s.RotateSession(ctx, rotated.ID, rotated.TokenID, aoba.NewID(), now.Add(time.Hour))
		if code := aoba.ErrorCode(err); code != aoba.ECONFLICT {
			t.Errorf("RotateSession from a replaced token after reopen: %v, want conflict", err)
		}
	})
}

func TestSessionRetention(t *testing.T) {
	// Open deletes the sessions expired for more than a day and keeps the
	// others, expired or not, revoked or not.
	dir := t.TempDir()
	ctx := testCtx(t)
	now := aoba.Now()
	user := aoba.NewID()
	newSession := func(expires time.Time) *aoba.Session {
		return &aoba.Session{ID: aoba.NewID(), UserID: user, TokenID: aoba.NewID(), CreatedAt: expires.Add(-time.Hour),
			LastSeenAt: expires.Add(-time.Hour), ExpiresAt: expires}
	}
	old := newSession(now.Add(-25 * time.Hour))
	recent := newSession(now.Add(-23 * time.Hour))
	live := newSession(now.Add(time.Hour))
	s, err := sqlitestore.Open(ctx, dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for _, ss := range []*aoba.Session{old, recent, live} {
		if err := s.CreateSession(ctx, ss); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	if err := s.RevokeSession(ctx, recent.ID, now); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = mustOpen(t, dir)
	got, err := s.FindSessionsByUser(ctx, user)
	if err != nil {
		t.Fatalf("FindSessionsByUser: %v", err)
	}
	if len(got) != 2 || got[0].ID != recent.ID || got[1].ID != live.ID || got[0].RevokedAt == nil {
		t.Fatalf("sessions after reopen = %+v, want the revoked recent one and the live one", got)
	}
}

func TestRevocationTablesDropped(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	v, err := s.SchemaVersion(testCtx(t))
	if err != nil || v < 2 {
		t.Fatalf("SchemaVersion = %d, %v; want >= 2", v, err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlitestore.FileName)+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(testCtx(t), "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatalf("scan: %v", err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("list tables: %v", err)
	}
	list := " " + strings.Join(tables, " ") + " "
	if !strings.Contains(list, " sessions ") || strings.Contains(list, " revoked_sessions ") || strings.Contains(list, " revoked_user_sessions ") {
		t.Fatalf("tables = %v, want sessions and no revocation tables", tables)
	}
}

func TestConcurrentWriters(t *testing.T) {
	const writers, perWriter = 20, 10
	s := mustOpen(t, t.TempDir())
	ctx := testCtx(t)
	group := &aoba.Group{ID: aoba.NewID(), Name: "busy", OwnerID: aoba.NewID(), CreatedAt: at(0)}
	if err := s.CreateGroup(ctx, group, &aoba.Membership{GroupID: group.ID, UserID: group.OwnerID, Role: aoba.RoleOwner, JoinedAt: at(0)}); err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	conv := aoba.GroupConversation(group.ID)
	var wg sync.WaitGroup
	errs := make(chan error, writers*(perWriter+5))
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			u := &aoba.User{ID: aoba.NewID(), Username: fmt.Sprintf("writer%02d", w), PasswordHash: "h", CreatedAt: at(0)}
			errs <- s.CreateUser(ctx, u)
			errs <- s.CreateMembership(ctx, &aoba.Membership{GroupID: group.ID, UserID: u.ID, Role: aoba.RoleMember, JoinedAt: at(time.Duration(w))})
			for i := 0; i < perWriter; i++ {
				errs <- s.CreateMessage(ctx, &aoba.Message{ID: aoba.NewID(), Conversation: conv, FromID: u.ID, ToID: group.ID,
					FromName: u.Username, ToName: group.Name, Content: "x", Type: aoba.MessageGroupChat, Timestamp: aoba.Now()})
			}
			now := aoba.Now()
			errs <- s.CreateSession(ctx, &aoba.Session{ID: aoba.NewID(), UserID: u.ID, TokenID: aoba.NewID(),
				CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)})
			errs <- s.RevokeUserSessions(ctx, u.ID, "", now)
			_, _, err := s.FindMessages(ctx, aoba.MessageFilter{Conversations: []string{conv}, Limit: 5})
			errs <- err
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent write failed: %v", err)
		}
	}
	_, total, err := s.FindMessages(ctx, aoba.MessageFilter{Conversations: []string{conv}})
	if err != nil {
		t.Fatalf("FindMessages: %v", err)
	}
	if total != writers*perWriter {
		t.Fatalf("total messages = %d, want %d", total, writers*perWriter)
	}
	ms, err := s.FindMembershipsByGroup(ctx, group.ID)
	if err != nil {
		t.Fatalf("FindMembershipsByGroup: %v", err)
	}
	if len(ms) != writers+1 {
		t.Fatalf("memberships = %d, want %d", len(ms), writers+1)
	}
}

// childDirEnv, when set, makes TestAcknowledgedWritesSurviveKill act as the
// child process that writes into that directory until it is killed.
const childDirEnv = "AOBA_SQLITESTORE_KILL_CHILD_DIR"

func TestAcknowledgedWritesSurviveKill(t *testing.T) {
	conv := aoba.GroupConversation("kill-test")
	if dir := os.Getenv(childDirEnv); dir != "" {
		// Child: acknowledge each stored message on stdout, until killed
		// (or a bounded number of writes later).
		s, err := sqlitestore.Open(context.Background(), dir)
		if err != nil {
			t.Fatalf("child Open: %v", err)
		}
		for i := 0; i < 5000; i++ {
			m := &aoba.Message{ID: aoba.NewID(), Conversation: conv, FromID: "a", ToID: "kill-test",
				Content: strconv.Itoa(i), Type: aoba.MessageGroupChat, Timestamp: aoba.Now()}
			if err := s.CreateMessage(context.Background(), m); err != nil {
				t.Fatalf("child CreateMessage: %v", err)
			}
			fmt.Printf("ACK %s\n", m.ID)
		}
		return
	}

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestAcknowledgedWritesSurviveKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("StdoutPipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	for len(acked) < 50 && sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
			acked[id] = true
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	// Acknowledgements written before the kill are still in the pipe.
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
			acked[id] = true
		}
	}
	_ = cmd.Wait()
	if len(acked) < 50 {
		t.Fatalf("child acknowledged %d writes before it ended, want >= 50", len(acked))
	}

	s := mustOpen(t, dir)
	msgs, _, err := s.FindMessages(testCtx(t), aoba.MessageFilter{Conversations: []string{conv}})
	if err != nil {
		t.Fatalf("FindMessages: %v", err)
	}
	stored := map[string]bool{}
	for _, m := range msgs {
		stored[m.ID] = true
	}
	for id := range acked {
		if !stored[id] {
			t.Fatalf("acknowledged message %s is missing after kill -9 (%d acknowledged, %d stored)", id, len(acked), len(stored))
		}
	}
}

// seedMessages stores n messages of one conversation in s.
func seedMessages(b *testing.B, s *sqlitestore.Store, conv string, n int) {
	b.Helper()
	for i := 0; i < n; i++ {
		m := &aoba.Message{ID: aoba.NewID(), Conversation: conv, FromID: "u1", ToID: "g1", FromName: "one", ToName: "group",
			Content: "hello, this is a message of ordinary length", Type: aoba.MessageGroupChat, Timestamp: aoba.Now()}
		if err := s.CreateMessage(context.Background(), m); err != nil {
			b.Fatalf("CreateMessage: %v", err)
		}
	}
}

func BenchmarkCreateMessage(b *testing.B) {
	s := mustOpen(b, b.TempDir())
	conv := aoba.GroupConversation("g1")
	b.ReportAllocs()
	b.ResetTimer()
	seedMessages(b, s, conv, b.N)
}

func BenchmarkFindMessages(b *testing.B) {
	s := mustOpen(b, b.TempDir())
	conv := aoba.GroupConversation("g1")
	seedMessages(b, s, conv, 10000)
	f := aoba.MessageFilter{Conversations: []string{conv}, Limit: 50}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msgs, total, err := s.FindMessages(context.Background(), f)
		if err != nil {
			b.Fatalf("FindMessages: %v", err)
		}
		if len(msgs) != 50 || total != 10000 {
			b.Fatalf("got %d messages of %d, want 50 of 10000", len(msgs), total)
		}
	}
}

func TestClientIDMigration(t *testing.T) {
	// A database of schema version 2 with a message gets the client id
	// column: the old message reads with none, new ones are deduplicated.
	dir := t.TempDir()
	ctx := testCtx(t)
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlitestore.FileName))
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	steps := []string{"CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
		sqlitestore.Migration(1), sqlitestore.Migration(2), "INSERT INTO schema_migrations VALUES (1, 0), (2, 0)",
		"INSERT INTO messages (id, conversation, from_id, to_id, from_name, to_name, content, type, ts) VALUES ('" +
			aoba.NewID() + "', 'd:a:b', 'a', 'b', 'a', 'b', 'old', 'chat', 0)"}
	for _, step := range steps {
		if _, err := db.ExecContext(ctx, step); err != nil {
			t.Fatalf("%.40s: %v", step, err)
		}
	}
	db.Close()

	s := mustOpen(t, dir)
	if v, err := s.SchemaVersion(ctx); err != nil || v < 3 {
		t.Fatalf("SchemaVersion = %d, %v; want >= 3", v, err)
	}
	m := newMessage("d:a:b", "new")
	m.ClientID = "k"
	if err := s.CreateMessage(ctx, m); err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	retry := newMessage("d:a:b", "retry")
	retry.ClientID = "k"
	if err := s.CreateMessage(ctx, retry); aoba.ErrorCode(err) != aoba.ECONFLICT {
		t.Fatalf("CreateMessage with a used client id: %v, want %s", err, aoba.ECONFLICT)
	}
	ms, _, err := s.FindMessages(ctx, aoba.MessageFilter{Conversations: []string{"d:a:b"}, AfterID: "0"})
	if err != nil || len(ms) != 2 || ms[0].Content != "old" || ms[0].ClientID != "" || ms[1].ClientID != "k" {
		t.Fatalf("FindMessages = %+v, %v; want the old message without a client id, then the new one", ms, err)
	}
}
