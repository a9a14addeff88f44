package dialogue

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus series.
type metrics struct {
	turns           *prometheus.CounterVec
	turnErrors      *prometheus.CounterVec
	turnDuration    *prometheus.HistogramVec
	sessionsStarted prometheus.Counter
	resumes         prometheus.Counter
	fallbacks       prometheus.Counter
	handoffs        *prometheus.CounterVec
	skillErrors     *prometheus.CounterVec
	skillDuration   *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "zhiyin", "dialogue"
	m := &metrics{
		turns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "turns_total",
			Help: "Turns answered, by lane."}, []string{"lane"}),
		turnErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "turn_errors_total",
			Help: "Turns that failed, by lane and stage (lane: queue full or cancelled; turn: NLU or database)."}, []string{"lane", "stage"}),
		turnDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "turn_duration_seconds",
			Help:    "Time from a message to its committed answer, by lane.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"lane"}),
		sessionsStarted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "sessions_started_total",
			Help: "Sessions started."}),
		resumes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "resumes_total",
			Help: "Expired sessions brought back by a resume request."}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "fallbacks_total",
			Help: "Turns nothing could answer."}),
		handoffs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "handoffs_total",
			Help: "Conversations handed to a human, by reason."}, []string{"reason"}),
		skillErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "skill_errors_total",
			Help: "Skill calls that failed (the customer got an apology), by skill and reason."}, []string{"skill", "reason"}),
		skillDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "skill_duration_seconds",
			Help: "Time skills take, by skill.", Buckets: prometheus.DefBuckets}, []string{"skill"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.turns, m.turnErrors, m.turnDuration, m.sessionsStarted, m.resumes, m.fallbacks, m.handoffs, m.skillErrors, m.skillDuration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register dialogue metrics: %w", err)
		}
	}
	return m, nil
}
