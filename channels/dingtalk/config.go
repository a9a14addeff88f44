package dingtalk

import (
	"net/url"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Modes say how messages reach zhiyin.
const (
	// ModeStream: DingTalk Stream mode (a websocket zhiyin opens; no public
	// address needed).
	ModeStream = "stream"
	// ModeHTTP: DingTalk POSTs robot messages to /channels/dingtalk/callback.
	ModeHTTP = "http"
	// ModeCustomRobot: outbound only, through a custom group robot webhook.
	ModeCustomRobot = "custom_robot"
)

// Config is the channels.dingtalk section.
type Config struct {
	channels.Common `yaml:",inline"`
	// Mode is stream (default), http or custom_robot.
	Mode string `yaml:"mode"`
	// ClientID is the app's Client ID (AppKey).
	ClientID string `yaml:"client_id"`
	// ClientSecret is the app's Client Secret (AppSecret); in http mode it
	// is also the key of the callback signature.
	ClientSecret config.Secret `yaml:"client_secret"`
	// RobotCode is the robot's code for the OpenAPI; empty means the
	// robotCode of the message answered, then ClientID.
	RobotCode string `yaml:"robot_code"`
	// APIBase is the new OpenAPI (api.dingtalk.com): stream gateway, access
	// tokens, robot messages.
	APIBase string `yaml:"api_base"`
	// OAPIBase is the old OpenAPI (oapi.dingtalk.com): custom robots and
	// sessionWebhooks.
	OAPIBase string `yaml:"oapi_base"`
	// CustomRobot is a custom group robot: the whole channel in
	// custom_robot mode, or an extra target (conversation "custom_robot").
	CustomRobot CustomRobot `yaml:"custom_robot"`
	// MaxBody bounds a callback body and a stream frame.
	MaxBody config.ByteSize `yaml:"max_body"`
	// Timeout bounds each HTTP request to DingTalk.
	Timeout time.Duration `yaml:"timeout"`
}

// CustomRobot is a custom group robot's webhook credentials.
type CustomRobot struct {
	// AccessToken is the access_token of the robot's webhook URL.
	AccessToken config.Secret `yaml:"access_token"`
	// Secret is the signing secret ("SEC…") when the robot uses 加签.
	Secret config.Secret `yaml:"secret"`
}

// Configured reports whether an access token was given.
func (c CustomRobot) Configured() bool { return c.AccessToken.IsSet() }

// Defaults.
const (
	DefaultAPIBase  = "https://api.dingtalk.com"
	DefaultOAPIBase = "https://oapi.dingtalk.com"
	DefaultTimeout  = 10 * time.Second
)

// DefaultConfig returns the defaults: disabled, stream mode, the public
// DingTalk endpoints, 1 MiB bodies, 10 s requests.
func DefaultConfig() Config {
	return Config{
		Mode:     ModeStream,
		APIBase:  DefaultAPIBase,
		OAPIBase: DefaultOAPIBase,
		MaxBody:  config.ByteSize(channels.DefaultMaxBody),
		Timeout:  DefaultTimeout,
	}
}

// Validate implements config.Validatable. A disabled section is not checked.
func (c *Config) Validate(v *config.Validator) {
	if !c.Enabled {
		return
	}
	needApp := func() {
		if c.ClientID == "" {
			v.Errorf("client_id", "required (the app's Client ID / AppKey from the DingTalk developer console)")
		}
		if !c.ClientSecret.IsSet() {
			v.Errorf("client_secret", "required (the app's Client Secret / AppSecret from the DingTalk developer console; in http mode it also signs the callbacks)")
		}
	}
	switch c.Mode {
	case ModeStream:
		needApp()
	case ModeHTTP:
		// The secret signs the callbacks; the id fetches OpenAPI tokens for
		// replies after the sessionWebhook expired.
		needApp()
	case ModeCustomRobot:
		if !c.CustomRobot.AccessToken.IsSet() {
			v.Errorf("custom_robot.access_token", "required in custom_robot mode (the access_token in the robot's webhook URL)")
		}
	default:
		v.Errorf("mode", `must be "stream", "http" or "custom_robot", got %q`, c.Mode)
	}
	if c.CustomRobot.Secret.IsSet() && !c.CustomRobot.AccessToken.IsSet() {
		v.Errorf("custom_robot.access_token", "required with custom_robot.secret (the access_token in the robot's webhook URL)")
	}
	checkBase(v, "api_base", c.APIBase)
	checkBase(v, "oapi_base", c.OAPIBase)
	if c.MaxBody <= 0 {
		v.Errorf("max_body", "must be positive, e.g. 1MiB")
	}
	if c.Timeout <= 0 {
		v.Errorf("timeout", "must be positive, e.g. 10s")
	}
}

func checkBase(v *config.Validator, field, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.Errorf(field, "must be an http(s) URL such as %s, got %q", map[string]string{"api_base": DefaultAPIBase, "oapi_base": DefaultOAPIBase}[field], s)
	}
}

// withDefaults fills empty fields (a Config built in code).
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	if c.APIBase == "" {
		c.APIBase = d.APIBase
	}
	if c.OAPIBase == "" {
		c.OAPIBase = d.OAPIBase
	}
	if c.MaxBody <= 0 {
		c.MaxBody = d.MaxBody
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	c.APIBase = strings.TrimRight(c.APIBase, "/")
	c.OAPIBase = strings.TrimRight(c.OAPIBase, "/")
	return c
}
