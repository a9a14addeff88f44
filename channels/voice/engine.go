package voice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/asr/vad"
	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/store"
)

// Log attribute keys.
const (
	logKeyCall    = "call"
	logKeyChannel = "channel"
	logKeyError   = "error"
	logKeyReason  = "reason"
	logKeyTurn    = "turn"
)

// vadRate is the rate the engine runs the VAD and the recognizer at.
const vadRate = 16000

// Recognizer turns one utterance (16 kHz mono, cut by the engine's VAD)
// into text; cmd adapts asr.Engine.Recognize. It must be safe for
// concurrent use and stop when ctx ends. It does not keep samples.
type Recognizer interface {
	Recognize(ctx context.Context, samples16k []float32) (string, error)
}

// VADFactory returns a fresh streaming detector for one call at rate with
// cfg: asr.Engine.NewDetector. It may load the model (I/O) on first use.
type VADFactory func(ctx context.Context, cfg vad.Config, rate int) (*vad.Detector, error)

// Speaker synthesises speech; cmd adapts asr/tts.
type Speaker interface {
	// Speak says text, or the recorded prompt of the domain response named
	// response when one exists, at rate, calling emit with the chunks in
	// order, the first as early as possible (before the whole text is
	// synthesised). It stops when ctx ends or emit returns an error, and
	// returns that error. emit's slice is only read during the call.
	Speak(ctx context.Context, response, text string, rate int, emit func([]float32) error) error
}

// IntentFunc parses text without committing a turn: the intent and its
// confidence in [0,1]. Optional; it lets a confident turn end early.
type IntentFunc func(ctx context.Context, text string) (intent string, confidence float64, err error)

// Deps are the engine's collaborators. Dialogue, Recognizer, VAD and
// Speaker are required; DB and Sealer for call records; Sealer and
// RecordDir for recordings.
type Deps struct {
	// Dialogue answers turns: each turn is Turn{Channel: info.Channel,
	// Conversation: info.ID, User: info.From, Text}, so a call keeps one
	// session.
	Dialogue   channels.Dialogue
	Recognizer Recognizer
	VAD        VADFactory
	Speaker    Speaker
	Intent     IntentFunc
	// DB holds the call records (Migrations, component "voice"); nil
	// keeps none.
	DB *store.DB
	// Sealer encrypts transcripts and recordings at rest (the dialogue
	// key); required with DB or Record.
	Sealer channels.Sealer
	// RecordDir is where sealed recordings go (Config.Record).
	RecordDir string
	Log       *slog.Logger
	Metrics   prometheus.Registerer
	// Now is the clock for stored times; nil means time.Now.
	Now func() time.Time
}

// Engine answers calls: it implements Answerer for the SIP and sound-card
// transports. Each call runs in its own goroutines; the engine is safe for
// concurrent use.
type Engine struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	m    *metrics
	now  func() time.Time

	mu       sync.Mutex
	calls    map[*call]struct{}
	starting int
	stopped  bool
	// wg counts every goroutine a call starts, detached Hangup and
	// Transfer calls included; Stop waits for it.
	wg sync.WaitGroup
}

var _ Answerer = (*Engine)(nil)

// New returns an engine; it does no I/O. It registers the metrics on
// deps.Metrics (sharing those of an engine registered before).
func New(cfg Config, deps Deps) (*Engine, error) {
	if err := validate(cfg); err != nil {
		return nil, err
	}
	if deps.Dialogue == nil || deps.Recognizer == nil || deps.VAD == nil || deps.Speaker == nil {
		return nil, errors.New("voice engine: Dialogue, Recognizer, VAD and Speaker are required")
	}
	if deps.DB != nil && deps.Sealer == nil {
		return nil, errors.New("voice engine: call records need the dialogue key (Sealer)")
	}
	if cfg.Record && (deps.Sealer == nil || deps.RecordDir == "") {
		return nil, errors.New("voice.record: recordings need the dialogue key and a recordings folder")
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, fmt.Errorf("voice metrics: %w", err)
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	return &Engine{cfg: cfg, deps: deps, log: log, m: m, now: now, calls: map[*call]struct{}{}}, nil
}

// Start answers a call (Answerer): it makes the call's VAD (which may
// load the model: ctx bounds that) and starts the call's loop, which
// greets the caller. It returns ErrBusy when voice.max_calls calls are up
// and ErrStopped after Stop. The call lives until Handler.End or until the
// engine hangs up.
func (e *Engine) Start(ctx context.Context, info CallInfo, m Media, inputRate int) (Handler, error) {
	if info.Channel == "" || info.ID == "" {
		return nil, errors.New("voice: a call needs a channel and an id")
	}
	if m == nil || m.OutputRate() < 1000 || m.OutputRate() > 384000 {
		return nil, errors.New("voice: the line's output rate is outside 1000..384000 Hz")
	}
	e.mu.Lock()
	switch {
	case e.stopped:
		e.mu.Unlock()
		return nil, ErrStopped
	case len(e.calls)+e.starting >= e.cfg.MaxCalls:
		e.mu.Unlock()
		return nil, ErrBusy
	}
	e.starting++
	e.mu.Unlock()
	c, err := e.newCall(ctx, info, m, inputRate)
	e.mu.Lock()
	e.starting--
	if err == nil && e.stopped {
		c.discard()
		err = ErrStopped
	}
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	e.calls[c] = struct{}{}
	e.wg.Add(1)
	e.mu.Unlock()
	e.m.active.WithLabelValues(info.Channel).Inc()
	if info.Setup > 0 {
		e.m.setup.Observe(info.Setup.Seconds())
	}
	go func() {
		defer e.wg.Done()
		c.run()
	}()
	return c, nil
}

func (e *Engine) newCall(ctx context.Context, info CallInfo, m Media, inputRate int) (*call, error) {
	res, err := audio.NewResampler(inputRate, vadRate)
	if err != nil {
		return nil, fmt.Errorf("voice: caller audio rate %d: %w", inputRate, err)
	}
	det, err := e.deps.VAD(ctx, e.cfg.vadConfig(), vadRate)
	if err != nil {
		return nil, fmt.Errorf("voice: speech detector: %w", err)
	}
	return newCall(e, info, m, inputRate, res, det)
}

// Active returns how many calls the engine holds.
func (e *Engine) Active() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.calls)
}

func (e *Engine) remove(c *call) {
	e.mu.Lock()
	delete(e.calls, c)
	e.mu.Unlock()
	e.m.active.WithLabelValues(c.info.Channel).Dec()
}

// Stop refuses new calls, hangs up every call (no goodbye: the process is
// going away), and waits until their work stopped and their records are
// saved, or ctx ends. Idempotent.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	e.stopped = true
	calls := make([]*call, 0, len(e.calls))
	for c := range e.calls {
		calls = append(calls, c)
	}
	e.mu.Unlock()
	for _, c := range calls {
		c.hangup(endShutdown)
	}
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("voice: stop: %d calls still ending: %w", e.Active(), ctx.Err())
	}
}
