package api

import (
	"time"

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

// presenceState is one entry of the presence batch maps.
type presenceState struct {
	Status   aoba.PresenceStatus `json:"status"`
	LastSeen *time.Time          `json:"lastSeen"`
}

func (s *Server) presenceByName(c *fiber.Ctx) error {
	p, err := s.svc.PresenceByUsername(c.UserContext(), c.Params("username"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"username": p.Username, "status": p.Status, "lastSeen": p.LastSeen})
}

func (s *Server) presenceByID(c *fiber.Ctx) error {
	p, err := s.svc.PresenceByID(c.UserContext(), c.Params("userId"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"userId": p.UserID, "status": p.Status, "lastSeen": p.LastSeen})
}

func (s *Server) presenceBatch(c *fiber.Ctx) error {
	var in struct {
		Usernames []string `json:"usernames"`
	}
	if err := decode(c, &in, "usernames"); err != nil {
		return err
	}
	ps, err := s.svc.PresenceByUsernames(c.UserContext(), in.Usernames)
	if err != nil {
		return err
	}
	out := make(map[string]presenceState, len(ps))
	for _, p := range ps {
		out[p.Username] = presenceState{Status: p.Status, LastSeen: p.LastSeen}
	}
	return c.JSON(fiber.Map{"presence": out})
}

func (s *Server) presenceIDBatch(c *fiber.Ctx) error {
	var in idsBody
	if err := decode(c, &in, "userIds"); err != nil {
		return err
	}
	ps, err := s.svc.PresenceByIDs(c.UserContext(), in.UserIDs)
	if err != nil {
		return err
	}
	out := make(map[string]presenceState, len(ps))
	for _, p := range ps {
		out[p.UserID] = presenceState{Status: p.Status, LastSeen: p.LastSeen}
	}
	return c.JSON(fiber.Map{"presence": out})
}

func (s *Server) sendMessage(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	var in aoba.SendInput
	if err := decode(c, &in, "to", "content"); err != nil {
		return err
	}
	m, err := s.svc.SendMessage(c.UserContext(), cl, in, "")
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(m)
}

func (s *Server) history(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	q := aoba.HistoryQuery{With: c.Query("with"), After: c.Query("after"), Before: c.Query("before")}
	if q.Limit, err = queryInt(c, "limit", 50); err != nil {
		return err
	}
	if q.Offset, err = queryInt(c, "offset", 0); err != nil {
		return err
	}
	ms, total, err := s.svc.History(c.UserContext(), cl, q)
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []*aoba.MessageView{}
	}
	return c.JSON(fiber.Map{"messages": ms, "total": total, "offset": q.Offset, "limit": q.Limit})
}
