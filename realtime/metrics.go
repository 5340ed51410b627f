package realtime

import "github.com/prometheus/client_golang/prometheus"

// metrics are one Node's Prometheus collectors.
type metrics struct {
	sockets        prometheus.Gauge
	framesIn       prometheus.Counter
	framesOut      prometheus.Counter
	slowDisconnect prometheus.Counter
	latency        prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		sockets: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "aoba", Subsystem: "realtime", Name: "sockets_open",
			Help: "WebSocket connections open on this pod.",
		}),
		framesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "aoba", Subsystem: "realtime", Name: "frames_in_total",
			Help: "Frames read from clients.",
		}),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "aoba", Subsystem: "realtime", Name: "frames_out_total",
			Help: "Frames written to clients.",
		}),
		slowDisconnect: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "aoba", Subsystem: "realtime", Name: "slow_disconnects_total",
			Help: "Sockets closed because their send queue overflowed (close code 4002).",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "aoba", Subsystem: "realtime", Name: "delivery_seconds",
			Help:    "Time from the broker handing a frame to this pod until it is written to a socket.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
}

// Collectors returns the node's Prometheus collectors: the open sockets
// gauge, frames in and out, slow-client disconnects and the delivery
// latency histogram (from the envelope's arrival on this pod until the
// write, as envelopes carry no publish time). They are not registered
// anywhere: the server registers them. It never fails.
func (n *Node) Collectors() []prometheus.Collector {
	m := n.metrics
	return []prometheus.Collector{m.sockets, m.framesIn, m.framesOut, m.slowDisconnect, m.latency}
}
