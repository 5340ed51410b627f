// Command aoba-bench loads one or more local Aoba servers and measures them:
// idle sockets (memory per connection), group fan-out, 1:1 messaging and a
// REST mix, optionally against a bare Fiber WebSocket broadcast baseline.
//
// Usage:
//
//	aoba-bench idle   -addr http://127.0.0.1:8080 -n 100000 -duration 60s
//	aoba-bench fanout -addr http://127.0.0.1:8080 -members 500 -publishers 5 -rate 200 -baseline
//	aoba-bench fanout -addr http://127.0.0.1:8080 -members 500 -publishers 8 -via rest -count 12000 -window 4
//	aoba-bench direct -addr http://127.0.0.1:8080,http://127.0.0.1:8081 -pairs 50 -rate 1000
//	aoba-bench rest   -addr http://127.0.0.1:8080 -users 50 -concurrency 32
//	aoba-bench xmpp-idle    -addr http://127.0.0.1:8080 -xmpp-addr 127.0.0.1:5222 -domain aoba.chat -n 5000
//	aoba-bench xmpp-latency -addr http://127.0.0.1:8080 -xmpp-addr 127.0.0.1:5222 -pairs 50 -rate 100
//	aoba-bench writes -n 5000 -rate 2000 -duration 20s
//
// The writes command needs no server: it measures the CPU time of the
// system calls a heartbeat is made of on this machine (see writes.go), the
// floor under the server's cost per ping.
//
// The XMPP modes open real client streams (TCP, STARTTLS, SASL OAUTHBEARER
// with the token of the REST login, resource binding, initial presence)
// against a server started with AOBA_XMPP_ADDR; -domain is its AOBA_DOMAIN.
//
// Only 127.0.0.x addresses are accepted. Every run is bounded by the hard
// caps below, whatever the flags say. At start the tool raises its soft open
// file limit to the hard limit and refuses a run that the limit (its own, or
// the server's as /metrics reports it) cannot hold, saying which.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/aoba-chat/aoba/internal/fdlimit"
)

// Hard caps on every run, whatever the flags ask for.
const (
	MaxUsers       = 200000
	MaxSockets     = 200000
	MaxDuration    = 5 * time.Minute
	MaxRate        = 100000
	MaxMessages    = 1000000
	MaxConcurrency = 1000
	MaxSources     = 64
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "aoba-bench:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: aoba-bench <idle|fanout|direct|rest|xmpp-idle|xmpp-latency|writes> [flags]
run "aoba-bench <command> -h" for the flags of a command`)
}

// run parses args and runs one subcommand, writing the summary to stdout and
// progress to stderr. It returns an error for bad flags or a failed run.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errors.New("no command given")
	}
	cmd, args := args[0], args[1:]
	var (
		res Result
		err error
	)
	switch cmd {
	case "idle":
		res, err = runIdle(ctx, args, stderr)
	case "fanout":
		res, err = runFanout(ctx, args, stderr)
	case "direct":
		res, err = runDirect(ctx, args, stderr)
	case "rest":
		res, err = runREST(ctx, args, stderr)
	case "xmpp-idle":
		res, err = runXMPPIdle(ctx, args, stderr)
	case "xmpp-latency":
		res, err = runXMPPLatency(ctx, args, stderr)
	case "writes":
		res, err = runWrites(ctx, args, stderr)
	case "writes-sink":
		return runWritesSink(args) // the peer process of writes
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return nil
	default:
		usage(stderr)
		return fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		return err
	}
	res.Params["loadavg"] = loadavg()
	if res.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.WriteTable(stdout)
	return nil
}

// Common holds the flags shared by every subcommand.
type Common struct {
	AddrList string
	Addrs    []*url.URL
	Duration time.Duration
	Sources  int
	JSON     bool
	Prefix   string
	Password string
	Conc     int
	Progress time.Duration
	// Files is the tool's open file limit once raised (the zero Limit
	// where the platform has none).
	Files fdlimit.Limit
}

func (c *Common) register(fs *flag.FlagSet, defDuration time.Duration) {
	fs.StringVar(&c.AddrList, "addr", "http://127.0.0.1:8080", "comma-separated server base URLs (127.0.0.x only)")
	fs.DurationVar(&c.Duration, "duration", defDuration, "measurement duration (capped at 5m)")
	fs.IntVar(&c.Sources, "sources", 0, "number of local source addresses 127.0.0.1..127.0.0.N for sockets (0: the fewest whose ephemeral ports hold them all)")
	fs.BoolVar(&c.JSON, "json", false, "print the result as JSON")
	fs.StringVar(&c.Prefix, "prefix", "", "username prefix (default: random per run)")
	fs.StringVar(&c.Password, "password", "bench-password-1", "password of the provisioned users")
	fs.IntVar(&c.Conc, "provision-concurrency", 16, "concurrent requests while provisioning users")
	fs.DurationVar(&c.Progress, "progress", 5*time.Second, "interval of progress lines on stderr (0: none)")
}

func (c *Common) validate() error {
	addrs, err := ParseAddrs(c.AddrList)
	if err != nil {
		return err
	}
	c.Addrs = addrs
	if c.Duration <= 0 {
		return errors.New("-duration must be positive")
	}
	if c.Duration > MaxDuration {
		c.Duration = MaxDuration
	}
	if c.Sources < 0 || c.Sources > MaxSources {
		return fmt.Errorf("-sources must be 0..%d", MaxSources)
	}
	c.Conc = clamp(c.Conc, 1, 256)
	if c.Prefix == "" {
		c.Prefix = fmt.Sprintf("b%x", time.Now().UnixNano()&0xffffffff)
	}
	if len(c.Password) < 8 {
		return errors.New("-password must be at least 8 characters")
	}
	c.Files, err = raiseFiles()
	if err != nil {
		return fmt.Errorf("raising the open file limit: %w", err)
	}
	return nil
}

func clamp(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// ParseAddrs parses a comma-separated list of server base URLs and refuses
// any that is not http(s) on a literal 127.0.0.x address with a port.
func ParseAddrs(list string) ([]*url.URL, error) {
	var out []*url.URL
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("address %q: %v", s, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("address %q: scheme must be http or https", s)
		}
		if err := CheckLocal(u.Host); err != nil {
			return nil, fmt.Errorf("address %q: %v", s, err)
		}
		u.Path = strings.TrimRight(u.Path, "/")
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, errors.New("no server address given")
	}
	return out, nil
}

// CheckLocal returns an error unless hostport is a literal IPv4 address in
// 127.0.0.0/24 with an explicit port.
func CheckLocal(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return errors.New("needs an explicit host:port")
	}
	if port == "" {
		return errors.New("needs an explicit port")
	}
	ip := net.ParseIP(host).To4()
	if ip == nil || ip[0] != 127 || ip[1] != 0 || ip[2] != 0 {
		return errors.New("only 127.0.0.x addresses are allowed")
	}
	return nil
}

// loadavg returns /proc/loadavg's first three fields (the machine's load
// while the run ended), or "" when unavailable.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], "/")
}
