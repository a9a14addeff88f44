package asr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/asr/features"
	"github.com/zhiyin/zhiyin/asr/vad"
	"github.com/zhiyin/zhiyin/inference"
)

// Models is where the engine finds its models (*inference.Registry).
type Models interface {
	Handle(name string) (*inference.Handle, error)
}

// Engine recognises speech: whole files (Transcribe) and live streams
// (NewStream), VAD-segmented, each segment recognised as soon as it ends.
// Safe for concurrent use.
type Engine struct {
	cfg    Config
	models Models
	log    *slog.Logger

	streams chan struct{} // a token per open stream

	mu      sync.Mutex
	infos   map[string]*modelInfo // by folder and version
	vadWarn bool
	current string // the model version last used, for OnModel
	onModel func(name, version string)
	// vadBatch batches the windows of caller-driven detectors (NewDetector).
	vadBatch *vad.Batcher
}

// OnModel sets a function called (from a request's goroutine) whenever
// the engine starts using a model version other than the last one: the
// daemon reports it in /readyz. Set it before use.
func (e *Engine) OnModel(f func(name, version string)) { e.onModel = f }

// New returns an engine; it does no I/O (models load on first use or
// Warm).
func New(cfg Config, models Models, log *slog.Logger) *Engine {
	return &Engine{cfg: cfg, models: models, log: log, streams: make(chan struct{}, cfg.MaxStreams), infos: map[string]*modelInfo{}}
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// noModel is the error for a missing recognition model.
func (e *Engine) noModel() error {
	what := "model " + e.cfg.Model + " is"
	if e.cfg.Model == ModelAuto {
		what = "neither " + strings.Join(AutoModels, " nor ") + " is"
	}
	return fmt.Errorf("%w: %s installed; copy a SenseVoice-small or Paraformer folder (sherpa-onnx or FunASR export) to this server and run `zhiyin models install DIR` (no restart needed)",
		ErrNoModel, what)
}

// recognizer is a resolved recognition model.
type recognizer struct {
	h    *inference.Handle
	info *modelInfo
}

// model resolves and loads the recognition model.
func (e *Engine) model(ctx context.Context) (recognizer, error) {
	names := []string{e.cfg.Model}
	if e.cfg.Model == ModelAuto {
		names = AutoModels
	}
	for _, n := range names {
		h, err := e.models.Handle(n)
		if errors.Is(err, inference.ErrModelNotFound) {
			continue
		}
		if err != nil {
			return recognizer{}, err
		}
		m, err := h.Model(ctx)
		if errors.Is(err, inference.ErrModelNotFound) {
			continue
		}
		if err != nil {
			return recognizer{}, fmt.Errorf("load speech model %s: %w", n, err)
		}
		man := m.Manifest()
		key := man.Dir + "\x00" + man.Version
		e.mu.Lock()
		info := e.infos[key]
		changed := e.current != key
		e.current = key
		e.mu.Unlock()
		if changed && e.onModel != nil {
			e.onModel(man.Name, man.Version)
		}
		if info == nil {
			if info, err = describe(man); err != nil {
				return recognizer{}, err
			}
			e.mu.Lock()
			e.infos[key] = info
			e.mu.Unlock()
		}
		return recognizer{h: h, info: info}, nil
	}
	return recognizer{}, e.noModel()
}

// Warm loads the recognition model (and the VAD), so that the first
// request does not wait for it. It returns ErrNoModel when none is
// installed.
func (e *Engine) Warm(ctx context.Context) (name, version string, err error) {
	rec, err := e.model(ctx)
	if err != nil {
		return "", "", err
	}
	if h, err := e.models.Handle(e.cfg.VADModel); err == nil {
		if _, err := h.Model(ctx); err != nil {
			e.log.Warn("VAD model not loaded; speech is cut into fixed windows", "model", e.cfg.VADModel, "err", err)
		}
	}
	return rec.info.name, rec.info.version, nil
}

// detector returns a VAD for one stream, or nil when the VAD model is not
// installed (segments are then fixed windows; logged once).
func (e *Engine) detector(ctx context.Context) (*vad.Detector, error) {
	h, err := e.models.Handle(e.cfg.VADModel)
	if err == nil {
		_, err = h.Model(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e.mu.Lock()
		warn := !e.vadWarn
		e.vadWarn = true
		e.mu.Unlock()
		if warn {
			e.log.Warn("VAD model unavailable; speech is cut into fixed windows (install silero-vad: it ships with the package)",
				"model", e.cfg.VADModel, "err", err)
		}
		return nil, nil
	}
	return vad.New(h, e.cfg.VAD.VAD(), SampleRate)
}

// Options are one request's choices.
type Options struct {
	// Language is auto, zh, en, yue, ja or ko; empty means asr.language.
	Language string
	// ITN overrides asr.itn when set.
	ITN *bool
	// Progress, when set, is called from Transcribe's goroutine as audio
	// is read: the position reached and the total (negative when the
	// length is not known in advance).
	Progress func(done, total time.Duration)
}

func (e *Engine) choices(o Options) (string, bool) {
	lang := o.Language
	if lang == "" {
		lang = e.cfg.Language
	}
	itn := e.cfg.ITN
	if o.ITN != nil {
		itn = *o.ITN
	}
	return lang, itn
}

// Segment is one recognised stretch of speech.
type Segment struct {
	Start   float64 `json:"start"` // seconds from the start of the audio
	End     float64 `json:"end"`
	Text    string  `json:"text"`
	Lang    string  `json:"lang,omitempty"`    // SenseVoice's language tag (zh, en, …)
	Emotion string  `json:"emotion,omitempty"` // SenseVoice: neutral, happy, sad, angry, …
	Event   string  `json:"event,omitempty"`   // SenseVoice: speech, bgm, laughter, …
	Tokens  []Token `json:"tokens,omitempty"`
}

// Result is a transcription.
type Result struct {
	Text     string        `json:"text"`
	Segments []Segment     `json:"segments"`
	Duration float64       `json:"duration"` // seconds of audio
	RTF      float64       `json:"rtf"`      // processing time / audio duration
	Model    string        `json:"model,omitempty"`
	Elapsed  time.Duration `json:"-"`
}

// JoinText joins segment texts: CJK directly, a space between words of
// Latin script.
func JoinText(parts []string) string {
	var b strings.Builder
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			last, _ := utf8.DecodeLastRuneInString(b.String())
			first, _ := utf8.DecodeRuneInString(p)
			if last < utf8.RuneSelf && first < utf8.RuneSelf && !unicode.IsSpace(last) {
				b.WriteByte(' ')
			}
		}
		b.WriteString(p)
	}
	return b.String()
}

