package store

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Error kinds of zhiyin_store_write_errors_total.
const (
	errKindBusy   = "busy"   // SQLITE_BUSY / SQLITE_LOCKED
	errKindFull   = "full"   // SQLITE_FULL
	errKindFn     = "fn"     // the caller's fn returned an error
	errKindCommit = "commit" // BEGIN or COMMIT failed for another reason
)

// metrics are the store's Prometheus collectors.
type metrics struct {
	batchSize      prometheus.Histogram
	commitDuration prometheus.Histogram
	queueDepth     prometheus.Gauge
	writeErrors    *prometheus.CounterVec

	reg   prometheus.Registerer
	owned []prometheus.Collector // registered by us, unregistered by Close
}

// newMetrics builds the collectors and registers them on reg (nil: none).
// When an identical collector is already registered (two DBs in one
// process, a reopen) the existing one is shared rather than failing.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "zhiyin_store_batch_size",
			Help:    "Writes committed together in one transaction (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 … 2048
		}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "zhiyin_store_commit_duration_seconds",
			Help:    "Time from BEGIN to a durable COMMIT of one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12), // 100µs … ~2.4s
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zhiyin_store_queue_depth",
			Help: "Writes waiting for the single writer.",
		}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zhiyin_store_write_errors_total",
			Help: "Writes that returned an error, by kind (busy, full, fn, commit).",
		}, []string{"kind"}),
		reg: reg,
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.batchSize, err = register(m, m.batchSize); err != nil {
		return nil, err
	}
	if m.commitDuration, err = register(m, m.commitDuration); err != nil {
		return nil, err
	}
	if m.queueDepth, err = register(m, m.queueDepth); err != nil {
		return nil, err
	}
	if m.writeErrors, err = register(m, m.writeErrors); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the identical collector already there.
func register[C prometheus.Collector](m *metrics, c C) (C, error) {
	err := m.reg.Register(c)
	if err == nil {
		m.owned = append(m.owned, c)
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	m.unregister()
	return c, err
}

// unregister removes the collectors this DB registered. Idempotent.
func (m *metrics) unregister() {
	if m == nil || m.reg == nil {
		return
	}
	for _, c := range m.owned {
		m.reg.Unregister(c)
	}
	m.owned = nil
}
