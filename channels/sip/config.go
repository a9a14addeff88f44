package sip

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/channels/sip/media"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the `channels.sip:` section of zhiyin.yaml.
type Config struct {
	// Enabled turns the SIP line on.
	Enabled bool `yaml:"enabled"`
	// Listen is the address SIP is served on, UDP and TCP ("0.0.0.0:5060").
	Listen string `yaml:"listen"`
	// PublicAddr is the IP or host advertised in Contact, Via and SDP.
	// Empty: the listen IP, or the outbound interface's IP when listening
	// on 0.0.0.0.
	PublicAddr string `yaml:"public_addr"`
	// RTPPorts is the UDP port range for media, "10000-20000" (even RTP
	// ports, RTCP on the next odd one).
	RTPPorts string `yaml:"rtp_ports"`
	// Peers is the allow-list of IPs and CIDRs whose requests are taken;
	// empty means any source that passes auth. Others get 403.
	Peers []string `yaml:"peers"`
	// Auth, when Username is set, makes INVITEs carry digest credentials.
	Auth AuthConfig `yaml:"auth"`
	// Register, when Registrar is set, registers our Contact to a PBX.
	Register RegisterConfig `yaml:"register"`
	// MaxCalls bounds concurrent calls; one more gets 486 Busy Here.
	MaxCalls int `yaml:"max_calls"`
	// Agent is the SIP URI of the human agents' queue (transfer target).
	Agent string `yaml:"agent"`
	// Transfer is "refer" (blind REFER, default) or "bridge" (we call the
	// agent and relay audio both ways).
	Transfer string `yaml:"transfer"`
	// SessionExpires is the RFC 4028 session interval we ask for (default
	// 30m, at least 90s).
	SessionExpires time.Duration `yaml:"session_expires"`
	// Codecs are the codecs we accept, in preference order: PCMU, PCMA.
	Codecs []string `yaml:"codecs"`
	// Media tunes RTP (jitter, symmetric_rtp, rtcp_interval).
	Media media.Config `yaml:"media"`
	// UserAgent is the User-Agent and Server header value.
	UserAgent string `yaml:"user_agent"`
}

// AuthConfig is `channels.sip.auth`: the credentials callers must present.
type AuthConfig struct {
	Username string `yaml:"username"`
	// Password is a secret: inline, "${ENV}", or password_file: PATH.
	Password config.Secret `yaml:"password"`
	// Realm is the digest realm (default "zhiyin").
	Realm string `yaml:"realm"`
}

// RegisterConfig is `channels.sip.register`: registration of our Contact.
type RegisterConfig struct {
	// Registrar is the registrar's SIP URI or host[:port].
	Registrar string `yaml:"registrar"`
	// Username is the address-of-record user (sip:username@domain).
	Username string `yaml:"username"`
	// Password is a secret: inline, "${ENV}", or password_file: PATH.
	Password config.Secret `yaml:"password"`
	// AuthUsername is the digest user name when it differs from Username.
	AuthUsername string `yaml:"auth_username"`
	// Domain is the AOR domain (default: the registrar's host).
	Domain string `yaml:"domain"`
	// Expires is the registration lifetime we ask for (default 1h); we
	// refresh at about half of what the registrar grants.
	Expires time.Duration `yaml:"expires"`
}

// Transfer modes.
const (
	TransferRefer  = "refer"
	TransferBridge = "bridge"
)

const minSessionExpires = 90 * time.Second

// DefaultConfig returns the shipped defaults (disabled).
func DefaultConfig() Config {
	return Config{
		Listen:         "0.0.0.0:5060",
		RTPPorts:       "10000-20000",
		Auth:           AuthConfig{Realm: "zhiyin"},
		Register:       RegisterConfig{Expires: time.Hour},
		MaxCalls:       100,
		Transfer:       TransferRefer,
		SessionExpires: 30 * time.Minute,
		Codecs:         []string{"PCMU", "PCMA"},
		Media:          media.DefaultConfig(),
		UserAgent:      "zhiyin",
	}
}

