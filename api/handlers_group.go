package api

import (
	"github.com/aoba-chat/aoba"
	"github.com/gofiber/fiber/v2"
)

func (s *Server) listGroups(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	gs, err := s.svc.ListGroups(c.UserContext(), cl)
	if err != nil {
		return err
	}
	if gs == nil {
		gs = []*aoba.GroupView{}
	}
	return c.JSON(fiber.Map{"groups": gs, "count": len(gs)})
}

func (s *Server) createGroup(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	var in struct {
		Name           string   `json:"name"`
		InitialMembers []string `json:"initial_members"`
	}
	if err := decode(c, &in, "name"); err != nil {
		return err
	}
	res, err := s.svc.CreateGroup(c.UserContext(), cl, in.Name, in.InitialMembers)
	if err != nil {
		return err
	}
	if res.Invitations == nil {
		res.Invitations = []*aoba.InvitationView{}
	}
	if res.UnknownUsers == nil {
		res.UnknownUsers = []string{}
	}
	return c.Status(fiber.StatusCreated).JSON(res)
}

func (s *Server) getGroup(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	g, err := s.svc.GetGroup(c.UserContext(), cl, c.Params("groupId"))
	if err != nil {
		return err
	}
	return c.JSON(g)
}

func (s *Server) deleteGroup(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteGroup(c.UserContext(), cl, c.Params("groupId")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) groupAdmin(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	v, err := s.svc.GroupAdmin(c.UserContext(), cl, c.Params("groupId"))
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (s *Server) leaveGroup(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	if err := s.svc.LeaveGroup(c.UserContext(), cl, c.Params("groupId")); err != nil {
		return err
	}
	return c.JSON(messageBody{Message: "Left the group successfully"})
}

func (s *Server) transfer(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	var in struct {
		NewOwner string `json:"newOwner"`
	}
	if err := decode(c, &in, "newOwner"); err != nil {
		return err
	}
	res, err := s.svc.TransferOwnership(c.UserContext(), cl, c.Params("groupId"), in.NewOwner)
	if err != nil {
		return err
	}
	return c.JSON(res)
}

func (s *Server) listMembers(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	ms, err := s.svc.ListMembers(c.UserContext(), cl, c.Params("groupId"))
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []*aoba.Member{}
	}
	return c.JSON(fiber.Map{"members": ms, "total_count": len(ms)})
}

func (s *Server) addMember(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	var in struct {
		Username string `json:"username"`
		Role     string `json:"role"`
	}
	if err := decode(c, &in, "username"); err != nil {
		return err
	}
	m, err := s.svc.AddMember(c.UserContext(), cl, c.Params("groupId"), in.Username, in.Role)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(m)
}

func (s *Server) removeMember(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	if err := s.svc.RemoveMember(c.UserContext(), cl, c.Params("groupId"), c.Params("username")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) changeRole(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	var in struct {
		Role string `json:"role"`
	}
	if err := decode(c, &in, "role"); err != nil {
		return err
	}
	m, err := s.svc.ChangeRole(c.UserContext(), cl, c.Params("groupId"), c.Params("username"), in.Role)
	if err != nil {
		return err
	}
	return c.JSON(m)
}
