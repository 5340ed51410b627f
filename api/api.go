// Package api is Aoba's REST API on Fiber: it decodes requests, calls
// aoba.Service, and encodes results and errors in the contract's shapes
// (served as GET /api/openapi.json). It holds no business rule: validation, permissions
// and storage are the Service's.
package api

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// DefaultBodyLimit is the largest request body accepted unless configured.
const DefaultBodyLimit = 1 << 20

// DefaultHeaderLimit is the default size of the per-connection read buffer,
// which bounds the request line and headers (431 above it). The contract's
// longest request line is a user search excluding 100 UUIDs (about 3.8 KB)
// and a browser adds its cookie and headers, so 8 KiB. The buffer is held
// only while a request is read (fasthttp's ReduceMemoryUsage, see New): an
// idle keep-alive connection or an open WebSocket does not keep one.
const DefaultHeaderLimit = 8 << 10

// routeKey is the c.Locals key holding the route template, for metrics.
const routeKey = "aoba.route"

// Config holds the Server's dependencies and settings.
type Config struct {
	Service *aoba.Service
	Limiter aoba.RateLimiter
	Rates   aoba.Rates
	// Pingers are checked by /health, by name.
	Pingers map[string]aoba.Pinger
	// Mode is reported by /health ("embedded" or "scaled-out").
	Mode string
	// Store and Hub say where data lives and how pods share state, for
	// /health: "sqlite" (a file in the data directory) or "mongodb", and
	// "memory" (this process) or "redis". Empty leaves the field out.
	Store string
	Hub   string
	// Warnings are shown by /health and /health/ready, each a sentence
	// naming a configuration's consequence (a hub of one pod on a shared
	// store).
	Warnings []string
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// BodyLimit is the largest request body in bytes (DefaultBodyLimit
	// when zero).
	BodyLimit int
	// HeaderLimit bounds the request line and headers in bytes
	// (DefaultHeaderLimit when zero).
	HeaderLimit int
	// TrustedProxies are the proxies (IPs or CIDRs) whose X-Forwarded-For
	// header names the client (by the rule of Proxies.ClientIP) and whose
	// X-Forwarded-Proto is believed; empty means the peer address is the
	// client. New panics on an entry ParseProxies refuses.
	TrustedProxies []string
	// AllowedOrigins are the origins, besides the server's own, whose pages
	// may send cookie-authenticated state-changing requests, logins and
	// registrations (see crossSite).
	AllowedOrigins []string
	CookieSecure   bool
	// TokenTTL is only informative here: cookies expire with their token.
	TokenTTL time.Duration
	// WebSocket upgrades an authenticated GET /ws; nil answers 503.
	WebSocket fiber.Handler
	// XMPPWebSocket serves GET /xmpp-websocket (XMPP over WebSocket, RFC
	// 7395), which authenticates inside the stream; nil: no route.
	XMPPWebSocket fiber.Handler
	// Static is served at / when set.
	Static fs.FS
	// AdminToken, when not empty, opens the admin API under /api/admin/
	// to requests that present it as a Bearer token; empty leaves the
	// admin API out (404).
	AdminToken string
}

// Server is the HTTP front of Aoba.
type Server struct {
	app      *fiber.App
	svc      *aoba.Service
	limiter  aoba.RateLimiter
	rates    aoba.Rates
	pingers  map[string]aoba.Pinger
	mode     string
	store    string
	hub      string
	log      *slog.Logger
	secure   bool
	proxies  Proxies
	ws       fiber.Handler
	xmppWS   fiber.Handler
	registry *prometheus.Registry
	origins  aoba.OriginPolicy
	// adminDigest is the SHA-256 of Config.AdminToken, nil when the admin
	// API is off.
	adminDigest []byte
	warnings    []string
	// draining is set by Drain: /health/ready then answers 503.
	draining atomic.Bool

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	refusals *prometheus.CounterVec
}

