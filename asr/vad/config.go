package vad

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Config says how speech probabilities become segments. The zero value is
// not valid; start from DefaultConfig. Durations are rounded down to whole
// samples at the detector's rate.
type Config struct {
	// Threshold: a window whose speech probability is >= Threshold is
	// speech. In (0,1); default 0.5.
	Threshold float64 `yaml:"threshold"`
	// NegThreshold: inside a segment, a window whose probability is below
	// NegThreshold starts the silence that may end it (hysteresis). 0 means
	// max(Threshold-0.15, 0.01); otherwise in (0, Threshold].
	NegThreshold float64 `yaml:"neg_threshold"`
	// MinSpeech: segments not longer than this (before padding) are
	// dropped; default 250ms.
	MinSpeech time.Duration `yaml:"min_speech"`
	// MinSilence: silence that lasts this long ends a segment; default
	// 500ms.
	MinSilence time.Duration `yaml:"min_silence"`
	// SpeechPad is added before the start and after the end of each
	// segment (less where two segments would overlap); default 100ms.
	SpeechPad time.Duration `yaml:"speech_pad"`
	// MaxSpeech: a segment longer than this (padding included) is cut in
	// two, at the quietest window of its second half; default 20s; 0 means
	// no limit. Otherwise at least 1s + 2×MinSpeech + 2×SpeechPad.
	MaxSpeech time.Duration `yaml:"max_speech"`
}

// DefaultConfig returns the defaults: threshold 0.5, neg_threshold 0
// (0.35), min_speech 250ms, min_silence 500ms, speech_pad 100ms,
// max_speech 20s.
func DefaultConfig() Config {
	return Config{
		Threshold:  0.5,
		MinSpeech:  250 * time.Millisecond,
		MinSilence: 500 * time.Millisecond,
		SpeechPad:  100 * time.Millisecond,
		MaxSpeech:  20 * time.Second,
	}
}

// maxDuration bounds every duration (and keeps sample counts far from
// overflow).
const maxDuration = time.Hour

// Validate reports every invalid field in one error wrapping ErrConfig,
// each as "field: what is wrong, got value".
func (c Config) Validate() error {
	var bad []string
	add := func(field, format string, args ...any) {
		bad = append(bad, field+": "+fmt.Sprintf(format, args...))
	}
	if !(c.Threshold > 0 && c.Threshold < 1) {
		add("threshold", "must be in (0,1), got %v", c.Threshold)
	}
	if c.NegThreshold != 0 && !(c.NegThreshold > 0 && c.NegThreshold <= c.Threshold) {
		add("neg_threshold", "must be 0 (threshold-0.15, at least 0.01) or in (0, threshold], got %v", c.NegThreshold)
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"min_speech", c.MinSpeech}, {"min_silence", c.MinSilence}, {"speech_pad", c.SpeechPad}, {"max_speech", c.MaxSpeech}} {
		if f.d < 0 || f.d > maxDuration {
			add(f.name, "must be in [0, %v], got %v", maxDuration, f.d)
		}
	}
	if c.MaxSpeech > 0 && c.MaxSpeech <= maxDuration && c.MinSpeech >= 0 && c.SpeechPad >= 0 {
		if least := time.Second + 2*c.MinSpeech + 2*c.SpeechPad; c.MaxSpeech < least {
			add("max_speech", "must be 0 (no limit) or at least 1s + 2×min_speech + 2×speech_pad (%v), got %v", least, c.MaxSpeech)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(bad, "; "))
	}
	return nil
}

// negThreshold returns the effective NegThreshold.
func (c Config) negThreshold() float64 {
	if c.NegThreshold != 0 {
		return c.NegThreshold
	}
	return math.Max(c.Threshold-0.15, 0.01)
}

// samples converts d to whole samples at rate (d is at most maxDuration).
func samples(d time.Duration, rate int) int64 {
	return int64(d) * int64(rate) / int64(time.Second)
}
