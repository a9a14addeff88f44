package inference

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the inference metrics, all named zhiyin_inference_*. One set
// serves every model of a process; series are labelled by model, version
// and execution provider (ep: cpu or cuda). Safe for concurrent use.
type Metrics struct {
	runDuration    *prometheus.HistogramVec
	runErrors      *prometheus.CounterVec
	batchSize      *prometheus.HistogramVec
	queueDepth     *prometheus.GaugeVec
	loadDuration   *prometheus.HistogramVec
	warmupDuration *prometheus.HistogramVec
	memory         *prometheus.GaugeVec
	ready          *prometheus.GaugeVec
	fallbacks      *prometheus.CounterVec
	unloads        *prometheus.CounterVec
	shadowResults  *prometheus.CounterVec
	shadowDuration *prometheus.HistogramVec
}

// Error reasons (the reason label of zhiyin_inference_run_errors_total).
const (
	errReasonBadInput   = "bad_input"
	errReasonRun        = "run_error"
	errReasonCanceled   = "canceled"
	errReasonOverloaded = "overloaded"
	errReasonContract   = "contract"
)

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered, as in tests and CLI commands). Metrics already registered on
// reg by an earlier call are reused, so two registries in one process share
// them.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns, sub = "zhiyin", "inference"
	runBuckets := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	loadBuckets := []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	m := &Metrics{
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "run_duration_seconds",
			Help: "Time of one ONNX Runtime run (one batch when batching), by model, version and execution provider.", Buckets: runBuckets},
			[]string{"model", "version", "ep"}),
		runErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "run_errors_total",
			Help: "Failed Run calls by reason: bad_input, run_error, canceled, overloaded, contract."},
			[]string{"model", "version", "reason"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_size",
			Help: "Requests merged into one run by micro-batching.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}},
			[]string{"model", "version"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "queue_depth",
			Help: "Requests waiting for a run slot or a batch."},
			[]string{"model", "version"}),
		loadDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "load_duration_seconds",
			Help: "Time to verify files and create the session of a model, without warm-up.", Buckets: loadBuckets},
			[]string{"model", "version", "ep"}),
		warmupDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "warmup_duration_seconds",
			Help: "Time to run a model's warm-up inputs after loading.", Buckets: loadBuckets},
			[]string{"model", "version", "ep"}),
		memory: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "model_memory_bytes",
			Help: "Memory a loaded model took: kind=host is the process RSS growth over load and warm-up, kind=gpu the device memory growth (NVML)."},
			[]string{"model", "version", "kind"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "model_ready",
			Help: "1 while a model version is loaded, warmed and serving (role=serving) or shadowing (role=candidate) on the execution provider ep."},
			[]string{"model", "version", "ep", "role"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "provider_fallbacks_total",
			Help: "Model loads that asked for CUDA and run on the CPU, by reason."},
			[]string{"model", "reason"}),
		unloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "unloads_total",
			Help: "Model versions released, by reason: idle, swap, shadow, stop."},
			[]string{"model", "reason"}),
		shadowResults: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "shadow_requests_total",
			Help: "Requests mirrored to a candidate version, by result: agree, disagree, error, skipped."},
			[]string{"model", "version", "result"}),
		shadowDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "shadow_run_duration_seconds",
			Help: "Run time of mirrored requests on the candidate version.", Buckets: runBuckets},
			[]string{"model", "version"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.runDuration = register(reg, m.runDuration, &err)
	m.runErrors = register(reg, m.runErrors, &err)
	m.batchSize = register(reg, m.batchSize, &err)
	m.queueDepth = register(reg, m.queueDepth, &err)
	m.loadDuration = register(reg, m.loadDuration, &err)
	m.warmupDuration = register(reg, m.warmupDuration, &err)
	m.memory = register(reg, m.memory, &err)
	m.ready = register(reg, m.ready, &err)
	m.fallbacks = register(reg, m.fallbacks, &err)
	m.unloads = register(reg, m.unloads, &err)
	m.shadowResults = register(reg, m.shadowResults, &err)
	m.shadowDuration = register(reg, m.shadowDuration, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		if *errp == nil {
			*errp = err
		}
	}
	return c
}

// modelMetrics are one loaded version's series, resolved once so that the
// hot path does no label lookups.
type modelMetrics struct {
	m                                                  *Metrics
	model, version, ep                                 string
	run                                                prometheus.Observer
	badInput, runErr, canceled, overloaded, contractEr prometheus.Counter
	batch                                              prometheus.Observer
	queue                                              prometheus.Gauge
}

func (m *Metrics) forModel(model, version, ep string) *modelMetrics {
	return &modelMetrics{
		m: m, model: model, version: version, ep: ep,
		run:        m.runDuration.WithLabelValues(model, version, ep),
		badInput:   m.runErrors.WithLabelValues(model, version, errReasonBadInput),
		runErr:     m.runErrors.WithLabelValues(model, version, errReasonRun),
		canceled:   m.runErrors.WithLabelValues(model, version, errReasonCanceled),
		overloaded: m.runErrors.WithLabelValues(model, version, errReasonOverloaded),
		contractEr: m.runErrors.WithLabelValues(model, version, errReasonContract),
		batch:      m.batchSize.WithLabelValues(model, version),
		queue:      m.queueDepth.WithLabelValues(model, version),
	}
}
