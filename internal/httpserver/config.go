package httpserver

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
	"github.com/zhiyin/zhiyin/internal/ratelimit"
)

// DefaultListen is the seed appliance's dialogue port, on loopback.
const DefaultListen = "127.0.0.1:18789"

// Config is the `server:` section. Listen, timeouts and the body limit need a
// restart to change; everything else in the HTTP shell reloads on SIGHUP.
type Config struct {
	// Listen is host:port. A socket passed by systemd socket activation
	// takes precedence.
	Listen string `yaml:"listen"`
	// ReadTimeout bounds reading one request, headers and body.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing one response.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// BodyLimit is the largest request body; larger ones get 413.
	BodyLimit config.ByteSize `yaml:"body_limit"`
	// ShutdownTimeout is how long SIGTERM waits for in-flight requests
	// before closing their connections.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MaxConnections bounds concurrent connections; more are refused.
	MaxConnections int `yaml:"max_connections"`
	// ProxyHeader names the header holding the client address set by a
	// reverse proxy (X-Forwarded-For, X-Real-IP). It is believed only from
	// TrustedProxies.
	ProxyHeader string `yaml:"proxy_header"`
	// TrustedProxies lists the proxies' addresses or CIDR ranges.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	return Config{
		Listen:          DefaultListen,
		ReadTimeout:     30 * time.Second,
		WriteTimeout:    30 * time.Second,
		IdleTimeout:     120 * time.Second,
		BodyLimit:       1 << 20,
		ShutdownTimeout: 15 * time.Second,
		MaxConnections:  10000,
	}
}

// Validate implements config.Validatable.
func (c *Config) Validate(v *config.Validator) {
	if err := checkListen(c.Listen); err != "" {
		v.Errorf("listen", "%s", err)
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout}, {"idle_timeout", c.IdleTimeout}} {
		if f.d < time.Second || f.d > time.Hour {
			v.Errorf(f.name, "must be between 1s and 1h, got %s", f.d)
		}
	}
	if c.ShutdownTimeout < 0 || c.ShutdownTimeout > 10*time.Minute {
		v.Errorf("shutdown_timeout", "must be between 0s and 10m, got %s", c.ShutdownTimeout)
	}
	if c.BodyLimit < 1024 || c.BodyLimit > 1<<30 {
		v.Errorf("body_limit", "must be between 1KiB and 1GiB, got %s", c.BodyLimit)
	}
	if c.MaxConnections < 1 {
		v.Errorf("max_connections", "must be at least 1, got %d", c.MaxConnections)
	}
	switch strings.ToLower(c.ProxyHeader) {
	case "", "x-forwarded-for", "x-real-ip":
	default:
		v.Errorf("proxy_header", "must be X-Forwarded-For, X-Real-IP or empty, got %q", c.ProxyHeader)
	}
	if c.ProxyHeader != "" && len(c.TrustedProxies) == 0 {
		v.Errorf("trusted_proxies", "required when proxy_header is set (otherwise any client could forge its address)")
	}
	for i, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			v.Errorf(fmt.Sprintf("trusted_proxies[%d]", i), "invalid address or CIDR %q", p)
		}
	}
}

// checkListen returns why addr is not a usable listen address, or "".
func checkListen(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("invalid address %q: use host:port, e.g. 127.0.0.1:18789 or 0.0.0.0:18789", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Sprintf("invalid port in %q: use 1-65535", addr)
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Sprintf("invalid host in %q: use an IP address (names are not resolved on an offline appliance) or localhost", addr)
		}
	}
	return ""
}

// IsLoopbackListen reports whether addr binds only to loopback.
func IsLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// LimitsConfig is the `limits:` section. Reloadable.
type LimitsConfig struct {
	// PerIP limits requests per client address (after trusted proxies).
	PerIP ratelimit.Rate `yaml:"per_ip"`
	// PerKey limits requests per API key or token subject.
	PerKey ratelimit.Rate `yaml:"per_key"`
	// ExemptLoopback exempts requests from this host (127.0.0.1, ::1).
	ExemptLoopback bool `yaml:"exempt_loopback"`
	// MaxTracked bounds the number of addresses and keys tracked.
	MaxTracked int `yaml:"max_tracked"`
}

// DefaultLimits returns the built-in defaults.
func DefaultLimits() LimitsConfig {
	return LimitsConfig{
		PerIP:          ratelimit.Rate{PerSecond: 100, Burst: 200},
		PerKey:         ratelimit.Rate{PerSecond: 50, Burst: 100},
		ExemptLoopback: true,
		MaxTracked:     100000,
	}
}

// Validate implements config.Validatable.
func (c *LimitsConfig) Validate(v *config.Validator) {
	if c.MaxTracked < 100 || c.MaxTracked > 10_000_000 {
		v.Errorf("max_tracked", "must be between 100 and 10000000, got %d", c.MaxTracked)
	}
}
