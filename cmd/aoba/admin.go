package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/api"
)

// MinAdminTokenLen is the shortest AOBA_ADMIN_TOKEN accepted: as long as
// a JWT secret, so that it cannot be guessed.
const MinAdminTokenLen = 32

// parseAdminEnv reads AOBA_ADMIN_TOKEN and AOBA_ADMIN_URL into c and
// returns an error naming a token under MinAdminTokenLen bytes or a URL
// that is not http(s)://host[:port].
func (c *Config) parseAdminEnv(getenv func(string) string) error {
	c.AdminToken = strings.TrimSpace(getenv("AOBA_ADMIN_TOKEN"))
	if c.AdminToken != "" && len(c.AdminToken) < MinAdminTokenLen {
		return fmt.Errorf("AOBA_ADMIN_TOKEN must be at least %d bytes long (openssl rand -hex 32 makes one)", MinAdminTokenLen)
	}
	c.AdminURL = strings.TrimSpace(getenv("AOBA_ADMIN_URL"))
	if c.AdminURL != "" {
		u, err := url.Parse(c.AdminURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("AOBA_ADMIN_URL must be the server's base URL such as http://127.0.0.1:8080, got %q", c.AdminURL)
		}
	}
	return nil
}

// adminUsage is the help of `aoba admin`.
const adminUsage = `Usage: aoba admin COMMAND [FLAGS] [USER]

Manages accounts through the admin API of a running server. The server must
run with AOBA_ADMIN_TOKEN set; this command sends the same AOBA_ADMIN_TOKEN
from its own environment, to AOBA_ADMIN_URL (or -url; default
http://127.0.0.1:<port of AOBA_ADDR>). USER is a user id or a username.
Flags come before USER.

Commands:
  users [-q TEXT] [-page N] [-limit N]  list users (whose name contains TEXT)
  show USER                             one user: sessions, sockets, last seen
  disable USER                          revoke every session, close its sockets
                                        (4001) and refuse its logins
  enable USER                           let a disabled account sign in again
  logout USER                           revoke every session, close its sockets
  delete -yes USER                      delete the account

Every command takes -url URL and -json (print the server's JSON answer).
`

