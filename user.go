package aoba

import (
	"context"
	"regexp"
	"time"
)

// Limits of the contract.
const (
	UsernameMinLen    = 3
	UsernameMaxLen    = 255
	PasswordMinLen    = 8
	PasswordMaxLen    = 128
	SearchQueryMinLen = 2
	SearchQueryMaxLen = 100
	MaxBatchIDs       = 100
	DefaultSearchSize = 20
	MaxPageSize       = 100
)

var usernameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{3,255}$`)

// User is an account. Username keeps the case it was registered with;
// lookups are case-insensitive.
type User struct {
	ID           string    `json:"id"`
	Username     string    `json:"username"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
}

// Metadata is the public description of a user used to resolve JIDs.
type Metadata struct {
	ID          string  `json:"id"`
	Username    string  `json:"username"`
	Domain      string  `json:"domain"`
	DisplayName string  `json:"displayName"`
	AvatarURL   *string `json:"avatarUrl"`
}

// ValidateUsername returns an EINVALID error unless name matches
// ^[a-zA-Z0-9_-]{3,255}$.
func ValidateUsername(name string) error {
	if !usernameRE.MatchString(name) {
		return Errorf(EINVALID, "Username must be 3 to 255 characters of letters, digits, '_' or '-'.")
	}
	return nil
}

// ValidatePassword returns an EINVALID error unless pw has 8 to 128
// characters.
func ValidatePassword(pw string) error {
	if n := len([]rune(pw)); n < PasswordMinLen || n > PasswordMaxLen {
		return Errorf(EINVALID, "Password must be 8 to 128 characters long.")
	}
	return nil
}

// UserFilter selects users for a search: usernames containing Query
// (case-insensitive), none of the ids in Exclude, ordered by username
// (case-insensitive), skipping Offset and returning at most Limit.
type UserFilter struct {
	Query   string
	Exclude []string
	Offset  int
	Limit   int
}

// UserStore persists accounts.
type UserStore interface {
	// CreateUser stores u (ID, Username, PasswordHash and CreatedAt set by
	// the caller). It returns ECONFLICT when the username is taken in any
	// case.
	CreateUser(ctx context.Context, u *User) error
	// FindUserByID returns ENOTFOUND when no user has that id.
	FindUserByID(ctx context.Context, id string) (*User, error)
	// FindUserByUsername looks the name up case-insensitively. It returns
	// ENOTFOUND when no user has that name.
	FindUserByUsername(ctx context.Context, username string) (*User, error)
	// FindUsersByIDs returns the users among ids that exist, in any order.
	FindUsersByIDs(ctx context.Context, ids []string) ([]*User, error)
	// FindUsersByUsernames returns the users among usernames
	// (case-insensitive) that exist, in any order.
	FindUsersByUsernames(ctx context.Context, usernames []string) ([]*User, error)
	// FindUsers returns one page of users matching f and the total number
	// of matches.
	FindUsers(ctx context.Context, f UserFilter) ([]*User, int, error)
	// UpdateUsername renames the user. It returns ENOTFOUND for an unknown
	// id and ECONFLICT when another user holds the name in any case.
	UpdateUsername(ctx context.Context, id, username string) (*User, error)
	// UpdatePasswordHash replaces the stored hash. It returns ENOTFOUND for
	// an unknown id.
	UpdatePasswordHash(ctx context.Context, id, hash string) error
	// DeleteUser removes the account and frees its username. It returns
	// ENOTFOUND for an unknown id. Memberships and invitations are the
	// Service's business, not the store's.
	DeleteUser(ctx context.Context, id string) error
}
