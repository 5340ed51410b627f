package api

import (
	"github.com/aoba-chat/aoba"
	"github.com/gofiber/fiber/v2"
)

// RequestIDHeader carries the request id: read from a trusted proxy,
// written on every response.
const RequestIDHeader = "X-Request-Id"

// requestIDKey is the c.Locals key holding the request id.
const requestIDKey = "aoba.request_id"

// maxRequestID is the longest request id taken from a proxy.
const maxRequestID = 128

// requestID returns the request's id, computed once and kept in c.Locals:
// the X-Request-Id of a trusted proxy (AOBA_TRUSTED_PROXIES) when it is a
// sane one (validRequestID), so that the proxy's logs and ours name the
// request alike; otherwise a new UUID. A client's own header is never
// taken: it would let anyone write what our logs say.
func (s *Server) requestID(c *fiber.Ctx) string {
	if id, ok := c.Locals(requestIDKey).(string); ok {
		return id
	}
	id := c.Get(RequestIDHeader)
	if id == "" || !validRequestID(id) || !s.proxies.Trusts(peerAddr(c)) {
		id = aoba.NewID()
	}
	c.Locals(requestIDKey, id)
	return id
}

// validRequestID reports whether id is 1 to maxRequestID characters among
// letters, digits and . _ : + / = - (UUIDs, nginx's $request_id, base64
// trace ids), nothing a log reader could mistake for structure.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case b == '.', b == '_', b == ':', b == '+', b == '/', b == '=', b == '-':
		default:
			return false
		}
	}
	return true
}
