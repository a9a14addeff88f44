package slack

import (
	"net/url"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Modes: how Slack reaches the adapter.
const (
	// ModeEvents receives the Events API's signed HTTP callbacks at
	// EventsPath (needs a public HTTPS URL and signing_secret).
	ModeEvents = "events"
	// ModeSocket opens a Socket Mode websocket with app_token (no public
	// URL needed).
	ModeSocket = "socket"
)

// DefaultAPIBase is the public Web API.
const DefaultAPIBase = "https://slack.com/api"

// Config is the channels.slack section.
type Config struct {
	channels.Common `yaml:",inline"`
	// Mode is "events" (default) or "socket".
	Mode string `yaml:"mode"`
	// BotToken is the Bot User OAuth Token (xoxb-…): chat.postMessage and
	// auth.test.
	BotToken config.Secret `yaml:"bot_token"`
	// SigningSecret verifies Events API callbacks (events mode).
	SigningSecret config.Secret `yaml:"signing_secret"`
	// AppToken is the app-level token (xapp-…, scope connections:write)
	// that opens Socket Mode connections (socket mode).
	AppToken config.Secret `yaml:"app_token"`
	// BotUserID is the bot's user id (U…); empty asks auth.test at Start
	// (and falls back to the callbacks' authorizations).
	BotUserID string `yaml:"bot_user_id"`
	// APIBase is the Web API root: Enterprise Grid, GovSlack
	// (https://slack-gov.com/api) or a gateway.
	APIBase string `yaml:"api_base"`
	// MaxSkew is how far a callback's X-Slack-Request-Timestamp may be from
	// now (Slack: 5 minutes).
	MaxSkew time.Duration `yaml:"max_skew"`
	// MaxBody bounds callback bodies and websocket frames.
	MaxBody config.ByteSize `yaml:"max_body"`
	// Timeout bounds one Web API call and a websocket dial.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns the defaults: disabled, events mode, the public API,
// 5 minutes of skew, 1 MiB bodies, 10 s calls.
func DefaultConfig() Config {
	return Config{
		Mode:    ModeEvents,
		APIBase: DefaultAPIBase,
		MaxSkew: 5 * time.Minute,
		MaxBody: channels.DefaultMaxBody,
		Timeout: 10 * time.Second,
	}
}

// Validate implements config.Validatable. A disabled section is not
// checked.
func (c *Config) Validate(v *config.Validator) {
	if !c.Enabled {
		return
	}
	mode := c.Mode
	switch mode {
	case "", ModeEvents:
		mode = ModeEvents
	case ModeSocket:
	default:
		v.Errorf("mode", `must be "events" (HTTP callbacks) or "socket" (Socket Mode), got %q`, c.Mode)
	}
	if !c.BotToken.IsSet() {
		v.Errorf("bot_token", "required (the Bot User OAuth Token, xoxb-…, from the app's OAuth & Permissions page)")
	}
	if mode == ModeEvents && !c.SigningSecret.IsSet() {
		v.Errorf("signing_secret", "required in events mode (Basic Information → App Credentials → Signing Secret)")
	}
	if mode == ModeSocket {
		switch {
		case !c.AppToken.IsSet():
			v.Errorf("app_token", "required in socket mode (Basic Information → App-Level Tokens, scope connections:write)")
		case !strings.HasPrefix(c.AppToken.Value(), "xapp-"):
			v.Errorf("app_token", "must be an app-level token starting with xapp- (Basic Information → App-Level Tokens), not a bot or user token")
		}
	}
	if c.BotUserID != "" && !validUserID(c.BotUserID) {
		v.Errorf("bot_user_id", "must be a Slack user id such as U012AB3CD (auth.test's user_id), got %q; or leave it empty to ask auth.test", c.BotUserID)
	}
	if u, err := url.Parse(c.APIBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.Errorf("api_base", "must be an http(s) URL such as %s, got %q", DefaultAPIBase, c.APIBase)
	}
	if c.MaxSkew <= 0 {
		v.Errorf("max_skew", "must be positive (Slack recommends 5m)")
	}
	if c.MaxBody <= 0 {
		v.Errorf("max_body", "must be positive, such as 1MiB")
	}
	if c.Timeout <= 0 {
		v.Errorf("timeout", "must be positive, such as 10s")
	}
}

// validUserID reports whether s looks like a user id: U or W, then
// upper-case letters and digits.
func validUserID(s string) bool {
	if len(s) < 2 || (s[0] != 'U' && s[0] != 'W') {
		return false
	}
	for _, r := range s[1:] {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
