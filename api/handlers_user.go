package api

import (
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/gofiber/fiber/v2"
)

// messageBody is the body of the simple {message} responses.
type messageBody struct {
	Message string `json:"message"`
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginResponse struct {
	Token     string     `json:"token"`
	ExpiresAt time.Time  `json:"expires_at"`
	User      *aoba.User `json:"user"`
}

func (s *Server) register(c *fiber.Ctx) error {
	var in credentials
	if err := decode(c, &in, "username", "password"); err != nil {
		return err
	}
	u, err := s.svc.Register(c.UserContext(), in.Username, in.Password)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(u)
}

func (s *Server) login(c *fiber.Ctx) error {
	var in credentials
	if err := decode(c, &in, "username", "password"); err != nil {
		return err
	}
	dev := aoba.Device{UserAgent: c.Get(fiber.HeaderUserAgent), IP: s.clientIP(c)}
	token, cl, u, err := s.svc.Login(c.UserContext(), in.Username, in.Password, dev)
	if err != nil {
		return err
	}
	s.setAuthCookie(c, token, cl.ExpiresAt)
	return c.JSON(loginResponse{Token: token, ExpiresAt: cl.ExpiresAt.UTC(), User: u})
}

// setAuthCookie sets the auth cookie to token until expires: HttpOnly,
// SameSite=Lax, path /, and Secure when the server is configured so
// (CookieSecure) or the request came over HTTPS (viaHTTPS). Every route that
// hands out a session token sets its cookie with it.
func (s *Server) setAuthCookie(c *fiber.Ctx, token string, expires time.Time) {
	c.Cookie(&fiber.Cookie{
		Name: aoba.AuthCookie, Value: token, Path: "/", Expires: expires,
		HTTPOnly: true, Secure: s.secure || s.viaHTTPS(c), SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// clearCookie expires the auth cookie in the browser, with the same
// attributes as setAuthCookie.
func (s *Server) clearCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{
		Name: aoba.AuthCookie, Value: "", Path: "/", Expires: time.Unix(0, 0), MaxAge: -1,
		HTTPOnly: true, Secure: s.secure || s.viaHTTPS(c), SameSite: fiber.CookieSameSiteLaxMode,
	})
}

func (s *Server) logout(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	if err := s.svc.Logout(c.UserContext(), cl); err != nil {
		return err
	}
	s.clearCookie(c)
	return c.JSON(messageBody{Message: "Logged out successfully"})
}

func (s *Server) me(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	u, err := s.svc.Me(c.UserContext(), cl)
	if err != nil {
		return err
	}
	return c.JSON(u)
}

func (s *Server) deleteMe(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteAccount(c.UserContext(), cl); err != nil {
		return err
	}
	s.clearCookie(c)
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) changeUsername(c *fiber.Ctx) error {
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
	u, err := s.svc.ChangeUsername(c.UserContext(), cl, in.Username)
	if err != nil {
		return err
	}
	return c.JSON(u)
}

func (s *Server) changePassword(c *fiber.Ctx) error {
	cl, err := claims(c)
	if err != nil {
		return err
	}
	var in struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if err := decode(c, &in, "current_password", "new_password"); err != nil {
		return err
	}
	if err := s.svc.ChangePassword(c.UserContext(), cl, in.Current, in.New); err != nil {
		return err
	}
	return c.JSON(messageBody{Message: "Password updated successfully"})
}

type searchResponse struct {
	Users      []*aoba.User `json:"users"`
	Total      int          `json:"total"`
	Page       int          `json:"page"`
	Limit      int          `json:"limit"`
	TotalPages int          `json:"total_pages"`
}

func (s *Server) searchUsers(c *fiber.Ctx) error {
	q := aoba.UserSearch{Query: c.Query("q"), Exclude: SplitList(c.Query("exclude"))}
	var err error
	if q.Page, err = queryInt(c, "page", 1); err != nil {
		return err
	}
	if q.Limit, err = queryInt(c, "limit", aoba.DefaultSearchSize); err != nil {
		return err
	}
	users, total, err := s.svc.SearchUsers(c.UserContext(), q)
	if err != nil {
		return err
	}
	if users == nil {
		users = []*aoba.User{}
	}
	return c.JSON(searchResponse{Users: users, Total: total, Page: q.Page, Limit: q.Limit, TotalPages: (total + q.Limit - 1) / q.Limit})
}

func (s *Server) userByName(c *fiber.Ctx) error {
	u, err := s.svc.FindUserByUsername(c.UserContext(), c.Params("username"))
	if err != nil {
		return err
	}
	return c.JSON(u)
}

func (s *Server) metadata(c *fiber.Ctx) error {
	m, err := s.svc.FindMetadata(c.UserContext(), c.Params("userId"))
	if err != nil {
		return err
	}
	return c.JSON(m)
}

type idsBody struct {
	UserIDs []string `json:"userIds"`
}

func (s *Server) metadataBatch(c *fiber.Ctx) error {
	var in idsBody
	if err := decode(c, &in, "userIds"); err != nil {
		return err
	}
	ms, err := s.svc.FindMetadataBatch(c.UserContext(), in.UserIDs)
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []*aoba.Metadata{}
	}
	return c.JSON(fiber.Map{"users": ms})
}
