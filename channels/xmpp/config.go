package xmpp

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Modes.
const (
	// ModeClient logs in as a user account (c2s).
	ModeClient = "client"
	// ModeComponent connects as a server component (XEP-0114).
	ModeComponent = "component"
)

// Defaults.
const (
	DefaultResource      = "zhiyin"
	DefaultClientPort    = "5222"
	DefaultComponentAddr = "127.0.0.1:5347"
	DefaultMaxStanza     = config.ByteSize(256 << 10)
	DefaultTimeout       = 20 * time.Second

	minMaxStanza = config.ByteSize(4 << 10)
	maxMaxStanza = config.ByteSize(16 << 20)
	maxTimeout   = 5 * time.Minute
)

// Config is the channels.xmpp section.
type Config struct {
	channels.Common `yaml:",inline"`
	// Mode is "client" (default: log in as a user account) or "component"
	// (XEP-0114 external component).
	Mode string `yaml:"mode"`
	// JID is the bot's account in client mode: "bot@example.org".
	JID string `yaml:"jid"`
	// Password of JID (client mode).
	Password config.Secret `yaml:"password"`
	// Server is host:port to connect to. Default: in client mode the JID's
	// domain on port 5222 (no SRV lookup), in component mode
	// 127.0.0.1:5347.
	Server string `yaml:"server"`
	// AllowPlain lets the client log in without TLS, and only when Server
	// is a loopback address (127.0.0.1, ::1, localhost). STARTTLS is still
	// used whenever the server offers it.
	AllowPlain bool `yaml:"allow_plain"`
	// CAFile is a PEM file of CA certificates to verify the server with,
	// instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify accepts any server certificate (logged as a
	// warning at every connect). For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// Resource is the client resource; default "zhiyin".
	Resource string `yaml:"resource"`
	// Rooms are multi-user chat rooms to join (client mode).
	Rooms []Room `yaml:"rooms"`
	// ComponentDomain is the component's domain in component mode
	// ("bot.example.org"): messages to anything@ComponentDomain arrive here.
	ComponentDomain string `yaml:"component_domain"`
	// ComponentSecret is the shared secret the server has for the
	// component.
	ComponentSecret config.Secret `yaml:"component_secret"`
	// MaxStanza bounds one inbound stanza; a bigger one ends the stream
	// (then reconnect). Default 256KiB.
	MaxStanza config.ByteSize `yaml:"max_stanza"`
	// Timeout bounds connecting, the login and one write; default 20s.
	Timeout time.Duration `yaml:"timeout"`
}

// Room is one multi-user chat room to join.
type Room struct {
	// JID is the room's address: "support@conference.example.org".
	JID string `yaml:"jid"`
	// Nick is the bot's nickname in the room; messages that address it
	// ("知音: …", "@知音 …") are Mentioned. Default: the local part of
	// the bot's JID.
	Nick string `yaml:"nick"`
}

// DefaultConfig returns the defaults: disabled, client mode.
func DefaultConfig() Config {
	return Config{
		Common:    channels.Common{Groups: "mention"},
		Mode:      ModeClient,
		Resource:  DefaultResource,
		MaxStanza: DefaultMaxStanza,
		Timeout:   DefaultTimeout,
	}
}

// Validate implements config.Validatable. A disabled section is not
// checked.
func (c *Config) Validate(v *config.Validator) {
	if !c.Enabled {
		return
	}
	switch c.Mode {
	case ModeClient:
		c.validateClient(v)
	case ModeComponent:
		c.validateComponent(v)
	default:
		v.Errorf("mode", `must be "client" (log in as a user account) or "component" (XEP-0114), got %q`, c.Mode)
	}
	if c.MaxStanza < minMaxStanza || c.MaxStanza > maxMaxStanza {
		v.Errorf("max_stanza", "must be between %s and %s, got %s", minMaxStanza, maxMaxStanza, c.MaxStanza)
	}
	if c.Timeout <= 0 || c.Timeout > maxTimeout {
		v.Errorf("timeout", "must be between 1s and %s, got %s", maxTimeout, c.Timeout)
	}
}

