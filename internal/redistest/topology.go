package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// CLI is the redis-cli executable that creates clusters.
const CLI = "/usr/bin/redis-cli"

// NodeTimeout is the cluster-node-timeout of StartCluster's nodes and the
// down-after-milliseconds of StartSentinel's sentinels: how long a master
// may be silent before a failover starts. It is small so that failover
// tests stay short.
const NodeTimeout = 1000 * time.Millisecond

// Cluster is a Redis Cluster of 3 masters with one replica each, every node
// a redis-server on 127.0.0.1.
type Cluster struct {
	tb    testing.TB
	Nodes []*Server
}

// StartCluster starts 6 cluster-enabled redis-servers on free ports, joins
// them into a cluster of 3 masters and 3 replicas with redis-cli --cluster
// create, and waits until every node reports cluster_state:ok and knows
// its replica. The nodes are killed when tb's test ends. It skips the test
// when redis-server or redis-cli is not installed.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	need(tb, Binary, CLI)
	c := &Cluster{tb: tb}
	addrs := make([]string, 0, 6)
	for i := 0; i < 6; i++ {
		s := &Server{tb: tb, dir: tb.TempDir()}
		startOnFreePorts(tb, s, "cluster node", func() {
			s.extra = []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(s.dir, "nodes.conf"),
				"--cluster-node-timeout", fmt.Sprint(NodeTimeout.Milliseconds()),
				// The bus port defaults to port+10000, which may not exist.
				"--cluster-port", fmt.Sprint(freePort(tb)),
				// A replica cut off from its master for a while may still
				// take over: the tests kill masters right after start.
				"--cluster-replica-validity-factor", "0",
			}
		})
		tb.Cleanup(s.Stop)
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(CLI, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitHealthy(tb, 30*time.Second)
	return c
}

// Addrs returns the host:port addresses of every node, the seeds of a
// cluster client.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		out[i] = s.Addr()
	}
	return out
}

// waitHealthy waits until every running node reports cluster_state:ok and
// each master that owns slots has a connected replica.
func (c *Cluster) waitHealthy(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	waitFor(tb, timeout, "cluster not healthy", c.unhealthy)
}

// unhealthy returns why the cluster is not ready yet, or "".
func (c *Cluster) unhealthy() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range c.Nodes {
		if !s.running() {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		info, err := cl.ClusterInfo(ctx).Result()
		var nodes string
		if err == nil {
			nodes, err = cl.ClusterNodes(ctx).Result()
		}
		cl.Close()
		if err != nil {
			return fmt.Sprintf("%s: %v", s.Addr(), err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return s.Addr() + " reports a cluster state that is not ok"
		}
		masters, replicas := 0, 0
		for _, line := range strings.Split(strings.TrimSpace(nodes), "\n") {
			f := strings.Fields(line)
			if len(f) < 8 || strings.Contains(f[2], "fail") {
				continue
			}
			switch {
			case strings.Contains(f[2], "master") && len(f) > 8:
				masters++
			case strings.Contains(f[2], "slave") && f[7] == "connected":
				replicas++
			}
		}
		if replicas < masters {
			return fmt.Sprintf("%s sees %d masters with slots and %d connected replicas", s.Addr(), masters, replicas)
		}
	}
	return ""
}

// MasterOf returns the node that serves key's slot as master now, as the
// running nodes see it.
func (c *Cluster) MasterOf(key string) *Server {
	c.tb.Helper()
	s, err := c.masterOf(key)
	if err != nil {
		c.tb.Fatalf("redistest: %v", err)
	}
	return s
}

func (c *Cluster) masterOf(key string) (*Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var lastErr error = fmt.Errorf("no node serves the slot of %q", key)
	for _, s := range c.Nodes {
		if !s.running() {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		slot, err := cl.ClusterKeySlot(ctx, key).Result()
		var shards []redis.ClusterSlot
		if err == nil {
			shards, err = cl.ClusterSlots(ctx).Result()
		}
		cl.Close()
		if err != nil {
			lastErr = err
			continue
		}
		for _, sh := range shards {
			if int64(sh.Start) <= slot && slot <= int64(sh.End) && len(sh.Nodes) > 0 {
				for _, n := range c.Nodes {
					if n.Addr() == sh.Nodes[0].Addr {
						return n, nil
					}
				}
			}
		}
	}
	return nil, lastErr
}

// WaitFailover waits until a replica took over key's slot from the
// stopped master old and every running node reports cluster_state:ok.
func (c *Cluster) WaitFailover(key string, old *Server, timeout time.Duration) {
	c.tb.Helper()
	waitFor(c.tb, timeout, "no failover", func() string {
		if m, err := c.masterOf(key); err != nil {
			return err.Error()
		} else if m == old || !m.running() {
			return "the slot is still served by " + m.Addr()
		}
		return c.failedOver()
	})
}

// failedOver returns why a running node does not report cluster_state:ok,
// or "".
func (c *Cluster) failedOver() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range c.Nodes {
		if !s.running() {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		info, err := cl.ClusterInfo(ctx).Result()
		cl.Close()
		if err != nil {
			return fmt.Sprintf("%s: %v", s.Addr(), err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return s.Addr() + " reports a cluster state that is not ok"
		}
	}
	return ""
}

// MasterName is the name StartSentinel's sentinels monitor.
const MasterName = "aoba"

// Sentinel is a master with one replica watched by 3 sentinels, every
// process a redis-server on 127.0.0.1 (the sentinels run with --sentinel).
type Sentinel struct {
	tb        testing.TB
	Master    *Server
	Replica   *Server
	Sentinels []*Server
}

// StartSentinel starts a master, its replica and 3 sentinels (quorum 2,
// down-after-milliseconds NodeTimeout) on free ports and waits until the
// sentinels know the replica and one another, so that a failover can
// start. Everything is killed when tb's test ends. It skips the test when
// redis-server is not installed.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	need(tb, Binary)
	st := &Sentinel{tb: tb, Master: Start(tb)}
	r := &Server{tb: tb, dir: tb.TempDir()}
	r.extra = []string{"--replicaof", "127.0.0.1", fmt.Sprint(st.Master.port)}
	startOnFreePorts(tb, r, "replica", func() {})
	tb.Cleanup(r.Stop)
	st.Replica = r
	for i := 0; i < 3; i++ {
		s := &Server{tb: tb, dir: tb.TempDir()}
		conf := filepath.Join(s.dir, "sentinel.conf")
		s.args = []string{conf, "--sentinel"}
		text := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %s %d\n"+
			"sentinel failover-timeout %s 5000\n"+
			"sentinel parallel-syncs %s 1\n",
			MasterName, st.Master.port, MasterName, NodeTimeout.Milliseconds(), MasterName, MasterName)
		startOnFreePorts(tb, s, "sentinel", func() {
			// The sentinel rewrites its file: write it anew each try.
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				tb.Fatalf("redistest: write %s: %v", conf, err)
			}
		})
		tb.Cleanup(s.Stop)
		st.Sentinels = append(st.Sentinels, s)
	}
	st.waitReady(30 * time.Second)
	return st
}

