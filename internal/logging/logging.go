// Package logging builds the process's slog.Logger from the log section of
// the configuration. The level can be changed at run time (SIGHUP) through
// the returned LevelVar. It keeps no global state and never touches
// slog.Default.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the `log:` section.
type Config struct {
	// Level is debug, info, warn or error. Reloadable.
	Level string `yaml:"level"`
	// Format is json (for journald and log shippers) or text.
	Format string `yaml:"format"`
}

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config { return Config{Level: "info", Format: "text"} }

// Validate implements config.Validatable.
func (c *Config) Validate(v *config.Validator) {
	if _, err := ParseLevel(c.Level); err != nil {
		v.Errorf("level", "%v", err)
	}
	if c.Format != "json" && c.Format != "text" {
		v.Errorf("format", "must be json or text, got %q", c.Format)
	}
}

// ParseLevel parses debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown level %q: use debug, info, warn or error", s)
}

// New returns a logger writing to w and the LevelVar that controls it.
func New(cfg Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	lvl, _ := ParseLevel(cfg.Level)
	lv.Set(lvl)
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	if cfg.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h), lv
}
