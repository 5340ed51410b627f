package api

import (
	"github.com/gofiber/fiber/v2"
)

func (s *Server) listBlocks(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	users, err := s.svc.ListBlocks(c.UserContext(), cl)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"blocks": users})
}

func (s *Server) blockUser(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	if err := s.svc.BlockUser(c.UserContext(), cl, c.Params("username")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) unblockUser(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	if err := s.svc.UnblockUser(c.UserContext(), cl, c.Params("username")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
