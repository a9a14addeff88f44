package dialogue

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/zhiyin/zhiyin/dialogue/lanes"
	"github.com/zhiyin/zhiyin/dialogue/skill"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the dialogue section of zhiyin.yaml.
type Config struct {
	// Domain is the domain folder; empty serves the embedded e-commerce
	// demo. Reloaded on SIGHUP.
	Domain string `yaml:"domain"`
	// IdleTimeout ends a session after this long without a turn; the next
	// message starts a new one.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ResumeWindow is how long an expired session's context can still be
	// brought back ("继续刚才的问题").
	ResumeWindow time.Duration `yaml:"resume_window"`
	// HistoryLimit is the number of turns kept per session.
	HistoryLimit int `yaml:"history_limit"`
	// CacheSessions bounds the sessions kept in memory (the database holds
	// them all).
	CacheSessions int `yaml:"cache_sessions"`
	// SkillTimeout bounds one skill call (webhooks have their own timeout
	// per attempt inside it).
	SkillTimeout time.Duration `yaml:"skill_timeout"`
	// Lanes are the priority lanes' worker pools and queue bounds; which
	// turns are urgent is the domain's lanes: section.
	Lanes lanes.Config `yaml:"lanes"`
	// Actions are HTTP action webhooks (Rasa action-server protocol), each
	// a skill the domain can name.
	Actions []skill.WebhookConfig `yaml:"actions"`
	// Privacy is encryption at rest and retention.
	Privacy PrivacyConfig `yaml:"privacy"`
}

// PrivacyConfig is dialogue.privacy.
type PrivacyConfig struct {
	// KeyFile holds the AES-256 keys that encrypt message text and slot
	// values; empty means <data_dir>/keys/sessions.keys, created on first
	// start.
	KeyFile string `yaml:"key_file"`
	// RetentionDays deletes sessions idle for longer (0 keeps them).
	RetentionDays int `yaml:"retention_days"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		IdleTimeout:   30 * time.Minute,
		ResumeWindow:  24 * time.Hour,
		HistoryLimit:  200,
		CacheSessions: 10_000,
		SkillTimeout:  5 * time.Second,
		Lanes:         lanes.DefaultConfig(),
		Privacy:       PrivacyConfig{RetentionDays: 180},
	}
}

// Validate checks the section.
func (c *Config) Validate(v *config.Validator) {
	if c.IdleTimeout < time.Second {
		v.Errorf("idle_timeout", "must be at least 1s, got %s", c.IdleTimeout)
	}
	if c.ResumeWindow < 0 {
		v.Errorf("resume_window", "must not be negative, got %s", c.ResumeWindow)
	}
	if c.HistoryLimit < 1 || c.HistoryLimit > 100_000 {
		v.Errorf("history_limit", "must be between 1 and 100000, got %d", c.HistoryLimit)
	}
	if c.CacheSessions < 0 || c.CacheSessions > 10_000_000 {
		v.Errorf("cache_sessions", "must be between 0 and 10000000, got %d", c.CacheSessions)
	}
	if c.SkillTimeout < 10*time.Millisecond || c.SkillTimeout > 5*time.Minute {
		v.Errorf("skill_timeout", "must be between 10ms and 5m, got %s", c.SkillTimeout)
	}
	// Lanes and each action validate themselves (config.Validate walks
	// into them); what needs the whole list is here.
	names := map[string]bool{}
	for i, a := range c.Actions {
		if names[a.Name] {
			v.Sub(fmt.Sprintf("actions[%d]", i)).Errorf("name", "action %q is configured twice", a.Name)
		}
		names[a.Name] = true
	}
	if c.Privacy.RetentionDays < 0 {
		v.Errorf("privacy.retention_days", "must be 0 (keep) or more, got %d", c.Privacy.RetentionDays)
	}
}

// KeyFile is the key file for a data directory.
func (c *Config) KeyFile(dataDir string) string {
	if c.Privacy.KeyFile != "" {
		return c.Privacy.KeyFile
	}
	return filepath.Join(dataDir, "keys", "sessions.keys")
}
