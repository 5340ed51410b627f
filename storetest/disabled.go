package storetest

import (
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
)

// runUserDisabledTests checks UpdateUserDisabled and that DisabledAt comes
// back from every way of reading a user.
func runUserDisabledTests(t *testing.T, open OpenFunc) {
	t.Run("DisableAndEnable", func(t *testing.T) {
		s := open(t)
		u := mustCreateUser(t, s, "Alice")
		other := mustCreateUser(t, s, "bob")
		if u.DisabledAt != nil {
			t.Fatalf("new user disabled at %v", u.DisabledAt)
		}
		at := aoba.Now().Add(-time.Minute)
		got, err := s.UpdateUserDisabled(ctx(t), u.ID, &at)
		if err != nil {
			t.Fatalf("UpdateUserDisabled: %v", err)
		}
		if got.ID != u.ID || got.Username != "Alice" || got.DisabledAt == nil {
			t.Fatalf("disabled user = %+v", got)
		}
		wantTime(t, "returned DisabledAt", *got.DisabledAt, at)

		// Every read of the user carries it; other users are untouched.
		reads := map[string]func() (*aoba.User, error){
			"FindUserByID":       func() (*aoba.User, error) { return s.FindUserByID(ctx(t), u.ID) },
			"FindUserByUsername": func() (*aoba.User, error) { return s.FindUserByUsername(ctx(t), "alice") },
			"FindUsersByIDs":     func() (*aoba.User, error) { return only(s.FindUsersByIDs(ctx(t), []string{u.ID})) },
			"FindUsersByUsernames": func() (*aoba.User, error) {
				return only(s.FindUsersByUsernames(ctx(t), []string{"ALICE"}))
			},
			"FindUsers": func() (*aoba.User, error) {
				users, _, err := s.FindUsers(ctx(t), aoba.UserFilter{Query: "ali", Limit: 10})
				return only(users, err)
			},
		}
		for name, read := range reads {
			got, err := read()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got.DisabledAt == nil {
				t.Fatalf("%s: DisabledAt lost", name)
			}
			wantTime(t, name+" DisabledAt", *got.DisabledAt, at)
		}
		if o, err := s.FindUserByID(ctx(t), other.ID); err != nil || o.DisabledAt != nil {
			t.Fatalf("other user = %+v, %v; want enabled", o, err)
		}

		// Enabling clears it.
		got, err = s.UpdateUserDisabled(ctx(t), u.ID, nil)
		if err != nil || got.DisabledAt != nil {
			t.Fatalf("enable = %+v, %v", got, err)
		}
		if got, err := s.FindUserByID(ctx(t), u.ID); err != nil || got.DisabledAt != nil {
			t.Fatalf("after enable = %+v, %v", got, err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		at := aoba.Now()
		_, err := s.UpdateUserDisabled(ctx(t), aoba.NewID(), &at)
		wantCode(t, err, aoba.ENOTFOUND)
		_, err = s.UpdateUserDisabled(ctx(t), aoba.NewID(), nil)
		wantCode(t, err, aoba.ENOTFOUND)
	})
}

// only returns the one user of users, or an error saying how many there
// were.
func only(users []*aoba.User, err error) (*aoba.User, error) {
	if err != nil {
		return nil, err
	}
	if len(users) != 1 {
		return nil, aoba.Errorf(aoba.EINTERNAL, "%d users, want 1", len(users))
	}
	return users[0], nil
}
