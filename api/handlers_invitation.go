package api

import (
	"github.com/aoba-chat/aoba"
	"github.com/gofiber/fiber/v2"
)

func (s *Server) invite(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	var in struct {
		Username string `json:"username"`
	}
	if err := decode(c, &in, "username"); err != nil {
		return err
	}
	inv, err := s.svc.Invite(c.UserContext(), cl, c.Params("groupId"), in.Username)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(inv)
}

func (s *Server) listInvitations(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	invs, err := s.svc.ListInvitations(c.UserContext(), cl)
	if err != nil {
		return err
	}
	if invs == nil {
		invs = []*aoba.InvitationView{}
	}
	return c.JSON(fiber.Map{"invitations": invs, "count": len(invs)})
}

func (s *Server) acceptInvitation(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	res, err := s.svc.AcceptInvitation(c.UserContext(), cl, c.Params("invitationId"))
	if err != nil {
		return err
	}
	return c.JSON(res)
}

func (s *Server) denyInvitation(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	id := c.Params("invitationId")
	if err := s.svc.DenyInvitation(c.UserContext(), cl, id); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"message": "Invitation denied", "invitation_id": id})
}
