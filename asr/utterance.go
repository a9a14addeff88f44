package asr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zhiyin/zhiyin/asr/features"
	"github.com/zhiyin/zhiyin/asr/vad"
)

// ErrNoVAD is returned by NewDetector when the VAD model is not installed.
var ErrNoVAD = errors.New("VAD model not installed")

// Recognize recognises one utterance: 16 kHz mono samples a caller-driven
// VAD already cut (a phone turn). It runs no VAD of its own; Segment.Start
// is 0. It is safe for concurrent use.
func (e *Engine) Recognize(ctx context.Context, samples []float32, o Options) (Segment, error) {
	if limit := e.cfg.MaxDuration; limit > 0 && time.Duration(len(samples))*(time.Second/SampleRate) > limit {
		return Segment{}, fmt.Errorf("%w: %d samples is over asr.max_duration %s", ErrTooLong, len(samples), e.cfg.MaxDuration)
	}
	rec, err := e.model(ctx)
	if err != nil {
		return Segment{}, err
	}
	fe, err := features.NewFrontend(rec.info.front)
	if err != nil {
		return Segment{}, err
	}
	lang, itn := e.choices(o)
	return e.recognizeSegment(ctx, rec, fe, samples, 0, int64(len(samples)), lang, itn)
}

// NewDetector returns a Silero VAD for a caller-driven stream at rate
// (16000 or 8000) with the given segmenting rules. Detectors made here run
// their windows in batches with each other's (vad.Batcher): many calls,
// few model runs. It returns an error wrapping ErrNoVAD when the VAD model
// is not installed.
func (e *Engine) NewDetector(ctx context.Context, cfg vad.Config, rate int) (*vad.Detector, error) {
	h, err := e.models.Handle(e.cfg.VADModel)
	if err == nil {
		_, err = h.Model(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s: %v (it ships with the package; `zhiyin models list` shows it)", ErrNoVAD, e.cfg.VADModel, err)
	}
	e.mu.Lock()
	if e.vadBatch == nil {
		e.vadBatch = vad.NewBatcher(h, vadMaxBatch, vadMaxWait, e.log)
	}
	b := e.vadBatch
	e.mu.Unlock()
	return vad.New(b, cfg, rate)
}

// Detectors from NewDetector (one per phone call) share model runs: up to
// vadMaxBatch windows together; while several calls are live a window
// waits at most vadMaxWait for company, a lone call never waits.
const (
	vadMaxBatch = 64
	vadMaxWait  = 3 * time.Millisecond
)
