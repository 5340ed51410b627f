package api

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/aoba-chat/aoba"
	"github.com/gofiber/fiber/v2"
)

// ErrorResponse is the body of every error: the status text and one human
// sentence.
type ErrorResponse struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// fiberMessages gives Fiber's own errors a sentence of the contract's style
// instead of Fiber's "Cannot GET /x".
var fiberMessages = map[int]string{
	http.StatusNotFound:                    "Route not found.",
	http.StatusMethodNotAllowed:            "Method not allowed.",
	http.StatusRequestEntityTooLarge:       "Request body is too large.",
	http.StatusRequestHeaderFieldsTooLarge: "Request headers are too large.",
	http.StatusRequestTimeout:              "Request timed out.",
	http.StatusBadRequest:                  "Malformed request.",
}

// errorHandler is Fiber's ErrorHandler: it writes every error, domain or
// Fiber's own, in the contract's shape, and logs internal ones.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	var (
		status  int
		message string
		fe      *fiber.Error
	)
	switch {
	case errors.As(err, &fe):
		status = fe.Code
		message = fiberMessages[status]
		if message == "" {
			message = http.StatusText(status) + "."
		}
		if status >= 500 {
			s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "request_id", s.requestID(c), "err", err)
			message = "Internal server error"
		}
	default:
		if d, ok := aoba.RetryAfter(err); ok {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
		}
		code := aoba.ErrorCode(err)
		status = aoba.ErrorStatus(code)
		message = aoba.ErrorMessage(err)
		if code == aoba.EINTERNAL {
			s.log.Error("internal error", "method", c.Method(), "path", c.Path(), "request_id", s.requestID(c), "err", err)
			message = "Internal server error"
		} else if code == aoba.EUNAVAILABLE {
			s.log.Warn("backing service unavailable", "method", c.Method(), "path", c.Path(), "request_id", s.requestID(c), "err", err)
		}
	}
	return writeError(c, status, message)
}

// writeError writes the contract's error body with the given status.
func writeError(c *fiber.Ctx, status int, message string) error {
	c.Status(status)
	return c.JSON(ErrorResponse{Error: http.StatusText(status), Message: message})
}
