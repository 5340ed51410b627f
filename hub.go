package aoba

import (
	"context"
	"time"
)

// UserTopic returns the broker topic that carries every event for the
// sockets of one user: messages, typing, invitations, group events and
// close orders.
func UserTopic(userID string) string { return "u:" + userID }

// GroupTopic returns the broker topic that carries the live messages and
// typing notices of one group. A group message is published once on it,
// whatever the group's size; each pod subscribes to the group topics of the
// groups its local users belong to and fans the frame out to their sockets.
// Membership changes reach the pods as Join and Leave orders on the user
// topics, so a member who has just joined may miss the live messages of a
// short window (one broker round trip) after the change: history has them.
func GroupTopic(groupID string) string { return "g:" + groupID }

// PresenceTopic returns the broker topic that carries the presence changes
// of one user to the sockets subscribed to them.
func PresenceTopic(userID string) string { return "p:" + userID }

// Close codes of the WebSocket channel. Codes below 4000 are the RFC's; the
// README lists which ones a client should reconnect after.
const (
	CloseNormal          = 1000 // the client or the server ended the session
	CloseGoingAway       = 1001 // the pod is shutting down: reconnect at once
	CloseInvalidPayload  = 1007 // a text frame that is not valid UTF-8: fix the client
	ClosePolicyViolation = 1008 // bad Origin or protocol abuse: do not retry as is
	CloseTooLarge        = 1009 // a frame over the size limit
	CloseSessionRevoked  = 4001 // logout, password change, account deletion or an administrator: sign in again
	CloseTooSlow         = 4002 // the send queue overflowed: reconnect and catch up from history
	CloseIdle            = 4003 // no frame or pong within the idle timeout: reconnect
	CloseResync          = 4004 // the pod lost its broker connection and may have missed events: reconnect and catch up
	CloseTooManySockets  = 4005 // the user opened more sockets than allowed and this was their oldest: do not reconnect
)

// CloseOrder asks every pod to close some sockets of the user whose topic it
// was published on. Session, when set, limits it to sockets authenticated
// with that session (token id); KeepSession, when set, spares sockets of that
// session; Conns, when set, limits it to the sockets with those connection
// ids (the oldest sockets of a user over the socket limit).
type CloseOrder struct {
	Code        int      `json:"code"`
	Reason      string   `json:"reason,omitempty"`
	Session     string   `json:"session,omitempty"`
	KeepSession string   `json:"keep_session,omitempty"`
	Conns       []string `json:"conns,omitempty"`
}

// Envelope is what travels on a topic: a frame, already encoded once, to
// write to every socket listening on the topic except the socket ExceptConn
// and the sockets of the user ExceptUser and of the users ExceptUsers (the
// users a watched user blocks, on a presence topic), or, with OnlyUser set,
// to the sockets of that user alone; or, on a user topic, an order for
// the pods holding that user's sockets: Close closes some of them, Join
// (a group id) makes them receive the group's topic, Leave stops it. An
// order travels on the user topic, in order with the user's frames, so a
// `group` event published after a Join or Leave reaches the sockets after
// the pod has applied it.
type Envelope struct {
	Frame       []byte      `json:"frame,omitempty"`
	ExceptConn  string      `json:"except_conn,omitempty"`
	ExceptUser  string      `json:"except_user,omitempty"`
	ExceptUsers []string    `json:"except_users,omitempty"`
	OnlyUser    string      `json:"only_user,omitempty"`
	Close       *CloseOrder `json:"close,omitempty"`
	Join        string      `json:"join,omitempty"`
	Leave       string      `json:"leave,omitempty"`
}

// Publication is one envelope for one topic.
type Publication struct {
	Topic    string
	Envelope Envelope
}

// DeliverFunc receives every envelope published on a topic this pod is
// subscribed to. It must not block: it hands the frame to bounded queues.
// realtime.Node.Deliver is the one the server registers.
type DeliverFunc func(topic string, env Envelope)

// Broker moves envelopes between pods. Delivery is at most once and ordered
// per topic while the connection to the broker holds; clients recover what a
// broker outage lost from message history (the after cursor), never from the
// broker. So that a client learns it may have missed something, a broker
// that resubscribes after losing its connection delivers, on each topic
// that connection held, a CloseOrder with CloseResync: the pod closes the
// sockets that follow the topic (its user's, its group's members', its
// user's presence watchers), and on DirectoryTopic the Service empties the
// cache that topic keeps fresh. The in-process broker
// serves the single-binary mode, the Redis one many pods.
type Broker interface {
	// RegisterDeliver sets the function that receives the envelopes of the
	// subscribed topics; the server registers the node's Deliver after
	// constructing the node. It must be called once, before the first
	// Subscribe: an envelope that arrives before it is dropped, and a
	// second call panics.
	RegisterDeliver(fn DeliverFunc)
	// Publish sends each publication to every pod subscribed to its topic,
	// in one round trip where the implementation can. It returns an
	// EUNAVAILABLE error when the broker cannot be reached.
	Publish(ctx context.Context, pubs ...Publication) error
	// Subscribe makes this pod receive the topics' envelopes through the
	// registered DeliverFunc. Subscribing twice is harmless.
	Subscribe(ctx context.Context, topics ...string) error
	// Unsubscribe stops receiving the topics. Unknown topics are ignored.
	Unsubscribe(ctx context.Context, topics ...string) error
	Pinger
	// Close stops the broker; later calls return errors.
	Close() error
}

// PresenceStatus is online or offline.
type PresenceStatus string

// Presence states.
const (
	StatusOnline  PresenceStatus = "online"
	StatusOffline PresenceStatus = "offline"
)

// Presence is one user's presence. LastSeen is nil for a user who has never
// connected.
type Presence struct {
	UserID   string
	Status   PresenceStatus
	LastSeen *time.Time
}

// PresenceChangeFunc is called, on exactly one pod, each time a user goes
// online or offline.
type PresenceChangeFunc func(p Presence)

// PresenceRegistry knows who is online: a user is online while at least one
// of their connections is open on any pod. The Redis implementation keeps
// connections alive with heartbeats and expires those of a pod that died
// without cleanup; both implementations wait a short grace period after the
// last connection closes before the user goes offline, so that a page
// reload does not flap.
type PresenceRegistry interface {
	// RegisterChangeHandler sets the function called for each change this
	// pod reports; the server registers Service.PresenceChanged. It must be
	// called once, before the first Connect: a change reported before it
	// is dropped, and a second call panics.
	RegisterChangeHandler(fn PresenceChangeFunc)
	// Connect records an open connection (connID is unique per socket).
	Connect(ctx context.Context, userID, connID string) error
	// Disconnect records that the connection closed.
	Disconnect(ctx context.Context, userID, connID string) error
	// FindPresence returns the presence of each id; unknown ids are offline
	// with a nil LastSeen.
	FindPresence(ctx context.Context, userIDs []string) (map[string]Presence, error)
	// Close stops heartbeats and sweeps.
	Close() error
}
