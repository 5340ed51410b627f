package realtime

import (
	"context"
	"net/http"
	"time"

	"github.com/fasthttp/websocket"
	contrib "github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/aoba-chat/aoba"
)

// Handler returns the Fiber handler of GET /ws. It must run after the
// authentication middleware has stored the caller's claims under aoba.ClaimsLocal.
// Before the upgrade it answers, in this order, 401 without claims, 403 for
// a forbidden Origin, 426 to a request that is not a WebSocket upgrade, and
// 503 once Shutdown has begun, each with the contract's
// error body. The upgrade itself is github.com/gofiber/contrib/websocket's.
//
// Origin policy: whenever the request carries the auth_token cookie,
// whichever credential the middleware used, a request that
// aoba.OriginPolicy.Foreign calls foreign (an Origin that is neither the
// server's own, same host as the Host header, nor one of
// Config.AllowedOrigins; or Sec-Fetch-Site: cross-site from an origin not
// listed) is refused with 403, so that a cross-site page can never ride on
// a browser's cookie. The REST API applies the same rule to
// cookie-authenticated writes. A request without an Origin header comes
// from a non-browser client, which cannot be made to send a victim's
// cookie. A cross-site request without the cookie must have
// authenticated with an explicit token (the ?token= parameter: browsers
// cannot set headers on a WebSocket), which a foreign page cannot forge.
// The contrib upgrader's own Origins list is set to "*" on purpose: it
// compares exact strings and cannot express "same host", so this check
// replaces it and always runs first.
//
// Memory: when the app's fasthttp server keeps hijacked connections
// (KeepHijackedConns, which api.New sets), the upgrade handler returns at once
// and the socket runs on its own goroutine, so the request context and
// contrib's per-request copies are freed instead of being held for the
// socket's lifetime (about 6 KB per idle socket). Without it the handler
// serves the socket itself, as contrib expects.
func (n *Node) Handler() fiber.Handler {
	upgrade := contrib.New(func(ws *contrib.Conn) {
		claims, _ := claimsOf(ws.Locals(aoba.ClaimsLocal))
		conn := ws.Conn
		if !n.detach {
			n.serve(conn, claims)
			return
		}
		// Return at once so that fasthttp frees the request context and
		// contrib its copies of the request: the socket lives on in a
		// goroutine of its own and closes its connection itself.
		go func() {
			defer conn.Close()
			defer func() {
				if r := recover(); r != nil {
					n.log.Error("realtime: panic in socket handler", "panic", r)
				}
			}()
			n.serve(conn, claims)
		}()
	}, contrib.Config{
		Origins:          []string{"*"},
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   ReadBufferSize,
		WriteBufferPool:  noWriteBuffer{},
		RecoverHandler: func(*contrib.Conn) {
			if r := recover(); r != nil {
				n.log.Error("realtime: panic in socket handler", "panic", r)
			}
		},
	})
	return func(c *fiber.Ctx) error {
		n.detachOnce.Do(func() { n.detach = c.App().Server().KeepHijackedConns })
		if _, ok := claimsOf(c.Locals(aoba.ClaimsLocal)); !ok {
			return httpError(c, http.StatusUnauthorized, "Authentication required.")
		}
		if !n.originAllowed(c) {
			return httpError(c, http.StatusForbidden, "Origin not allowed.")
		}
		if !contrib.IsWebSocketUpgrade(c) {
			return httpError(c, http.StatusUpgradeRequired, "This endpoint only accepts WebSocket upgrades.")
		}
		if n.isClosing() {
			return httpError(c, http.StatusServiceUnavailable, "The server is shutting down.")
		}
		return upgrade(c)
	}
}

// ReadBufferSize is the read buffer of every socket, held for its
// lifetime: clients send small frames; a larger one is read in several
// calls.
const ReadBufferSize = 512

// noWriteBuffer is the library's write buffer pool, which stays empty: the
// writer frames data frames and pings itself (conn.flush) and the library
// writes only control frames, which need no write buffer, so no socket
// holds one. Should the library ever write a data frame, it would
// allocate a buffer for it (Get returns nil) and drop it afterwards.
type noWriteBuffer struct{}

func (noWriteBuffer) Get() any { return nil }
func (noWriteBuffer) Put(any)  {}

func httpError(c *fiber.Ctx, status int, msg string) error {
	return c.Status(status).JSON(errorData{Error: http.StatusText(status), Message: msg})
}

// originAllowed applies the Origin policy documented on Handler.
func (n *Node) originAllowed(c *fiber.Ctx) bool {
	if c.Cookies(aoba.AuthCookie) == "" {
		return true
	}
	return !n.origins.Foreign(c.Get(fiber.HeaderOrigin), c.Get("Sec-Fetch-Site"), c.Hostname())
}

