// Command aoba runs the Aoba chat backend: the REST API, the WebSocket
// channel and the browser client, on an embedded store (one binary) or on
// MongoDB and Redis (many pods).
//
// Configuration, from the environment (defaults in parentheses):
//
//	AOBA_ADDR               listen address (:8080)
//	AOBA_DATA_DIR           embedded store and generated JWT secret (./data)
//	AOBA_MONGO_URI          MongoDB connection string (empty: embedded SQLite store)
//	AOBA_MONGO_DB           MongoDB database (aoba)
//	AOBA_REDIS_URL          redis:// URL (empty: in-process broker, presence and limiter); ?pool_size= (64)
//	AOBA_REDIS_PREFIX       prefix of every Redis key and channel (aoba:); no '{' or '}'
//	AOBA_REDIS_SENTINELS    Sentinel host:port addresses, comma-separated (instead of AOBA_REDIS_URL)
//	AOBA_REDIS_MASTER       name of the master the sentinels monitor; required with AOBA_REDIS_SENTINELS
//	AOBA_REDIS_CLUSTER      Redis Cluster seed host:port addresses, comma-separated (instead of AOBA_REDIS_URL)
//	AOBA_REDIS_USERNAME     ACL user of the Redis servers, with AOBA_REDIS_SENTINELS or AOBA_REDIS_CLUSTER
//	AOBA_REDIS_PASSWORD     password of the Redis servers, with AOBA_REDIS_SENTINELS or AOBA_REDIS_CLUSTER
//	AOBA_REDIS_SENTINEL_PASSWORD  password of the sentinels themselves
//	AOBA_JWT_SECRET         HS256 secret, at least 32 bytes; required with MongoDB or Redis
//	AOBA_TOKEN_TTL          session lifetime (24h)
//	AOBA_DOMAIN             XMPP domain: users are <id>@domain, groups <id>@conference.domain (aoba.chat)
//	AOBA_XMPP_ADDR          XMPP client listener, e.g. :5222 (empty: off; XMPP over WebSocket is always at /xmpp-websocket)
//	AOBA_TLS_CERT           PEM certificate (chain) for XMPP STARTTLS; the embedded mode generates a self-signed one without it
//	AOBA_TLS_KEY            PEM private key of AOBA_TLS_CERT
//	AOBA_XMPP_IDLE_TIMEOUT  an XMPP stream silent (no stanza, no whitespace) for that long is closed (10m)
//	AOBA_RATE_STANDARD      requests per minute, standard class (100)
//	AOBA_RATE_BATCH         requests per minute, batch class (10)
//	AOBA_RATE_SEARCH        requests per minute, search class (30)
//	AOBA_MAX_SOCKETS_PER_USER  open sockets per user across pods; one more closes the oldest with 4005 (16)
//	AOBA_PING_INTERVAL      time between two pings of every socket (25s); a silent socket closes after twice that, 60s at least
//	AOBA_WRITE_DELAY        a socket waits up to this long before writing, so frames arriving meanwhile share a write (0: at once)
//	AOBA_LOGIN_FAILURES     failed logins per account per 15 minutes before 429 (10)
//	AOBA_ALLOWED_ORIGINS    extra origins allowed to open a cookie-authenticated socket
//	AOBA_TRUSTED_PROXIES    proxies (IPs, CIDRs) whose X-Forwarded-For names the client
//	AOBA_COOKIE_SECURE      mark the auth_token cookie Secure (false)
//	AOBA_BODY_LIMIT         largest request body in bytes (1048576)
//	AOBA_HEADER_LIMIT       largest request line + headers in bytes (8192), buffered only while a request is read
//	AOBA_PPROF_ADDR         loopback address for net/http/pprof (empty: off), e.g. 127.0.0.1:6060
//	AOBA_ARGON2_MEMORY_KIB  argon2id memory (19456, OWASP)
//	AOBA_ARGON2_ITERATIONS  argon2id iterations (2, OWASP)
//	AOBA_LOG_LEVEL          debug, info, warn or error (info)
//	AOBA_WEBHOOK_URL        http(s) endpoint POSTed each message to a recipient with no open socket (empty: off)
//	AOBA_WEBHOOK_SECRET     HMAC-SHA256 key signing the webhooks, at least 16 bytes; required with AOBA_WEBHOOK_URL
//	AOBA_WEBHOOK_QUEUE      webhooks waiting for delivery on this pod; more are dropped (10000)
//	AOBA_ADMIN_TOKEN        opens the admin API under /api/admin/ as a Bearer token, at least 32 bytes (empty: no admin API)
//	AOBA_ADMIN_URL          the server `aoba admin` talks to (http://127.0.0.1:<port of AOBA_ADDR>)
//	AOBA_DRAIN_DELAY        on SIGTERM, time serving with /health/ready at 503 before closing sockets (5s)
//	AOBA_DRAIN_SPREAD       time over which a stopping pod closes its sockets with 1001 (10s)
//	AOBA_START_TIMEOUT      how long start-up retries an unreachable MongoDB or Redis (1m)
//
// Besides serving (`aoba` or `aoba serve`), the binary is its own tool:
// `aoba healthcheck`, `aoba backup FILE`, `aoba restore FILE`, `aoba admin
// ...` and `aoba --version`; `aoba --help` lists them (commands.go).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/api"
	"github.com/aoba-chat/aoba/auth"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/mongostore"
	"github.com/aoba-chat/aoba/realtime"
	"github.com/aoba-chat/aoba/sqlitestore"
	"github.com/aoba-chat/aoba/storemetrics"
	"github.com/aoba-chat/aoba/web"
	"github.com/aoba-chat/aoba/webhook"
	"github.com/aoba-chat/aoba/xmpp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
)

