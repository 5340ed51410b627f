package clustertest_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/internal/redistest"
)

// BenchmarkCrossPodLatency measures 1:1 delivery across two pods: a
// message.send frame on a socket of pod A until the message frame arrives
// on the recipient's socket on pod B (through MongoDB and Redis). It
// reports the median and the 99th percentile.
func BenchmarkCrossPodLatency(b *testing.B) {
	rs := redistest.Start(b)
	cl := newCluster(b, rs.URL())
	pa, pb := cl.start("A"), cl.start("B")
	sender, recipient := pa.signup("sender"), pa.signup("recipient")
	as, bs := pa.dial(sender), pb.dial(recipient)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		as.send("message.send", fmt.Sprint(i), aoba.SendInput{To: "recipient", Content: "ping"})
		bs.expect(aoba.FrameMessage, 10*time.Second)
		lat = append(lat, time.Since(start))
		as.expect(aoba.FrameAck, 10*time.Second)
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[len(lat)/2]), "median-ms")
	b.ReportMetric(ms(lat[(len(lat)*99)/100]), "p99-ms")
}
