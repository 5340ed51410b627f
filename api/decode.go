package api

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/aoba-chat/aoba"
	"github.com/gofiber/fiber/v2"
)

// decode reads the request body into v. The body must be a JSON object
// holding every required field (not null); unknown fields are ignored. It
// returns an EINVALID error for anything else, including a field of the
// wrong type.
func decode(c *fiber.Ctx, v any, required ...string) error {
	body := c.Body()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return aoba.Errorf(aoba.EINVALID, "The request body must be a JSON object.")
	}
	for _, f := range required {
		if raw, ok := fields[f]; !ok || string(raw) == "null" {
			return aoba.Errorf(aoba.EINVALID, "%s is required.", f)
		}
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return aoba.Errorf(aoba.EINVALID, "%s has the wrong type.", te.Field)
		}
		return aoba.Errorf(aoba.EINVALID, "The request body is not valid JSON.")
	}
	return nil
}

// queryInt returns the integer query parameter name, or def when it is
// absent. It returns an EINVALID error when it is not an integer.
func queryInt(c *fiber.Ctx, name string, def int) (int, error) {
	raw := c.Query(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return 0, aoba.Errorf(aoba.EINVALID, "%s must be an integer.", name)
	}
	return n, nil
}

// splitList splits a comma-separated query value, dropping blanks.
func splitList(raw string) []string {
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