func main() {
	if code, done := command(os.Args[1:], os.Environ(), os.Stdout, os.Stderr); done {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Environ(), os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "aoba:", err)
		os.Exit(1)
	}
}

// run starts the program with the environment environ ("NAME=value"
// entries) and serves until ctx is done (a signal), then shuts it down
// gracefully: Drain (a second signal cuts it short), then Close. It returns
// the first error of start-up or shutdown.
func run(ctx context.Context, environ []string, logOut io.Writer) error {
	m := NewMain()
	m.LogOutput = logOut
	if err := m.ParseEnviron(environ); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		return err
	}
	select {
	case <-ctx.Done():
		m.drainUntilSignal()
	case err := <-m.serveErr:
		_ = m.Close()
		return err
	}
	return m.Close()
}

// Config is the program's configuration, read from AOBA_* environment
// variables by ParseEnv.
type Config struct {
	Addr          string
	MongoURI      string
	MongoDB       string
	RedisURL      string
	RedisPrefix   string
	JWTSecret     string
	DataDir       string
	Domain        string
	Rates         aoba.Rates
	LoginFailures int
	// MaxSocketsPerUser is the number of sockets a user may hold open
	// across pods (AOBA_MAX_SOCKETS_PER_USER).
	MaxSocketsPerUser int
	// MaxWatchedPerUser is the number of distinct users a user may watch
	// the presence of across sockets and pods; not read from the
	// environment (aoba.MaxWatchedPerUser when zero).
	MaxWatchedPerUser int
	// PingInterval is the time between two pings of each socket
	// (AOBA_PING_INTERVAL); the idle timeout follows it (see
	// realtime.Config.IdleTimeout).
	PingInterval time.Duration
	// WriteDelay is realtime.Config.WriteDelay (AOBA_WRITE_DELAY).
	WriteDelay     time.Duration
	AllowedOrigins []string
	TrustedProxies []string
	TokenTTL       time.Duration
	CookieSecure   bool
	BodyLimit      int
	HeaderLimit    int
	PprofAddr      string
	Argon2         auth.Argon2Params
	LogLevel       slog.Level
	// WebhookURL, when set, receives a signed POST for each message to a
	// recipient with no open socket (AOBA_WEBHOOK_URL); WebhookSecret
	// signs it and WebhookQueue bounds this pod's pending webhooks.
	WebhookURL    string
	WebhookSecret string
	WebhookQueue  int
	// AdminToken opens the admin API (AOBA_ADMIN_TOKEN; empty: off);
	// AdminURL is the server `aoba admin` calls (AOBA_ADMIN_URL).
	AdminToken, AdminURL string
	// Redis is the Sentinel or Cluster deployment used instead of
	// RedisURL (cmd/aoba/redis.go).
	Redis RedisConfig
	// XMPPAddr is the XMPP client listener (AOBA_XMPP_ADDR; empty: off).
	// TLSCert and TLSKey are the PEM files of its STARTTLS certificate
	// (AOBA_TLS_CERT, AOBA_TLS_KEY); the embedded mode generates a
	// self-signed one into DataDir without them.
	XMPPAddr, TLSCert, TLSKey string
	// XMPPIdleTimeout closes an XMPP stream silent for that long
	// (AOBA_XMPP_IDLE_TIMEOUT; zero: xmpp.DefaultIdleTimeout).
	XMPPIdleTimeout time.Duration
	// DrainDelay, DrainSpread and StartTimeout: see DefaultDrainDelay,
	// DefaultDrainSpread and DefaultStartTimeout.
	DrainDelay, DrainSpread, StartTimeout time.Duration
}

