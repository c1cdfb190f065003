package agent

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newMetrics creates the agent's metrics and registers them on reg (none
// when reg is nil; nothing global is touched).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "keyward", Subsystem: "agent", Name: "requests_total",
			Help: "IMDS requests served by the node agent, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "keyward", Subsystem: "agent", Name: "request_duration_seconds",
			Help:    "Latency of IMDS requests served by the node agent.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(r route, status int, d time.Duration) {
	m.requests.WithLabelValues(routeName(r), strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(routeName(r)).Observe(d.Seconds())
}
