package localaudio

import (
	"fmt"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

// Echo policies (Config.Echo).
const (
	// EchoMute silences capture while we play and for Config.Tail after.
	EchoMute = "mute"
	// EchoGate passes capture while we play only when its energy exceeds
	// the playback's by Config.GateDB, so a person can barge in over the
	// speaker; Config.Tail applies too.
	EchoGate = "gate"
	// EchoNone passes capture unchanged (a headset: no echo path).
	EchoNone = "none"
)

// Config is the `channels.localaudio:` section (the always-on kiosk line); `zhiyin
// voice --local` uses it too. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	// Enabled runs the kiosk line in the daemon (a new conversation
	// Restart after one ends). Default false.
	Enabled bool `yaml:"enabled"`
	// Input is the capture device: its exact name, a substring of exactly
	// one device's name, or "" for the system default.
	Input string `yaml:"input"`
	// Output is the playback device, as Input.
	Output string `yaml:"output"`
	// SampleRate is the rate the devices are opened at and the rate the
	// answerer hears and speaks at; a device that refuses it is opened at
	// its own default rate and resampled. Default 16000.
	SampleRate int `yaml:"sample_rate"`
	// Frame is the capture and playback frame; default 20ms. SampleRate ×
	// Frame must be a whole number of samples.
	Frame time.Duration `yaml:"frame"`
	// Echo is EchoMute (default), EchoGate or EchoNone.
	Echo string `yaml:"echo"`
	// GateDB is how much louder than our playback capture must be to pass
	// while we play (Echo gate); default 10.
	GateDB float64 `yaml:"gate_db"`
	// Tail is how long after playback ends the echo policy still applies
	// (the room's reverberation); default 200ms.
	Tail time.Duration `yaml:"tail"`
	// Restart is the kiosk's pause between one conversation's end and the
	// next's start; default 2s.
	Restart time.Duration `yaml:"restart"`
}

// DefaultConfig returns the defaults: disabled, default devices, 16000 Hz,
// 20ms frames, echo mute, gate_db 10, tail 200ms, restart 2s.
func DefaultConfig() Config {
	return Config{
		SampleRate: 16000,
		Frame:      20 * time.Millisecond,
		Echo:       EchoMute,
		GateDB:     10,
		Tail:       200 * time.Millisecond,
		Restart:    2 * time.Second,
	}
}

// Validate implements config.Validatable: it records every invalid field
// on v, keys relative to the section, each as "what is wrong, got value".
// It checks the section whether or not it is enabled: `zhiyin voice
// --local` uses it too.
func (c *Config) Validate(v *config.Validator) {
	if c.SampleRate < 8000 || c.SampleRate > 192000 {
		v.Errorf("sample_rate", "must be in [8000, 192000] Hz, got %d", c.SampleRate)
	}
	switch {
	case c.Frame < 5*time.Millisecond || c.Frame > 100*time.Millisecond:
		v.Errorf("frame", "must be in [5ms, 100ms], got %v", c.Frame)
	case c.SampleRate >= 8000 && c.SampleRate <= 192000 &&
		(int64(c.SampleRate)*int64(c.Frame))%int64(time.Second) != 0:
		v.Errorf("frame", "must be a whole number of samples at sample_rate %d, got %v", c.SampleRate, c.Frame)
	}
	switch c.Echo {
	case EchoMute, EchoGate, EchoNone:
	default:
		v.Errorf("echo", "must be %q, %q or %q, got %q", EchoMute, EchoGate, EchoNone, c.Echo)
	}
	if !(c.GateDB > 0 && c.GateDB <= 60) {
		v.Errorf("gate_db", "must be in (0, 60], got %v", c.GateDB)
	}
	if c.Tail < 0 || c.Tail > 5*time.Second {
		v.Errorf("tail", "must be in [0, 5s], got %v", c.Tail)
	}
	if c.Restart < 0 || c.Restart > time.Hour {
		v.Errorf("restart", "must be in [0, 1h], got %v", c.Restart)
	}
}

// validate checks cfg as the configuration check does: every problem in
// one error wrapping ErrConfig and the config.Errors (for New).
func validate(cfg Config) error {
	if err := config.Validate(&cfg); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// frameLen is the samples in one frame at rate.
func (c Config) frameLen(rate int) int {
	return int(int64(rate) * int64(c.Frame) / int64(time.Second))
}