// MaxPingInterval is the longest AOBA_PING_INTERVAL accepted: a socket
// silent for twice that is closed, and load balancers and NATs drop idle
// connections after a few minutes.
const MaxPingInterval = 5 * time.Minute

// DefaultConfig returns the configuration of the single-binary mode.
func DefaultConfig() Config {
	return Config{
		Addr: ":8080", MongoDB: "aoba", RedisPrefix: hub.DefaultPrefix, DataDir: "./data", Domain: "aoba.chat",
		Rates: aoba.DefaultRates, LoginFailures: aoba.DefaultLoginFailures, MaxSocketsPerUser: aoba.DefaultMaxSocketsPerUser, TokenTTL: 24 * time.Hour, PingInterval: realtime.DefaultPingInterval, BodyLimit: api.DefaultBodyLimit, HeaderLimit: api.DefaultHeaderLimit,
		Argon2: auth.OWASPParams, LogLevel: slog.LevelInfo, WebhookQueue: webhook.DefaultQueueSize,
		DrainDelay: DefaultDrainDelay, DrainSpread: DefaultDrainSpread, StartTimeout: DefaultStartTimeout,
	}
}

// sessionCache is what the hub offers in front of the session store: the
// cache of session state and the WebSocket tickets.
type sessionCache interface {
	aoba.SessionCache
	aoba.TicketStore
}

// Main is the program: its configuration and, once running, its parts.
type Main struct {
	Config Config
	// LogOutput receives the JSON logs (os.Stderr when nil).
	LogOutput io.Writer
	Logger    *slog.Logger

	ln       net.Listener
	store    aoba.Store
	sessions sessionCache
	rdb      redis.UniversalClient
	health   *hub.RedisHealth
	broker   aoba.Broker
	presence aoba.PresenceRegistry
	limiter  aoba.RateLimiter
	watches  aoba.WatchRegistry
	sockets  aoba.SocketRegistry
	svc      *aoba.Service
	webhooks *webhook.Sender
	node     *realtime.Node
	xmpp     *xmpp.Server
	xmppLn   net.Listener
	server   *api.Server
	serveErr chan error
	pprof    *http.Server

	// sweepStop ends sweepExpired, which closes sweepDone (MongoDB only:
	// the embedded store sweeps its own).
	sweepStop, sweepDone chan struct{}

	// startDeadline ends the start-up retries (retryStart).
	startDeadline time.Time

	// unknownEnv are the AOBA_* names in the environment that no setting
	// reads, warned about by Run.
	unknownEnv []string

	closeOnce sync.Once
	closeErr  error
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), serveErr: make(chan error, 1)}
}

// EnvVars are the names of the environment variables the program reads,
// the ones listed at the top of this file and in the README. Any other
// AOBA_* name in the environment is warned about at start (a typo would
// otherwise leave a setting at its default unnoticed).
var EnvVars = []string{
	"AOBA_ADDR", "AOBA_DATA_DIR", "AOBA_MONGO_URI", "AOBA_MONGO_DB", "AOBA_REDIS_URL", "AOBA_REDIS_PREFIX",
	"AOBA_JWT_SECRET", "AOBA_TOKEN_TTL", "AOBA_DOMAIN", "AOBA_RATE_STANDARD", "AOBA_RATE_BATCH",
	"AOBA_RATE_SEARCH", "AOBA_MAX_SOCKETS_PER_USER", "AOBA_PING_INTERVAL", "AOBA_LOGIN_FAILURES", "AOBA_ALLOWED_ORIGINS", "AOBA_TRUSTED_PROXIES", "AOBA_COOKIE_SECURE",
	"AOBA_BODY_LIMIT", "AOBA_HEADER_LIMIT", "AOBA_PPROF_ADDR", "AOBA_ARGON2_MEMORY_KIB",
	"AOBA_ARGON2_ITERATIONS", "AOBA_LOG_LEVEL", "AOBA_WEBHOOK_URL", "AOBA_WEBHOOK_SECRET", "AOBA_WEBHOOK_QUEUE",
	"AOBA_ADMIN_TOKEN", "AOBA_ADMIN_URL", "AOBA_DRAIN_DELAY", "AOBA_DRAIN_SPREAD", "AOBA_START_TIMEOUT",
	"AOBA_XMPP_ADDR", "AOBA_TLS_CERT", "AOBA_TLS_KEY", "AOBA_XMPP_IDLE_TIMEOUT", "AOBA_WRITE_DELAY",
}

