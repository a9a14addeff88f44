package vad

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/zhiyin/zhiyin/inference"
)

// Runner runs the Silero VAD v5 model: inputs input f32[1,S], state
// f32[2,1,128] and sr int64 (a scalar), bound by position; outputs output
// f32[1,1] and stateN f32[2,1,128]. *inference.Model and *inference.Handle
// satisfy it. Run must not keep or modify the inputs after it returns; the
// outputs belong to the caller. Detectors share a Runner only when its Run
// is safe for concurrent use (inference's are): each detector carries its
// own model state.
type Runner interface {
	Run(ctx context.Context, inputs []inference.Tensor) ([]inference.Tensor, error)
}

var (
	_ Runner = (*inference.Model)(nil)
	_ Runner = (*inference.Handle)(nil)
)

// EventKind says whether an Event starts or ends a segment.
type EventKind uint8

// The event kinds.
const (
	SpeechStart EventKind = iota + 1
	SpeechEnd
)

// String returns "start" or "end".
func (k EventKind) String() string {
	switch k {
	case SpeechStart:
		return "start"
	case SpeechEnd:
		return "end"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is a segment boundary: Sample counts samples from the start of the
// stream at the detector's rate. A SpeechEnd's Sample is exclusive.
type Event struct {
	Kind   EventKind
	Sample int64
}

// Segment is a span of speech [Start, End) in samples at the detector's
// rate, padding included.
type Segment struct {
	Start, End int64
}

// stateLen is the element count of Silero v5's state, f32[2,1,128].
const stateLen = 2 * 128

// Detector is one stream's voice activity detector: it cuts the stream
// into windows, runs the model on each (carrying the model's state and the
// window context between calls) and segments the probabilities as doc.go
// describes. Not safe for concurrent use; one Detector per stream. It
// holds no C memory and needs no Close.
type Detector struct {
	r    Runner
	cfg  Config
	rate int
	ws   int // new samples per window
	cn   int // context samples before them

	win    []float32 // context + window: the input tensor's data
	fill   int       // new samples buffered in win[cn:]
	state  []float32
	inputs [3]inference.Tensor
	seg    segmenter
	pos    int64
	err    error // sticky: the first failure
}

// New returns a detector for a stream at sampleRate (16000 or 8000 Hz)
// running the model through r. It does no I/O and runs nothing. Errors
// wrap ErrConfig or ErrSampleRate.
func New(r Runner, cfg Config, sampleRate int) (*Detector, error) {
	if r == nil {
		return nil, errors.New("vad: nil runner: pass the loaded silero-vad model")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vad: %w", err)
	}
	var ws, cn int
	switch sampleRate {
	case 16000:
		ws, cn = 512, 64
	case 8000:
		ws, cn = 256, 32
	default:
		return nil, fmt.Errorf("vad: %w: %d Hz: resample the audio to 16000 Hz (or 8000 Hz)", ErrSampleRate, sampleRate)
	}
	d := &Detector{
		r: r, cfg: cfg, rate: sampleRate, ws: ws, cn: cn,
		win:   make([]float32, cn+ws),
		state: make([]float32, stateLen),
		seg:   newSegmenter(cfg, sampleRate, ws),
	}
	d.inputs = [3]inference.Tensor{
		inference.NewTensor([]int64{1, int64(cn + ws)}, d.win),
		inference.NewTensor([]int64{2, 1, 128}, d.state),
		inference.NewTensor([]int64{}, []int64{int64(sampleRate)}),
	}
	return d, nil
}

// SampleRate returns the stream's rate in Hz.
func (d *Detector) SampleRate() int { return d.rate }

// Window returns the new samples per model run (512 at 16 kHz, 256 at
// 8 kHz): events can only become certain at these steps.
func (d *Detector) Window() int { return d.ws }

// Config returns the detector's configuration.
func (d *Detector) Config() Config { return d.cfg }

// Accept feeds samples (float32 in [-1,1], any count, copied) and appends
// to dst (which may be nil) the events that became certain, in order: a
// SpeechStart once the segment is longer than MinSpeech (its Sample
// includes the pad but is not before the previous SpeechEnd), a SpeechEnd
// once the silence after it lasted MinSilence (padded, never past what has
// been fed; the package doc says when it comes later). It blocks
// while the model runs, one run per complete window; samples of a partial
// window wait for the next call. On error (a failed run, wrapped, or ctx's
// error) it returns the events found before the failure and the detector
// refuses more audio (ErrBroken) until Reset.
func (d *Detector) Accept(ctx context.Context, samples []float32, dst []Event) ([]Event, error) {
	if d.err != nil {
		return dst, fmt.Errorf("%w: call Reset to start a new stream; first failure: %w", ErrBroken, d.err)
	}
	for len(samples) > 0 {
		n := copy(d.win[d.cn+d.fill:], samples)
		samples = samples[n:]
		d.fill += n
		d.pos += int64(n)
		if d.fill < d.ws {
			break
		}
		p, err := d.run(ctx)
		if err != nil {
			d.err = err
			return dst, err
		}
		dst = d.seg.window(p, dst)
		copy(d.win[:d.cn], d.win[d.ws:])
		d.fill = 0
	}
	return dst, nil
}

// run runs the model on the full window and carries its state.
func (d *Detector) run(ctx context.Context) (float32, error) {
	at := d.pos - int64(d.ws)
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("vad: window at sample %d: %w", at, err)
	}
	outs, err := d.r.Run(ctx, d.inputs[:])
	if err != nil {
		return 0, fmt.Errorf("vad: run model at sample %d: %w", at, err)
	}
	p, st, err := parseOutputs(outs)
	if err != nil {
		return 0, fmt.Errorf("vad: window at sample %d: %w", at, err)
	}
	copy(d.state, st)
	return p, nil
}

// parseOutputs checks Silero v5's outputs and returns the probability and
// the new state.
func parseOutputs(outs []inference.Tensor) (float32, []float32, error) {
	const hint = "check that the model is Silero VAD v5"
	if len(outs) < 2 {
		return 0, nil, fmt.Errorf("%w: %d outputs, want output and stateN: %s", ErrModelOutput, len(outs), hint)
	}
	prob, err := inference.Values[float32](outs[0])
	if err != nil {
		return 0, nil, fmt.Errorf("%w: output: %v: %s", ErrModelOutput, err, hint)
	}
	if len(prob) != 1 {
		return 0, nil, fmt.Errorf("%w: output has %d elements, want 1: %s", ErrModelOutput, len(prob), hint)
	}
	st, err := inference.Values[float32](outs[1])
	if err != nil {
		return 0, nil, fmt.Errorf("%w: stateN: %v: %s", ErrModelOutput, err, hint)
	}
	if len(st) != stateLen {
		return 0, nil, fmt.Errorf("%w: stateN has %d elements, want 2×1×128: %s", ErrModelOutput, len(st), hint)
	}
	if math.IsNaN(float64(prob[0])) {
		return 0, nil, fmt.Errorf("%w: speech probability is NaN (NaN or infinite samples in the audio?)", ErrModelOutput)
	}
	return prob[0], st, nil
}

// Flush ends the stream: an open segment ends at its tentative end, or at
// the last sample fed, and is kept when longer than MinSpeech; the pending
// SpeechEnd is appended. Samples of a trailing partial window are not run
// through the model (after a failed Accept the stream ends after the last
// window run). It does no I/O. The detector is then Reset, ready for a new
// stream.
func (d *Detector) Flush(dst []Event) []Event {
	end := d.pos
	if d.err != nil {
		// The stream broke: it ends after the last window run.
		end = d.seg.next * d.seg.ws
	}
	dst = d.seg.flush(end, dst)
	d.Reset()
	return dst
}

// Reset forgets the stream: model state, context, buffered samples,
// segments and any earlier failure. The next Accept starts at sample 0.
func (d *Detector) Reset() {
	clear(d.win)
	clear(d.state)
	d.fill, d.pos, d.err = 0, 0, nil
	d.seg.reset()
}

// Pos returns the samples fed since New, Reset or Flush (buffered ones
// included).
func (d *Detector) Pos() int64 { return d.pos }

// Speaking reports whether a segment is open: a SpeechStart was emitted
// and its SpeechEnd not yet.
func (d *Detector) Speaking() bool { return d.seg.open }

// Segments runs a fresh detector over a whole buffer at sampleRate and
// returns its segments in order (nil when there is no speech). It blocks
// for one model run per window. Errors are those of New and Accept.
func Segments(ctx context.Context, r Runner, samples []float32, sampleRate int, cfg Config) ([]Segment, error) {
	d, err := New(r, cfg, sampleRate)
	if err != nil {
		return nil, err
	}
	ev, err := d.Accept(ctx, samples, nil)
	if err != nil {
		return nil, err
	}
	return pair(d.Flush(ev)), nil
}

// pair turns alternating Start/End events into segments.
func pair(ev []Event) []Segment {
	var segs []Segment
	for _, e := range ev {
		switch e.Kind {
		case SpeechStart:
			segs = append(segs, Segment{Start: e.Sample, End: -1})
		case SpeechEnd:
			if n := len(segs); n > 0 && segs[n-1].End < 0 {
				segs[n-1].End = e.Sample
			}
		}
	}
	return segs
}

// Probabilities returns the speech probability of each complete window of
// samples at sampleRate (fresh model state; a trailing partial window is
// not run), for debugging and benchmarks. It blocks for one model run per
// window.
func Probabilities(ctx context.Context, r Runner, samples []float32, sampleRate int) ([]float32, error) {
	d, err := New(r, DefaultConfig(), sampleRate)
	if err != nil {
		return nil, err
	}
	probs := make([]float32, 0, len(samples)/d.ws)
	for len(samples) >= d.ws {
		copy(d.win[d.cn:], samples[:d.ws])
		samples = samples[d.ws:]
		d.pos += int64(d.ws)
		p, err := d.run(ctx)
		if err != nil {
			return nil, err
		}
		probs = append(probs, p)
		copy(d.win[:d.cn], d.win[d.ws:])
	}
	return probs, nil
}
