package api

import (
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/gofiber/fiber/v2"
)

// presenceState is one entry of the presence batch maps.
type presenceState struct {
	Status   aoba.PresenceStatus `json:"status"`
	LastSeen *time.Time          `json:"lastSeen"`
}

func (s *Server) presenceByName(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	p, err := s.svc.PresenceByUsername(c.UserContext(), cl, c.Params("username"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"username": p.Username, "status": p.Status, "lastSeen": p.LastSeen})
}

func (s *Server) presenceByID(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	p, err := s.svc.PresenceByID(c.UserContext(), cl, c.Params("userId"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"userId": p.UserID, "status": p.Status, "lastSeen": p.LastSeen})
}

func (s *Server) presenceBatch(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	var in struct {
		Usernames []string `json:"usernames"`
	}
	if err := decode(c, &in, "usernames"); err != nil {
		return err
	}
	ps, err := s.svc.PresenceByUsernames(c.UserContext(), cl, in.Usernames)
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
	cl, err := claims(c)
	if err != nil {
		return err
	}
	var in idsBody
	if err := decode(c, &in, "userIds"); err != nil {
		return err
	}
	ps, err := s.svc.PresenceByIDs(c.UserContext(), cl, in.UserIDs)
	if err != nil {
		return err
	}
	out := make(map[string]presenceState, len(ps))
	for _, p := range ps {
		out[p.UserID] = presenceState{Status: p.Status, LastSeen: p.LastSeen}
	}
	return c.JSON(fiber.Map{"presence": out})
}
