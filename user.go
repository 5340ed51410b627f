package aoba

import (
	"context"
	_ "embed"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"
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
	// MaxOffset is the largest number of results a page may skip (a
	// history offset, or (page-1)*limit of a search): larger ones are
	// refused rather than overflowing or reaching a store as a huge skip.
	MaxOffset = 1<<31 - 1
)

var usernameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{3,255}$`)

// User is an account. Username keeps the case it was registered with;
// lookups are case-insensitive.
type User struct {
	ID           string    `json:"id"`
	Username     string    `json:"username"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
	// DisabledAt is when an administrator disabled the account (nil
	// while it is enabled): a disabled account cannot sign in, and its
	// sessions were revoked when it was disabled. Only the admin API
	// shows it.
	DisabledAt *time.Time `json:"-"`
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

// ValidateNewUsername returns an EINVALID error, saying why, unless name
// may be chosen by a new or renamed account: it must pass ValidateUsername
// and must not parse as a UUID, since routes that take a username or an id
// (history's with=, for one) could not tell the two apart. Existing names
// are not checked again: Login uses ValidateUsername only.
func ValidateNewUsername(name string) error {
	if err := ValidateUsername(name); err != nil {
		return err
	}
	if _, err := uuid.Parse(name); err == nil {
		return Errorf(EINVALID, "Username must not be a UUID: ids and usernames would be confused.")
	}
	return nil
}

// ValidateNewPassword returns an EINVALID error, saying why, unless pw may
// be chosen as a new password: it must pass ValidatePassword, must not be
// only whitespace, and must not be one of the common passwords of
// common-passwords.txt (compared case-insensitively). Existing passwords
// are not checked again: Login uses no rule but the length bound.
func ValidateNewPassword(pw string) error {
	if err := ValidatePassword(pw); err != nil {
		return err
	}
	if strings.TrimFunc(pw, unicode.IsSpace) == "" {
		return Errorf(EINVALID, "Password must not be only whitespace.")
	}
	if IsCommonPassword(pw) {
		return Errorf(EINVALID, "This password is too common; choose one that is harder to guess.")
	}
	return nil
}

// commonPasswordsText is the embedded list of common passwords, one per
// line, lowercase; only those of PasswordMinLen characters or more matter,
// since shorter ones are refused anyway.
//
//go:embed common-passwords.txt
var commonPasswordsText string

// commonPasswords returns the embedded list as a set, built once.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 512)
	for _, line := range strings.Split(commonPasswordsText, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			set[strings.ToLower(line)] = struct{}{}
		}
	}
	return set
})

// IsCommonPassword reports whether pw, compared case-insensitively, is in
// the embedded list of the most common passwords.
func IsCommonPassword(pw string) bool {
	_, ok := commonPasswords()[strings.ToLower(pw)]
	return ok
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
	// UpdateUserDisabled sets the user's DisabledAt to at (nil enables the
	// account again) and returns the user. It returns ENOTFOUND for an
	// unknown id.
	UpdateUserDisabled(ctx context.Context, id string, at *time.Time) (*User, error)
	// DeleteUser removes the account and frees its username, and deletes
	// the roster items the user owns and those whose contact the user is.
	// It returns ENOTFOUND for an unknown id. Memberships and invitations
	// are the Service's business, not the store's.
	DeleteUser(ctx context.Context, id string) error
}
