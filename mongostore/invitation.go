package mongostore

import (
	"context"
	"errors"
	"time"

	"github.com/aoba-chat/aoba"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// invitationDoc is an invitation in the invitations collection.
type invitationDoc struct {
	ID          string     `bson:"_id"`
	GroupID     string     `bson:"group_id"`
	InviterID   string     `bson:"inviter_id"`
	InviteeID   string     `bson:"invitee_id"`
	Status      string     `bson:"status"`
	CreatedAt   time.Time  `bson:"created_at"`
	RespondedAt *time.Time `bson:"responded_at,omitempty"`
}

// invitationSlotDoc is held by the one pending invitation of an invitee to
// a group; its _id is slotID(group, invitee).
type invitationSlotDoc struct {
	ID           string `bson:"_id"`
	GroupID      string `bson:"group_id"`
	InvitationID string `bson:"invitation_id"`
}

// slotID returns the _id of the invitation slot of inviteeID in groupID.
func slotID(groupID, inviteeID string) string { return groupID + ":" + inviteeID }

func toInvitationDoc(inv *aoba.Invitation) *invitationDoc {
	d := &invitationDoc{
		ID:        inv.ID,
		GroupID:   inv.GroupID,
		InviterID: inv.InviterID,
		InviteeID: inv.InviteeID,
		Status:    string(inv.Status),
		CreatedAt: utc(inv.CreatedAt),
	}
	d.RespondedAt = utcPtr(inv.RespondedAt)
	return d
}

func toInvitation(d *invitationDoc) *aoba.Invitation {
	inv := &aoba.Invitation{
		ID:        d.ID,
		GroupID:   d.GroupID,
		InviterID: d.InviterID,
		InviteeID: d.InviteeID,
		Status:    aoba.InvitationStatus(d.Status),
		CreatedAt: utc(d.CreatedAt),
	}
	inv.RespondedAt = utcPtr(d.RespondedAt)
	return inv
}

func errAlreadyInvited() error {
	return aoba.Errorf(aoba.ECONFLICT, "The user already has a pending invitation to this group.")
}

// CreateInvitation stores inv as pending, then takes the (group, invitee)
// slot for it; when the slot is held by another pending invitation it
// removes inv again and returns ECONFLICT. A slot whose invitation is gone
// or no longer pending is a leftover and is taken over. It also returns
// ECONFLICT when the invitation id is in use.
func (s *Store) CreateInvitation(ctx context.Context, inv *aoba.Invitation) error {
	d := toInvitationDoc(inv)
	d.Status, d.RespondedAt = string(aoba.InvitationPending), nil
	if _, err := s.invitations.InsertOne(ctx, d); mongo.IsDuplicateKeyError(err) {
		return aoba.Errorf(aoba.ECONFLICT, "An invitation with this id already exists.")
	} else if err != nil {
		return wrapErr(err, "insert invitation")
	}
	if err := s.takeSlot(ctx, inv); err != nil {
		s.invitations.DeleteOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: inv.ID}})
		return err
	}
	return nil
}

// takeSlot makes inv the holder of its (group, invitee) slot. It returns
// ECONFLICT when another pending invitation holds it.
func (s *Store) takeSlot(ctx context.Context, inv *aoba.Invitation) error {
	id := slotID(inv.GroupID, inv.InviteeID)
	for attempt := 0; attempt < 3; attempt++ {
		_, err := s.invitationSlots.InsertOne(ctx, invitationSlotDoc{ID: id, GroupID: inv.GroupID, InvitationID: inv.ID})
		if err == nil {
			return nil
		} else if !mongo.IsDuplicateKeyError(err) {
			return wrapErr(err, "take invitation slot")
		}
		var slot invitationSlotDoc
		if err := s.invitationSlots.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&slot); errors.Is(err, mongo.ErrNoDocuments) {
			continue // released meanwhile: try again
		} else if err != nil {
			return wrapErr(err, "find invitation slot")
		}
		// The holder is inserted before its slot, so a holder that is
		// missing or answered means the slot is a leftover.
		n, err := s.invitations.CountDocuments(ctx, bson.D{{Key: "_id", Value: slot.InvitationID}, {Key: "status", Value: string(aoba.InvitationPending)}})
		if err != nil {
			return wrapErr(err, "check invitation slot")
		} else if n > 0 {
			return errAlreadyInvited()
		}
		if _, err := s.invitationSlots.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "invitation_id", Value: slot.InvitationID}}); err != nil {
			return wrapErr(err, "remove stale invitation slot")
		}
	}
	return errAlreadyInvited()
}