// New returns a Server with every route of the contract registered. It
// panics when Service or Limiter is nil or when the metrics cannot be
// registered on Registry (a programming error).
func New(cfg Config) *Server {
	if cfg.Service == nil || cfg.Limiter == nil {
		panic("api: Service and Limiter are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.HeaderLimit <= 0 {
		cfg.HeaderLimit = DefaultHeaderLimit
	}
	cfg.Rates = cfg.Rates.WithDefaults()
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s := &Server{
		svc: cfg.Service, limiter: cfg.Limiter, rates: cfg.Rates, pingers: cfg.Pingers, mode: cfg.Mode,
		store: cfg.Store, hub: cfg.Hub, warnings: cfg.Warnings,
		log: cfg.Logger, secure: cfg.CookieSecure, ws: cfg.WebSocket, xmppWS: cfg.XMPPWebSocket, registry: cfg.Registry,
		origins: aoba.NewOriginPolicy(cfg.AllowedOrigins),
	}
	proxies, err := ParseProxies(cfg.TrustedProxies)
	if err != nil {
		panic("api: TrustedProxies: " + err.Error())
	}
	s.proxies = proxies
	if cfg.AdminToken != "" {
		d := sha256.Sum256([]byte(cfg.AdminToken))
		s.adminDigest = d[:]
	}
	s.initMetrics()

	fc := fiber.Config{
		AppName:               "aoba",
		Immutable:             true,
		BodyLimit:             cfg.BodyLimit,
		ReadBufferSize:        cfg.HeaderLimit,
		DisableStartupMessage: true,
		// Bodies are JSON: a multipart body is refused (415), never parsed
		// into memory or temporary files first.
		DisablePreParseMultipartForm: true,
		ErrorHandler:                 s.errorHandler,
		ReadTimeout:                  30 * time.Second,
		WriteTimeout:                 30 * time.Second,
		IdleTimeout:                  120 * time.Second,
		// Give the read and write buffers back to their pools between
		// requests. Above all, a WebSocket upgrade then hands its socket
		// over without the read buffer (when the client sent nothing past
		// the request, as a client waiting for the 101 does), instead of
		// every open socket reading through, and keeping, HeaderLimit bytes
		// for its whole life. It costs a pool round trip per request.
		ReduceMemoryUsage: true,
	}
	// No ProxyHeader: Fiber would take the left-most X-Forwarded-For
	// address, which the client writes; s.clientIP applies our rule. The
	// trusted-proxy check still limits Fiber's own use of X-Forwarded-Host
	// and X-Forwarded-Proto (c.Hostname, c.Protocol) to trusted peers.
	fc.EnableTrustedProxyCheck = true
	fc.TrustedProxies = cfg.TrustedProxies
	s.app = fiber.New(fc)
	// Sockets outlive their upgrade handler, so that fasthttp frees each
	// upgrade's request context (see realtime.Node.Handler).
	s.app.Server().KeepHijackedConns = true
	s.app.Use(s.observe, s.recoverPanic, securityHeaders, s.crossSite(false), bodyRules)
	s.routes()
	if cfg.Static != nil {
		s.app.Use(filesystem.New(filesystem.Config{
			Root:  http.FS(cfg.Static),
			Index: "index.html",
			Next: func(c *fiber.Ctx) bool {
				p := c.Path()
				return strings.HasPrefix(p, "/api/") || p == "/api" || p == "/ws" || p == "/health" || strings.HasPrefix(p, "/health/") || p == "/metrics"
			},
		}))
	}
	return s
}

// contentSecurityPolicy lets the SPA load only its own scripts, styles and
// images and talk only to its own origin (REST and the WebSocket: 'self'
// covers ws: and wss: on the same host).
const contentSecurityPolicy = "default-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// securityHeaders sets the headers every response carries: no MIME
// sniffing, no referrer, no framing, and the SPA's Content-Security-Policy.
func securityHeaders(c *fiber.Ctx) error {
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderContentSecurityPolicy, contentSecurityPolicy)
	return c.Next()
}

// App returns the Fiber application, to Listen on or to Test.
func (s *Server) App() *fiber.App { return s.app }

// handle registers a route whose template is recorded for metrics and logs.
func (s *Server) handle(method, path string, handlers ...fiber.Handler) {
	tag := func(c *fiber.Ctx) error {
		c.Locals(routeKey, path)
		return c.Next()
	}
	s.app.Add(method, path, append([]fiber.Handler{tag}, handlers...)...)
}

