package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/api"
	"github.com/aoba-chat/aoba/hub"
)

// RedisConfig says where the scaled-out hub's Redis is: one server
// (AOBA_REDIS_URL), a master found through Sentinel (AOBA_REDIS_SENTINELS
// and AOBA_REDIS_MASTER) or a Redis Cluster (AOBA_REDIS_CLUSTER, seed
// addresses). At most one of the three is set; none means the in-process
// hub.
type RedisConfig struct {
	Sentinels []string
	Master    string
	Cluster   []string
	// Password and Username authenticate to the Redis servers of a
	// Sentinel or Cluster deployment (a URL carries its own);
	// SentinelPassword to the sentinels themselves.
	Username, Password string
	SentinelPassword   string
}

// redisEnvVars are the variables parseRedisEnv reads, besides
// AOBA_REDIS_URL and AOBA_REDIS_PREFIX; they join EnvVars.
var redisEnvVars = []string{
	"AOBA_REDIS_SENTINELS", "AOBA_REDIS_MASTER", "AOBA_REDIS_CLUSTER",
	"AOBA_REDIS_USERNAME", "AOBA_REDIS_PASSWORD", "AOBA_REDIS_SENTINEL_PASSWORD",
}

func init() { EnvVars = append(EnvVars, redisEnvVars...) }

// redisEnabled reports whether a Redis is configured: the scaled-out hub.
func (c Config) redisEnabled() bool {
	return c.RedisURL != "" || len(c.Redis.Sentinels) > 0 || len(c.Redis.Cluster) > 0
}

// redisKind names the Redis topology for logs.
func (c Config) redisKind() string {
	switch {
	case len(c.Redis.Sentinels) > 0:
		return "sentinel"
	case len(c.Redis.Cluster) > 0:
		return "cluster"
	}
	return "single"
}

// parseRedisEnv reads the Redis topology into c.Redis (AOBA_REDIS_URL is
// read by ParseEnv into c.RedisURL) and checks it: one
// topology at most, a master name with the sentinels and only with them,
// host:port addresses, a URL go-redis reads, and a prefix without hash-tag
// braces.
func parseRedisEnv(c *Config, getenv func(string) string) error {
	r := &c.Redis
	r.Sentinels = api.SplitList(getenv("AOBA_REDIS_SENTINELS"))
	r.Master = strings.TrimSpace(getenv("AOBA_REDIS_MASTER"))
	r.Cluster = api.SplitList(getenv("AOBA_REDIS_CLUSTER"))
	r.Username = strings.TrimSpace(getenv("AOBA_REDIS_USERNAME"))
	r.Password = getenv("AOBA_REDIS_PASSWORD")
	r.SentinelPassword = getenv("AOBA_REDIS_SENTINEL_PASSWORD")
	set := 0
	for _, on := range []bool{c.RedisURL != "", len(r.Sentinels) > 0, len(r.Cluster) > 0} {
		if on {
			set++
		}
	}
	if set > 1 {
		return errors.New("AOBA_REDIS_URL, AOBA_REDIS_SENTINELS and AOBA_REDIS_CLUSTER each name a whole Redis deployment: set only one of them")
	}
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			return fmt.Errorf("AOBA_REDIS_URL must be a redis:// or rediss:// URL such as redis://redis:6379/0: %v", err)
		}
		if r.Username != "" || r.Password != "" {
			return errors.New("AOBA_REDIS_USERNAME and AOBA_REDIS_PASSWORD go with AOBA_REDIS_SENTINELS or AOBA_REDIS_CLUSTER; with AOBA_REDIS_URL put them in the URL (redis://user:password@host:6379/0)")
		}
	}
	if len(r.Sentinels) > 0 && r.Master == "" {
		return errors.New("AOBA_REDIS_MASTER is required with AOBA_REDIS_SENTINELS: the name the sentinels monitor (sentinel monitor <name> ...)")
	}
	if r.Master != "" && len(r.Sentinels) == 0 {
		return errors.New("AOBA_REDIS_MASTER is set without AOBA_REDIS_SENTINELS: list the sentinels' host:port addresses")
	}
	if r.SentinelPassword != "" && len(r.Sentinels) == 0 {
		return errors.New("AOBA_REDIS_SENTINEL_PASSWORD is set without AOBA_REDIS_SENTINELS")
	}
	for _, l := range []struct {
		name  string
		addrs []string
	}{{"AOBA_REDIS_SENTINELS", r.Sentinels}, {"AOBA_REDIS_CLUSTER", r.Cluster}} {
		for _, a := range l.addrs {
			if err := checkHostPort(a); err != nil {
				return fmt.Errorf("%s: %q %v", l.name, a, err)
			}
		}
	}
	if err := hub.CheckPrefix(c.RedisPrefix); err != nil {
		return fmt.Errorf("AOBA_REDIS_PREFIX %v", err)
	}
	return nil
}

