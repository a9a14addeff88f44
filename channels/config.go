package channels

import (
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the hub's part of the channels: section (the adapters' own
// sections sit beside it, composed in cmd).
type Config struct {
	// Outbox is how replies are retried.
	Outbox OutboxConfig `yaml:"outbox"`
	// Workers bounds the conversations answered at once; messages of one
	// conversation are answered one at a time, in order.
	Workers int `yaml:"workers"`
	// Queue bounds the committed messages waiting for a worker; when full,
	// Deliver waits (the platform's acknowledgement waits with it).
	Queue int `yaml:"queue"`
	// Keep is how long answered inbox rows (the dedup keys) and sent
	// outbox rows are kept: platforms redeliver for up to a day (Telegram
	// 24 h, Feishu 6 h), so keep at least that.
	Keep time.Duration `yaml:"keep"`
	// Texts are what the hub itself answers.
	Texts Texts `yaml:"texts"`
}

// OutboxConfig is channels.outbox.
type OutboxConfig struct {
	// MaxAttempts per reply part before it becomes a dead letter.
	MaxAttempts int `yaml:"max_attempts"`
	// BackoffMin and BackoffMax bound the exponential backoff (with jitter)
	// between attempts.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// SendTimeout bounds one attempt.
	SendTimeout time.Duration `yaml:"send_timeout"`
	// Concurrency bounds the sends in flight per channel.
	Concurrency int `yaml:"concurrency"`
	// Window bounds the reply parts held in memory per channel; the rest
	// wait on disk (a platform down for hours costs disk, not memory).
	Window int `yaml:"window"`
}

// Texts are the hub's own answers.
type Texts struct {
	// VoiceUnavailable answers a voice note when no ASR model is installed.
	VoiceUnavailable string `yaml:"voice_unavailable"`
	// MediaUnsupported answers an image or file without text.
	MediaUnsupported string `yaml:"media_unsupported"`
	// Invalid answers a message the dialogue refuses (too long, not text).
	Invalid string `yaml:"invalid"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Outbox: OutboxConfig{
			MaxAttempts: 20,
			BackoffMin:  time.Second,
			BackoffMax:  10 * time.Minute,
			SendTimeout: 15 * time.Second,
			Concurrency: 64,
			Window:      4096,
		},
		Workers: 256,
		Queue:   4096,
		Keep:    7 * 24 * time.Hour,
		Texts: Texts{
			VoiceUnavailable: "抱歉，暂时无法识别语音消息，请用文字描述您的问题。",
			MediaUnsupported: "已收到您发送的文件。我目前只能阅读文字消息，请用文字描述您的问题。",
			Invalid:          "抱歉，这条消息我无法处理（可能过长或没有文字），请换个说法再试。",
		},
	}
}

// Validate implements config.Validatable.
func (c *Config) Validate(v *config.Validator) {
	o := &c.Outbox
	ov := v.Sub("outbox")
	if o.MaxAttempts < 1 || o.MaxAttempts > 1000 {
		ov.Errorf("max_attempts", "must be between 1 and 1000, got %d", o.MaxAttempts)
	}
	if o.BackoffMin < 10*time.Millisecond {
		ov.Errorf("backoff_min", "must be at least 10ms, got %s", o.BackoffMin)
	}
	if o.BackoffMax < o.BackoffMin {
		ov.Errorf("backoff_max", "must be at least backoff_min (%s), got %s", o.BackoffMin, o.BackoffMax)
	}
	if o.SendTimeout < 100*time.Millisecond || o.SendTimeout > 10*time.Minute {
		ov.Errorf("send_timeout", "must be between 100ms and 10m, got %s", o.SendTimeout)
	}
	if o.Concurrency < 1 || o.Concurrency > 10_000 {
		ov.Errorf("concurrency", "must be between 1 and 10000, got %d", o.Concurrency)
	}
	if o.Window < 16 || o.Window > 1_000_000 {
		ov.Errorf("window", "must be between 16 and 1000000, got %d", o.Window)
	}
	if c.Workers < 1 || c.Workers > 100_000 {
		v.Errorf("workers", "must be between 1 and 100000, got %d", c.Workers)
	}
	if c.Queue < 1 || c.Queue > 10_000_000 {
		v.Errorf("queue", "must be between 1 and 10000000, got %d", c.Queue)
	}
	if c.Keep < time.Hour {
		v.Errorf("keep", "must be at least 1h (platforms redeliver for hours), got %s", c.Keep)
	}
	tv := v.Sub("texts")
	for _, f := range []struct{ name, v string }{{"voice_unavailable", c.Texts.VoiceUnavailable}, {"media_unsupported", c.Texts.MediaUnsupported}, {"invalid", c.Texts.Invalid}} {
		if f.v == "" {
			tv.Errorf(f.name, "must not be empty")
		}
	}
}
