package sip

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one Server's collectors; registered on Deps.Metrics when set.
type metrics struct {
	callsActive prometheus.Gauge
	setup       prometheus.Histogram
	requests    *prometheus.CounterVec
	registered  prometheus.Gauge
	rtpLost     prometheus.Counter
	rtpJitter   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		callsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zhiyin_sip_calls_active", Help: "SIP calls up now.",
		}),
		setup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "zhiyin_sip_call_setup_seconds",
			Help:    "Time from an INVITE arriving to our 200 OK leaving.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zhiyin_sip_requests_total", Help: "SIP requests received, by method and the final status we answered.",
		}, []string{"method", "code"}),
		registered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zhiyin_sip_registered", Help: "1 while our registration to sip.register.registrar is current.",
		}),
		rtpLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zhiyin_sip_rtp_packets_lost_total", Help: "RTP packets from callers that never arrived.",
		}),
		rtpJitter: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "zhiyin_sip_rtp_jitter_seconds",
			Help:    "RFC 3550 interarrival jitter of callers' RTP, sampled per call at its end.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .04, .08, .16},
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.callsActive, m.setup, m.requests, m.registered, m.rtpLost, m.rtpJitter} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register metrics: another SIP server already registered them (one sip: section per process): %w", err)
			}
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) request(method string, code int) {
	m.requests.WithLabelValues(method, strconv.Itoa(code)).Inc()
}