// routes registers every route of the contract.
func (s *Server) routes() {
	std := s.limit(aoba.ClassStandard, s.rates.Standard)
	batch := s.limit(aoba.ClassBatch, s.rates.Batch)
	search := s.limit(aoba.ClassSearch, s.rates.Search)
	auth := s.authenticate

	s.handle(fiber.MethodGet, "/health", s.health)
	s.handle(fiber.MethodGet, "/health/live", s.live)
	s.handle(fiber.MethodGet, "/health/ready", s.ready)
	s.handle(fiber.MethodGet, "/metrics", s.metrics())
	s.handle(fiber.MethodGet, "/api/openapi.json", s.openAPI)
	s.handle(fiber.MethodGet, "/api/asyncapi.json", s.asyncAPI)
	s.handle(fiber.MethodGet, "/ws", s.ipLimit(aoba.ClassStandard, s.rates.Standard), auth, s.upgrade)
	if s.xmppWS != nil {
		s.handle(fiber.MethodGet, "/xmpp-websocket", s.ipLimit(aoba.ClassStandard, s.rates.Standard), s.xmppWS)
	}

	s.handle(fiber.MethodPost, "/api/auth/register", s.crossSite(true), std, s.register)
	s.handle(fiber.MethodPost, "/api/auth/login", s.crossSite(true), std, s.login)
	s.handle(fiber.MethodPost, "/api/auth/logout", auth, std, s.logout)
	s.handle(fiber.MethodPost, "/api/auth/refresh", auth, std, s.refresh)
	s.handle(fiber.MethodPost, "/api/auth/ws-ticket", auth, std, s.wsTicket)

	s.handle(fiber.MethodGet, "/api/users/me", auth, std, s.me)
	s.handle(fiber.MethodDelete, "/api/users/me", auth, std, s.deleteMe)
	s.handle(fiber.MethodPut, "/api/users/me/username", auth, std, s.changeUsername)
	s.handle(fiber.MethodPut, "/api/users/me/password", auth, std, s.changePassword)
	s.handle(fiber.MethodGet, "/api/users/me/sessions", auth, std, s.listSessions)
	s.handle(fiber.MethodDelete, "/api/users/me/sessions/:sessionId", auth, std, s.deleteSession)
	s.handle(fiber.MethodGet, "/api/users/me/blocks", auth, std, s.listBlocks)
	s.handle(fiber.MethodPut, "/api/users/me/blocks/:username", auth, std, s.blockUser)
	s.handle(fiber.MethodDelete, "/api/users/me/blocks/:username", auth, std, s.unblockUser)
	s.handle(fiber.MethodGet, "/api/users", auth, search, s.searchUsers)
	s.handle(fiber.MethodGet, "/api/users/:username", auth, std, s.userByName)

	s.handle(fiber.MethodGet, "/api/metadata/users/:userId", auth, std, s.metadata)
	s.handle(fiber.MethodPost, "/api/metadata/users/batch", auth, batch, s.metadataBatch)

	s.handle(fiber.MethodGet, "/api/groups", auth, std, s.listGroups)
	s.handle(fiber.MethodPost, "/api/groups", auth, std, s.createGroup)
	s.handle(fiber.MethodGet, "/api/groups/:groupId", auth, std, s.getGroup)
	s.handle(fiber.MethodDelete, "/api/groups/:groupId", auth, std, s.deleteGroup)
	s.handle(fiber.MethodGet, "/api/groups/:groupId/admin", auth, std, s.groupAdmin)
	s.handle(fiber.MethodPost, "/api/groups/:groupId/leave", auth, std, s.leaveGroup)
	s.handle(fiber.MethodPost, "/api/groups/:groupId/transfer", auth, std, s.transfer)
	s.handle(fiber.MethodGet, "/api/groups/:groupId/members", auth, std, s.listMembers)
	s.handle(fiber.MethodPost, "/api/groups/:groupId/members", auth, std, s.addMember)
	s.handle(fiber.MethodDelete, "/api/groups/:groupId/members/:username", auth, std, s.removeMember)
	s.handle(fiber.MethodPut, "/api/groups/:groupId/members/:username/role", auth, std, s.changeRole)
	s.handle(fiber.MethodPost, "/api/groups/:groupId/invitations", auth, std, s.invite)

	s.handle(fiber.MethodGet, "/api/invitations", auth, std, s.listInvitations)
	s.handle(fiber.MethodPost, "/api/invitations/:invitationId/accept", auth, std, s.acceptInvitation)
	s.handle(fiber.MethodPost, "/api/invitations/:invitationId/deny", auth, std, s.denyInvitation)

	s.handle(fiber.MethodGet, "/api/presence/:username", auth, std, s.presenceByName)
	s.handle(fiber.MethodPost, "/api/presence/batch", auth, batch, s.presenceBatch)
	s.handle(fiber.MethodGet, "/api/presence/id/:userId", auth, std, s.presenceByID)
	s.handle(fiber.MethodPost, "/api/presence/id/batch", auth, batch, s.presenceIDBatch)

	s.handle(fiber.MethodPost, "/api/messages", auth, std, s.sendMessage)
	s.handle(fiber.MethodGet, "/api/messages", auth, std, s.history)
	s.handle(fiber.MethodPatch, "/api/messages/:messageId", auth, std, s.editMessage)
	s.handle(fiber.MethodDelete, "/api/messages/:messageId", auth, std, s.deleteMessage)

	s.handle(fiber.MethodGet, "/api/sync", auth, std, s.sync)

	s.handle(fiber.MethodGet, "/api/conversations", auth, std, s.listConversations)
	s.handle(fiber.MethodPut, "/api/conversations/:conversationId/read", auth, std, s.markRead)
	s.handle(fiber.MethodGet, "/api/conversations/:conversationId/receipts", auth, std, s.receipts)

	s.adminRoutes()
}