// Addrs returns the host:port addresses of the sentinels.
func (st *Sentinel) Addrs() []string {
	out := make([]string, len(st.Sentinels))
	for i, s := range st.Sentinels {
		out[i] = s.Addr()
	}
	return out
}

// waitReady waits until every sentinel sees the replica and the two other
// sentinels, and the replica is in sync.
func (st *Sentinel) waitReady(timeout time.Duration) {
	st.tb.Helper()
	waitFor(st.tb, timeout, "sentinels not ready", st.notReady)
}

func (st *Sentinel) notReady() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range st.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		replicas, err := sc.Replicas(ctx, MasterName).Result()
		var sentinels []map[string]string
		if err == nil {
			sentinels, err = sc.Sentinels(ctx, MasterName).Result()
		}
		sc.Close()
		if err != nil {
			return fmt.Sprintf("sentinel %s: %v", s.Addr(), err)
		}
		if len(replicas) < 1 || len(sentinels) < 2 {
			return fmt.Sprintf("sentinel %s sees %d replicas and %d other sentinels", s.Addr(), len(replicas), len(sentinels))
		}
	}
	cl := redis.NewClient(&redis.Options{Addr: st.Replica.Addr(), MaxRetries: -1})
	defer cl.Close()
	info, err := cl.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Sprintf("replica: %v", err)
	}
	if !strings.Contains(info, "master_link_status:up") {
		return "the replica is not in sync"
	}
	return ""
}

// CurrentMaster returns the address the sentinels name as master now.
func (st *Sentinel) CurrentMaster() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range st.Sentinels {
		if !s.running() {
			continue
		}
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		addr, err := sc.GetMasterAddrByName(ctx, MasterName).Result()
		sc.Close()
		if err == nil && len(addr) == 2 {
			return addr[0] + ":" + addr[1]
		}
	}
	return ""
}

// WaitFailover waits until the sentinels name a master other than old.
func (st *Sentinel) WaitFailover(old string, timeout time.Duration) {
	st.tb.Helper()
	waitFor(st.tb, timeout, "no failover", func() string {
		if m := st.CurrentMaster(); m == "" || m == old {
			return "the sentinels still name " + old + " as master"
		}
		return ""
	})
}

// waitFor calls check every 100 ms until it returns "" and fails tb with
// what and check's last reason when timeout passes first.
func waitFor(tb testing.TB, timeout time.Duration, what string, check func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		reason := check()
		if reason == "" {
			return
		}
		if !time.Now().Before(deadline) {
			tb.Fatalf("redistest: %s within %v: %s", what, timeout, reason)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startOnFreePorts starts s on a free port, after prepare (which may pick
// more ports), and tries again with other ports when one was taken between
// the pick and the start (other processes on the machine run tests too).
func startOnFreePorts(tb testing.TB, s *Server, what string, prepare func()) {
	tb.Helper()
	var err error
	for try := 0; try < 5; try++ {
		s.port = freePort(tb)
		prepare()
		if err = s.start(); err == nil || !strings.Contains(err.Error(), "already in use") {
			break
		}
	}
	if err != nil {
		tb.Fatalf("redistest: %s: %v", what, err)
	}
}

// running reports whether the server's process runs.
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// need skips the test when one of the executables is not installed.
func need(tb testing.TB, paths ...string) {
	tb.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			tb.Skipf("redistest: %s is not installed: %v", p, err)
		}
	}
}
