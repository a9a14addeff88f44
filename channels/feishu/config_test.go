package feishu

import (
	"strings"
	"testing"

	"github.com/zhiyin/zhiyin/internal/config"
)

func TestConfigValidate(t *testing.T) {
	check := func(c Config) string {
		v := config.NewValidator("channels.feishu")
		c.Validate(v)
		if err := v.Err(); err != nil {
			return err.Error()
		}
		return ""
	}
	if msg := check(DefaultConfig()); msg != "" {
		t.Fatalf("disabled defaults: %s", msg)
	}
	if msg := check(testConfig()); msg != "" {
		t.Fatalf("test config: %s", msg)
	}
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"no app", func(c *Config) { c.AppID, c.AppSecret = "", config.Secret{} }, "app_id: required"},
		{"no secret", func(c *Config) { c.AppSecret = config.Secret{} }, "app_secret: required"},
		{"unsigned webhook", func(c *Config) { c.EncryptKey, c.VerificationToken = config.Secret{}, config.Secret{} }, "encrypt_key"},
		{"bad mode", func(c *Config) { c.Mode = "poll" }, "mode"},
		{"bad base url", func(c *Config) { c.BaseURL = "open.feishu.cn" }, "base_url"},
		{"zero skew", func(c *Config) { c.MaxSkew = 0 }, "max_skew"},
		{"zero body", func(c *Config) { c.MaxBody = 0 }, "max_body"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout"},
		{"bad group bot", func(c *Config) { c.GroupBot.WebhookURL = config.NewSecret("x") }, "group_bot.webhook_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			tc.modify(&c)
			if msg := check(c); !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not mention %q", msg, tc.want)
			}
			if _, err := New(c, testLogger()); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
	// A group bot alone (outbound only) and a websocket app without
	// encrypt_key are fine.
	c := DefaultConfig()
	c.Enabled = true
	c.GroupBot.WebhookURL = config.NewSecret("https://open.feishu.cn/open-apis/bot/v2/hook/x")
	if msg := check(c); msg != "" {
		t.Fatalf("group bot only: %s", msg)
	}
	c = testConfig()
	c.Mode, c.EncryptKey, c.VerificationToken = ModeWebsocket, config.Secret{}, config.Secret{}
	if msg := check(c); msg != "" {
		t.Fatalf("websocket: %s", msg)
	}
}

// The example in the report / packaged config decodes strictly.
func TestConfigDecodeExample(t *testing.T) {
	const y = `
enabled: true
groups: mention
mode: webhook
app_id: cli_a1b2c3
app_secret: ${FEISHU_APP_SECRET}
verification_token_file: /etc/zhiyin/feishu-token
encrypt_key: ${FEISHU_ENCRYPT_KEY}
bot_open_id: ou_0123
base_url: https://open.larksuite.com
max_skew: 5m
max_body: 1MiB
timeout: 10s
group_bot:
  webhook_url: ${FEISHU_GROUP_BOT_URL}
  secret: ${FEISHU_GROUP_BOT_SECRET}
`
	env := map[string]string{
		"FEISHU_APP_SECRET": "s", "FEISHU_ENCRYPT_KEY": "e",
		"FEISHU_GROUP_BOT_URL": "https://open.feishu.cn/open-apis/bot/v2/hook/x", "FEISHU_GROUP_BOT_SECRET": "g",
	}
	c := DefaultConfig()
	err := config.Decode("feishu.yaml", []byte(y), &c, config.DecodeOptions{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		ReadFile:  func(string) ([]byte, error) { return []byte("tok\n"), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.AppSecret.Value() != "s" || c.VerificationToken.Value() != "tok" || c.MaxSkew.Minutes() != 5 || c.MaxBody != 1<<20 ||
		c.BaseURL != "https://open.larksuite.com" || c.GroupBot.Secret.Value() != "g" {
		t.Fatalf("decoded %+v", c)
	}
	if _, err := New(c, testLogger()); err != nil {
		t.Fatal(err)
	}
}