func claimsOf(v any) (aoba.Claims, bool) {
	switch c := v.(type) {
	case aoba.Claims:
		return c, c.UserID != ""
	case *aoba.Claims:
		if c != nil {
			return *c, c.UserID != ""
		}
	}
	return aoba.Claims{}, false
}

// serve runs one socket: it is the reading goroutine.
func (n *Node) serve(ws *websocket.Conn, claims aoba.Claims) {
	c := newConn(n, ws, claims)
	// Recorded before hello, so that a socket opened after this one's
	// hello is always the newer of the two.
	evicted := n.openSocket(c)
	if !n.track(c) {
		n.closeSocket(c)
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(aoba.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
		return
	}
	defer n.untrack(c)
	// Frames are handled on this goroutine, each under a timeout of its
	// own, and all of them before the socket ends: nothing needs to be
	// cancelled with the socket. A cancelable context here would keep the
	// map of its children, made by the first child, for the socket's whole
	// life (about 370 bytes per socket).
	c.ctx = context.Background()
	n.metrics.sockets.Inc()
	defer n.metrics.sockets.Dec()

	bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Second)
	// On a goroutine of its own: reading the groups from the store needs a
	// deep stack (the embedded SQLite driver), which this goroutine would
	// keep, grown, for the socket's whole idle lifetime.
	added := make(chan error, 1)
	go func() { added <- n.addUser(bctx, c) }()
	if err := <-added; err != nil {
		n.log.Warn("realtime: group memberships unavailable", "err", err)
		c.closeWith(aoba.CloseResync, "group memberships unavailable", false)
	}
	if n.presence != nil {
		if err := n.presence.Connect(bctx, claims.UserID, c.id); err != nil {
			n.log.Warn("realtime: presence connect failed", "err", err)
		}
	}
	n.evict(bctx, claims.UserID, evicted)
	bcancel()

	code, reason := c.readLoop()
	// Closing starts a writer unless one runs: it writes the close frame
	// (none when code is 0) and closes writerDone.
	c.closeWith(code, reason, false)
	<-c.writerDone

	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	n.unwatchAll(cctx, c)
	n.removeUser(cctx, c)
	n.closeSocket(c)
	if n.presence != nil {
		if err := n.presence.Disconnect(cctx, claims.UserID, c.id); err != nil {
			n.log.Warn("realtime: presence disconnect failed", "err", err)
		}
	}
}

// openSocket records c in the socket registry and returns the ids of the
// user's oldest sockets that c takes past Config.MaxSockets, which evict
// closes once c follows its user's topic. A failure is logged: the socket
// stays open and evicts nothing.
func (n *Node) openSocket(c *conn) []string {
	if n.cfg.Sockets == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evicted, err := n.cfg.Sockets.Open(ctx, c.claims.UserID, c.id, n.cfg.MaxSockets)
	if err != nil {
		n.log.Warn("realtime: socket registry open failed", "err", err)
		return nil
	}
	return evicted
}

// closeSocket removes c from the socket registry; a failure is logged.
func (n *Node) closeSocket(c *conn) {
	if n.cfg.Sockets == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.cfg.Sockets.Close(ctx, c.claims.UserID, c.id); err != nil {
		n.log.Warn("realtime: socket registry close failed", "err", err)
	}
}

// evict orders the pods holding the sockets evicted of userID to close
// them with aoba.CloseTooManySockets: one close order on the user's topic.
// A failure is logged.
func (n *Node) evict(ctx context.Context, userID string, evicted []string) {
	if len(evicted) == 0 {
		return
	}
	order := &aoba.CloseOrder{Code: aoba.CloseTooManySockets, Reason: "too many sockets", Conns: evicted}
	if err := n.cfg.Broker.Publish(ctx, aoba.Publication{Topic: aoba.UserTopic(userID), Envelope: aoba.Envelope{Close: order}}); err != nil {
		n.log.Warn("realtime: too-many-sockets close order failed", "err", err)
	}
}

// unwatchAll stops every watch of c, when it closes.
func (n *Node) unwatchAll(ctx context.Context, c *conn) {
	ids := make([]string, 0, len(c.watched))
	for id := range c.watched {
		n.unwatch(ctx, c, id)
		ids = append(ids, id)
	}
	if n.cfg.Watches != nil && len(ids) > 0 {
		if err := n.cfg.Watches.Unwatch(ctx, c.claims.UserID, ids); err != nil {
			n.log.Warn("realtime: watch registry unwatch failed", "err", err)
		}
	}
}
