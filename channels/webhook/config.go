package webhook

import (
	"net/url"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the channels.webhook section.
type Config struct {
	channels.Common `yaml:",inline"`
	// Secret signs inbound requests (HMAC-SHA256); at least 16 bytes.
	Secret config.Secret `yaml:"secret"`
	// OutboundURL receives the replies (http or https), unless the inbound
	// message named a callback_url.
	OutboundURL string `yaml:"outbound_url"`
	// OutboundSecret signs the replies; empty means Secret.
	OutboundSecret config.Secret `yaml:"outbound_secret"`
	// MaxSkew is how far an inbound X-Zhiyin-Timestamp may be from now,
	// either way.
	MaxSkew time.Duration `yaml:"max_skew"`
	// MaxBody bounds an inbound request body.
	MaxBody config.ByteSize `yaml:"max_body"`
	// Timeout bounds one outbound POST.
	Timeout time.Duration `yaml:"timeout"`
	// MaxText is the longest reply part in runes; the hub splits longer
	// replies.
	MaxText int `yaml:"max_text"`
	// RatePerSecond paces outbound POSTs over the whole channel; 0 means no
	// limit.
	RatePerSecond int `yaml:"rate_per_second"`
}

// Defaults.
const (
	DefaultMaxSkew = 5 * time.Minute
	DefaultMaxBody = config.ByteSize(1 << 20)
	DefaultTimeout = 10 * time.Second
	DefaultMaxText = 4000
)

// DefaultConfig returns the defaults (disabled).
func DefaultConfig() Config {
	return Config{
		MaxSkew: DefaultMaxSkew,
		MaxBody: DefaultMaxBody,
		Timeout: DefaultTimeout,
		MaxText: DefaultMaxText,
	}
}

// Validate implements config.Validatable. A disabled section is not checked.
func (c *Config) Validate(v *config.Validator) {
	if !c.Enabled {
		return
	}
	switch {
	case !c.Secret.IsSet():
		v.Errorf("secret", "required (a random string of at least 16 bytes shared with the sending system; e.g. `openssl rand -hex 32`)")
	case len(c.Secret.Value()) < 16:
		v.Errorf("secret", "must be at least 16 bytes, got %d (generate one with `openssl rand -hex 32`)", len(c.Secret.Value()))
	}
	if c.OutboundSecret.IsSet() && len(c.OutboundSecret.Value()) < 16 {
		v.Errorf("outbound_secret", "must be at least 16 bytes, got %d (or leave it empty to sign replies with secret)", len(c.OutboundSecret.Value()))
	}
	if c.OutboundURL == "" {
		v.Errorf("outbound_url", "required (the http(s) URL that receives the bot's replies)")
	} else if msg := checkURL(c.OutboundURL); msg != "" {
		v.Errorf("outbound_url", "%s", msg)
	}
	if c.MaxSkew < time.Second || c.MaxSkew > time.Hour {
		v.Errorf("max_skew", "must be between 1s and 1h, got %s", c.MaxSkew)
	}
	if c.MaxBody < 1024 || c.MaxBody > 64<<20 {
		v.Errorf("max_body", "must be between 1KiB and 64MiB, got %s", c.MaxBody)
	}
	if c.Timeout < 100*time.Millisecond || c.Timeout > 5*time.Minute {
		v.Errorf("timeout", "must be between 100ms and 5m, got %s", c.Timeout)
	}
	if c.MaxText < 1 || c.MaxText > 1_000_000 {
		v.Errorf("max_text", "must be between 1 and 1000000 runes, got %d", c.MaxText)
	}
	if c.RatePerSecond < 0 || c.RatePerSecond > 100_000 {
		v.Errorf("rate_per_second", "must be between 0 (no limit) and 100000, got %d", c.RatePerSecond)
	}
}

// checkURL returns what is wrong with an outbound URL, or "".
func checkURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "not a URL: " + err.Error()
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "must be an http:// or https:// URL, got " + quoteScheme(u.Scheme)
	}
	if u.Host == "" {
		return "must name a host, as in https://example.com/zhiyin/replies"
	}
	if u.User != nil {
		return "must not carry user:password (the requests are signed with outbound_secret)"
	}
	return ""
}

func quoteScheme(s string) string {
	if s == "" {
		return "no scheme"
	}
	return `"` + s + `:"`
}
