package realtime_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/realtime"
)

// benchConfig is the node configuration of the fan-out benchmarks: no
// pings and no idle timeout during a run, since the clients count frames
// by their size in raw bytes (a ping would throw the count off).
var benchConfig = realtime.Config{SendQueue: 1024, PingInterval: time.Hour, IdleTimeout: 2 * time.Hour}

// benchFrame is the frame the fan-out benchmarks deliver.
var benchFrame = []byte(`{"type":"message","data":{"id":"x","content":"hello everyone"}}`)

// BenchmarkFanout500 delivers one envelope to the 500 local sockets of one
// user and waits until every socket has received it. The clients read raw
// bytes from TCP without allocating, so allocs/recipient measures the
// node's path (Deliver, queue, writer) alone.
func BenchmarkFanout500(b *testing.B) {
	const sockets = 500
	e := newEnv(b, benchConfig)
	tok, cl := e.user("fan")
	cs := make([]*client, sockets)
	for i := range cs {
		cs[i] = e.dial(tok)
	}
	measureFanout(b, e, cs, aoba.UserTopic(cl.UserID), aoba.Envelope{Frame: benchFrame}, 1)
}

// BenchmarkGroupFanout500 delivers one envelope on a group topic to the
// 500 local sockets of the group's 100 members (5 sockets each), as a
// message to a 500-member group reaches a pod: one Deliver call, one queue
// entry per socket.
func BenchmarkGroupFanout500(b *testing.B) {
	e, cs, topic := groupFanoutEnv(b)
	// A real group message excepts the sending socket, on another pod here.
	measureFanout(b, e, cs, topic, aoba.Envelope{Frame: benchFrame, ExceptConn: aoba.NewID()}, 1)
}

// BenchmarkGroupFanout500Burst16 delivers 16 envelopes back to back on the
// group topic of BenchmarkGroupFanout500, as messages of busy publishers
// reach a pod faster than one write per socket each: the frames a socket
// has queued share its writes (see writes/frame).
func BenchmarkGroupFanout500Burst16(b *testing.B) {
	e, cs, topic := groupFanoutEnv(b)
	measureFanout(b, e, cs, topic, aoba.Envelope{Frame: benchFrame, ExceptConn: aoba.NewID()}, 16)
}

// groupFanoutEnv returns a pod, the 500 sockets of the 100 members of one
// group (5 sockets each) and the group's topic.
func groupFanoutEnv(b *testing.B) (*testEnv, []*client, string) {
	const members, perMember = 100, 5
	ctx := context.Background()
	e := newEnv(b, benchConfig)
	_, owner := e.user("owner")
	g, err := e.svc.CreateGroup(ctx, owner, "big", nil)
	if err != nil {
		b.Fatal(err)
	}
	var toks []string
	for i := range members {
		name := fmt.Sprintf("member%03d", i)
		tok, _ := e.user(name)
		if _, err := e.svc.AddMember(ctx, owner, g.Group.ID, name, "member"); err != nil {
			b.Fatal(err)
		}
		toks = append(toks, tok)
	}
	var cs []*client
	for _, tok := range toks {
		for range perMember {
			cs = append(cs, e.dial(tok))
		}
	}
	return e, cs, aoba.GroupTopic(g.Group.ID)
}

// measureFanout delivers env on topic burst times in a row, b.N times, and
// waits each time until every socket of cs has received the burst. It
// reports ns and allocations per recipient (per frame received), and the
// writes per frame: the Write calls on the server's connections
// (writes/frame, see countingConn) and the write system calls of the whole
// process as /proc/self/io counts them (syscw/frame: an upper bound, which
// includes the runtime's own wakeup writes), after a few rounds that warm
// the node up.
func measureFanout(b *testing.B, e *testEnv, cs []*client, topic string, env aoba.Envelope, burst int) {
	wire := 2 + len(env.Frame) // an unmasked server frame under 126 bytes
	tick := make(chan struct{}, len(cs))
	var wg sync.WaitGroup
	for _, c := range cs {
		c.quiet() // subscribed, and nothing else queued
		conn := c.ws.NetConn()
		// quiet left the read deadline of its 5 s wait on the connection:
		// clear it, or every reader gives up 5 s into a long run.
		_ = conn.SetReadDeadline(time.Time{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			pending := 0
			for {
				n, err := conn.Read(buf)
				if err != nil {
					return
				}
				for pending += n; pending >= wire; pending -= wire {
					tick <- struct{}{}
				}
			}
		}()
	}
	deliver := func() {
		for range burst {
			e.node.Deliver(topic, env)
		}
		for range len(cs) * burst {
			<-tick
		}
	}
	// Warm up: the node's pool of writer goroutines grows to what one
	// fan-out needs (starting a goroutine allocates), then stays.
	for range 20 {
		deliver()
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	writes0, syscw0 := e.writes.Load(), syscw(b)
	start := time.Now()
	for range b.N {
		deliver()
	}
	b.StopTimer()
	elapsed := time.Since(start)
	writes, sys := e.writes.Load()-writes0, syscw(b)-syscw0
	runtime.ReadMemStats(&after)
	frames := float64(b.N * len(cs) * burst)
	b.ReportMetric(float64(elapsed.Nanoseconds())/frames, "ns/recipient")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/frames, "allocs/recipient")
	b.ReportMetric(float64(writes)/frames, "writes/frame")
	if sys >= 0 {
		b.ReportMetric(float64(sys)/frames, "syscw/frame")
	}
}

// syscw returns the write system calls this process made so far, from
// /proc/self/io, or -1 where the kernel does not say.
func syscw(tb testing.TB) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				tb.Fatalf("/proc/self/io: %q: %v", line, err)
			}
			return n
		}
	}
	return -1
}
