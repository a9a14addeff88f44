package media

import (
	"fmt"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

// Limits and defaults of Config.
const (
	DefaultJitter       = 40 * time.Millisecond
	MinJitter           = 20 * time.Millisecond
	MaxJitter           = 500 * time.Millisecond
	DefaultRTCPInterval = 5 * time.Second
	minRTCPInterval     = time.Second
	maxRTCPInterval     = 5 * time.Minute
)

// Config tunes the RTP streams. The signalling embeds it in its section
// (channels.sip.media: jitter, symmetric_rtp, rtcp_interval); Validate
// names the keys relative to it.
type Config struct {
	// Jitter is the playout delay target of the jitter buffer: how long a
	// packet waits before it is played, so that late and reordered packets
	// still make it. Default 40ms (a LAN or a SIP trunk inside one site;
	// raise it for a far or busy network), from 20ms to 500ms.
	Jitter time.Duration `yaml:"jitter"`
	// Symmetric latches the stream to the port the peer really sends from
	// (from the negotiated IP), and sends there: needed when the peer is
	// behind NAT. Default true.
	Symmetric bool `yaml:"symmetric_rtp"`
	// RTCPInterval is how often a sender or receiver report goes out.
	// Default 5s, from 1s to 5m.
	RTCPInterval time.Duration `yaml:"rtcp_interval"`
}

// DefaultConfig returns the defaults: jitter 40ms, symmetric_rtp true,
// rtcp_interval 5s.
func DefaultConfig() Config {
	return Config{Jitter: DefaultJitter, Symmetric: true, RTCPInterval: DefaultRTCPInterval}
}

// Validate implements config.Validatable: it records every out-of-range
// value on v, keys (jitter, rtcp_interval) relative to the embedding
// section, which the configuration walker prefixes. The defaults are
// valid, so an embedding section that is disabled and leaves media alone
// never fails here.
func (c *Config) Validate(v *config.Validator) {
	if c.Jitter < MinJitter || c.Jitter > MaxJitter {
		v.Errorf("jitter", "%v is out of range: set it between %v and %v (default %v)", c.Jitter, MinJitter, MaxJitter, DefaultJitter)
	}
	if c.RTCPInterval < minRTCPInterval || c.RTCPInterval > maxRTCPInterval {
		v.Errorf("rtcp_interval", "%v is out of range: set it between %v and %v (default %v)", c.RTCPInterval, minRTCPInterval, maxRTCPInterval, DefaultRTCPInterval)
	}
}

// validate checks cfg as the configuration check does, every problem in
// one error (for Listen).
func validate(cfg Config) error {
	if err := config.Validate(&cfg); err != nil {
		return fmt.Errorf("media config: %w", err)
	}
	return nil
}

// PortRange is where Listen binds: an even RTP port in [Min, Max] and
// RTCP on the next one. The zero value means any free pair the system
// gives (for tests and ad-hoc use).
type PortRange struct {
	Min int `yaml:"min"`
	Max int `yaml:"max"`
}

// Validate checks the range, an argument of Listen (not a configuration
// section: channels.sip.rtp_ports is parsed into it); its messages start
// with rtp_ports.
func (r PortRange) Validate() error {
	if r == (PortRange{}) {
		return nil
	}
	if r.Min < 1024 || r.Max > 65535 || r.Min > r.Max {
		return fmt.Errorf("rtp_ports: %d-%d is not a range within 1024-65535 (e.g. min: 10000, max: 20000)", r.Min, r.Max)
	}
	if r.pairs() == 0 {
		return fmt.Errorf("rtp_ports: %d-%d holds no even RTP port with its RTCP port: widen it", r.Min, r.Max)
	}
	return nil
}

// first is the lowest even RTP port of the range.
func (r PortRange) first() int { return r.Min + r.Min%2 }

// pairs is how many RTP/RTCP pairs the range holds.
func (r PortRange) pairs() int {
	if r.Max-1 < r.first() {
		return 0
	}
	return (r.Max-1-r.first())/2 + 1
}