// readChunk is how many source samples Transcribe reads at a time.
const readChunk = 8192

// Transcribe recognises a whole recording, streaming through it: memory
// stays bounded by the longest segment whatever the file's length. It
// returns ErrNoModel, ErrTooLong, audio.ErrMalformed or a model error; a
// silent recording gives an empty text.
func (e *Engine) Transcribe(ctx context.Context, src *audio.Reader, o Options) (*Result, error) {
	t0 := time.Now()
	rec, err := e.model(ctx)
	if err != nil {
		return nil, err
	}
	rate := src.Format().SampleRate
	total := time.Duration(-1)
	if n := src.Samples(); n >= 0 {
		total = time.Duration(n * int64(time.Second) / int64(rate))
		if total > e.cfg.MaxDuration {
			return nil, fmt.Errorf("%w: %s of audio; the limit is asr.max_duration = %s", ErrTooLong, total.Round(time.Second), e.cfg.MaxDuration)
		}
	}
	lang, itn := e.choices(o)
	det, err := e.detector(ctx)
	if err != nil {
		return nil, err
	}
	res, err := audio.NewResampler(rate, SampleRate)
	if err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type job struct {
		idx        int
		start, end int64
		samples    []float32
	}
	jobs := make(chan job, e.cfg.Concurrency)
	var (
		mu   sync.Mutex
		segs []Segment
		wg   sync.WaitGroup
	)
	for w := 0; w < e.cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fe, err := features.NewFrontend(rec.info.front)
			if err != nil {
				cancel(err)
			}
			for j := range jobs {
				if ctx.Err() != nil || fe == nil {
					continue
				}
				seg, err := e.recognizeSegment(ctx, rec, fe, j.samples, j.start, j.end, lang, itn)
				if err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				for len(segs) <= j.idx {
					segs = append(segs, Segment{})
				}
				segs[j.idx] = seg
				mu.Unlock()
			}
		}()
	}
	n := 0
	sg := newSegmenter(det, e.cfg.VAD, func(ctx context.Context, start, end int64, samples []float32) error {
		select {
		case jobs <- job{idx: n, start: start, end: end, samples: samples}:
			n++
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	readErr := func() error {
		in := make([]float32, readChunk)
		var out []float32
		limit := samplesOf(e.cfg.MaxDuration)
		for {
			k, err := src.Read(in)
			if k > 0 {
				out = res.Process(out[:0], in[:k])
				if err := sg.feed(ctx, out); err != nil {
					return err
				}
				if sg.pos > limit {
					return fmt.Errorf("%w: more than asr.max_duration = %s of audio", ErrTooLong, e.cfg.MaxDuration)
				}
				if o.Progress != nil {
					o.Progress(time.Duration(sg.pos*int64(time.Second)/SampleRate), total)
				}
			}
			if err == io.EOF {
				out = res.Flush(out[:0])
				if err := sg.feed(ctx, out); err != nil {
					return err
				}
				return sg.flush(ctx)
			}
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
		}
	}()
	close(jobs)
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	r := &Result{Segments: make([]Segment, 0, len(segs)), Duration: float64(sg.pos) / SampleRate, Model: rec.info.name}
	var texts []string
	for _, s := range segs {
		if s.Text == "" {
			continue
		}
		r.Segments = append(r.Segments, s)
		texts = append(texts, s.Text)
	}
	r.Text = JoinText(texts)
	r.Elapsed = time.Since(t0)
	if r.Duration > 0 {
		r.RTF = r.Elapsed.Seconds() / r.Duration
	}
	if o.Progress != nil {
		o.Progress(time.Duration(sg.pos*int64(time.Second)/SampleRate), total)
	}
	return r, nil
}

// recognizeSegment computes one segment's features and recognises them.
func (e *Engine) recognizeSegment(ctx context.Context, rec recognizer, fe *features.Frontend, samples []float32, start, end int64, lang string, itn bool) (Segment, error) {
	fe.Reset()
	dim := fe.Dim()
	feats := make([]float32, 0, (len(samples)/960+2)*dim)
	emit := func(row []float32) { feats = append(feats, row...) }
	fe.Accept(samples, emit)
	fe.Flush(emit)
	h, err := recognize(ctx, rec.h, rec.info, feats, len(feats)/dim, lang, itn)
	if err != nil {
		return Segment{}, err
	}
	off := float64(start) / SampleRate
	seg := Segment{Start: off, End: float64(end) / SampleRate, Text: h.text, Lang: h.lang, Emotion: h.emotion, Event: h.event}
	for _, t := range h.tokens {
		t.Start += off
		t.End = min(t.End+off, seg.End)
		seg.Tokens = append(seg.Tokens, t)
	}
	return seg, nil
}

// TranscribeReader decodes audio of the given media type (see
// audio.NewReader; rate is for raw PCM) and transcribes it.
func (e *Engine) TranscribeReader(ctx context.Context, r io.Reader, mediaType string, rate int, o Options) (*Result, error) {
	src, err := audio.NewReader(r, mediaType, rate)
	if err != nil {
		return nil, err
	}
	return e.Transcribe(ctx, src, o)
}
