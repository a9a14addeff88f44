package webchat

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the channels.webchat section.
type Config struct {
	channels.Common `yaml:",inline"`
	// Title is the chat window's title (the /chat page and the widget's
	// default; a page may override it with data-zhiyin-title).
	Title string `yaml:"title"`
	// AllowedOrigins are the sites (scheme://host[:port]) whose pages may
	// open the chat websocket, besides this server's own host; "*" allows
	// any site. Empty: only pages served by this host (the /chat page).
	AllowedOrigins []string `yaml:"allowed_origins"`
	// MaxText is the longest customer message in runes.
	MaxText int `yaml:"max_text"`
	// MaxConnections bounds the open chat websockets; more are refused
	// with 503 at the upgrade.
	MaxConnections int `yaml:"max_connections"`
}

// Defaults.
const (
	DefaultTitle          = "知音在线客服"
	DefaultMaxText        = 2000
	DefaultMaxConnections = 10_000
)

// DefaultConfig returns the defaults (disabled).
func DefaultConfig() Config {
	return Config{
		Title:          DefaultTitle,
		MaxText:        DefaultMaxText,
		MaxConnections: DefaultMaxConnections,
	}
}

// Validate implements config.Validatable. A disabled section is not checked.
func (c *Config) Validate(v *config.Validator) {
	if !c.Enabled {
		return
	}
	if t := strings.TrimSpace(c.Title); t == "" || len([]rune(t)) > 64 {
		v.Errorf("title", "must be 1 to 64 characters, got %q", c.Title)
	}
	for i, o := range c.AllowedOrigins {
		if msg := checkOrigin(o); msg != "" {
			v.Errorf("allowed_origins["+strconv.Itoa(i)+"]", "%s", msg)
		}
	}
	if c.MaxText < 1 || c.MaxText > 100_000 {
		v.Errorf("max_text", "must be between 1 and 100000 runes, got %d", c.MaxText)
	}
	if c.MaxConnections < 1 || c.MaxConnections > 1_000_000 {
		v.Errorf("max_connections", "must be between 1 and 1000000, got %d", c.MaxConnections)
	}
}

// checkOrigin returns what is wrong with an allowed_origins entry, or "".
func checkOrigin(o string) string {
	if o == "*" {
		return ""
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return `must be an origin such as "https://shop.example.com" or "http://localhost:8080" (scheme, host and port only), or "*" for any site`
	}
	return ""
}