// Validate implements config.Validatable: it records every invalid
// setting on v, keys relative to the section. A disabled section is not
// checked (New checks its config as enabled); Media's own ranges are
// checked in any case, by the configuration walker calling
// media.Config.Validate (its defaults are always valid).
func (c *Config) Validate(v *config.Validator) {
	if !c.Enabled {
		return
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		v.Errorf("listen", "want host:port such as 0.0.0.0:5060: %v", err)
	}
	if _, err := parsePortRange(c.RTPPorts); err != nil {
		v.Errorf("rtp_ports", "%v", err)
	}
	for i, p := range c.Peers {
		if _, err := parsePeer(p); err != nil {
			v.Errorf(fmt.Sprintf("peers[%d]", i), "%q is neither an IP nor a CIDR", p)
		}
	}
	if (c.Auth.Username == "") != !c.Auth.Password.IsSet() {
		v.Errorf("auth", "username and password are set together")
	}
	if c.Register.Registrar != "" {
		reg := v.Sub("register")
		if c.Register.Username == "" {
			reg.Errorf("username", "required when register.registrar is set")
		}
		if c.Register.Expires < time.Minute {
			reg.Errorf("expires", "at least 1m (got %s)", c.Register.Expires)
		}
	}
	if c.MaxCalls < 1 {
		v.Errorf("max_calls", "at least 1 (got %d)", c.MaxCalls)
	}
	switch c.Transfer {
	case TransferRefer, "":
	case TransferBridge:
		if c.Agent == "" {
			v.Errorf("agent", "required with transfer: bridge (the SIP URI we call)")
		}
	default:
		v.Errorf("transfer", "%q: want refer or bridge", c.Transfer)
	}
	if c.Agent != "" && !strings.HasPrefix(strings.ToLower(c.Agent), "sip:") {
		v.Errorf("agent", "%q: want a SIP URI such as sip:queue@pbx.example", c.Agent)
	}
	if c.SessionExpires < minSessionExpires {
		v.Errorf("session_expires", "at least 90s (RFC 4028 Min-SE; got %s)", c.SessionExpires)
	}
	if _, err := c.codecs(); err != nil {
		v.Errorf("codecs", "%v", err)
	}
}

// validate checks cfg as enabled (New is asked for a server), as the
// daemon's configuration check does, every problem in one error.
func validate(cfg Config) error {
	cfg.Enabled = true
	if err := config.Validate(&cfg); err != nil {
		return fmt.Errorf("sip config: %w", err)
	}
	return nil
}

func (c Config) codecs() ([]media.Codec, error) {
	if len(c.Codecs) == 0 {
		return []media.Codec{media.PCMU, media.PCMA}, nil
	}
	out := make([]media.Codec, 0, len(c.Codecs))
	for _, name := range c.Codecs {
		switch strings.ToUpper(name) {
		case "PCMU":
			out = append(out, media.PCMU)
		case "PCMA":
			out = append(out, media.PCMA)
		default:
			return nil, fmt.Errorf("%q: only PCMU and PCMA are supported", name)
		}
	}
	return out, nil
}

func parsePortRange(s string) (media.PortRange, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return media.PortRange{}, fmt.Errorf("%q: want MIN-MAX such as 10000-20000", s)
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || a < 1024 || b > 65535 || b-a < 1 {
		return media.PortRange{}, fmt.Errorf("%q: want MIN-MAX within 1024-65535 with room for an RTP/RTCP pair", s)
	}
	r := media.PortRange{Min: a, Max: b}
	if err := r.Validate(); err != nil {
		return media.PortRange{}, fmt.Errorf("%q holds no even RTP port with its RTCP port (e.g. 10000-20000)", s)
	}
	return r, nil
}

func parsePeer(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
