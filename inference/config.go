package inference

import (
	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the `inference:` section.
type Config struct {
	// ORTLibrary is the path of libonnxruntime.so. Empty means: the
	// environment variable ZHIYIN_ORT_LIB, else /usr/lib/zhiyin, else the
	// project's fetched copy in third_party/onnxruntime.
	ORTLibrary string `yaml:"ort_library"`
	// Provider is cpu, cuda or auto (CUDA when it is usable, else CPU).
	Provider string `yaml:"provider"`
}

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config { return Config{Provider: "auto"} }

// Validate implements config.Validatable.
func (c *Config) Validate(v *config.Validator) {
	switch c.Provider {
	case "cpu", "cuda", "auto":
	default:
		v.Errorf("provider", "must be cpu, cuda or auto, got %q", c.Provider)
	}
}