// ParseEnviron is ParseEnv over environ, a list of "NAME=value" entries
// such as os.Environ returns; it also records the AOBA_* names that are
// not in EnvVars, which Run then logs as a warning (the name only, never
// the value). It returns ParseEnv's error.
func (m *Main) ParseEnviron(environ []string) error {
	known := make(map[string]bool, len(EnvVars))
	for _, name := range EnvVars {
		known[name] = true
	}
	vars := make(map[string]string)
	m.unknownEnv = nil
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "AOBA_") {
			continue
		}
		if !known[name] {
			m.unknownEnv = append(m.unknownEnv, name)
			continue
		}
		vars[name] = value
	}
	return m.ParseEnv(func(name string) string { return vars[name] })
}

// ParseEnv reads the AOBA_* variables through getenv over the defaults. It
// returns an error naming the first variable with a malformed value:
// besides numbers, durations and booleans, every AOBA_TRUSTED_PROXIES
// entry must be an IP address or CIDR network and every
// AOBA_ALLOWED_ORIGINS entry an origin (http or https, a host, an optional
// port, nothing else), AOBA_WEBHOOK_URL an http or https URL and, with it,
// AOBA_WEBHOOK_SECRET at least 16 bytes; AOBA_ADMIN_TOKEN at least 32
// bytes and AOBA_ADMIN_URL an http or https base URL (parseAdminEnv).
func (m *Main) ParseEnv(getenv func(string) string) error {
	c := &m.Config
	str := func(name string, dst *string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	str("AOBA_ADDR", &c.Addr)
	str("AOBA_MONGO_URI", &c.MongoURI)
	str("AOBA_MONGO_DB", &c.MongoDB)
	str("AOBA_REDIS_URL", &c.RedisURL)
	str("AOBA_REDIS_PREFIX", &c.RedisPrefix)
	c.JWTSecret = getenv("AOBA_JWT_SECRET")
	str("AOBA_DATA_DIR", &c.DataDir)
	str("AOBA_DOMAIN", &c.Domain)
	str("AOBA_XMPP_ADDR", &c.XMPPAddr)
	str("AOBA_TLS_CERT", &c.TLSCert)
	str("AOBA_TLS_KEY", &c.TLSKey)
	str("AOBA_PPROF_ADDR", &c.PprofAddr)
	ints := []struct {
		name string
		dst  *int
	}{
		{"AOBA_RATE_STANDARD", &c.Rates.Standard},
		{"AOBA_RATE_BATCH", &c.Rates.Batch},
		{"AOBA_RATE_SEARCH", &c.Rates.Search},
		{"AOBA_LOGIN_FAILURES", &c.LoginFailures},
		{"AOBA_MAX_SOCKETS_PER_USER", &c.MaxSocketsPerUser},
		{"AOBA_BODY_LIMIT", &c.BodyLimit},
		{"AOBA_HEADER_LIMIT", &c.HeaderLimit},
		{"AOBA_WEBHOOK_QUEUE", &c.WebhookQueue},
	}
	for _, i := range ints {
		if v := strings.TrimSpace(getenv(i.name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return fmt.Errorf("%s must be a positive integer, got %q", i.name, v)
			}
			*i.dst = n
		}
	}
	for _, u := range []struct {
		name string
		dst  *uint32
	}{{"AOBA_ARGON2_MEMORY_KIB", &c.Argon2.MemoryKiB}, {"AOBA_ARGON2_ITERATIONS", &c.Argon2.Iterations}} {
		if v := strings.TrimSpace(getenv(u.name)); v != "" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 {
				return fmt.Errorf("%s must be a positive integer, got %q", u.name, v)
			}
			*u.dst = uint32(n)
		}
	}
	if v := strings.TrimSpace(getenv("AOBA_TOKEN_TTL")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("AOBA_TOKEN_TTL must be a positive duration such as 24h, got %q", v)
		}
		c.TokenTTL = d
	}
	if v := strings.TrimSpace(getenv("AOBA_PING_INTERVAL")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > MaxPingInterval {
			return fmt.Errorf("AOBA_PING_INTERVAL must be a duration from 1s to %v such as 25s, got %q", MaxPingInterval, v)
		}
		c.PingInterval = d
	}
	if v := strings.TrimSpace(getenv("AOBA_WRITE_DELAY")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 100*time.Millisecond {
			return fmt.Errorf("AOBA_WRITE_DELAY must be a duration from 0 to 100ms such as 2ms, got %q", v)
		}
		c.WriteDelay = d
	}
	if v := strings.TrimSpace(getenv("AOBA_XMPP_IDLE_TIMEOUT")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > time.Hour {
			return fmt.Errorf("AOBA_XMPP_IDLE_TIMEOUT must be a duration from 1s to 1h such as 10m, got %q", v)
		}
		c.XMPPIdleTimeout = d
	}
	if v := strings.TrimSpace(getenv("AOBA_COOKIE_SECURE")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("AOBA_COOKIE_SECURE must be true or false, got %q", v)
		}
		c.CookieSecure = b
	}
	if v := strings.TrimSpace(getenv("AOBA_LOG_LEVEL")); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("AOBA_LOG_LEVEL must be debug, info, warn or error, got %q", v)
		}
	}
	c.AllowedOrigins = api.SplitList(getenv("AOBA_ALLOWED_ORIGINS"))
	for _, o := range c.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			return fmt.Errorf("AOBA_ALLOWED_ORIGINS: %q %v", o, err)
		}
	}
	str("AOBA_WEBHOOK_URL", &c.WebhookURL)
	c.WebhookSecret = getenv("AOBA_WEBHOOK_SECRET")
	if c.WebhookURL != "" {
		if err := webhook.ValidateURL(c.WebhookURL); err != nil {
			return fmt.Errorf("AOBA_WEBHOOK_URL %v, got %q", err, c.WebhookURL)
		}
		if c.WebhookSecret == "" {
			return errors.New("AOBA_WEBHOOK_SECRET is required when AOBA_WEBHOOK_URL is set: receivers check the signature with it")
		} else if len(c.WebhookSecret) < webhook.MinSecretLen {
			return fmt.Errorf("AOBA_WEBHOOK_SECRET must be at least %d bytes long", webhook.MinSecretLen)
		}
	}
	if err := c.parseOpsEnv(getenv); err != nil {
		return err
	}
	c.TrustedProxies = api.SplitList(getenv("AOBA_TRUSTED_PROXIES"))
	for _, p := range c.TrustedProxies {
		if _, err := api.ParseProxies([]string{p}); err != nil {
			return fmt.Errorf("AOBA_TRUSTED_PROXIES: %w", err)
		}
	}
	if err := c.parseAdminEnv(getenv); err != nil {
		return err
	}
	return parseRedisEnv(c, getenv)
}

