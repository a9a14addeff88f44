package mattermost

import (
	"net/url"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the channels.mattermost section.
type Config struct {
	channels.Common `yaml:",inline"`
	// BaseURL is the server's address, "https://mattermost.example.com"
	// (required: Mattermost is self-hosted, there is no public default).
	BaseURL string `yaml:"base_url"`
	// Token is a bot access token (System Console > Integrations > Bot
	// Accounts), sent as "Authorization: Bearer".
	Token config.Secret `yaml:"token"`
	// MaxBody bounds one websocket frame and one REST answer.
	MaxBody config.ByteSize `yaml:"max_body"`
	// Timeout bounds one REST call and the websocket handshake.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns the defaults: disabled, 1 MiB frames, 15 s calls.
func DefaultConfig() Config {
	return Config{
		MaxBody: 1 << 20,
		Timeout: 15 * time.Second,
	}
}

// Validate implements config.Validatable. A disabled section is not
// checked.
func (c *Config) Validate(v *config.Validator) {
	if !c.Enabled {
		return
	}
	if c.BaseURL == "" {
		v.Errorf("base_url", "required (the Mattermost server's address, e.g. https://mattermost.example.com)")
	} else if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		v.Errorf("base_url", "must be an http:// or https:// address without query, e.g. https://mattermost.example.com, got %q", c.BaseURL)
	}
	if !c.Token.IsSet() {
		v.Errorf("token", "required (a bot access token: System Console > Integrations > Bot Accounts; or token_file: PATH)")
	}
	if c.MaxBody < 4<<10 {
		v.Errorf("max_body", "must be at least 4KiB, got %s", c.MaxBody)
	}
	if c.Timeout <= 0 {
		v.Errorf("timeout", "must be positive, e.g. 15s")
	}
}

// baseURL returns BaseURL without a trailing slash.
func (c *Config) baseURL() string { return strings.TrimRight(c.BaseURL, "/") }
