package api

import (
	"github.com/aoba-chat/aoba"
	"github.com/gofiber/fiber/v2"
)

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

func (s *Server) editMessage(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	var in aoba.EditInput
	if err := decode(c, &in, "content"); err != nil {
		return err
	}
	m, err := s.svc.EditMessage(c.UserContext(), cl, c.Params("messageId"), in)
	if err != nil {
		return err
	}
	return c.JSON(m)
}

func (s *Server) deleteMessage(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteMessage(c.UserContext(), cl, c.Params("messageId")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
