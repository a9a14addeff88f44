package xmpp

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/zhiyin/zhiyin/internal/config"
)

func TestConfigValidate(t *testing.T) {
	client := func(f func(c *Config)) Config {
		c := DefaultConfig()
		c.Enabled = true
		c.JID = "bot@example.org"
		c.Password = config.NewSecret("pw")
		f(&c)
		return c
	}
	component := func(f func(c *Config)) Config {
		c := DefaultConfig()
		c.Enabled = true
		c.Mode = ModeComponent
		c.ComponentDomain = "bot.example.org"
		c.ComponentSecret = config.NewSecret("s")
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"disabled is not checked", Config{}, ""},
		{"client ok", client(func(c *Config) {}), ""},
		{"client rooms", client(func(c *Config) { c.Rooms = []Room{{JID: "support@conference.example.org", Nick: "知音"}} }), ""},
		{"plain on loopback", client(func(c *Config) { c.Server = "127.0.0.1:5222"; c.AllowPlain = true }), ""},
		{"plain on localhost jid", client(func(c *Config) { c.JID = "bot@localhost"; c.AllowPlain = true }), ""},
		{"plain remote", client(func(c *Config) { c.AllowPlain = true }), "allow_plain: only allowed when server is a loopback"},
		{"plain remote server", client(func(c *Config) { c.Server = "10.0.0.1:5222"; c.AllowPlain = true }), "allow_plain"},
		{"no jid", client(func(c *Config) { c.JID = "" }), "jid: the bot's account"},
		{"jid without local", client(func(c *Config) { c.JID = "example.org" }), "jid:"},
		{"jid with resource", client(func(c *Config) { c.JID = "bot@example.org/x" }), "jid:"},
		{"no password", client(func(c *Config) { c.Password = config.Secret{} }), "password: required"},
		{"bad server", client(func(c *Config) { c.Server = "example.org" }), "server: must be host:port"},
		{"bad port", client(func(c *Config) { c.Server = "example.org:99999" }), "server: port"},
		{"bad mode", client(func(c *Config) { c.Mode = "bosh" }), "mode:"},
		{"bad room", client(func(c *Config) { c.Rooms = []Room{{JID: "conference.example.org"}} }), "rooms[0].jid"},
		{"dup room", client(func(c *Config) { c.Rooms = []Room{{JID: "a@c.org"}, {JID: "A@c.org"}} }), "rooms[1].jid: room A@c.org listed twice"},
		{"bad nick", client(func(c *Config) { c.Rooms = []Room{{JID: "a@c.org", Nick: "a\x01"}} }), "rooms[0].nick"},
		{"component fields in client", client(func(c *Config) { c.ComponentDomain = "x.org" }), "component_domain: only used"},
		{"max_stanza", client(func(c *Config) { c.MaxStanza = 100 }), "max_stanza"},
		{"timeout", client(func(c *Config) { c.Timeout = 0 }), "timeout"},
		{"component ok", component(func(c *Config) {}), ""},
		{"component no domain", component(func(c *Config) { c.ComponentDomain = "" }), "component_domain: required"},
		{"component domain with @", component(func(c *Config) { c.ComponentDomain = "a@b" }), "component_domain: required"},
		{"component no secret", component(func(c *Config) { c.ComponentSecret = config.Secret{} }), "component_secret: required"},
		{"component rooms", component(func(c *Config) { c.Rooms = []Room{{JID: "a@b"}} }), "rooms: only used with mode: client"},
		{"component jid", component(func(c *Config) { c.JID = "a@b" }), "jid: only used"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := config.NewValidator("channels.xmpp")
			tc.cfg.Validate(v)
			err := v.Err()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestConfigDecode(t *testing.T) {
	var c struct {
		XMPP Config `yaml:"xmpp"`
	}
	c.XMPP = DefaultConfig()
	t.Setenv("XMPP_PW", "from-env")
	err := config.Decode("test.yaml", []byte(`
xmpp:
  enabled: true
  groups: all
  jid: bot@example.org
  password: ${XMPP_PW}
  server: xmpp.example.org:5222
  rooms:
    - jid: support@conference.example.org
      nick: 知音
  max_stanza: 512KiB
  timeout: 30s
`), &c, config.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x := c.XMPP
	if x.Password.Value() != "from-env" || x.Mode != ModeClient || x.Resource != DefaultResource || x.MaxStanza != 512<<10 ||
		len(x.Rooms) != 1 || x.Rooms[0].Nick != "知音" || !x.AnswerAll() {
		t.Fatalf("decoded %+v", x)
	}
	if a, err := New(x, slog.New(slog.DiscardHandler)); err != nil || a.Name() != "xmpp" {
		t.Fatalf("New: %v", err)
	}
	if _, err := New(Config{Mode: "x"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("New accepted an invalid config")
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "[::1]": true, "localhost": true, "LocalHost": true,
		"10.0.0.1": false, "example.org": false, "localhost.example.org": false, "": false, "0.0.0.0": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v", host, got)
		}
	}
}
