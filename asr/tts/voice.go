package tts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Engine choices of tts.engine besides a model name.
const (
	// EngineAuto speaks with the first installed of AutoModels, else
	// espeak-ng.
	EngineAuto = "auto"
	// EngineEspeak always speaks with espeak-ng.
	EngineEspeak = "espeak"
)

// AutoModels are the TTS models `engine: auto` tries, in order (catalog
// names in models/catalog.yaml).
var AutoModels = []string{"matcha-zh-baker", "vits-melo-zh-en", "vits-zh-aishell3"}

// Config is the `tts:` section of zhiyin.yaml.
type Config struct {
	// Engine is auto (an installed TTS model, else espeak-ng), espeak, or
	// the name of an installed TTS model (`zhiyin models list`). A model
	// that is missing or fails falls back to espeak-ng with a warning, so
	// a call is never left silent.
	Engine string `yaml:"engine"`
	// Prompts is the recorded prompts folder: <prompts>/<domain>/
	// <response>.wav, and <prompts>/<response>.wav for every domain. A
	// recording wins over synthesis. Empty: none (the daemon sets
	// <data_dir>/prompts).
	Prompts string `yaml:"prompts"`
	// PromptCache bounds the decoded recordings kept in memory.
	PromptCache config.ByteSize `yaml:"prompt_cache"`
	// Espeak says how espeak-ng speaks.
	Espeak EspeakConfig `yaml:"espeak"`
	// Speaker is the speaker id of multi-speaker models (vits-zh-aishell3
	// has 174); out of range falls back to 0.
	Speaker int `yaml:"speaker"`
	// Speed scales the speaking rate of models (length_scale = 1/speed).
	Speed float64 `yaml:"speed"`
	// MaxSentence is the longest piece of text, in runes, synthesised at
	// once: shorter pieces make the first audio leave sooner.
	MaxSentence int `yaml:"max_sentence"`
	// Concurrency bounds the syntheses (model runs and espeak-ng
	// processes) running at once over all calls; more wait their turn.
	Concurrency int `yaml:"concurrency"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Engine:      EngineAuto,
		PromptCache: DefaultPromptCache,
		Espeak:      DefaultEspeakConfig(),
		Speed:       1,
		MaxSentence: DefaultMaxSentence,
		Concurrency: 4,
	}
}

// Validate implements config.Validatable (config.Validate(&cfg) gives a
// plain error).
func (c *Config) Validate(v *config.Validator) {
	if c.Engine != EngineAuto && c.Engine != EngineEspeak && !modelName(c.Engine) {
		v.Errorf("engine", "must be auto, espeak or an installed TTS model's name (lowercase letters, digits, - and _), got %q", c.Engine)
	}
	if c.PromptCache < 0 || c.PromptCache > 4<<30 {
		v.Errorf("prompt_cache", "must be 0 (the default, 32MiB) to 4GiB, got %d", c.PromptCache)
	}
	c.Espeak.Validate(v.Sub("espeak"))
	if c.Speaker < 0 || c.Speaker > 10000 {
		v.Errorf("speaker", "must be 0 to 10000, got %d", c.Speaker)
	}
	if !(c.Speed >= 0.5 && c.Speed <= 2) {
		v.Errorf("speed", "must be 0.5 to 2, got %g", c.Speed)
	}
	if c.MaxSentence < 8 || c.MaxSentence > 500 {
		v.Errorf("max_sentence", "must be 8 to 500 characters, got %d", c.MaxSentence)
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		v.Errorf("concurrency", "must be 1 to 256, got %d", c.Concurrency)
	}
}

func modelName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_')) {
			return false
		}
	}
	return true
}

// Models is where Voice finds TTS models (*inference.Registry).
type Models interface {
	Handle(name string) (*inference.Handle, error)
}

// Voice says replies: the recorded prompt when there is one, else the text
// synthesised by a TTS model or espeak-ng, resampled to the line's rate and
// streamed sentence by sentence. Safe for concurrent use: at most
// tts.concurrency syntheses run at once, the others wait.
type Voice struct {
	cfg     Config
	models  Models
	log     *slog.Logger
	prompts *Prompts
	slots   chan struct{}

	mu        sync.Mutex
	espeak    *Espeak
	espeakErr error
	synths    map[string]*modelSynth // by model folder and version
	warned    map[string]bool        // problems logged once
}

// NewVoice returns a voice; models may be nil (espeak-ng and prompts
// only), log nil discards. It does no I/O: models load on first use or
// Warm, espeak-ng is looked up then.
func NewVoice(cfg Config, models Models, log *slog.Logger) (*Voice, error) {
	if err := config.Validate(&cfg); err != nil {
		return nil, fmt.Errorf("tts: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Voice{
		cfg: cfg, models: models, log: log,
		prompts: NewPrompts(cfg.Prompts, int64(cfg.PromptCache), log),
		slots:   make(chan struct{}, cfg.Concurrency),
		synths:  map[string]*modelSynth{}, warned: map[string]bool{},
	}, nil
}

// Prompts returns the voice's recorded prompts.
func (v *Voice) Prompts() *Prompts { return v.prompts }

// Speak says one reply: the recorded prompt for (domain, response) when
// there is one, else text normalised (Normalize), split (SplitSentences
// with tts.max_sentence) and synthesised piece by piece. The samples are
// resampled to rate (e.g. 8000 for a phone line) and passed to emit in
// order, the first as soon as the first piece is synthesised; emit's slice
// is valid only during the call. It blocks until everything is emitted. It
// returns ctx's error when cancelled, emit's error as it is when emit
// fails, or a synthesis error (only when espeak-ng fails too: a failing
// model falls back to espeak-ng).
func (v *Voice) Speak(ctx context.Context, domain, response, text string, rate int, emit func([]float32) error) error {
	if rate < audio.MinSampleRate {
		return fmt.Errorf("tts: speak at %d Hz: rate too low", rate)
	}
	if response != "" {
		if clip, ok := v.prompts.Lookup(domain, response); ok {
			return playClip(ctx, clip, rate, emit)
		}
	}
	pieces := SplitSentences(Normalize(text), v.cfg.MaxSentence)
	if len(pieces) == 0 {
		return ctx.Err()
	}
	syn, err := v.synthesizer(ctx)
	if err != nil {
		return err
	}
	out := &resampledEmit{to: rate, emit: emit}
	for i := 0; i < len(pieces); i++ {
		err := v.run(ctx, syn, pieces[i], out)
		if err == nil {
			continue
		}
		if out.err != nil {
			return out.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, isEspeak := syn.(*Espeak); isEspeak || out.emitted {
			// espeak-ng failed, or the model failed halfway through a
			// piece: nothing better to say.
			return err
		}
		v.warnOnce("model-run:"+syn.Name(), "TTS model failed; speaking with espeak-ng instead", "model", syn.Name(), "err", err)
		e, eerr := v.espeakSynth()
		if eerr != nil {
			return errors.Join(err, eerr)
		}
		syn = e
		i-- // say the piece again with espeak-ng
	}
	return out.flush()
}

// run synthesises one piece in a concurrency slot.
func (v *Voice) run(ctx context.Context, syn Synthesizer, piece string, out *resampledEmit) error {
	select {
	case v.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-v.slots }()
	out.emitted = false
	return syn.Synthesize(ctx, piece, func(s []float32) error { return out.add(s, syn.SampleRate()) })
}

// resampledEmit resamples a call's synthesised chunks to the line's rate;
// the source rate may change when a model falls back to espeak-ng.
type resampledEmit struct {
	to      int
	from    int
	rs      *audio.Resampler
	buf     []float32
	emit    func([]float32) error
	err     error // emit's error
	emitted bool  // something was emitted for the current piece
}

func (r *resampledEmit) add(s []float32, from int) error {
	if r.err != nil {
		return r.err
	}
	if from != r.from {
		if err := r.flush(); err != nil {
			return err
		}
		rs, err := audio.NewResampler(from, r.to)
		if err != nil {
			return err
		}
		r.from, r.rs = from, rs
	}
	r.buf = r.rs.Process(r.buf[:0], s)
	r.emitted = true
	return r.send(r.buf)
}

func (r *resampledEmit) send(s []float32) error {
	if len(s) == 0 {
		return nil
	}
	if err := r.emit(s); err != nil {
		r.err = err
		return err
	}
	return nil
}

// flush emits what the resampler holds back.
func (r *resampledEmit) flush() error {
	if r.err != nil {
		return r.err
	}
	if r.rs == nil {
		return nil
	}
	r.buf = r.rs.Flush(r.buf[:0])
	return r.send(r.buf)
}

// promptChunk is how much of a recording is emitted at once (0.5 s).
const promptChunk = 2

func playClip(ctx context.Context, clip *Clip, rate int, emit func([]float32) error) error {
	s := clip.Samples
	if clip.Rate != rate {
		var err error
		if s, err = audio.Resample(clip.Samples, clip.Rate, rate); err != nil {
			return fmt.Errorf("tts: prompt: %w", err)
		}
	} else {
		s = append([]float32(nil), s...) // emit's callee may scribble on it
	}
	step := rate / promptChunk
	for len(s) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(step, len(s))
		if err := emit(s[:n]); err != nil {
			return err
		}
		s = s[n:]
	}
	return nil
}

// synthesizer resolves the engine for one reply: the configured or first
// installed model, else espeak-ng.
func (v *Voice) synthesizer(ctx context.Context) (Synthesizer, error) {
	var names []string
	switch v.cfg.Engine {
	case EngineEspeak:
	case EngineAuto:
		names = AutoModels
	default:
		names = []string{v.cfg.Engine}
	}
	for _, n := range names {
		s, err := v.modelSynth(ctx, n)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, ErrNoModel) && v.cfg.Engine == EngineAuto {
			continue
		}
		v.warnOnce("model:"+n, "TTS model unusable; speaking with espeak-ng instead", "model", n, "err", err)
	}
	return v.espeakSynth()
}

// modelSynth returns the synthesizer of installed model name (loading it
// on first use). The error wraps ErrNoModel when it is not installed.
func (v *Voice) modelSynth(ctx context.Context, name string) (*modelSynth, error) {
	if v.models == nil {
		return nil, fmt.Errorf("%w: %s (no model registry)", ErrNoModel, name)
	}
	h, err := v.models.Handle(name)
	if err == nil {
		var m *inference.Model
		if m, err = h.Model(ctx); err == nil {
			man := m.Manifest()
			key := man.Dir + "\x00" + man.Version
			v.mu.Lock()
			s := v.synths[key]
			v.mu.Unlock()
			if s != nil {
				return s, nil
			}
			if s, err = newModelSynth(ctx, h, man, v.models, v.cfg); err != nil {
				return nil, err
			}
			v.mu.Lock()
			v.synths[key] = s
			v.mu.Unlock()
			return s, nil
		}
	}
	if errors.Is(err, inference.ErrModelNotFound) {
		return nil, fmt.Errorf("%w: %s: copy its sherpa-onnx folder to this server and run `zhiyin models install DIR`", ErrNoModel, name)
	}
	return nil, fmt.Errorf("load TTS model %s: %w", name, err)
}

// espeakSynth returns the espeak-ng synthesizer (looked up once).
func (v *Voice) espeakSynth() (*Espeak, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.espeak == nil && v.espeakErr == nil {
		v.espeak, v.espeakErr = NewEspeak(v.cfg.Espeak)
	}
	return v.espeak, v.espeakErr
}

func (v *Voice) warnOnce(key, msg string, args ...any) {
	v.mu.Lock()
	seen := v.warned[key]
	v.warned[key] = true
	v.mu.Unlock()
	if !seen {
		v.log.Warn(msg, args...)
	}
}

// Warm resolves the engine (loading the model) and synthesises a short
// phrase, so that the first call does not wait; it returns the engine's
// name.
func (v *Voice) Warm(ctx context.Context) (name string, err error) {
	syn, err := v.synthesizer(ctx)
	if err != nil {
		return "", err
	}
	var n int
	err = syn.Synthesize(ctx, "您好。", func(s []float32) error { n += len(s); return nil })
	if err != nil {
		return syn.Name(), fmt.Errorf("tts: warm %s: %w", syn.Name(), err)
	}
	if n == 0 {
		return syn.Name(), fmt.Errorf("%w: %s produced no audio for a test phrase", ErrSynthesis, syn.Name())
	}
	return syn.Name(), nil
}

// Check returns the problems `zhiyin doctor` should show: espeak-ng
// missing (the fallback voice), a configured model not installed, bad
// recorded prompts. It reads every prompt file; it does not load models.
func (v *Voice) Check() []string {
	var probs []string
	if _, err := v.espeakSynth(); err != nil {
		probs = append(probs, err.Error())
	}
	if v.cfg.Engine != EngineAuto && v.cfg.Engine != EngineEspeak {
		if v.models == nil {
			probs = append(probs, fmt.Sprintf("tts.engine: model %s: no model registry", v.cfg.Engine))
		} else if _, err := v.models.Handle(v.cfg.Engine); err != nil {
			probs = append(probs, fmt.Sprintf("tts.engine: model %s is not installed (copy its sherpa-onnx folder and run `zhiyin models install DIR`): %v", v.cfg.Engine, err))
		}
	}
	return append(probs, v.prompts.Check()...)
}
