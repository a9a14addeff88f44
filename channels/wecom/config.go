package wecom

import (
	"net/url"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Defaults.
const (
	// DefaultBaseURL is the public WeCom API; private deployments use their
	// own host.
	DefaultBaseURL = "https://qyapi.weixin.qq.com"
	// DefaultMaxSkew bounds how far a callback's timestamp may be from our
	// clock. WeCom's retries (up to 3, after 5 s each) and any later
	// redelivery reuse the original timestamp and signature, so a tight
	// window would refuse a legitimate redelivery of a message we never
	// committed; an hour still bounds what a captured request is worth
	// (and a replay inside it is deduplicated on MsgId anyway).
	DefaultMaxSkew = time.Hour
	// DefaultTimeout bounds one API call (token or send).
	DefaultTimeout = 10 * time.Second
	// DefaultMaxBody bounds a callback body: WeCom's messages are small
	// XML envelopes.
	DefaultMaxBody = 256 << 10

	maxTimeout = 2 * time.Minute
	maxMaxBody = 16 << 20
)

// Config is the channels.wecom section: one WeCom self-built app.
type Config struct {
	channels.Common `yaml:",inline"`
	// CorpID is the corp id (企业ID, "ww…"/"wx…"); decrypted callbacks must
	// carry it as their receive id.
	CorpID string `yaml:"corp_id"`
	// AgentID is the app's AgentId.
	AgentID int `yaml:"agent_id"`
	// Secret is the app's Secret (gettoken corpsecret).
	Secret config.Secret `yaml:"secret"`
	// Token and EncodingAESKey are the callback settings of the app's
	// "receive messages" page (API接收消息).
	Token          config.Secret `yaml:"token"`
	EncodingAESKey config.Secret `yaml:"encoding_aes_key"`
	// BaseURL is the API host, default https://qyapi.weixin.qq.com.
	BaseURL string `yaml:"base_url"`
	// GroupBotKey, optional, is a group bot webhook key: replies addressed
	// to GroupBotConversation go there (outbound only).
	GroupBotKey config.Secret `yaml:"group_bot_key"`
	// MaxSkew is how far a callback timestamp may be from now (default
	// 1h; see DefaultMaxSkew for why so wide).
	MaxSkew time.Duration `yaml:"max_skew"`
	// MaxBody bounds a callback body (default 256KiB).
	MaxBody config.ByteSize `yaml:"max_body"`
	// Timeout bounds one API call (default 10s).
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultConfig returns the defaults: disabled, public API host.
func DefaultConfig() Config {
	return Config{
		BaseURL: DefaultBaseURL,
		MaxSkew: DefaultMaxSkew,
		MaxBody: DefaultMaxBody,
		Timeout: DefaultTimeout,
	}
}

// Validate implements config.Validatable. A disabled section is not
// checked.
func (c *Config) Validate(v *config.Validator) {
	if !c.Enabled {
		return
	}
	if c.CorpID == "" {
		v.Errorf("corp_id", "required (the corp id, 企业ID, from My Company → Company Information in the WeCom admin console)")
	}
	if c.AgentID <= 0 {
		v.Errorf("agent_id", "required (the app's AgentId, a positive number, from App Management → your app)")
	}
	if !c.Secret.IsSet() {
		v.Errorf("secret", "required (the app's Secret from App Management → your app; or secret_file: PATH)")
	}
	if !c.Token.IsSet() {
		v.Errorf("token", "required (the Token of the app's API receive-messages settings; or token_file: PATH)")
	}
	if !c.EncodingAESKey.IsSet() {
		v.Errorf("encoding_aes_key", "required (the 43-character EncodingAESKey of the app's API receive-messages settings)")
	} else if _, err := decodeAESKey(c.EncodingAESKey.Value()); err != nil {
		v.Errorf("encoding_aes_key", "must be the 43-character EncodingAESKey shown by WeCom (it decodes to 32 bytes)")
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.Errorf("base_url", "must be an http:// or https:// URL with a host, such as %s", DefaultBaseURL)
		}
	}
	if c.MaxSkew < 0 {
		v.Errorf("max_skew", "must not be negative (0 means the default %s)", DefaultMaxSkew)
	}
	if c.MaxBody < 0 || c.MaxBody > maxMaxBody {
		v.Errorf("max_body", "must be between 0 (default 256KiB) and 16MiB, got %s", c.MaxBody)
	}
	if c.Timeout < 0 || c.Timeout > maxTimeout {
		v.Errorf("timeout", "must be between 0 (default %s) and %s, got %s", DefaultTimeout, maxTimeout, c.Timeout)
	}
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.MaxSkew <= 0 {
		c.MaxSkew = DefaultMaxSkew
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}
