package lanes

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the pool's Prometheus collectors, resolved per lane once so
// that Do does no label lookups.
type metrics struct {
	wait     [numLanes]prometheus.Observer
	tasks    [numLanes]prometheus.Counter
	rejected [numLanes]prometheus.Counter
	depth    [numLanes]prometheus.Gauge
}

// newMetrics builds the collectors and registers them on reg (nil: none).
// When identical collectors are already registered (a second pool in one
// process) they are shared, so the series add up across pools.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	wait := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "zhiyin_lane_queue_wait_seconds",
		Help:    "Time a task waited in its lane's queue before a worker started it.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 3, 12), // 100µs … ~18s
	}, []string{"lane"})
	tasks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zhiyin_lane_tasks_total",
		Help: "Tasks run to completion (or panic), by the lane they were queued on.",
	}, []string{"lane"})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zhiyin_lane_rejected_total",
		Help: "Tasks refused because their lane's queue was full.",
	}, []string{"lane"})
	depth := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "zhiyin_lane_queue_depth",
		Help: "Tasks waiting in the lane's queue for a worker.",
	}, []string{"lane"})
	if reg != nil {
		var err error
		if wait, err = register(reg, wait); err != nil {
			return nil, err
		}
		if tasks, err = register(reg, tasks); err != nil {
			return nil, err
		}
		if rejected, err = register(reg, rejected); err != nil {
			return nil, err
		}
		if depth, err = register(reg, depth); err != nil {
			return nil, err
		}
	}
	m := &metrics{}
	for i, name := range laneNames {
		m.wait[i] = wait.WithLabelValues(name)
		m.tasks[i] = tasks.WithLabelValues(name)
		m.rejected[i] = rejected.WithLabelValues(name)
		m.depth[i] = depth.WithLabelValues(name)
	}
	return m, nil
}

// register registers c, or returns the identical collector already there.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
