package xmpp

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	streams    prometheus.Gauge
	stanzasIn  prometheus.Counter
	stanzasOut prometheus.Counter
	slow       prometheus.Counter
	logins     *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aoba_xmpp_streams", Help: "Open XMPP client streams on this pod (TCP and WebSocket).",
		}),
		stanzasIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aoba_xmpp_stanzas_received_total", Help: "Stanzas read from XMPP clients after authentication.",
		}),
		stanzasOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aoba_xmpp_stanzas_sent_total", Help: "Stanzas written to XMPP clients.",
		}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aoba_xmpp_slow_clients_total", Help: "XMPP streams ended because their send queue overflowed.",
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aoba_xmpp_auth_total", Help: "SASL exchanges by outcome (ok or the SASL failure condition).",
		}, []string{"result"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.streams, m.stanzasIn, m.stanzasOut, m.slow, m.logins}
}