// checkOrigin returns an error saying why o is not an origin as browsers
// send it in the Origin header: http or https, a host, an optional port,
// and nothing else (no path, not even a trailing slash).
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	switch {
	case err != nil || u.Opaque != "":
		return errors.New("is not an origin such as https://chat.example.com")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must start with http:// or https://")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("must not contain user information")
	case u.Path == "/":
		return errors.New("must not end with a slash")
	case u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return errors.New("must not have a path, query or fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("has an invalid port")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return errors.New("has an empty port")
	}
	return nil
}

// embedded reports whether the store is the embedded one.
func (c Config) embedded() bool { return c.MongoURI == "" }

// mode names the deployment mode reported by /health.
func (c Config) mode() string {
	if c.embedded() && !c.redisEnabled() {
		return "embedded"
	}
	return "scaled-out"
}

// storeKind names where the data lives, reported by /health.
func (c Config) storeKind() string {
	if c.embedded() {
		return "sqlite"
	}
	return "mongodb"
}

// hubKind names where presence, limits and fan-out live, reported by /health.
func (c Config) hubKind() string {
	if !c.redisEnabled() {
		return "memory"
	}
	return "redis"
}

// Run opens the store and the hub, builds the service, the WebSocket node
// and the API, and starts serving on Config.Addr in the background. It
// returns the first error; the caller then calls Close. First it raises the
// process's soft open file limit to the hard limit and logs both, with a
// warning under MinOpenFiles (see raiseFileLimit).
func (m *Main) Run(ctx context.Context) error {
	c := m.Config
	if m.LogOutput == nil {
		m.LogOutput = os.Stderr
	}
	if m.Logger == nil {
		m.Logger = slog.New(slog.NewJSONHandler(m.LogOutput, &slog.HandlerOptions{Level: c.LogLevel}))
	}
	log := m.Logger
	for _, name := range m.unknownEnv {
		log.Warn("unknown environment variable ignored: no setting has this name", "name", name)
	}
	raiseFileLimit(log)

	secret, err := m.jwtSecret()
	if err != nil {
		return err
	}
	tokens, err := auth.NewTokens(secret, c.TokenTTL)
	if err != nil {
		return fmt.Errorf("token authority: %w", err)
	}
	if c.Argon2.Parallelism == 0 {
		c.Argon2.Parallelism = 1
	}
	hasher, err := auth.NewArgon2id(c.Argon2)
	if err != nil {
		return fmt.Errorf("password hasher: %w", err)
	}

	// The store; the embedded one's committer is measured (nil on MongoDB).
	var commits *storemetrics.Commits
	if c.embedded() {
		st, err := sqlitestore.Open(ctx, c.DataDir)
		if err != nil {
			return fmt.Errorf("open embedded store in %s: %w", c.DataDir, err)
		}
		m.store = st
		commits = storemetrics.NewCommits()
		st.ObserveCommits(func(cs sqlitestore.CommitStats) {
			commits.Observe(cs.Messages, cs.Queued, cs.Commit, cs.Sync)
		})
		log.Info("store: embedded SQLite", "data_dir", c.DataDir)
	} else {
		var st *mongostore.Store
		if err := m.retryStart(ctx, "MongoDB", func(ctx context.Context) (err error) {
			st, err = mongostore.Open(ctx, c.MongoURI, c.MongoDB)
			return err
		}); err != nil {
			return fmt.Errorf("open MongoDB store: %w", err)
		}
		m.store = st
		m.sweepStop, m.sweepDone = make(chan struct{}), make(chan struct{})
		go m.sweepExpired(st)
		log.Info("store: MongoDB", "database", c.MongoDB)
	}

	// The hub. Its broker and presence registry call back into the node
	// and the Service, which need the hub first: the callbacks are
	// registered below, once those exist.
	pingers := map[string]aoba.Pinger{"store": m.store}
	if !c.redisEnabled() {
		m.broker = hub.NewMemoryBroker()
		m.presence = hub.NewMemoryPresence(hub.PresenceOptions{})
		m.limiter = hub.NewMemoryRateLimiter()
		m.sessions = hub.NewMemorySessions()
		m.watches = hub.NewMemoryWatches(c.MaxWatchedPerUser)
		m.sockets = hub.NewMemorySockets()
		log.Info("hub: in-process (single pod)")
	} else {
		if err := m.openRedisHub(c, pingers); err != nil {
			return err
		}
	}
	if p, ok := pingers["redis"]; ok {
		if err := m.retryStart(ctx, "Redis", p.Ping); err != nil {
			return err
		}
	}
	for _, w := range c.warnings() {
		log.Warn(w)
	}

	// The webhook sender asks the Service whom to notify: its resolver is
	// registered below, once the Service exists.
	var offline aoba.OfflineNotifier
	if c.WebhookURL != "" {
		m.webhooks, err = webhook.New(webhook.Config{URL: c.WebhookURL, Secret: c.WebhookSecret, QueueSize: c.WebhookQueue, Logger: log})
		if err != nil {
			return err
		}
		offline = m.webhooks
		log.Info("webhooks on", "queue", c.WebhookQueue)
	}
	// The Service's store operations are timed (storemetrics); health
	// pings and the sweeps use the store itself.
	measured := storemetrics.New(m.store)
	m.svc = aoba.NewService(aoba.ServiceConfig{
		Store: measured, Broker: m.broker, Presence: m.presence, Sessions: m.sessions, Tickets: m.sessions,
		Limiter: m.limiter, LoginFailures: c.LoginFailures, Tokens: tokens, Hasher: hasher, Domain: c.Domain, TokenTTL: c.TokenTTL,
		Offline: offline, Logger: log, Sockets: m.sockets,
	})
	if m.webhooks != nil {
		m.webhooks.RegisterResolver(m.svc.OfflineRecipients)
	}
	// The JSON socket and XMPP subscribe the same topics: the shared
	// broker counts their subscriptions.
	shared := hub.NewSharedBroker(m.broker)
	m.node = realtime.New(realtime.Config{
		Broker: shared, Service: m.svc, Presence: m.presence, Limiter: m.limiter, RateStandard: c.Rates.Standard,
		RateBatch: c.Rates.Batch, Watches: m.watches, Sockets: m.sockets, MaxSockets: c.MaxSocketsPerUser,
		PingInterval: c.PingInterval, Logger: log, AllowedOrigins: c.AllowedOrigins, WriteDelay: c.WriteDelay,
	})
	tlsCfg, err := m.xmppTLS()
	if err != nil {
		return err
	}
	m.xmpp = xmpp.New(xmpp.Config{
		Service: m.svc, Broker: shared, Presence: m.presence, Limiter: m.limiter, Rates: c.Rates,
		Sockets: m.sockets, MaxSockets: c.MaxSocketsPerUser, Domain: c.Domain, TLS: tlsCfg, Logger: log,
		IdleTimeout: c.XMPPIdleTimeout,
	})
	// The loop node → presence → Service → broker → node closes here,
	// before the node subscribes anything or a connection is counted. The
	// directory topic goes to the Service (its caches of the send path's
	// users, blocks and memberships), every other topic to the node.
	m.broker.RegisterDeliver(func(topic string, env aoba.Envelope) {
		if topic == aoba.DirectoryTopic {
			m.svc.DirectoryChanged(env)
			return
		}
		m.node.Deliver(topic, env)
		m.xmpp.Deliver(topic, env)
	})
	m.presence.RegisterChangeHandler(m.svc.PresenceChanged)
	if err := m.svc.CacheDirectory(ctx); err != nil {
		log.Warn("directory cache off until the broker is reachable: sends read users, blocks and memberships from the store", "err", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cols := append(hub.Collectors(), m.node.Collectors()...)
	cols = append(cols, m.xmpp.Collectors()...)
	cols = append(cols, buildInfoGauge(Build()))
	cols = append(cols, measured.Collectors()...)
	if commits != nil {
		cols = append(cols, commits.Collectors()...)
	}
	if m.webhooks != nil {
		cols = append(cols, m.webhooks.Collectors()...)
	}
	for _, col := range cols {
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	m.server = api.New(api.Config{
		Service: m.svc, Limiter: m.limiter, Rates: c.Rates, Pingers: pingers, Mode: c.mode(), Store: c.storeKind(), Hub: c.hubKind(), Warnings: c.warnings(), Logger: log,
		Registry: reg, BodyLimit: c.BodyLimit, HeaderLimit: c.HeaderLimit, TrustedProxies: c.TrustedProxies,
		AllowedOrigins: c.AllowedOrigins, CookieSecure: c.CookieSecure, TokenTTL: c.TokenTTL, WebSocket: m.node.Handler(), Static: web.FS(),
		XMPPWebSocket: m.xmpp.WebSocketHandler(),
		AdminToken:    c.AdminToken,
	})
	if c.AdminToken != "" {
		log.Info("admin API on: /api/admin/ opens to AOBA_ADMIN_TOKEN")
	}

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.Addr, err)
	}
	m.ln = ln
	if c.PprofAddr != "" {
		srv, pln, err := startPprof(c.PprofAddr)
		if err != nil {
			return err
		}
		m.pprof = srv
		log.Info("pprof listening", "addr", pln.Addr().String())
	}
	if c.XMPPAddr != "" {
		xln, err := net.Listen("tcp", c.XMPPAddr)
		if err != nil {
			return fmt.Errorf("listen on %s (AOBA_XMPP_ADDR): %w", c.XMPPAddr, err)
		}
		m.xmppLn = xln
		go func() {
			if err := m.xmpp.Serve(xln); err != nil && !errors.Is(err, xmpp.ErrServerClosed) {
				m.serveErr <- fmt.Errorf("serve XMPP: %w", err)
			}
		}()
		log.Info("XMPP listening", "addr", xln.Addr().String(), "domain", c.Domain)
	}
	go func() {
		if err := m.server.App().Listener(ln); err != nil {
			m.serveErr <- fmt.Errorf("serve: %w", err)
		}
	}()
	log.Info("aoba started", "mode", c.mode(), "addr", ln.Addr().String(), "version", Build().Version)
	return nil
}

// jwtSecret returns the configured secret or, in the embedded mode without
// one, the secret kept in DataDir/jwt-secret (created on first start). It
// returns an error for a secret under 32 bytes, and in the scaled-out mode
// when none is configured.
func (m *Main) jwtSecret() ([]byte, error) {
	c := m.Config
	if c.JWTSecret != "" {
		if len(c.JWTSecret) < 32 {
			return nil, errors.New("AOBA_JWT_SECRET must be at least 32 bytes long")
		}
		return []byte(c.JWTSecret), nil
	}
	if c.mode() != "embedded" {
		return nil, errors.New("AOBA_JWT_SECRET is required when AOBA_MONGO_URI or AOBA_REDIS_URL is set: every pod must share it")
	}
	path := filepath.Join(c.DataDir, "jwt-secret")
	if b, err := os.ReadFile(path); err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 32 {
			return nil, fmt.Errorf("%s holds a secret under 32 bytes", path)
		}
		return []byte(s), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read JWT secret: %w", err)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate JWT secret: %w", err)
	}
	s := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write JWT secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write JWT secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write JWT secret: %w", err)
	}
	m.Logger.Info("generated a JWT secret", "path", path)
	return []byte(s), nil
}

