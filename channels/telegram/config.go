package telegram

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Modes of receiving updates.
const (
	ModePolling = "polling"
	ModeWebhook = "webhook"
)

// Defaults.
const (
	DefaultBaseURL     = "https://api.telegram.org"
	DefaultPollTimeout = 25 * time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultMaxBody     = config.ByteSize(channels.DefaultMaxBody)

	maxPollTimeout = 10 * time.Minute
	maxTimeout     = 5 * time.Minute
)

var (
	// tokenRe is what a bot token may hold: it goes into the URL path.
	tokenRe = regexp.MustCompile(`^[A-Za-z0-9:_-]+$`)
	// secretRe is Telegram's rule for secret_token: 1-256 of [A-Za-z0-9_-].
	secretRe   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
	usernameRe = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)
)

// Config is the channels.telegram section.
type Config struct {
	channels.Common `yaml:",inline"`
	// Token is the bot token from @BotFather (or the one your local Bot
	// API server accepts): "123456789:AA…". Required.
	Token config.Secret `yaml:"token"`
	// BaseURL is the Bot API server; default https://api.telegram.org.
	BaseURL string `yaml:"base_url"`
	// Mode is "polling" (default: long-poll getUpdates, no inbound port
	// needed) or "webhook" (Telegram posts to /channels/telegram/webhook).
	Mode string `yaml:"mode"`
	// PollTimeout is the long-poll timeout of getUpdates; default 25s.
	PollTimeout time.Duration `yaml:"poll_timeout"`
	// WebhookSecret is the secret_token Telegram sends in
	// X-Telegram-Bot-Api-Secret-Token; required in webhook mode, 1-256 of
	// A-Z a-z 0-9 _ -.
	WebhookSecret config.Secret `yaml:"webhook_secret"`
	// SetWebhookURL, in webhook mode, is the public HTTPS URL of
	// /channels/telegram/webhook; when set, Start registers it with
	// setWebhook. Empty: register the webhook yourself.
	SetWebhookURL string `yaml:"set_webhook_url"`
	// BotUsername is the bot's @username, for recognising mentions; empty:
	// asked once with getMe on Start.
	BotUsername string `yaml:"bot_username"`
	// MaxBody bounds a webhook body; default 1MiB.
	MaxBody config.ByteSize `yaml:"max_body"`
	// Timeout bounds one Bot API call (beyond the long-poll wait); default
	// 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns the defaults: disabled, long polling against the
// public Bot API.
func DefaultConfig() Config {
	return Config{
		Common:      channels.Common{Groups: "mention"},
		BaseURL:     DefaultBaseURL,
		Mode:        ModePolling,
		PollTimeout: DefaultPollTimeout,
		MaxBody:     DefaultMaxBody,
		Timeout:     DefaultTimeout,
	}
}

// Validate implements config.Validatable. A disabled section is not checked.
func (c *Config) Validate(v *config.Validator) {
	if !c.Enabled {
		return
	}
	switch {
	case !c.Token.IsSet():
		v.Errorf("token", "required (the bot token from @BotFather or your local Bot API server)")
	case !tokenRe.MatchString(c.Token.Value()):
		v.Errorf("token", "must look like 123456789:AA… (letters, digits, ':', '_', '-'; no spaces or slashes)")
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.Errorf("base_url", "%q is not an http:// or https:// URL with a host (default %s)", c.BaseURL, DefaultBaseURL)
		}
	}
	mode := c.Mode
	switch mode {
	case "", ModePolling:
		mode = ModePolling
		if c.SetWebhookURL != "" {
			v.Errorf("set_webhook_url", "only used with mode: webhook (remove it, or set mode: webhook)")
		}
	case ModeWebhook:
		if !c.WebhookSecret.IsSet() {
			v.Errorf("webhook_secret", "required in webhook mode (1-256 characters of A-Z a-z 0-9 _ -; Telegram sends it with every update)")
		}
	default:
		v.Errorf("mode", `must be "polling" or "webhook", got %q`, c.Mode)
	}
	if c.WebhookSecret.IsSet() && !secretRe.MatchString(c.WebhookSecret.Value()) {
		v.Errorf("webhook_secret", "must be 1-256 characters of A-Z a-z 0-9 _ - (Telegram's rule for secret_token)")
	}
	if c.SetWebhookURL != "" && mode == ModeWebhook {
		if u, err := url.Parse(c.SetWebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.Errorf("set_webhook_url", "%q is not an https:// URL with a host (the public address of /channels/telegram/webhook)", c.SetWebhookURL)
		}
	}
	if c.PollTimeout != 0 && (c.PollTimeout < time.Second || c.PollTimeout > maxPollTimeout) {
		v.Errorf("poll_timeout", "must be between 1s and %s (default %s), got %s", maxPollTimeout, DefaultPollTimeout, c.PollTimeout)
	}
	if c.BotUsername != "" && !usernameRe.MatchString(strings.TrimPrefix(c.BotUsername, "@")) {
		v.Errorf("bot_username", "%q is not a Telegram username (letters, digits and '_'; leave empty to ask getMe)", c.BotUsername)
	}
	if c.MaxBody < 0 {
		v.Errorf("max_body", "must not be negative (default %s)", DefaultMaxBody)
	}
	if c.Timeout < 0 || c.Timeout > maxTimeout {
		v.Errorf("timeout", "must be between 0 (default %s) and %s, got %s", DefaultTimeout, maxTimeout, c.Timeout)
	}
}
