package matrix

import (
	"net/url"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the channels.matrix section.
type Config struct {
	channels.Common `yaml:",inline"`
	// BaseURL is the homeserver's client-server API address,
	// "https://matrix.example.org" (required: self-hosted, no default).
	BaseURL string `yaml:"base_url"`
	// UserID is the bot's Matrix id, "@zhiyin:example.org".
	UserID string `yaml:"user_id"`
	// AccessToken is the bot's access token.
	AccessToken config.Secret `yaml:"access_token"`
	// AutoJoin accepts room invites.
	AutoJoin bool `yaml:"auto_join"`
	// SinceFile is where the sync position is kept; "" means the daemon's
	// <data_dir>/channels/matrix.since.
	SinceFile string `yaml:"since_file"`
	// Timeout bounds one API call (a sync long-poll gets 30 s more).
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns the defaults: disabled, auto_join on, 15 s calls.
func DefaultConfig() Config {
	return Config{
		AutoJoin: true,
		Timeout:  15 * time.Second,
	}
}

// Validate implements config.Validatable. A disabled section is not
// checked.
func (c *Config) Validate(v *config.Validator) {
	if !c.Enabled {
		return
	}
	if c.BaseURL == "" {
		v.Errorf("base_url", "required (the homeserver's client API address, e.g. https://matrix.example.org)")
	} else if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		v.Errorf("base_url", "must be an http:// or https:// address without query, e.g. https://matrix.example.org, got %q", c.BaseURL)
	}
	if c.UserID == "" {
		v.Errorf("user_id", "required (the bot's Matrix id, e.g. @zhiyin:example.org)")
	} else if !validUserID(c.UserID) {
		v.Errorf("user_id", "must be a Matrix user id such as @zhiyin:example.org, got %q", c.UserID)
	}
	if !c.AccessToken.IsSet() {
		v.Errorf("access_token", "required (the bot's access token: log in as the bot, e.g. POST /_matrix/client/v3/login, and copy access_token; or access_token_file: PATH)")
	}
	if c.Timeout <= 0 {
		v.Errorf("timeout", "must be positive, e.g. 15s")
	}
}

// validUserID accepts "@localpart:server" (historical localparts too).
func validUserID(s string) bool {
	local, server, ok := strings.Cut(strings.TrimPrefix(s, "@"), ":")
	return ok && strings.HasPrefix(s, "@") && local != "" && server != "" && len(s) <= 255 &&
		!strings.ContainsAny(s, " \t\r\n")
}

func (c *Config) baseURL() string { return strings.TrimRight(c.BaseURL, "/") }