// redisPoolSize is the number of Redis connections of a pod when
// AOBA_REDIS_URL sets no pool_size. Every message takes two round trips on
// the pool (the rate limit, then the publication); go-redis's default, ten
// per CPU, made senders queue for a connection under load.
const redisPoolSize = 64

// sessionRetention is how long after its expiry a session stays stored
// (listed nowhere, but kept for a day for the logs' sake).
const sessionRetention = 24 * time.Hour

// sweepExpired deletes, every hour, the sessions expired for longer than
// sessionRetention and the events older than aoba.EventRetention. Every
// pod does it; the deletes are idempotent. (The embedded store sweeps
// itself.)
func (m *Main) sweepExpired(st aoba.Store) {
	defer close(m.sweepDone)
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-m.sweepStop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if _, err := st.DeleteExpiredSessions(ctx, time.Now().Add(-sessionRetention)); err != nil {
				m.Logger.Warn("sweep expired sessions", "err", err)
			}
			if _, err := st.DeleteEventsBefore(ctx, time.Now().Add(-aoba.EventRetention)); err != nil {
				m.Logger.Warn("sweep old events", "err", err)
			}
			cancel()
		}
	}
}

// Addr returns the address the server listens on, or "" before Run.
func (m *Main) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Server returns the API server, or nil before Run.
func (m *Main) Server() *api.Server { return m.server }

