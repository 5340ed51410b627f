package storemetrics_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/sqlitestore"
	"github.com/aoba-chat/aoba/storemetrics"
	"github.com/prometheus/client_golang/prometheus"
)

// TestEveryOperationTimed: every method of aoba.Store but Ping and Close
// is declared on *storemetrics.Store, not promoted untimed from the
// wrapped store.
func TestEveryOperationTimed(t *testing.T) {
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, f := range pkgs["storemetrics"].Files {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv != nil {
				declared[fd.Name.Name] = true
			}
		}
	}
	it := reflect.TypeOf((*aoba.Store)(nil)).Elem()
	for i := range it.NumMethod() {
		name := it.Method(i).Name
		if name != "Ping" && name != "Close" && !declared[name] {
			t.Errorf("aoba.Store.%s is not timed by storemetrics.Store: add it to methods.go", name)
		}
	}
}

// value returns the value of the counter name, or the sample count of the
// histogram name, with exactly the given labels; 0 when there is none.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestMetrics runs operations on the embedded store through the decorator:
// each is timed; only unexpected failures count as errors; messages are
// counted by type once stored.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	raw, err := sqlitestore.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := storemetrics.New(raw)
	reg := prometheus.NewRegistry()
	reg.MustRegister(st.Collectors()...)

	users := make([]*aoba.User, 2)
	for i, name := range []string{"alice", "bob"} {
		users[i] = &aoba.User{ID: aoba.NewID(), Username: name, PasswordHash: "x", CreatedAt: aoba.Now()}
		if err := st.CreateUser(ctx, users[i]); err != nil {
			t.Fatal(err)
		}
	}
	dup := &aoba.User{ID: aoba.NewID(), Username: "alice", PasswordHash: "x", CreatedAt: aoba.Now()}
	if err := st.CreateUser(ctx, dup); aoba.ErrorCode(err) != aoba.ECONFLICT {
		t.Fatalf("duplicate user: %v, want a conflict", err)
	}
	if _, err := st.FindUserByID(ctx, aoba.NewID()); aoba.ErrorCode(err) != aoba.ENOTFOUND {
		t.Fatalf("unknown user: %v, want not found", err)
	}
	msg := func(clientID string) *aoba.Message {
		return &aoba.Message{
			ID: aoba.NewID(), Conversation: aoba.DirectConversation(users[0].ID, users[1].ID), FromID: users[0].ID, ToID: users[1].ID,
			FromName: "alice", ToName: "bob", Content: "hi", Type: aoba.MessageChat, Timestamp: aoba.Now(), ClientID: clientID,
		}
	}
	for i, m := range []*aoba.Message{msg("c1"), msg(""), msg("c1")} {
		err := st.CreateMessage(ctx, m)
		if wantDup := i == 2; (err != nil) != wantDup {
			t.Fatalf("message %d: %v", i, err)
		}
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"aoba_store_operation_duration_seconds", map[string]string{"operation": "CreateUser"}, 3},
		{"aoba_store_operation_duration_seconds", map[string]string{"operation": "FindUserByID"}, 1},
		{"aoba_store_operation_duration_seconds", map[string]string{"operation": "CreateMessage"}, 3},
		{"aoba_messages_stored_total", map[string]string{"type": "chat"}, 2},
		{"aoba_messages_stored_total", map[string]string{"type": "groupchat"}, 0},
		{"aoba_store_operation_errors_total", map[string]string{"operation": "CreateUser", "code": aoba.EINTERNAL}, 0},
	} {
		if got := value(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The store closed under it: a failure the pager must see.
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = st.FindUserByID(ctx, users[0].ID)
	code := aoba.ErrorCode(err)
	if code != aoba.EINTERNAL && code != aoba.EUNAVAILABLE {
		t.Fatalf("read on a closed store: %v, want an internal or unavailable error", err)
	}
	if got := value(t, reg, "aoba_store_operation_errors_total", map[string]string{"operation": "FindUserByID", "code": code}); got != 1 {
		t.Fatalf("errors of FindUserByID (%s) = %v, want 1", code, got)
	}
}
