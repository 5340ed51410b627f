package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aoba-chat/aoba"
)

// commandFunc runs one subcommand on its arguments and the environment
// ("NAME=value" entries) and returns the process's exit status.
type commandFunc func(args, environ []string, stdout, stderr io.Writer) int

// commands are the subcommands besides serve, in the order of the usage.
var commands = []struct {
	name, args, summary string
	run                 commandFunc
}{
	{"serve", "", "run the server (the default)", nil},
	{"healthcheck", "[FLAGS]", "exit 0 if the server on AOBA_ADDR is ready, else 1", healthcheckCommand},
	{"backup", "FILE", "copy the embedded store and JWT secret into FILE", backupCommand},
	{"restore", "FILE", "unpack a backup into an empty AOBA_DATA_DIR", restoreCommand},
	{"admin", "COMMAND ...", "manage accounts on a running server (aoba admin -h)", adminCommand},
	{"version", "", "print the version (also --version)", versionCommand},
	{"help", "", "print this help (also -h, --help)", nil}, // command runs it: usage reads this list
}

// command runs the subcommand that args (the arguments after the program
// name) ask for, and returns its exit status and true; with no argument or
// `serve` it returns false, and the caller serves.
func command(args, environ []string, stdout, stderr io.Writer) (int, bool) {
	if len(args) == 0 || (args[0] == "serve" && len(args) == 1) {
		return 0, false
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	case "-v", "-version", "--version":
		name = "version"
	case "serve":
		// `serve` takes no argument: show what it does.
		if args[1] == "-h" || args[1] == "--help" || args[1] == "-help" {
			return helpCommand(nil, environ, stdout, stderr), true
		}
		fmt.Fprintf(stderr, "aoba serve: unexpected argument %q: the server is configured through AOBA_* environment variables (aoba --help)\n", args[1])
		return 2, true
	}
	if name == "help" {
		return helpCommand(args[1:], environ, stdout, stderr), true
	}
	for _, c := range commands {
		if c.name == name && c.run != nil {
			return c.run(args[1:], environ, stdout, stderr), true
		}
	}
	fmt.Fprintf(stderr, "aoba: unknown command %q (aoba --help lists them)\n", args[0])
	return 2, true
}

// helpCommand prints the usage on stdout.
func helpCommand(_, _ []string, stdout, _ io.Writer) int {
	fmt.Fprint(stdout, usage())
	return 0
}

// usage returns the program's help text: its commands and the names of
// the environment variables it reads.
func usage() string {
	var b strings.Builder
	b.WriteString(`Usage: aoba [COMMAND] [ARGUMENTS]

Aoba is a real-time chat backend: a REST API, a WebSocket channel and a
browser client, on an embedded store (one binary) or on MongoDB and Redis
(many pods).

Commands:
`)
	for _, c := range commands {
		left := c.name
		if c.args != "" {
			left += " " + c.args
		}
		fmt.Fprintf(&b, "  %-20s %s\n", left, c.summary)
	}
	b.WriteString(`
Every command reads its configuration from AOBA_* environment variables,
all optional in the embedded mode (README.md, "Configuration", says what
each does):
`)
	line := " "
	for _, name := range EnvVars {
		if len(line)+len(name)+1 > 78 {
			b.WriteString(line + "\n")
			line = " "
		}
		line += " " + name
	}
	b.WriteString(line + "\n")
	return b.String()
}

// versionCommand prints the build: version, revision, Go version.
func versionCommand(args, _ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "aoba version: takes no argument")
		return 2
	}
	fmt.Fprintln(stdout, Build())
	return 0
}

// newFlagSet returns a flag set for the subcommand name whose usage
// prints synopsis and the flags to stderr.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("aoba "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: aoba %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs and returns the exit status to end with
// and false when the command should not go on: 0 after -h, 2 after a bad
// flag (fs has printed why).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0, false
	} else if err != nil {
		return 2, false
	}
	return 0, true
}

// configOf returns the configuration environ holds, as the server would
// read it.
func configOf(environ []string) (Config, error) {
	m := NewMain()
	err := m.ParseEnviron(environ)
	return m.Config, err
}

// localURL returns the base URL at which a process on the same host (or
// in the same container) reaches a server listening on addr: the wildcard
// addresses (":8080", "0.0.0.0:8080", "[::]:8080") become 127.0.0.1.
func localURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("AOBA_ADDR %q is not host:port: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// healthcheckCommand asks the server whether it is ready: GET
// /health/ready (or /health on a server without it) on the local address
// of AOBA_ADDR. It exits 0 on a 200 and 1 otherwise, so that a container
// runtime can use it (the distroless image has no curl).
func healthcheckCommand(args, environ []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("healthcheck", "healthcheck [-url URL] [-timeout D]", stderr)
	base := fs.String("url", "", "base URL of the server (default: http://127.0.0.1:<port of AOBA_ADDR>)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if *base == "" {
		c, err := configOf(environ)
		if err == nil {
			*base, err = localURL(c.Addr)
		}
		if err != nil {
			fmt.Fprintln(stderr, "aoba healthcheck:", err)
			return 1
		}
	}
	hc := &http.Client{Timeout: *timeout}
	for _, path := range []string{"/health/ready", "/health"} {
		res, err := hc.Get(strings.TrimSuffix(*base, "/") + path)
		if err != nil {
			fmt.Fprintln(stderr, "aoba healthcheck: unhealthy:", err)
			return 1
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		res.Body.Close()
		if res.StatusCode == http.StatusNotFound && path != "/health" {
			continue // a server from before /health/ready
		}
		summary := strings.TrimSpace(string(body))
		if res.StatusCode == http.StatusOK {
			fmt.Fprintf(stdout, "healthy: %s %d %s\n", path, res.StatusCode, summary)
			return 0
		}
		fmt.Fprintf(stderr, "aoba healthcheck: unhealthy: %s %d %s\n", path, res.StatusCode, summary)
		return 1
	}
	return 1
}

// errorText returns what a command line shows of err: the message of a
// domain error, the error itself otherwise.
func errorText(err error) string {
	var de *aoba.Error
	if errors.As(err, &de) {
		return de.Message
	}
	return err.Error()
}
