package slack

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

func TestConfigDecode(t *testing.T) {
	var root struct {
		Slack Config `yaml:"slack"`
	}
	root.Slack = DefaultConfig()
	yml := `
slack:
  enabled: true
  groups: mention
  mode: socket
  bot_token: ${SLACK_BOT_TOKEN}
  app_token_file: app.token
  bot_user_id: U012AB3CD
  api_base: https://slack-gov.com/api
  max_skew: 2m
  max_body: 512KiB
  timeout: 5s
`
	err := config.Decode("zhiyin.yaml", []byte(yml), &root, config.DecodeOptions{
		LookupEnv: func(k string) (string, bool) { return "xoxb-1", k == "SLACK_BOT_TOKEN" },
		ReadFile:  func(string) ([]byte, error) { return []byte("xapp-1-A1-2\n"), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	c := root.Slack
	if !c.Enabled || c.Mode != ModeSocket || c.BotToken.Value() != "xoxb-1" || !strings.HasPrefix(c.AppToken.Value(), "xapp-1") ||
		c.BotUserID != "U012AB3CD" || c.APIBase != "https://slack-gov.com/api" || c.MaxSkew != 2*time.Minute ||
		c.MaxBody != 512<<10 || c.Timeout != 5*time.Second {
		t.Fatalf("%+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Enabled = true
		c.BotToken = config.NewSecret("xoxb-1")
		c.SigningSecret = config.NewSecret("s")
		return c
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		fields []string
	}{
		{"valid events", func(*Config) {}, nil},
		{"disabled and empty", func(c *Config) { *c = Config{} }, nil},
		{"valid socket", func(c *Config) {
			c.Mode = ModeSocket
			c.SigningSecret = config.Secret{}
			c.AppToken = config.NewSecret("xapp-1")
		}, nil},
		{"no tokens", func(c *Config) { c.BotToken, c.SigningSecret = config.Secret{}, config.Secret{} }, []string{"bot_token", "signing_secret"}},
		{"socket without app token", func(c *Config) { c.Mode = ModeSocket }, []string{"app_token"}},
		{"socket with bot token as app token", func(c *Config) { c.Mode = ModeSocket; c.AppToken = config.NewSecret("xoxb-1") }, []string{"app_token"}},
		{"bad mode", func(c *Config) { c.Mode = "rtm" }, []string{"mode"}},
		{"bad values", func(c *Config) {
			c.APIBase = "slack.com/api"
			c.MaxSkew, c.MaxBody, c.Timeout = 0, -1, 0
			c.BotUserID = "bob"
		}, []string{"bot_user_id", "api_base", "max_skew", "max_body", "timeout"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := valid()
			c.mutate(&cfg)
			v := config.NewValidator("channels.slack")
			cfg.Validate(v)
			err := v.Err()
			var fe config.Errors
			if err != nil && !errors.As(err, &fe) {
				t.Fatal(err)
			}
			var got []string
			for _, e := range fe {
				got = append(got, strings.TrimPrefix(e.Path, "channels.slack."))
			}
			if strings.Join(got, ",") != strings.Join(c.fields, ",") {
				t.Fatalf("errors %v, want fields %v", err, c.fields)
			}
			if len(c.fields) == 0 && cfg.Enabled {
				if _, err := New(cfg, nil); err != nil {
					t.Fatalf("New refused a valid config: %v", err)
				}
			}
		})
	}
}
