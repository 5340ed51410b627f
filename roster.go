package aoba

import (
	"context"
	"time"
)

// MaxRosterItems is the largest number of items one user's roster may hold.
const MaxRosterItems = 1000

// RosterNameMaxLen is the longest name, in characters, a user may give a
// contact of their roster.
const RosterNameMaxLen = 100

// RosterItem is a contact that UserID added to their XMPP roster (RFC
// 6121). A user's roster is their 1:1 conversation partners, which are
// derived from the conversations, plus these explicit items.
type RosterItem struct {
	UserID    string // the owner of the roster
	ContactID string // the contact's user id
	// Name is the owner's name for the contact, "" for none; at most
	// RosterNameMaxLen characters (the Service checks it, the store does
	// not).
	Name      string
	CreatedAt time.Time
}

// RosterStore persists roster items. An item is identified by the pair
// (UserID, ContactID); a user's items are at most MaxRosterItems, so they
// are read whole.
type RosterStore interface {
	// PutRosterItem stores item, or, when the user has that contact
	// already, replaces the stored item's Name (its CreatedAt, and so its
	// place in the roster, stays the first put's). It returns the
	// ECONFLICT error of ErrRosterFull, storing nothing, when the item is
	// new and the user has MaxRosterItems items already.
	PutRosterItem(ctx context.Context, item *RosterItem) error
	// DeleteRosterItem removes the item of contactID from userID's roster.
	// It returns ENOTFOUND when there is none.
	DeleteRosterItem(ctx context.Context, userID, contactID string) error
	// FindRosterItems returns userID's items, oldest first (by CreatedAt,
	// then ContactID); none is an empty slice. It returns an EINTERNAL (or
	// EUNAVAILABLE) error when they cannot be read.
	FindRosterItems(ctx context.Context, userID string) ([]*RosterItem, error)
}

// ErrRosterFull returns the ECONFLICT error of a RosterStore refusing a new
// item to a user who has MaxRosterItems items already.
func ErrRosterFull() error {
	return Errorf(ECONFLICT, "A roster holds at most %d contacts.", MaxRosterItems)
}
