package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aoba-chat/aoba"
	"github.com/gofiber/fiber/v2"
)

// Body rules of the contract, applied in this order: bodyRules (a
// middleware) refuses an encoded body and a non-JSON Content-Type on any
// request that carries a body; decode, on the routes that take one, also
// refuses a missing Content-Type, then invalid UTF-8, then anything but one
// JSON object holding the route's fields.
//
// Both read the raw body (Request().Body()), never c.Body(): Fiber's
// c.Body() decompresses by Content-Encoding without any limit, so that a
// small gzip bomb becomes gigabytes in memory.

// bodyRules refuses with 415 a request that carries a body (any method)
// whose Content-Encoding is anything but identity, or whose Content-Type
// is not application/json. A request without a body passes whatever its
// headers, so routes that take none (logout, leave, accept, deny) work
// with neither header.
func bodyRules(c *fiber.Ctx) error {
	if len(c.Request().Body()) == 0 {
		return c.Next()
	}
	if err := checkEncoding(c); err != nil {
		return err
	}
	if err := checkContentType(c); err != nil {
		return err
	}
	return c.Next()
}

// checkEncoding returns an EUNSUPPORTED error unless every Content-Encoding
// header of the request is absent or identity.
func checkEncoding(c *fiber.Ctx) error {
	var bad bool
	c.Request().Header.VisitAll(func(k, v []byte) {
		if !strings.EqualFold(string(k), fiber.HeaderContentEncoding) {
			return
		}
		for _, e := range strings.Split(string(v), ",") {
			if e = strings.TrimSpace(e); e != "" && !strings.EqualFold(e, "identity") {
				bad = true
			}
		}
	})
	if bad {
		return aoba.Errorf(aoba.EUNSUPPORTED, "Request bodies must not be compressed (Content-Encoding must be identity or absent).")
	}
	return nil
}

// checkContentType returns an EUNSUPPORTED error unless the request's
// Content-Type is application/json, with parameters allowed but a charset,
// when given, utf-8.
func checkContentType(c *fiber.Ctx) error {
	mt, params, err := mime.ParseMediaType(string(c.Request().Header.ContentType()))
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return aoba.Errorf(aoba.EUNSUPPORTED, "The request body must be JSON, sent with Content-Type: application/json.")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return aoba.Errorf(aoba.EUNSUPPORTED, "The request body must be UTF-8 (charset=utf-8).")
	}
	return nil
}

// decode reads the raw request body into v. It returns an EUNSUPPORTED
// error for an encoded body or a Content-Type other than application/json
// (a missing one included: the route takes a body), and an EINVALID error
// for a body that is not valid UTF-8, is not exactly one JSON object, holds
// a field v does not have (the message names it), misses one of required
// (or holds it as null), or holds a field of the wrong type.
func decode(c *fiber.Ctx, v any, required ...string) error {
	if err := checkEncoding(c); err != nil {
		return err
	}
	if err := checkContentType(c); err != nil {
		return err
	}
	return decodeJSON(c.Request().Body(), v, required...)
}

// decodeJSON is decode's body check: see decode.
func decodeJSON(body []byte, v any, required ...string) error {
	if !utf8.Valid(body) || hasLoneSurrogate(body) {
		return aoba.Errorf(aoba.EINVALID, "The request body is not valid UTF-8.")
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return aoba.Errorf(aoba.EINVALID, "The request body must be a JSON object.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return aoba.Errorf(aoba.EINVALID, "The request body must hold one JSON object and nothing after it.")
	}
	dec = json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return aoba.Errorf(aoba.EINVALID, "%s has the wrong type.", te.Field)
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return aoba.Errorf(aoba.EINVALID, "Unknown field %s.", name)
		}
		return aoba.Errorf(aoba.EINVALID, "The request body is not valid JSON.")
	}
	for _, f := range required {
		if raw, ok := fields[f]; !ok || string(raw) == "null" {
			return aoba.Errorf(aoba.EINVALID, "%s is required.", f)
		}
	}
	return nil
}

// hasLoneSurrogate reports whether body holds a \u escape of a UTF-16
// surrogate that is not part of a pair, which encoding/json would silently
// turn into U+FFFD. In JSON every backslash starts an escape inside a
// string, so the escapes can be scanned without tracking strings.
func hasLoneSurrogate(body []byte) bool {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(body[i+2:i+6]), 16, 16)
		return rune(n), err == nil
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		r, ok := hex4(i)
		switch {
		case !ok:
			i++ // a two-character escape, or malformed: json rejects it
		case r >= 0xD800 && r <= 0xDBFF:
			if lo, ok := hex4(i + 6); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}

// queryInt returns the integer query parameter name, or def when it is
// absent. It returns an EINVALID error when it is not an integer.
func queryInt(c *fiber.Ctx, name string, def int) (int, error) {
	raw := c.Query(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if errors.Is(err, strconv.ErrRange) {
		return 0, aoba.Errorf(aoba.EINVALID, "%s is out of range.", name)
	} else if err != nil {
		return 0, aoba.Errorf(aoba.EINVALID, "%s must be an integer.", name)
	}
	return n, nil
}

// SplitList splits a comma-separated value (a query parameter, an
// environment variable), trimming spaces and dropping blanks.
func SplitList(raw string) []string {
	var out []string
	for _, p := range strings.Split(raw, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// claims returns the claims stored by authenticate. Handlers that call it
// run only behind authenticate, so a missing value is an internal error.
func claims(c *fiber.Ctx) (aoba.Claims, error) {
	cl, ok := claimsOf(c)
	if !ok {
		return aoba.Claims{}, aoba.Errorf(aoba.EINTERNAL, "route %s has no authentication", c.Path())
	}
	return cl, nil
}