// observe is the outermost middleware: it gives the request its id (the
// X-Request-Id response header), turns errors into responses, then
// counts, times and logs the request, with the token query parameter
// redacted. Probes (/health/live and /health/ready) are logged at debug
// level: a load balancer asks every few seconds.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	c.Set(RequestIDHeader, s.requestID(c))
	if err := c.Next(); err != nil {
		if herr := s.errorHandler(c, err); herr != nil {
			s.log.Error("write error response", "err", herr)
			c.Status(fiber.StatusInternalServerError)
		}
	}
	elapsed := time.Since(start)
	status := c.Response().StatusCode()
	route, _ := c.Locals(routeKey).(string)
	if route == "" {
		if status == fiber.StatusNotFound || status == fiber.StatusMethodNotAllowed {
			route = "unmatched"
		} else {
			route = "static"
		}
	}
	code := strconv.Itoa(status)
	s.requests.WithLabelValues(c.Method(), route, code).Inc()
	s.latency.WithLabelValues(c.Method(), route, code).Observe(elapsed.Seconds())

	attrs := []any{
		slog.String("method", c.Method()),
		slog.String("route", route),
		slog.String("path", c.Path()),
		slog.Int("status", status),
		slog.Float64("duration", float64(elapsed.Microseconds())/1000),
		slog.String("ip", s.clientIP(c)),
		slog.String("request_id", s.requestID(c)),
	}
	if q := redactedQuery(c); q != "" {
		attrs = append(attrs, slog.String("query", q))
	}
	if cl, ok := claimsOf(c); ok {
		attrs = append(attrs, slog.String("user_id", cl.UserID))
	}
	level := slog.LevelInfo
	if route == "/health/live" || route == "/health/ready" {
		level = slog.LevelDebug
	}
	s.log.Log(c.UserContext(), level, "request", attrs...)
	return nil
}

// redactedQuery returns the query string with the token parameter's value
// replaced, so that no token reaches the logs.
func redactedQuery(c *fiber.Ctx) string {
	args := c.Context().QueryArgs()
	if args.Len() == 0 {
		return ""
	}
	var b strings.Builder
	args.VisitAll(func(k, v []byte) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.Write(k)
		b.WriteByte('=')
		if strings.EqualFold(string(k), "token") {
			b.WriteString("REDACTED")
		} else {
			b.WriteString(strconv.QuoteToASCII(string(v)))
		}
	})
	return b.String()
}

// recoverPanic turns a panic in a handler into a logged 500.
func (s *Server) recoverPanic(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", c.Method(), "path", c.Path(), "request_id", s.requestID(c), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = aoba.Errorf(aoba.EINTERNAL, "panic: %v", r)
		}
	}()
	return c.Next()
}

// claimsOf returns the claims of an authenticated request.
func claimsOf(c *fiber.Ctx) (aoba.Claims, bool) {
	cl, ok := c.Locals(aoba.ClaimsLocal).(aoba.Claims)
	return cl, ok
}

// tokenOf returns the request's token: from the Authorization header, then
// the cookie, then the query.
func tokenOf(c *fiber.Ctx) string {
	if t, ok := bearer(c); ok {
		return t
	}
	if t := c.Cookies(aoba.AuthCookie); t != "" {
		return t
	}
	return c.Query("token")
}

// cookieAuthenticated reports whether tokenOf takes the request's token from
// the auth_token cookie: there is one, and no Bearer Authorization header.
func cookieAuthenticated(c *fiber.Ctx) bool {
	if _, ok := bearer(c); ok {
		return false
	}
	return c.Cookies(aoba.AuthCookie) != ""
}

// bearer returns the token of an `Authorization: Bearer <token>` header and
// whether the request has one.
func bearer(c *fiber.Ctx) (string, bool) {
	if h := c.Get(fiber.HeaderAuthorization); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:]), true
	}
	return "", false
}

