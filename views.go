package aoba

import "time"

// The JSON shapes of the contract that both the REST API and the WebSocket
// channel send. Field names are exactly the contract's.

// MessageView is a Message as clients see it. ClientID is the sender's
// client id, omitted when the message was sent without one. EditedAt is
// the time of the last edit, omitted when never edited; Deleted is true
// (and Content empty) for a deleted message, omitted otherwise.
type MessageView struct {
	ID        string      `json:"id"`
	FromID    string      `json:"from_id"`
	ToID      string      `json:"to_id"`
	From      string      `json:"from"`
	To        string      `json:"to"`
	Content   string      `json:"content"`
	Type      MessageType `json:"type"`
	Timestamp time.Time   `json:"timestamp"`
	Status    string      `json:"status"`
	ClientID  string      `json:"client_id,omitempty"`
	EditedAt  *time.Time  `json:"edited_at,omitempty"`
	Deleted   bool        `json:"deleted,omitempty"`
}

// Member is one member of a group as clients see it. Status is set only in
// member lists.
type Member struct {
	UserID   string         `json:"-"`
	Username string         `json:"username"`
	Role     Role           `json:"role"`
	JoinedAt time.Time      `json:"joined_at"`
	Status   PresenceStatus `json:"status,omitempty"`
}

// GroupView is a Group as clients see it.
type GroupView struct {
	ID            string    `json:"group_id"`
	Name          string    `json:"name"`
	OwnerID       string    `json:"-"`
	OwnerUsername string    `json:"owner_username"`
	Members       []*Member `json:"members"`
	CreatedAt     time.Time `json:"created_at"`
}

// GroupAdminView is the administration view of a group.
type GroupAdminView struct {
	Group           *GroupView `json:"group"`
	Members         []*Member  `json:"members"`
	CurrentUserRole Role       `json:"currentUserRole"`
	OwnerCount      int        `json:"ownerCount"`
	AdminCount      int        `json:"adminCount"`
}

// InvitationView is an Invitation as clients see it.
type InvitationView struct {
	ID              string           `json:"id"`
	GroupID         string           `json:"group_id"`
	GroupName       string           `json:"group_name"`
	InviterUsername string           `json:"inviter_username"`
	InviteeUsername string           `json:"invitee_username"`
	Status          InvitationStatus `json:"status"`
	CreatedAt       time.Time        `json:"created_at"`
	RespondedAt     *time.Time       `json:"responded_at"`
}

// UserPresence is one user's presence as clients see it.
type UserPresence struct {
	UserID   string         `json:"userId"`
	Username string         `json:"username"`
	Status   PresenceStatus `json:"status"`
	LastSeen *time.Time     `json:"lastSeen"`
}

// GroupEvent is the data of a `group` frame.
type GroupEvent struct {
	Event         string `json:"event"`
	GroupID       string `json:"group_id"`
	GroupName     string `json:"group_name,omitempty"`
	Username      string `json:"username,omitempty"`
	Role          Role   `json:"role,omitempty"`
	By            string `json:"by,omitempty"`
	PreviousOwner string `json:"previousOwner,omitempty"`
	NewOwner      string `json:"newOwner,omitempty"`
}

// Group event names.
const (
	GroupMemberAdded      = "member_added"
	GroupMemberRemoved    = "member_removed"
	GroupMemberLeft       = "member_left"
	GroupRoleChanged      = "role_changed"
	GroupOwnerTransferred = "owner_transferred"
	GroupDeleted          = "deleted"
)

// TypingEvent is the data of a `typing` frame.
type TypingEvent struct {
	From  string      `json:"from"`
	To    string      `json:"to"`
	Type  MessageType `json:"type"`
	State string      `json:"state"`
}
