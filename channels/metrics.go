package channels

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the hub's Prometheus collectors.
type metrics struct {
	in           *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	out          *prometheus.CounterVec
	paced        *prometheus.CounterVec
	recovered    *prometheus.CounterVec
	turnErrors   *prometheus.CounterVec
	backlog      *prometheus.GaugeVec
	turnSeconds  *prometheus.HistogramVec
	replySeconds *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	lat := prometheus.ExponentialBuckets(0.001, 2, 14) // 1 ms … ~8 s
	m := &metrics{
		in: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zhiyin_channel_messages_in_total",
			Help: "Inbound messages by channel and result (accepted, duplicate, ignored, invalid).",
		}, []string{"channel", "result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zhiyin_channel_rejected_total",
			Help: "Inbound requests refused before parsing a message (signature, stale, replay, malformed, too_large).",
		}, []string{"channel", "reason"}),
		out: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zhiyin_channel_messages_out_total",
			Help: "Reply parts by channel and outcome (sent, retry, dead).",
		}, []string{"channel", "result"}),
		paced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zhiyin_channel_paced_total",
			Help: "Sends held back by a platform's rate limit (queued, not dropped).",
		}, []string{"channel"}),
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zhiyin_channel_recovered_total",
			Help: "Committed messages answered by the sweeper (after a restart or failures).",
		}, []string{"channel"}),
		turnErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zhiyin_channel_turn_errors_total",
			Help: "Temporary failures answering a message (retried).",
		}, []string{"channel"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zhiyin_channel_outbox_backlog",
			Help: "Reply parts held in memory waiting to be sent (more may wait on disk).",
		}, []string{"channel"}),
		turnSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zhiyin_channel_turn_seconds",
			Help:    "Time to answer a committed message (dialogue turn with its commit).",
			Buckets: lat,
		}, []string{"channel"}),
		replySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zhiyin_channel_receipt_to_reply_seconds",
			Help:    "From the inbox commit to the platform accepting the first reply part.",
			Buckets: lat,
		}, []string{"channel"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.in, m.rejected, m.out, m.paced, m.recovered, m.turnErrors, m.backlog, m.turnSeconds, m.replySeconds} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue // a second hub in one process (tests) shares the first's counters
			}
			return nil, err
		}
	}
	return m, nil
}
