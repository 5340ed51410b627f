package aoba_test

import (
	"strings"
	"testing"

	"github.com/aoba-chat/aoba"
)

func TestAllowed(t *testing.T) {
	// The expected permission of each role for each action, as the contract states it.
	want := map[aoba.Action][3]bool{ // owner, admin, member
		aoba.ActionRead:         {true, true, true},
		aoba.ActionInvite:       {true, true, true},
		aoba.ActionLeave:        {true, true, true},
		aoba.ActionAdminInfo:    {true, true, false},
		aoba.ActionAddMember:    {true, true, false},
		aoba.ActionAddAdmin:     {true, false, false},
		aoba.ActionRemoveMember: {true, true, false},
		aoba.ActionRemoveAdmin:  {true, false, false},
		aoba.ActionChangeRole:   {true, false, false},
		aoba.ActionTransfer:     {true, false, false},
		aoba.ActionDelete:       {true, false, false},
	}
	roles := []aoba.Role{aoba.RoleOwner, aoba.RoleAdmin, aoba.RoleMember}
	for action, row := range want {
		for i, r := range roles {
			if got := aoba.Allowed(r, action); got != row[i] {
				t.Errorf("Allowed(%s, %d) = %v, want %v", r, action, got, row[i])
			}
		}
		if aoba.Allowed("", action) || aoba.Allowed("superuser", action) {
			t.Errorf("an unknown role may perform action %d", action)
		}
	}
	if aoba.Allowed(aoba.RoleOwner, aoba.Action(999)) {
		t.Error("an unknown action is allowed")
	}
}

func TestEffectiveRole(t *testing.T) {
	g := &aoba.Group{ID: "g", OwnerID: "o"}
	for _, tc := range []struct {
		user   string
		stored aoba.Role
		want   aoba.Role
	}{
		{"o", aoba.RoleAdmin, aoba.RoleOwner},      // ownership comes from the group
		{"o", aoba.RoleMember, aoba.RoleOwner},     // even with a stale stored role
		{"x", aoba.RoleOwner, aoba.RoleAdmin},      // a former owner's stale "owner" is admin
		{"x", aoba.RoleAdmin, aoba.RoleAdmin},      //
		{"x", aoba.RoleMember, aoba.RoleMember},    //
		{"x", aoba.Role("bogus"), aoba.RoleMember}, // anything else is a plain member
	} {
		if got := aoba.EffectiveRole(g, &aoba.Membership{GroupID: "g", UserID: tc.user, Role: tc.stored}); got != tc.want {
			t.Errorf("EffectiveRole(%s stored %s) = %s, want %s", tc.user, tc.stored, got, tc.want)
		}
	}
}

func TestParseSettableRole(t *testing.T) {
	for _, ok := range []string{"admin", "member"} {
		if r, err := aoba.ParseSettableRole(ok); err != nil || string(r) != ok {
			t.Errorf("ParseSettableRole(%q) = %q, %v", ok, r, err)
		}
	}
	for _, bad := range []string{"owner", "", "Admin", "root"} {
		if _, err := aoba.ParseSettableRole(bad); aoba.ErrorCode(err) != aoba.EINVALID {
			t.Errorf("ParseSettableRole(%q) = %v, want EINVALID", bad, err)
		}
	}
}

