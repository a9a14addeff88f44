package voice

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Turn stages of zhiyin_voice_turn_seconds.
const (
	stageVADWait  = "vad_wait"  // last speech sample → turn end decided
	stageASR      = "asr"       // recognition of the turn's audio
	stageDialogue = "dialogue"  // NLU + policy + commit
	stageTTSFirst = "tts_first" // synthesis start → first chunk queued
	stageResponse = "response"  // turn end decided → first reply audio queued
)

// metrics are the engine's Prometheus collectors.
type metrics struct {
	active    *prometheus.GaugeVec
	calls     *prometheus.CounterVec
	turn      *prometheus.HistogramVec
	bargeIns  prometheus.Counter
	dtmf      prometheus.Counter
	lost      prometheus.Counter
	jitter    prometheus.Histogram
	dropped   prometheus.Counter
	setup     prometheus.Histogram
	turnsDone prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	lat := prometheus.ExponentialBuckets(0.005, 2, 12) // 5 ms … ~10 s
	m := &metrics{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "zhiyin_voice_calls_active",
			Help: "Calls the voice engine holds now.",
		}, []string{"channel"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zhiyin_voice_calls_total",
			Help: "Ended calls by how they ended (remote, no_input, max_duration, transferred, shutdown, error).",
		}, []string{"channel", "end"}),
		turn: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zhiyin_voice_turn_seconds",
			Help:    "Per-turn latency by stage: vad_wait, asr, dialogue, tts_first, response (turn end → first reply audio queued).",
			Buckets: lat,
		}, []string{"stage"}),
		bargeIns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zhiyin_voice_barge_ins_total",
			Help: "Times the caller interrupted the bot (speech or a keypad digit).",
		}),
		dtmf: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zhiyin_voice_dtmf_total",
			Help: "Keypad digits received.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zhiyin_voice_rtp_lost_packets_total",
			Help: "RTP packets lost on the way in, as the transports report.",
		}),
		jitter: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "zhiyin_voice_rtp_jitter_seconds",
			Help:    "RFC 3550 interarrival jitter, observed at each transport report.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 10),
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zhiyin_voice_dropped_frames_total",
			Help: "Caller audio frames dropped because a call's loop fell behind (CPU overload).",
		}),
		setup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "zhiyin_voice_call_setup_seconds",
			Help:    "Call offered → answered, as the transports report.",
			Buckets: lat,
		}),
		turnsDone: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zhiyin_voice_turns_total",
			Help: "Caller turns answered (speech and keypad).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	reuse := func(c prometheus.Collector) (prometheus.Collector, error) {
		err := reg.Register(c)
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector, nil // a second engine in one process shares the first's
		}
		return c, err
	}
	var err error
	set := func(dst any, c prometheus.Collector) {
		if err != nil {
			return
		}
		var got prometheus.Collector
		if got, err = reuse(c); err != nil {
			return
		}
		switch d := dst.(type) {
		case **prometheus.GaugeVec:
			*d = got.(*prometheus.GaugeVec)
		case **prometheus.CounterVec:
			*d = got.(*prometheus.CounterVec)
		case **prometheus.HistogramVec:
			*d = got.(*prometheus.HistogramVec)
		case *prometheus.Counter:
			*d = got.(prometheus.Counter)
		case *prometheus.Histogram:
			*d = got.(prometheus.Histogram)
		}
	}
	set(&m.active, m.active)
	set(&m.calls, m.calls)
	set(&m.turn, m.turn)
	set(&m.bargeIns, m.bargeIns)
	set(&m.dtmf, m.dtmf)
	set(&m.lost, m.lost)
	set(&m.jitter, m.jitter)
	set(&m.dropped, m.dropped)
	set(&m.setup, m.setup)
	set(&m.turnsDone, m.turnsDone)
	if err != nil {
		return nil, err
	}
	return m, nil
}
