package aoba

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Error codes. Each maps to one HTTP status in the api package and to one
// error frame on the WebSocket channel.
const (
	EINVALID      = "invalid"      // 400: the input breaks a rule
	EUNAUTHORIZED = "unauthorized" // 401: no, invalid, expired or revoked token
	EFORBIDDEN    = "forbidden"    // 403: authenticated, but the role does not allow it
	ENOTFOUND     = "not_found"    // 404: unknown object, or one the caller may not see
	ECONFLICT     = "conflict"     // 409: the object's state does not allow it
	ETOOLARGE     = "too_large"    // 413: the request body is too large
	EUNSUPPORTED  = "unsupported"  // 415: the body's Content-Type or Content-Encoding is not accepted
	ERATELIMIT    = "rate_limited" // 429: over the sliding-window budget
	EUNAVAILABLE  = "unavailable"  // 503: a backing service is down
	EINTERNAL     = "internal"     // 500: a bug or an unexpected failure
)

// statuses maps each error code to the HTTP status of the contract: the one
// table that decides what a domain error looks like on the wire, in REST
// responses and in WebSocket `error` frames alike.
var statuses = map[string]int{
	EINVALID:      http.StatusBadRequest,
	EUNAUTHORIZED: http.StatusUnauthorized,
	EFORBIDDEN:    http.StatusForbidden,
	ENOTFOUND:     http.StatusNotFound,
	ECONFLICT:     http.StatusConflict,
	ETOOLARGE:     http.StatusRequestEntityTooLarge,
	EUNSUPPORTED:  http.StatusUnsupportedMediaType,
	ERATELIMIT:    http.StatusTooManyRequests,
	EUNAVAILABLE:  http.StatusServiceUnavailable,
	EINTERNAL:     http.StatusInternalServerError,
}

// ErrorStatus returns the HTTP status of an error code, and 500 for an
// unknown code.
func ErrorStatus(code string) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is the one error type of the domain. Message is a human sentence that
// is safe to show to the client; internal errors never carry details there.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("aoba error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: the code of the first *Error in its
// chain, "" for nil, and EINTERNAL for any other error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err: the message of the
// first *Error in its chain, or "Internal server error" for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal server error"
}

// RetryError is a domain error that says when the request may succeed
// again: the Retry-After of an ERATELIMIT refusal.
type RetryError struct {
	Err        *Error
	RetryAfter time.Duration
}

// Error implements the error interface.
func (e *RetryError) Error() string { return e.Err.Error() }

// Unwrap returns the domain error, so ErrorCode and ErrorMessage see it.
func (e *RetryError) Unwrap() error { return e.Err }

// RetryAfter returns how long the client should wait before retrying err,
// and false when err carries no such hint.
func RetryAfter(err error) (time.Duration, bool) {
	var re *RetryError
	if errors.As(err, &re) {
		return re.RetryAfter, true
	}
	return 0, false
}
