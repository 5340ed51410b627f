package api

import (
	"time"

	"github.com/aoba-chat/aoba"
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

// authLimitClass keys the per-IP budget of failed authentications.
const authLimitClass = "auth"

// authenticate requires a valid session token (or, on GET /ws, a
// WebSocket ticket) and stores its claims. Failed authentications count
// against the client IP's budget (the standard rate per minute): over it,
// they get 429 instead of 401, so that a flood of bad tokens is refused
// like any other flood.
func (s *Server) authenticate(c *fiber.Ctx) error {
	cl, err := s.authenticateRequest(c)
	if err == nil {
		c.Locals(aoba.ClaimsLocal, cl)
		return c.Next()
	} else if aoba.ErrorCode(err) != aoba.EUNAUTHORIZED {
		return err
	}
	_, lerr := aoba.Limit(c.UserContext(), s.limiter, aoba.IPRateKey(authLimitClass, s.clientIP(c)), s.rates.Standard)
	switch aoba.ErrorCode(lerr) {
	case aoba.EUNAVAILABLE:
		s.log.Warn("rate limiter failed", "class", authLimitClass, "err", lerr)
	case aoba.ERATELIMIT:
		s.refusals.WithLabelValues(authLimitClass).Inc()
		return lerr
	}
	return err
}

// authenticateRequest returns the claims of the request's token or ticket.
func (s *Server) authenticateRequest(c *fiber.Ctx) (aoba.Claims, error) {
	if ticket := c.Query("ticket"); ticket != "" && c.Path() == "/ws" {
		return s.svc.RedeemTicket(c.UserContext(), ticket)
	}
	token := tokenOf(c)
	if token == "" {
		return aoba.Claims{}, aoba.Errorf(aoba.EUNAUTHORIZED, "Authentication required.")
	}
	return s.svc.Authenticate(c.UserContext(), token)
}