// crossSite refuses with 403 a request from a page of another site (see
// aoba.OriginPolicy.Foreign: an Origin that is neither the server's own nor
// in Config.AllowedOrigins, or Sec-Fetch-Site: cross-site) when it is
// state-changing (POST, PUT, PATCH or DELETE) and authenticated by the
// auth_token cookie, which a browser attaches whatever page sends it; with
// always set (login and register), whatever its credentials. A request
// authenticated by a Bearer header or ?token= passes: a foreign page
// cannot know the token. So does one with neither Origin nor
// Sec-Fetch-Site (curl, mobile apps).
func (s *Server) crossSite(always bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		switch c.Method() {
		case fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch, fiber.MethodDelete:
		default:
			return c.Next()
		}
		if !always {
			if !cookieAuthenticated(c) {
				return c.Next()
			}
		}
		if s.origins.Foreign(c.Get(fiber.HeaderOrigin), c.Get("Sec-Fetch-Site"), c.Hostname()) {
			return aoba.Errorf(aoba.EFORBIDDEN, "Cross-site requests are not allowed from this origin.")
		}
		return c.Next()
	}
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
	// A limiter that cannot be reached leaves the 401 as it is.
	if _, lerr := s.spend(c, authLimitClass, aoba.IPRateKey(authLimitClass, s.clientIP(c)), s.rates.Standard); aoba.ErrorCode(lerr) == aoba.ERATELIMIT {
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

// upgrade runs after authenticate for GET /ws and hands the request to the
// WebSocket handler, which applies the Origin policy of cookie-carrying
// upgrades (realtime.Node.Handler) before upgrading.
func (s *Server) upgrade(c *fiber.Ctx) error {
	if s.ws == nil {
		return aoba.Errorf(aoba.EUNAVAILABLE, "The WebSocket channel is not available.")
	}
	return s.ws(c)
}

// limit enforces the class's budget per user (or per client IP before
// login), by the one rule of aoba.Limit, and sets the rate-limit headers.
func (s *Server) limit(class string, n int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		key := aoba.IPRateKey(class, s.clientIP(c))
		if cl, ok := claimsOf(c); ok {
			key = aoba.UserRateKey(class, cl.UserID)
		}
		res, err := s.spend(c, class, key, n)
		if aoba.ErrorCode(err) == aoba.EUNAVAILABLE {
			return err
		}
		c.Set("X-RateLimit-Limit", strconv.Itoa(res.Limit))
		c.Set("X-RateLimit-Remaining", strconv.Itoa(max(res.Remaining, 0)))
		reset := res.Reset
		if reset.IsZero() {
			reset = time.Now().Add(aoba.RateWindow)
		}
		c.Set("X-RateLimit-Reset", strconv.FormatInt(int64(math.Ceil(float64(reset.UnixMilli())/1000)), 10))
		if err != nil {
			return err
		}
		return c.Next()
	}
}

// spend counts one request of class against key's budget of n per
// aoba.RateWindow (aoba.Limit), logs a limiter failure and counts a
// refusal in the metrics. It returns aoba.Limit's result and error.
func (s *Server) spend(c *fiber.Ctx, class, key string, n int) (aoba.RateResult, error) {
	res, err := aoba.Limit(c.UserContext(), s.limiter, key, n)
	switch aoba.ErrorCode(err) {
	case aoba.EUNAVAILABLE:
		s.log.Warn("rate limiter failed", "class", class, "err", err)
	case aoba.ERATELIMIT:
		s.refusals.WithLabelValues(class).Inc()
	}
	return res, err
}

// ipLimit counts every request against the client IP's budget in class,
// signed in or not: each WebSocket upgrade spends the IP's standard budget,
// so that one address cannot open sockets without bound. Over it the
// request gets 429 with Retry-After (an ERATELIMIT error), and 503 (an
// EUNAVAILABLE error) when the limiter cannot be reached.
func (s *Server) ipLimit(class string, n int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if _, err := s.spend(c, class, aoba.IPRateKey(class, s.clientIP(c)), n); err != nil {
			return err
		}
		return c.Next()
	}
}

// health checks every pinger: 200 when all answer, 503 otherwise.
func (s *Server) health(c *fiber.Ctx) error {
	checks, failed, degraded := s.check(c.UserContext(), 3*time.Second)
	body := fiber.Map{"status": "ok", "mode": s.mode, "checks": checks}
	if s.store != "" {
		body["store"] = s.store
	}
	if s.hub != "" {
		body["hub"] = s.hub
	}
	if len(s.warnings) > 0 {
		body["warnings"] = s.warnings
	}
	if len(failed) > 0 {
		body["status"] = "unavailable"
		c.Status(fiber.StatusServiceUnavailable)
	} else if degraded {
		body["status"] = "degraded"
	}
	return c.JSON(body)
}
