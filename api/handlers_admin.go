package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"

	"github.com/aoba-chat/aoba"
	"github.com/gofiber/fiber/v2"
)

// adminRoutes registers the admin API under /api/admin/ when an admin
// token is configured; without one none of its routes exists (404).
func (s *Server) adminRoutes() {
	if s.adminDigest == nil {
		return
	}
	admin := s.adminAuth
	s.handle(fiber.MethodGet, "/api/admin/users", admin, s.adminListUsers)
	s.handle(fiber.MethodGet, "/api/admin/users/:user", admin, s.adminGetUser)
	s.handle(fiber.MethodPost, "/api/admin/users/:user/disable", admin, s.adminAction("disable", s.svc.DisableUser))
	s.handle(fiber.MethodPost, "/api/admin/users/:user/enable", admin, s.adminAction("enable", s.svc.EnableUser))
	s.handle(fiber.MethodPost, "/api/admin/users/:user/logout", admin, s.adminAction("logout", s.svc.ForceLogout))
	s.handle(fiber.MethodDelete, "/api/admin/users/:user", admin, s.adminDeleteUser)
}

// adminAuth lets a request through only with `Authorization: Bearer
// <Config.AdminToken>`, compared in constant time (digests of equal
// length, so not even the token's length leaks). Any other request, a
// user's session token included, gets 401, logged with the client address
// and counted against that address's budget of failed authentications
// (429 over it), like a bad session token.
func (s *Server) adminAuth(c *fiber.Ctx) error {
	token, ok := bearer(c)
	given := sha256.Sum256([]byte(token))
	if ok && subtle.ConstantTimeCompare(given[:], s.adminDigest) == 1 {
		return c.Next()
	}
	ip := s.clientIP(c)
	s.log.Warn("admin authentication failed", "method", c.Method(), "path", c.Path(), "admin_ip", ip)
	if _, lerr := s.spend(c, authLimitClass, aoba.IPRateKey(authLimitClass, ip), s.rates.Standard); aoba.ErrorCode(lerr) == aoba.ERATELIMIT {
		return lerr
	}
	return aoba.Errorf(aoba.EUNAUTHORIZED, "The admin API requires the admin token (AOBA_ADMIN_TOKEN) as a Bearer token.")
}

// audit logs one admin action with the address it came from (the client
// address as the trusted proxies name it), its target and its outcome.
func (s *Server) audit(c *fiber.Ctx, action string, err error, attrs ...any) {
	attrs = append([]any{slog.String("action", action), slog.String("admin_ip", s.clientIP(c))}, attrs...)
	if err != nil {
		s.log.Warn("admin action failed", append(attrs, slog.String("error", aoba.ErrorMessage(err)))...)
		return
	}
	s.log.Info("admin action", attrs...)
}

// adminUserList is the body of GET /api/admin/users.
type adminUserList struct {
	Users      []*aoba.AdminUser `json:"users"`
	Total      int               `json:"total"`
	Page       int               `json:"page"`
	Limit      int               `json:"limit"`
	TotalPages int               `json:"total_pages"`
}

func (s *Server) adminListUsers(c *fiber.Ctx) error {
	q := aoba.AdminSearch{Query: c.Query("q")}
	var err error
	if q.Page, err = queryInt(c, "page", 1); err != nil {
		return err
	}
	if q.Limit, err = queryInt(c, "limit", aoba.DefaultSearchSize); err != nil {
		return err
	}
	users, total, err := s.svc.AdminUsers(c.UserContext(), q)
	s.audit(c, "list_users", err, slog.String("query", q.Query), slog.Int("page", q.Page))
	if err != nil {
		return err
	}
	if users == nil {
		users = []*aoba.AdminUser{}
	}
	return c.JSON(adminUserList{Users: users, Total: total, Page: q.Page, Limit: q.Limit, TotalPages: (total + q.Limit - 1) / q.Limit})
}

func (s *Server) adminGetUser(c *fiber.Ctx) error {
	ref := c.Params("user")
	v, err := s.svc.AdminUser(c.UserContext(), ref)
	s.audit(c, "get_user", err, target(ref, v)...)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// adminAction is the handler of an action on one account that answers
// with the account's admin view.
func (s *Server) adminAction(action string, do func(ctx context.Context, ref string) (*aoba.AdminUser, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ref := c.Params("user")
		v, err := do(c.UserContext(), ref)
		s.audit(c, action, err, target(ref, v)...)
		if err != nil {
			return err
		}
		return c.JSON(v)
	}
}

func (s *Server) adminDeleteUser(c *fiber.Ctx) error {
	ref := c.Params("user")
	u, err := s.svc.AdminDeleteUser(c.UserContext(), ref)
	attrs := []any{slog.String("ref", ref)}
	if u != nil {
		attrs = append(attrs, slog.String("user_id", u.ID), slog.String("username", u.Username))
	}
	s.audit(c, "delete", err, attrs...)
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// target returns the log attributes naming the account of an admin
// action: the reference given and, once found, its id and username.
func target(ref string, v *aoba.AdminUser) []any {
	attrs := []any{slog.String("ref", ref)}
	if v != nil {
		attrs = append(attrs, slog.String("user_id", v.ID), slog.String("username", v.Username))
	}
	return attrs
}
