package realtime

import "time"

// writerLinger is how long a writer goroutine with nothing to write waits
// for another socket to write to before it ends. Sockets have no writer of
// their own: the node keeps the writer goroutines that finished a socket's
// frames for a while and hands them the next socket that needs one, so
// that a frame on an idle socket does not start (and allocate) a goroutine
// each time.
const writerLinger = 500 * time.Millisecond

// startWriter runs c's writer (c.writeAll) on an idle writer goroutine, or
// on a new one when none waits. The caller holds c's writing flag.
func (n *Node) startWriter(c *conn) {
	select {
	case n.idleWriters <- c:
	default:
		go n.writer(c)
	}
}

// writer writes c's frames, then those of the sockets it is handed, until
// it waited writerLinger for one.
func (n *Node) writer(c *conn) {
	var linger *time.Timer
	for {
		c.writeAll()
		if linger == nil {
			linger = time.NewTimer(writerLinger)
		} else {
			linger.Reset(writerLinger)
		}
		select {
		case c = <-n.idleWriters:
		case <-linger.C:
			return
		}
	}
}

// pinger queues a ping on every socket indexed in the shards once every
// PingInterval, one shard at a time spread over the interval, until stop is
// closed. The pong resets the socket's idle deadline (see readLoop).
func (n *Node) pinger(stop <-chan struct{}) {
	t := time.NewTicker(max(n.cfg.PingInterval/shardCount, time.Millisecond))
	defer t.Stop()
	for i := 0; ; i = (i + 1) % shardCount {
		select {
		case <-t.C:
		case <-stop:
			return
		}
		s := &n.shards[i]
		s.mu.RLock()
		for _, u := range s.users {
			for c := range u.conns {
				c.ping()
			}
		}
		s.mu.RUnlock()
	}
}