// FindInvitationByID returns ENOTFOUND when no invitation has that id.
func (s *Store) FindInvitationByID(ctx context.Context, id string) (*aoba.Invitation, error) {
	var d invitationDoc
	if err := s.invitations.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); errors.Is(err, mongo.ErrNoDocuments) {
		return nil, notFound("Invitation")
	} else if err != nil {
		return nil, wrapErr(err, "find invitation")
	}
	return toInvitation(&d), nil
}

// FindInvitations returns the invitations matching f, oldest first (ties
// broken by id).
func (s *Store) FindInvitations(ctx context.Context, f aoba.InvitationFilter) ([]*aoba.Invitation, error) {
	filter := bson.D{}
	if f.GroupID != "" {
		filter = append(filter, bson.E{Key: "group_id", Value: f.GroupID})
	}
	if f.InviteeID != "" {
		filter = append(filter, bson.E{Key: "invitee_id", Value: f.InviteeID})
	}
	if f.Status != "" {
		filter = append(filter, bson.E{Key: "status", Value: string(f.Status)})
	}
	cur, err := s.invitations.Find(ctx, filter,
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, wrapErr(err, "find invitations")
	}
	return findAll(ctx, cur, toInvitation, "invitations")
}

// invitationResponseDoc claims the one response to an invitation: its _id
// is the invitation id.
type invitationResponseDoc struct {
	ID          string    `bson:"_id"`
	GroupID     string    `bson:"group_id"`
	Status      string    `bson:"status"`
	RespondedAt time.Time `bson:"responded_at"`
}

// RespondInvitation moves a pending invitation to status at time at. The
// response is claimed by inserting a document whose _id is the invitation
// id, which exactly one concurrent caller can do (FerretDB does not make
// conditional updates atomic); the winner then writes the status and frees
// the (group, invitee) slot. A claimed response that was not written (its
// caller died) is written by the next caller. It returns EINVALID when
// status is pending, ENOTFOUND for an unknown id and ECONFLICT when the
// invitation is no longer pending.
func (s *Store) RespondInvitation(ctx context.Context, id string, status aoba.InvitationStatus, at time.Time) (*aoba.Invitation, error) {
	if status == aoba.InvitationPending {
		return nil, aoba.Errorf(aoba.EINVALID, "An invitation cannot be answered with pending.")
	}
	inv, err := s.FindInvitationByID(ctx, id)
	if err != nil {
		return nil, err
	}
	resp := invitationResponseDoc{ID: id, GroupID: inv.GroupID, Status: string(status), RespondedAt: utc(at)}
	if inv.Status == aoba.InvitationPending {
		_, err = s.responses.InsertOne(ctx, resp)
		if err == nil {
			if err := s.applyResponse(ctx, inv, &resp); err != nil {
				return nil, err
			}
			inv.Status, inv.RespondedAt = status, &resp.RespondedAt
			return inv, nil
		} else if !mongo.IsDuplicateKeyError(err) {
			return nil, wrapErr(err, "claim invitation response")
		}
		// Another caller answered first: make sure its answer is written.
		if err := s.responses.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&resp); err != nil {
			return nil, wrapErr(err, "find invitation response")
		}
		if err := s.applyResponse(ctx, inv, &resp); err != nil {
			return nil, err
		}
	}
	return nil, aoba.Errorf(aoba.ECONFLICT, "The invitation has already been answered.")
}

// applyResponse writes the claimed response resp into the invitation, if it
// is still pending, and frees the invitation's slot.
func (s *Store) applyResponse(ctx context.Context, inv *aoba.Invitation, resp *invitationResponseDoc) error {
	_, err := s.invitations.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: inv.ID}, {Key: "status", Value: string(aoba.InvitationPending)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: resp.Status}, {Key: "responded_at", Value: resp.RespondedAt}}}})
	if err != nil {
		return wrapErr(err, "respond to invitation")
	}
	// A failure here leaves a slot that the next CreateInvitation takes
	// over, since its holder is no longer pending.
	s.invitationSlots.DeleteOne(context.WithoutCancel(ctx),
		bson.D{{Key: "_id", Value: slotID(inv.GroupID, inv.InviteeID)}, {Key: "invitation_id", Value: inv.ID}})
	return nil
}