// adminCommand is `aoba admin COMMAND ...`.
func adminCommand(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, adminUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name, args := args[0], args[1:]
	fs := newFlagSet("admin "+name, "admin "+name+" [FLAGS] [USER]", stderr)
	base := fs.String("url", "", "base URL of the server (default: AOBA_ADMIN_URL, else http://127.0.0.1:<port of AOBA_ADDR>)")
	raw := fs.Bool("json", false, "print the server's JSON answer")
	var (
		query       *string
		page, limit *int
		yes         *bool
		wantUser    = true
	)
	switch name {
	case "users":
		query = fs.String("q", "", "only users whose name contains this text")
		page = fs.Int("page", 1, "page number")
		limit = fs.Int("limit", aoba.DefaultSearchSize, "users per page (at most 100)")
		wantUser = false
	case "delete":
		yes = fs.Bool("yes", false, "confirm the deletion")
	case "show", "disable", "enable", "logout":
	default:
		fmt.Fprintf(stderr, "aoba admin: unknown command %q\n\n%s", name, adminUsage)
		return 2
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if (wantUser && fs.NArg() != 1) || (!wantUser && fs.NArg() != 0) {
		fs.Usage()
		return 2
	}
	if yes != nil && !*yes {
		fmt.Fprintf(stderr, "aoba admin delete: deleting %s cannot be undone: add -yes to confirm\n", fs.Arg(0))
		return 2
	}
	c, err := configOf(environ)
	if err != nil {
		fmt.Fprintln(stderr, "aoba admin:", err)
		return 1
	}
	if c.AdminToken == "" {
		fmt.Fprintln(stderr, "aoba admin: AOBA_ADMIN_TOKEN is not set: export the server's admin token")
		return 2
	}
	if *base == "" {
		*base = c.AdminURL
	}
	if *base == "" {
		if *base, err = localURL(c.Addr); err != nil {
			fmt.Fprintln(stderr, "aoba admin:", err)
			return 1
		}
	}
	cl := &adminClient{base: strings.TrimSuffix(*base, "/"), token: c.AdminToken, hc: &http.Client{Timeout: 30 * time.Second}}

	var (
		method, path string
		verb         string
	)
	user := "/api/admin/users/" + url.PathEscape(fs.Arg(0))
	switch name {
	case "users":
		q := url.Values{"page": {strconv.Itoa(*page)}, "limit": {strconv.Itoa(*limit)}}
		if *query != "" {
			q.Set("q", *query)
		}
		method, path = http.MethodGet, "/api/admin/users?"+q.Encode()
	case "show":
		method, path = http.MethodGet, user
	case "disable", "enable", "logout":
		method, path, verb = http.MethodPost, user+"/"+name, map[string]string{"disable": "disabled", "enable": "enabled", "logout": "signed out"}[name]
	case "delete":
		method, path, verb = http.MethodDelete, user, "deleted"
	}
	body, err := cl.do(method, path)
	if err != nil {
		fmt.Fprintf(stderr, "aoba admin %s: %v\n", name, err)
		return 1
	}
	if *raw {
		if len(body) > 0 {
			stdout.Write(body)
			fmt.Fprintln(stdout)
		}
		return 0
	}
	switch name {
	case "delete":
		fmt.Fprintf(stdout, "%s %s\n", verb, fs.Arg(0))
	case "users":
		var list struct {
			Users      []*aoba.AdminUser `json:"users"`
			Total      int               `json:"total"`
			Page       int               `json:"page"`
			TotalPages int               `json:"total_pages"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			fmt.Fprintln(stderr, "aoba admin users: unreadable answer:", err)
			return 1
		}
		printUsers(stdout, list.Users)
		fmt.Fprintf(stdout, "%d users (page %d of %d)\n", list.Total, list.Page, max(list.TotalPages, 1))
	default:
		var u aoba.AdminUser
		if err := json.Unmarshal(body, &u); err != nil {
			fmt.Fprintf(stderr, "aoba admin %s: unreadable answer: %v\n", name, err)
			return 1
		}
		if verb != "" {
			fmt.Fprintf(stdout, "%s %s\n", verb, u.Username)
		}
		printUsers(stdout, []*aoba.AdminUser{&u})
	}
	return 0
}

// adminClient calls the admin API of one server.
type adminClient struct {
	base, token string
	hc          *http.Client
}

// do sends one request and returns the body of a 2xx answer, or an error
// with the status and the server's message.
func (c *adminClient) do(method, path string) ([]byte, error) {
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 == 2 {
		return body, nil
	}
	var e api.ErrorResponse
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		if res.StatusCode == http.StatusNotFound && e.Message == "Route not found." {
			return nil, errors.New("404: the server has no admin API: start it with AOBA_ADMIN_TOKEN set")
		}
		return nil, fmt.Errorf("%d %s: %s", res.StatusCode, e.Error, e.Message)
	}
	return nil, fmt.Errorf("%d: %s", res.StatusCode, bytes.TrimSpace(body))
}

// printUsers writes users as a table.
func printUsers(w io.Writer, users []*aoba.AdminUser) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tID\tDISABLED\tSESSIONS\tSOCKETS\tONLINE\tLAST SEEN")
	for _, u := range users {
		disabled := "no"
		if u.DisabledAt != nil {
			disabled = u.DisabledAt.UTC().Format(time.RFC3339)
		}
		sockets, online, seen := "?", "?", "never"
		if u.Sockets != nil {
			sockets = strconv.Itoa(*u.Sockets)
		}
		if u.Online != nil {
			online = map[bool]string{true: "yes", false: "no"}[*u.Online]
		}
		if u.LastSeen != nil {
			seen = u.LastSeen.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", u.Username, u.ID, disabled, u.Sessions, sockets, online, seen)
	}
	tw.Flush()
}
