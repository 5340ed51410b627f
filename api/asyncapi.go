package api

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// AsyncAPI is the AsyncAPI 3.0 document of the WebSocket channel GET /ws,
// written by hand: every frame both ways, with OpenAPI 3.0 payload schemas
// (docs/protocol.md is the prose).
//
//go:embed asyncapi.json
var AsyncAPI []byte

func (s *Server) asyncAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(AsyncAPI)
}
