package api

import (
	"time"

	"github.com/gofiber/fiber/v2"
)

func (s *Server) refresh(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	token, next, u, err := s.svc.Refresh(c.UserContext(), cl)
	if err != nil {
		return err
	}
	s.setAuthCookie(c, token, next.ExpiresAt)
	return c.JSON(loginResponse{Token: token, ExpiresAt: next.ExpiresAt.UTC(), User: u})
}

type ticketResponse struct {
	Ticket    string    `json:"ticket"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) wsTicket(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	ticket, exp, err := s.svc.IssueTicket(c.UserContext(), cl)
	if err != nil {
		return err
	}
	return c.JSON(ticketResponse{Ticket: ticket, ExpiresAt: exp.UTC()})
}

func (s *Server) listSessions(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	views, err := s.svc.Sessions(c.UserContext(), cl)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"sessions": views})
}

func (s *Server) deleteSession(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	if err := s.svc.EndSession(c.UserContext(), cl, c.Params("sessionId")); err != nil {
		return err
	}
	if c.Params("sessionId") == cl.SessionID {
		s.clearCookie(c)
	}
	return c.SendStatus(fiber.StatusNoContent)
}
