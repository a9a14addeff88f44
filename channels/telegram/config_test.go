package telegram

import (
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

func TestConfigDecode(t *testing.T) {
	cfg := DefaultConfig()
	yml := `
enabled: true
groups: all
token: ${TG_TOKEN}
base_url: http://10.0.0.5:8081
mode: webhook
poll_timeout: 30s
webhook_secret_file: secret.txt
set_webhook_url: https://bot.example.com/channels/telegram/webhook
bot_username: "@ShopBot"
max_body: 512KiB
timeout: 5s
`
	err := config.Decode("zhiyin.yaml", []byte(yml), &cfg, config.DecodeOptions{
		LookupEnv: func(k string) (string, bool) { return "123:abc", k == "TG_TOKEN" },
		ReadFile:  func(string) ([]byte, error) { return []byte(testSecret + "\n"), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Token.Value() != "123:abc" || cfg.WebhookSecret.Value() != testSecret || cfg.BaseURL != "http://10.0.0.5:8081" ||
		cfg.Mode != ModeWebhook || cfg.PollTimeout != 30*time.Second || cfg.MaxBody != 512<<10 || cfg.Timeout != 5*time.Second ||
		!cfg.AnswerAll() || cfg.BotUsername != "@ShopBot" {
		t.Errorf("decoded %+v", cfg)
	}
	a, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if me := a.identity(); me.ID != 123 || me.Username != "ShopBot" {
		t.Errorf("identity %+v", me)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Enabled = true
		c.Token = config.NewSecret(testToken)
		return c
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" valid; else a substring of the error
	}{
		{"defaults", func(*Config) {}, ""},
		{"disabled is not checked", func(c *Config) { *c = DefaultConfig(); c.Mode = "carrier pigeon" }, ""},
		{"token required", func(c *Config) { c.Token = config.Secret{} }, "token: required (the bot token from @BotFather"},
		{"token with a slash", func(c *Config) { c.Token = config.NewSecret("123:a/b") }, "token: must look like"},
		{"base url", func(c *Config) { c.BaseURL = "api.telegram.org" }, "base_url:"},
		{"mode", func(c *Config) { c.Mode = "push" }, `mode: must be "polling" or "webhook"`},
		{"webhook needs a secret", func(c *Config) { c.Mode = ModeWebhook }, "webhook_secret: required in webhook mode"},
		{"secret charset", func(c *Config) { c.Mode = ModeWebhook; c.WebhookSecret = config.NewSecret("has space") }, "webhook_secret: must be 1-256"},
		{"secret too long", func(c *Config) { c.Mode = ModeWebhook; c.WebhookSecret = config.NewSecret(strings.Repeat("a", 257)) }, "webhook_secret: must be 1-256"},
		{"set_webhook_url when polling", func(c *Config) { c.SetWebhookURL = "https://x.example/h" }, "set_webhook_url: only used with mode: webhook"},
		{"set_webhook_url", func(c *Config) {
			c.Mode = ModeWebhook
			c.WebhookSecret = config.NewSecret("abc")
			c.SetWebhookURL = "ftp://x"
		}, "set_webhook_url:"},
		{"poll timeout", func(c *Config) { c.PollTimeout = 500 * time.Millisecond }, "poll_timeout: must be between 1s"},
		{"username", func(c *Config) { c.BotUsername = "shop bot" }, "bot_username:"},
		{"max body", func(c *Config) { c.MaxBody = -1 }, "max_body:"},
		{"timeout", func(c *Config) { c.Timeout = time.Hour }, "timeout: must be between"},
		{"groups", func(c *Config) { c.Groups = "some" }, "groups:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			err := config.Validate(&c)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := New(DefaultConfig(), nil); err == nil || !strings.Contains(err.Error(), "token: required") {
		t.Errorf("New without a token: %v", err)
	}
}