func TestValidation(t *testing.T) {
	t.Run("Username", func(t *testing.T) {
		for _, ok := range []string{"abc", "Alice_01", "a-b", strings.Repeat("x", 255)} {
			if err := aoba.ValidateUsername(ok); err != nil {
				t.Errorf("ValidateUsername(%q) = %v", ok, err)
			}
		}
		for _, bad := range []string{"", "ab", strings.Repeat("x", 256), "a b", "ali.ce", "élise", "abc\n"} {
			if err := aoba.ValidateUsername(bad); aoba.ErrorCode(err) != aoba.EINVALID {
				t.Errorf("ValidateUsername(%q) = %v, want EINVALID", bad, err)
			}
		}
	})
	t.Run("Password", func(t *testing.T) {
		for _, ok := range []string{"12345678", strings.Repeat("é", 128)} {
			if err := aoba.ValidatePassword(ok); err != nil {
				t.Errorf("ValidatePassword(%d chars) = %v", len([]rune(ok)), err)
			}
		}
		for _, bad := range []string{"", "1234567", strings.Repeat("x", 129)} {
			if err := aoba.ValidatePassword(bad); aoba.ErrorCode(err) != aoba.EINVALID {
				t.Errorf("ValidatePassword(%d chars) = %v, want EINVALID", len(bad), err)
			}
		}
	})
	t.Run("NewUsername", func(t *testing.T) {
		for _, ok := range []string{"alice", "550e8400", "550e8400-e29b-41d4-a716-44665544000g"} {
			if err := aoba.ValidateNewUsername(ok); err != nil {
				t.Errorf("ValidateNewUsername(%q) = %v", ok, err)
			}
		}
		for _, bad := range []string{"ab", "550e8400-e29b-41d4-a716-446655440000", "550E8400-E29B-41D4-A716-446655440000",
			"550e8400e29b41d4a716446655440000"} {
			if err := aoba.ValidateNewUsername(bad); aoba.ErrorCode(err) != aoba.EINVALID {
				t.Errorf("ValidateNewUsername(%q) = %v, want EINVALID", bad, err)
			}
		}
		if err := aoba.ValidateNewUsername("550e8400-e29b-41d4-a716-446655440000"); !strings.Contains(aoba.ErrorMessage(err), "UUID") {
			t.Errorf("message %q does not say why", aoba.ErrorMessage(err))
		}
	})
	t.Run("NewPassword", func(t *testing.T) {
		for _, ok := range []string{"correct horse battery", "  padded secret  ", "x7!Kq#2mZ"} {
			if err := aoba.ValidateNewPassword(ok); err != nil {
				t.Errorf("ValidateNewPassword(%q) = %v", ok, err)
			}
		}
		for bad, why := range map[string]string{
			"short":                  "8 to 128",
			"        ":               "whitespace",
			"\t\n \u00a0\u3000\t\n ": "whitespace",
			"password":               "too common",
			"PassWord1":              "too common",
			"12345678":               "too common",
			"qwerty123":              "too common",
			"iloveyou":               "too common",
			"football":               "too common",
		} {
			err := aoba.ValidateNewPassword(bad)
			if aoba.ErrorCode(err) != aoba.EINVALID || !strings.Contains(aoba.ErrorMessage(err), why) {
				t.Errorf("ValidateNewPassword(%q) = %v, want EINVALID saying %q", bad, err, why)
			}
		}
		// The old rule, which Login relies on, still takes them.
		if err := aoba.ValidatePassword("password"); err != nil {
			t.Errorf("ValidatePassword(password) = %v", err)
		}
	})
	t.Run("GroupName", func(t *testing.T) {
		for _, ok := range []string{"a", "Engineering Team", strings.Repeat("名", 100)} {
			if err := aoba.ValidateGroupName(ok); err != nil {
				t.Errorf("ValidateGroupName(%q) = %v", ok, err)
			}
		}
		for _, bad := range []string{"", "   ", strings.Repeat("x", 101)} {
			if err := aoba.ValidateGroupName(bad); aoba.ErrorCode(err) != aoba.EINVALID {
				t.Errorf("ValidateGroupName(%q) = %v, want EINVALID", bad, err)
			}
		}
	})
	t.Run("ID", func(t *testing.T) {
		id := aoba.NewID()
		if !aoba.IsValidID(id) || id[14] != '7' {
			t.Fatalf("NewID() = %q, want a UUIDv7", id)
		}
		for _, bad := range []string{"", "not-a-uuid", strings.ToUpper(id) + "x", "{" + id + "}"} {
			if aoba.IsValidID(bad) {
				t.Errorf("IsValidID(%q) = true", bad)
			}
		}
	})
	t.Run("IDsSortByTime", func(t *testing.T) {
		prev := aoba.NewID()
		for range 1000 {
			next := aoba.NewID()
			if next <= prev {
				t.Fatalf("NewID went backwards: %s after %s", next, prev)
			}
			prev = next
		}
	})
}

func TestConversationKeys(t *testing.T) {
	if aoba.DirectConversation("a", "b") != aoba.DirectConversation("b", "a") {
		t.Fatal("a direct conversation key depends on the order of its users")
	}
	if aoba.DirectConversation("a", "b") == aoba.DirectConversation("a", "c") || aoba.GroupConversation("a") == aoba.DirectConversation("a", "a") {
		t.Fatal("two conversations share a key")
	}
}

func TestErrors(t *testing.T) {
	err := aoba.Errorf(aoba.ENOTFOUND, "User %s not found.", "bob")
	if aoba.ErrorCode(err) != aoba.ENOTFOUND || aoba.ErrorMessage(err) != "User bob not found." {
		t.Fatalf("code/message = %s/%s", aoba.ErrorCode(err), aoba.ErrorMessage(err))
	}
	wrapped := &wrapErr{err}
	if aoba.ErrorCode(wrapped) != aoba.ENOTFOUND {
		t.Fatal("the code of a wrapped *Error is lost")
	}
	plain := errString("dial tcp 10.0.0.1:27017: refused")
	if aoba.ErrorCode(plain) != aoba.EINTERNAL || aoba.ErrorMessage(plain) != "Internal server error" {
		t.Fatal("a foreign error leaks its text or its code is not internal")
	}
	if aoba.ErrorCode(nil) != "" || aoba.ErrorMessage(nil) != "" {
		t.Fatal("nil has a code")
	}
}

type wrapErr struct{ err error }

func (w *wrapErr) Error() string { return "wrapped: " + w.err.Error() }
func (w *wrapErr) Unwrap() error { return w.err }

type errString string

func (e errString) Error() string { return string(e) }

func TestEncodeFrame(t *testing.T) {
	b, err := aoba.EncodeFrame(aoba.FramePong, "42", map[string]int{})
	if err != nil || string(b) != `{"type":"pong","id":"42","data":{}}` {
		t.Fatalf("EncodeFrame = %s, %v", b, err)
	}
	if _, err := aoba.EncodeFrame(aoba.FrameMessage, "", make(chan int)); aoba.ErrorCode(err) != aoba.EINTERNAL {
		t.Fatalf("EncodeFrame(chan) = %v, want EINTERNAL", err)
	}
}
