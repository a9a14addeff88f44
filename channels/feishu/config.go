package feishu

import (
	"net/url"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Modes of receiving events.
const (
	// ModeWebhook: Feishu posts events to POST /channels/feishu/events
	// (needs a public HTTPS address).
	ModeWebhook = "webhook"
	// ModeWebsocket: the adapter dials Feishu's long connection (no public
	// address needed; "Receive events through persistent connection" in
	// the developer console).
	ModeWebsocket = "websocket"
)

// DefaultBaseURL is Feishu's open platform; Lark's is
// https://open.larksuite.com.
const DefaultBaseURL = "https://open.feishu.cn"

// Config is the channels.feishu section.
type Config struct {
	channels.Common `yaml:",inline"`
	// Mode is "webhook" (default) or "websocket".
	Mode string `yaml:"mode"`
	// AppID and AppSecret are the self-built app's credentials
	// (developer console > Credentials & Basic Info).
	AppID     string        `yaml:"app_id"`
	AppSecret config.Secret `yaml:"app_secret"`
	// VerificationToken, when set, must match the token of every callback
	// event (webhook mode).
	VerificationToken config.Secret `yaml:"verification_token"`
	// EncryptKey, when set, makes the callback require X-Lark-Signature
	// (with a timestamp within MaxSkew and a fresh nonce) and decrypt
	// {"encrypt": …} bodies. Recommended.
	EncryptKey config.Secret `yaml:"encrypt_key"`
	// BotOpenID is the bot's open_id; a group message mentions the bot when
	// one of its mentions has it. Unset: any mention in a group counts.
	BotOpenID string `yaml:"bot_open_id"`
	// BaseURL is the open platform (Feishu or Lark).
	BaseURL string `yaml:"base_url"`
	// MaxSkew is how far a callback's timestamp may be from now.
	MaxSkew time.Duration `yaml:"max_skew"`
	// MaxBody bounds callback bodies and long-connection payloads.
	MaxBody config.ByteSize `yaml:"max_body"`
	// Timeout bounds each API request.
	Timeout time.Duration `yaml:"timeout"`
	// GroupBot is an optional custom group bot (outbound only).
	GroupBot GroupBot `yaml:"group_bot"`
}

// GroupBot is a custom group bot webhook: outbound only, no inbound
// messages. It is used for Outgoing.Conversation == GroupBotConversation, and
// for every send when no app is configured.
type GroupBot struct {
	// WebhookURL is https://open.feishu.cn/open-apis/bot/v2/hook/… (it
	// holds the bot's token, hence a secret).
	WebhookURL config.Secret `yaml:"webhook_url"`
	// Secret is the "signature verification" secret, when enabled.
	Secret config.Secret `yaml:"secret"`
}

// DefaultConfig returns the defaults: disabled, webhook mode, Feishu's
// base URL, 5 min skew, 1 MiB bodies, 10 s requests.
func DefaultConfig() Config {
	return Config{
		Common:  channels.Common{Groups: "mention"},
		Mode:    ModeWebhook,
		BaseURL: DefaultBaseURL,
		MaxSkew: 5 * time.Minute,
		MaxBody: channels.DefaultMaxBody,
		Timeout: 10 * time.Second,
	}
}

// Validate implements config.Validatable. A disabled section is not checked.
func (c *Config) Validate(v *config.Validator) {
	if !c.Enabled {
		return
	}
	switch c.Mode {
	case ModeWebhook, ModeWebsocket:
	default:
		v.Errorf("mode", `must be "webhook" (Feishu posts events to /channels/feishu/events) or "websocket" (long connection), got %q`, c.Mode)
	}
	app := c.AppID != "" || c.AppSecret.IsSet()
	if app || !c.GroupBot.WebhookURL.IsSet() {
		if c.AppID == "" {
			v.Errorf("app_id", "required (the app's App ID, cli_…, from the developer console > Credentials & Basic Info)")
		}
		if !c.AppSecret.IsSet() {
			v.Errorf("app_secret", "required (the app's App Secret from the developer console > Credentials & Basic Info)")
		}
		if c.Mode == ModeWebhook && !c.EncryptKey.IsSet() && !c.VerificationToken.IsSet() {
			v.Errorf("encrypt_key", "set encrypt_key (recommended) or at least verification_token (developer console > Events & Callbacks > Encryption Strategy): without either anyone could post events")
		}
	}
	if !validURL(c.BaseURL) {
		v.Errorf("base_url", "must be an http(s) URL such as %s (Lark: https://open.larksuite.com), got %q", DefaultBaseURL, c.BaseURL)
	}
	if c.MaxSkew <= 0 {
		v.Errorf("max_skew", "must be positive (e.g. 5m)")
	}
	if c.MaxBody <= 0 {
		v.Errorf("max_body", "must be positive (e.g. 1MiB)")
	}
	if c.Timeout <= 0 {
		v.Errorf("timeout", "must be positive (e.g. 10s)")
	}
	if c.GroupBot.WebhookURL.IsSet() && !validURL(c.GroupBot.WebhookURL.Value()) {
		v.Errorf("group_bot.webhook_url", "must be the bot's http(s) webhook address (group settings > Bots > the custom bot > Webhook)")
	}
	if c.GroupBot.Secret.IsSet() && !c.GroupBot.WebhookURL.IsSet() {
		v.Errorf("group_bot.webhook_url", "required when group_bot.secret is set")
	}
}

func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