// checkHostPort returns an error saying why a is not host:port.
func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return errors.New("is not a host:port address such as redis-1:6379")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("has an invalid port")
	}
	return nil
}

// newRedisClient returns the go-redis client of c: a *redis.Client for one
// server or a Sentinel-managed master (which follows failovers), a
// *redis.ClusterClient for a Cluster. It connects lazily. addr describes
// the deployment for the start-up log.
func newRedisClient(c Config) (client redis.UniversalClient, addr string, err error) {
	r := c.Redis
	switch {
	case len(r.Sentinels) > 0:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: r.Master, SentinelAddrs: r.Sentinels, SentinelPassword: r.SentinelPassword,
			Username: r.Username, Password: r.Password, PoolSize: redisPoolSize,
		}), r.Master + " via " + strings.Join(r.Sentinels, ","), nil
	case len(r.Cluster) > 0:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: r.Cluster, Username: r.Username, Password: r.Password, PoolSize: redisPoolSize,
		}), strings.Join(r.Cluster, ","), nil
	}
	opts, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, "", fmt.Errorf("AOBA_REDIS_URL: %w", err)
	}
	if opts.PoolSize == 0 { // no pool_size in the URL
		opts.PoolSize = redisPoolSize
	}
	return redis.NewClient(opts), opts.Addr, nil
}

// openRedisHub builds the scaled-out hub on the configured Redis: the
// broker, presence, session cache and limits, and the RedisHealth that
// lets the pod serve degraded while Redis is down (rate limits fall back
// to a per-pod limiter, /health says "degraded" and stays 200). It adds
// the "redis" health check to pingers.
func (m *Main) openRedisHub(c Config, pingers map[string]aoba.Pinger) error {
	log := m.Logger
	var addr string
	var err error
	if m.rdb, addr, err = newRedisClient(c); err != nil {
		return err
	}
	hub.InstrumentRedis(m.rdb)
	m.health = hub.NewRedisHealth(m.rdb, log)
	broker := hub.NewRedisBroker(m.rdb, c.RedisPrefix)
	broker.WatchHealth(m.health)
	m.broker = broker
	m.presence = hub.NewRedisPresence(m.rdb, c.RedisPrefix, aoba.NewID(), hub.PresenceOptions{})
	m.limiter = hub.NewFallbackLimiter(hub.NewRedisRateLimiter(m.rdb, c.RedisPrefix), m.health, log)
	m.sessions = hub.NewRedisSessions(m.rdb, c.RedisPrefix)
	m.watches = hub.NewRedisWatches(m.rdb, c.RedisPrefix, c.MaxWatchedPerUser)
	m.sockets = hub.NewRedisSockets(m.rdb, c.RedisPrefix)
	pingers["redis"] = m.health
	log.Info("hub: Redis", "topology", c.redisKind(), "addr", addr, "prefix", c.RedisPrefix)
	return nil
}
