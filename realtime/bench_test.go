package realtime_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/realtime"
)

// BenchmarkFanout500 delivers one envelope to the 500 local sockets of one
// user and waits until every socket has received it. The clients read raw
// bytes from TCP without allocating, so allocs/recipient measures the
// node's path (Deliver, queue, writer) alone.
func BenchmarkFanout500(b *testing.B) {
	const sockets = 500
	e := newEnv(b, realtime.Config{SendQueue: 1024})
	tok, cl := e.user("fan")
	frame := []byte(`{"type":"message","data":{"id":"x","content":"hello everyone"}}`)
	wire := 2 + len(frame) // an unmasked server frame under 126 bytes
	tick := make(chan struct{}, sockets)
	var wg sync.WaitGroup
	for range sockets {
		c := e.dial(tok)
		c.quiet()
		conn := c.ws.NetConn()
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
	env := aoba.Envelope{Frame: frame}
	topic := aoba.UserTopic(cl.UserID)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		e.node.Deliver(topic, env)
		for range sockets {
			<-tick
		}
	}
	b.StopTimer()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*sockets), "ns/recipient")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*sockets), "allocs/recipient")
}
