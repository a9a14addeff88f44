package asr

import (
	"time"

	"github.com/zhiyin/zhiyin/asr/vad"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the `asr:` section of zhiyin.yaml.
type Config struct {
	// Model is the recognition model's name as installed (`zhiyin models
	// list`), or auto: sense-voice-small if installed, else paraformer-zh.
	Model string `yaml:"model"`
	// VADModel is the Silero VAD model's name.
	VADModel string `yaml:"vad_model"`
	// Language is the default spoken language: auto, zh, en, yue, ja or ko
	// (SenseVoice; Paraformer is Mandarin only). Requests may override it.
	Language string `yaml:"language"`
	// ITN asks SenseVoice for inverse text normalisation (numbers as
	// digits, punctuation). Requests may override it.
	ITN bool `yaml:"itn"`
	// MaxDuration is the longest audio one request may carry; longer
	// uploads are refused (HTTP 413).
	MaxDuration time.Duration `yaml:"max_duration"`
	// MaxUpload bounds the bytes of one upload to /v1/asr and
	// /v1/audio/transcriptions (HTTP 413 beyond).
	MaxUpload config.ByteSize `yaml:"max_upload"`
	// Concurrency is how many segments of one file are recognised at once
	// (the model batches them together).
	Concurrency int `yaml:"concurrency"`
	// MaxStreams bounds the open streaming sessions (/v1/asr/stream and
	// calls); one more is refused (HTTP 503 / websocket close 1013).
	MaxStreams int `yaml:"max_streams"`
	// PartialInterval is how often a stream re-recognises the segment
	// being spoken to send a partial result (online and 2pass modes); 0
	// sends none.
	PartialInterval time.Duration `yaml:"partial_interval"`
	// VAD segments speech; see the vad package for the rules.
	VAD VADConfig `yaml:"vad"`
}

// VADConfig is asr.vad.
type VADConfig struct {
	// Threshold is the speech probability that starts a segment.
	Threshold float64 `yaml:"threshold"`
	// MinSpeech drops shorter bursts (clicks, coughs).
	MinSpeech time.Duration `yaml:"min_speech"`
	// MinSilence is the pause that ends a segment.
	MinSilence time.Duration `yaml:"min_silence"`
	// SpeechPad is kept before and after each segment.
	SpeechPad time.Duration `yaml:"speech_pad"`
	// MaxSpeech cuts longer segments (the recognisers are trained on
	// utterances of up to about 20 s).
	MaxSpeech time.Duration `yaml:"max_speech"`
}

// ModelAuto picks the first installed of AutoModels.
const ModelAuto = "auto"

// AutoModels are the models `model: auto` tries, in order.
var AutoModels = []string{"sense-voice-small", "paraformer-zh"}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Model:           ModelAuto,
		VADModel:        "silero-vad",
		Language:        "auto",
		ITN:             true,
		MaxDuration:     4 * time.Hour,
		MaxUpload:       512 << 20,
		Concurrency:     4,
		MaxStreams:      256,
		PartialInterval: 600 * time.Millisecond,
		VAD: VADConfig{
			Threshold:  0.5,
			MinSpeech:  250 * time.Millisecond,
			MinSilence: 500 * time.Millisecond,
			SpeechPad:  100 * time.Millisecond,
			MaxSpeech:  20 * time.Second,
		},
	}
}

// Validate implements config.Validatable.
func (c *Config) Validate(v *config.Validator) {
	if c.Model != ModelAuto && !modelName(c.Model) {
		v.Errorf("model", "must be auto or an installed model's name (lowercase letters, digits, - and _), got %q", c.Model)
	}
	if !modelName(c.VADModel) {
		v.Errorf("vad_model", "must be a model name, got %q", c.VADModel)
	}
	if !ValidLanguage(c.Language) || c.Language == "" {
		v.Errorf("language", "must be one of auto, zh, en, yue, ja, ko, got %q", c.Language)
	}
	if c.MaxDuration < time.Second || c.MaxDuration > 24*time.Hour {
		v.Errorf("max_duration", "must be 1s to 24h, got %s", c.MaxDuration)
	}
	if c.MaxUpload < 1<<10 || c.MaxUpload > 16<<30 {
		v.Errorf("max_upload", "must be 1KiB to 16GiB, got %d", c.MaxUpload)
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		v.Errorf("concurrency", "must be 1 to 256, got %d", c.Concurrency)
	}
	if c.MaxStreams < 1 || c.MaxStreams > 100_000 {
		v.Errorf("max_streams", "must be 1 to 100000, got %d", c.MaxStreams)
	}
	if c.PartialInterval != 0 && (c.PartialInterval < 100*time.Millisecond || c.PartialInterval > time.Minute) {
		v.Errorf("partial_interval", "must be 0 (no partial results) or 100ms to 1m, got %s", c.PartialInterval)
	}
	c.VAD.validate(v.Sub("vad"))
}

// VAD returns the detector settings these stand for.
func (c VADConfig) VAD() vad.Config {
	vc := vad.DefaultConfig()
	vc.Threshold, vc.MinSpeech, vc.MinSilence, vc.SpeechPad, vc.MaxSpeech = c.Threshold, c.MinSpeech, c.MinSilence, c.SpeechPad, c.MaxSpeech
	return vc
}

func (c *VADConfig) validate(v *config.Validator) {
	if !(c.Threshold > 0 && c.Threshold < 1) {
		v.Errorf("threshold", "must be between 0 and 1 (exclusive), got %g", c.Threshold)
	}
	if c.MinSpeech < 0 || c.MinSpeech > 10*time.Second {
		v.Errorf("min_speech", "must be 0 to 10s, got %s", c.MinSpeech)
	}
	if c.MinSilence < 32*time.Millisecond || c.MinSilence > 10*time.Second {
		v.Errorf("min_silence", "must be 32ms to 10s, got %s", c.MinSilence)
	}
	if c.SpeechPad < 0 || c.SpeechPad > 2*time.Second {
		v.Errorf("speech_pad", "must be 0 to 2s, got %s", c.SpeechPad)
	}
	if c.MaxSpeech != 0 && (c.MaxSpeech < time.Second || c.MaxSpeech > 60*time.Second) {
		v.Errorf("max_speech", "must be 1s to 60s, got %s", c.MaxSpeech)
	}
}

func modelName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_')
		if !ok {
			return false
		}
	}
	return true
}
