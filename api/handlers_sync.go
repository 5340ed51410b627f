package api

import (
	"github.com/aoba-chat/aoba"
	"github.com/gofiber/fiber/v2"
)

func (s *Server) sync(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	limit, err := queryInt(c, "limit", aoba.SyncDefaultLimit)
	if err != nil {
		return err
	}
	res, err := s.svc.Sync(c.UserContext(), cl, c.Query("since"), limit)
	if err != nil {
		return err
	}
	return c.JSON(res)
}
