package api

import "github.com/gofiber/fiber/v2"

func (s *Server) listConversations(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", 50)
	if err != nil {
		return err
	}
	page, err := s.svc.ListConversations(c.UserContext(), cl, limit, c.Query("before"))
	if err != nil {
		return err
	}
	return c.JSON(page)
}

func (s *Server) markRead(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	var in struct {
		UpTo string `json:"up_to"`
	}
	if err := decode(c, &in, "up_to"); err != nil {
		return err
	}
	v, err := s.svc.MarkRead(c.UserContext(), cl, c.Params("conversationId"), in.UpTo)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (s *Server) receipts(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	rs, err := s.svc.Receipts(c.UserContext(), cl, c.Params("conversationId"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"receipts": rs})
}
