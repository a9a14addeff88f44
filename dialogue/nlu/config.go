package nlu

import (
	"path/filepath"

	"github.com/zhiyin/zhiyin/dialogue/nlu/rules"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the nlu section of zhiyin.yaml.
type Config struct {
	// Model is the model folder `zhiyin train --out` wrote; empty means
	// <data_dir>/nlu. Without one the daemon runs without NLU and the
	// parse routes answer 503.
	Model string `yaml:"model"`
	// Data, when set, is the training data (file or folder) the model must
	// have been trained on: a model whose data hash differs is refused.
	Data string `yaml:"data"`
	// FallbackThreshold: below this confidence the intent is nlu_fallback.
	FallbackThreshold float64 `yaml:"fallback_threshold"`
	// MaxChars is the longest text accepted (413 above it).
	MaxChars int `yaml:"max_chars"`
	// Rules configures the rule extractors.
	Rules rules.Config `yaml:"rules"`
	// Transformer names bring-your-own BERT-style ONNX folders (model.yaml
	// with kind nlu-bert, vocab.txt, labels.txt) that replace the trained
	// intent classifier and/or entity tagger; the rule extractors still run.
	Transformer TransformerConfig `yaml:"transformer"`
}

// TransformerConfig is nlu.transformer.
type TransformerConfig struct {
	// Intent is a sequence-classifier folder; empty: the trained model.
	Intent string `yaml:"intent"`
	// Entities is a token-classifier folder; empty: the trained model.
	Entities string `yaml:"entities"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{FallbackThreshold: 0.3, MaxChars: 512, Rules: rules.Config{TimeZone: "Asia/Shanghai"}}
}

// Validate checks the section.
func (c *Config) Validate(v *config.Validator) {
	if c.FallbackThreshold < 0 || c.FallbackThreshold >= 1 {
		v.Errorf("fallback_threshold", "must be in [0, 1), got %g", c.FallbackThreshold)
	}
	if c.MaxChars < 1 || c.MaxChars > 100_000 {
		v.Errorf("max_chars", "must be between 1 and 100000, got %d", c.MaxChars)
	}
	if _, err := rules.New(c.Rules); err != nil {
		v.Errorf("rules", "%v", err)
	}
}

// ModelDir is the model folder for a data directory.
func (c *Config) ModelDir(dataDir string) string {
	if c.Model != "" {
		return c.Model
	}
	return filepath.Join(dataDir, "nlu")
}

// Options turns the section into parser options.
func (c *Config) Options() Options {
	return Options{FallbackThreshold: c.FallbackThreshold, MaxChars: c.MaxChars, Rules: c.Rules,
		IntentTransformer: c.Transformer.Intent, EntityTransformer: c.Transformer.Entities}
}
