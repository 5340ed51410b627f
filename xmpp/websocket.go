package xmpp

import (
	"net"
	"net/http"
	"time"

	contrib "github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/aoba-chat/aoba"
)

// WebSocketHandler returns the Fiber handler of GET /xmpp-websocket: XMPP
// over WebSocket (RFC 7395, subprotocol "xmpp"). The client authenticates
// inside the stream (SASL), never with the auth_token cookie, so a foreign
// page gains nothing from a browser's cookie and every Origin may connect.
// The client IP is the one the HTTP layer stored under aoba.ClientIPLocal
// (X-Forwarded-For from trusted proxies), else the peer's address.
func (s *Server) WebSocketHandler() fiber.Handler {
	upgrade := contrib.New(func(ws *contrib.Conn) {
		var addr net.Addr = ws.RemoteAddr()
		if ip, ok := ws.Locals(aoba.ClientIPLocal).(string); ok && ip != "" {
			addr = &net.IPAddr{IP: net.ParseIP(ip)}
		}
		s.mu.Lock()
		closing := s.closing
		if !closing {
			s.wg.Add(1)
		}
		s.mu.Unlock()
		if closing {
			return
		}
		defer s.wg.Done()
		s.serveTransport(newWSTransport(ws.Conn, addr))
	}, contrib.Config{
		Origins:          []string{"*"},
		Subprotocols:     []string{"xmpp"},
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
		RecoverHandler: func(*contrib.Conn) {
			if r := recover(); r != nil {
				s.log.Error("xmpp: panic in WebSocket stream", "panic", r)
			}
		},
	})
	return func(c *fiber.Ctx) error {
		if !contrib.IsWebSocketUpgrade(c) {
			return c.Status(http.StatusUpgradeRequired).JSON(fiber.Map{
				"error": http.StatusText(http.StatusUpgradeRequired), "message": "This endpoint only accepts WebSocket upgrades (subprotocol xmpp).",
			})
		}
		if s.isClosing() {
			return c.Status(http.StatusServiceUnavailable).JSON(fiber.Map{
				"error": http.StatusText(http.StatusServiceUnavailable), "message": "The server is shutting down.",
			})
		}
		return upgrade(c)
	}
}