// Close shuts down gracefully: open sockets are closed with 1001, in-flight
// requests finish, pending webhooks are delivered (all within 10 s), then
// the hub and the store are closed. It
// returns the first error and is safe to call more than once.
func (m *Main) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.close() })
	return m.closeErr
}

func (m *Main) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	if m.node != nil {
		if m.xmpp != nil {
			if err := m.xmpp.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("shut down XMPP: %w", err))
			}
		}
		if err := m.node.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close sockets: %w", err))
		}
	}
	if m.server != nil && m.ln != nil {
		if err := m.server.App().ShutdownWithContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down HTTP: %w", err))
		}
	} else if m.ln != nil {
		_ = m.ln.Close()
	}
	if m.pprof != nil {
		_ = m.pprof.Close()
	}
	// No message is sent any more: pending webhooks get what is left of
	// the deadline, while the store and presence they read are still open.
	if m.webhooks != nil {
		if err := m.webhooks.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close webhooks: %w", err))
		}
	}
	if m.presence != nil {
		if err := m.presence.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close presence: %w", err))
		}
	}
	if m.broker != nil {
		if err := m.broker.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close broker: %w", err))
		}
	}
	if cl, ok := m.limiter.(io.Closer); ok {
		_ = cl.Close()
	}
	if cl, ok := m.sessions.(io.Closer); ok {
		_ = cl.Close()
	}
	if m.health != nil {
		m.health.Close()
	}
	if m.rdb != nil {
		if err := m.rdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close Redis client: %w", err))
		}
	}
	if m.sweepStop != nil {
		close(m.sweepStop)
		<-m.sweepDone
	}
	if m.store != nil {
		if err := m.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	if m.Logger != nil {
		m.Logger.Info("aoba stopped")
	}
	return errors.Join(errs...)
}