func (c *Config) validateClient(v *config.Validator) {
	if err := checkJID(c.JID, true, true); err != nil {
		v.Errorf("jid", "the bot's account, e.g. bot@example.org: %v", err)
	}
	if !c.Password.IsSet() {
		v.Errorf("password", "required (the password of jid; or password_file)")
	}
	if c.Server != "" {
		if err := checkHostPort(c.Server); err != nil {
			v.Errorf("server", "%v", err)
		}
	}
	if c.AllowPlain && !c.plainAllowed() {
		v.Errorf("allow_plain", "only allowed when server is a loopback address (127.0.0.1, ::1, localhost); otherwise use STARTTLS (remove allow_plain)")
	}
	if c.Resource == "" {
		v.Errorf("resource", `required (default "zhiyin")`)
	} else if err := checkJID("x@y/"+c.Resource, true, false); err != nil {
		v.Errorf("resource", "%v", err)
	}
	seen := map[string]bool{}
	for i, r := range c.Rooms {
		rv := v.Sub("rooms[" + strconv.Itoa(i) + "]")
		if err := checkJID(r.JID, true, true); err != nil {
			rv.Errorf("jid", "the room's address, e.g. support@conference.example.org: %v", err)
		} else if seen[bareKey(r.JID)] {
			rv.Errorf("jid", "room %s listed twice", r.JID)
		}
		seen[bareKey(r.JID)] = true
		if r.Nick != "" {
			if err := checkJID("x@y/"+r.Nick, true, false); err != nil {
				rv.Errorf("nick", "%v", err)
			}
		}
	}
	if c.ComponentDomain != "" || c.ComponentSecret.IsSet() {
		v.Errorf("component_domain", `only used with mode: component`)
	}
}

func (c *Config) validateComponent(v *config.Validator) {
	if err := checkJID(c.ComponentDomain, false, true); err != nil || containsAt(c.ComponentDomain) {
		v.Errorf("component_domain", "required: the component's domain as configured on the server, e.g. bot.example.org")
	}
	if !c.ComponentSecret.IsSet() {
		v.Errorf("component_secret", "required (the component_secret configured for the component on the server; or component_secret_file)")
	}
	if c.Server != "" {
		if err := checkHostPort(c.Server); err != nil {
			v.Errorf("server", "%v", err)
		}
	}
	if len(c.Rooms) > 0 {
		v.Errorf("rooms", "only used with mode: client")
	}
	if c.JID != "" || c.Password.IsSet() {
		v.Errorf("jid", "only used with mode: client (component mode uses component_domain and component_secret)")
	}
}

func containsAt(s string) bool {
	local, _, _ := splitJID(s)
	return local != "" || len(s) > 0 && s[0] == '@'
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("must be host:port, e.g. xmpp.example.org:5222 (got %q)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port must be 1-65535 (got %q)", port)
	}
	return nil
}

// serverAddr is the address to dial.
func (c *Config) serverAddr() string {
	if c.Server != "" {
		return c.Server
	}
	if c.Mode == ModeComponent {
		return DefaultComponentAddr
	}
	_, domain, _ := splitJID(c.JID)
	return net.JoinHostPort(domain, DefaultClientPort)
}

// plainAllowed reports whether the password may travel without TLS: only
// with allow_plain and a loopback server.
func (c *Config) plainAllowed() bool {
	return c.AllowPlain && c.serverOnLoopback()
}

// serverOnLoopback reports whether the server address is a loopback one.
func (c *Config) serverOnLoopback() bool {
	host, _, err := net.SplitHostPort(c.serverAddr())
	return err == nil && isLoopback(host)
}

// nick returns the bot's nick in room r.
func (c *Config) nick(r Room) string {
	if r.Nick != "" {
		return r.Nick
	}
	local, _, _ := splitJID(c.JID)
	return local
}

func bareKey(s string) string {
	return strings.ToLower(bareJID(s))
}
