package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zhiyin/zhiyin/asr"
	"github.com/zhiyin/zhiyin/asr/tts"
	"github.com/zhiyin/zhiyin/channels/voice"
	"github.com/zhiyin/zhiyin/dialogue"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/internal/auth"
	"github.com/zhiyin/zhiyin/internal/config"
	"github.com/zhiyin/zhiyin/internal/httpserver"
	"github.com/zhiyin/zhiyin/internal/logging"
	"github.com/zhiyin/zhiyin/internal/store"
)

// defaultConfigPath is where the packages install the configuration.
const defaultConfigPath = "/etc/zhiyin/zhiyin.yaml"

// builtinConfig is the --config value that forces the built-in defaults even
// when /etc/zhiyin/zhiyin.yaml exists (what `make run` serves).
const builtinConfig = "builtin"

// Config is the whole configuration file. Each component owns the typed
// struct of its section and validates it; this struct only composes them.
type Config struct {
	// DataDir holds the database and installed models. Empty in the file
	// means $STATE_DIRECTORY (set by systemd's StateDirectory=) or ./var.
	DataDir   string                  `yaml:"data_dir"`
	Log       logging.Config          `yaml:"log"`
	Server    httpserver.Config       `yaml:"server"`
	Auth      auth.Config             `yaml:"auth"`
	Limits    httpserver.LimitsConfig `yaml:"limits"`
	Storage   store.Config            `yaml:"storage"`
	Inference inference.Config        `yaml:"inference"`
	ASR       asr.Config              `yaml:"asr"`
	TTS       tts.Config              `yaml:"tts"`
	Voice     voice.Config            `yaml:"voice"`
	NLU       nlu.Config              `yaml:"nlu"`
	Dialogue  dialogue.Config         `yaml:"dialogue"`
	Channels  ChannelsConfig          `yaml:"channels"`
}

// defaultConfig returns the built-in defaults: what `zhiyin serve` runs on
// with no configuration file.
func defaultConfig() Config {
	a := auth.DefaultConfig()
	// Built-in defaults serve loopback only, where a developer or the
	// appliance's own tools need no key. The packaged file turns this off.
	a.AllowLoopback = true
	return Config{
		Log:       logging.DefaultConfig(),
		Server:    httpserver.DefaultConfig(),
		Auth:      a,
		Limits:    httpserver.DefaultLimits(),
		Storage:   store.DefaultConfig(),
		Inference: inference.DefaultConfig(),
		ASR:       asr.DefaultConfig(),
		TTS:       tts.DefaultConfig(),
		Voice:     voice.DefaultConfig(),
		NLU:       nlu.DefaultConfig(),
		Dialogue:  dialogue.DefaultConfig(),
		Channels:  defaultChannelsConfig(),
	}
}

// overrides are the serve flags that replace configuration values; they
// also apply to every reload.
type overrides struct {
	Listen  string
	DataDir string
}

// apply writes the overrides into c.
func (o overrides) apply(c *Config) {
	if o.Listen != "" {
		c.Server.Listen = o.Listen
	}
	if o.DataDir != "" {
		// storage.path is empty unless the file names it, and then it wins.
		c.DataDir = o.DataDir
	}
}

// loadedConfig is a configuration and where it came from.
type loadedConfig struct {
	Config
	// Source is the file read, or "built-in defaults".
	Source string
	// Path is the file read, empty for the built-in defaults.
	Path string
}

// resolveConfigPath applies the lookup order: the flag, $ZHIYIN_CONFIG,
// /etc/zhiyin/zhiyin.yaml when it exists, else "" (built-in defaults).
func resolveConfigPath(flagValue string) string {
	p := flagValue
	if p == "" {
		p = os.Getenv("ZHIYIN_CONFIG")
	}
	if p == builtinConfig {
		return ""
	}
	if p == "" {
		if _, err := os.Stat(defaultConfigPath); err == nil {
			return defaultConfigPath
		}
	}
	return p
}

// loadConfig reads and validates the configuration named by the --config
// flag's value (see resolveConfigPath). It returns config.Errors when the
// file's content is at fault.
func loadConfig(flagValue string) (*loadedConfig, error) {
	return loadConfigWith(flagValue, overrides{})
}

// loadConfigWith is loadConfig with serve's flag overrides applied before
// validation, so that "--listen x" is reported like "server.listen: …".
func loadConfigWith(flagValue string, ov overrides) (*loadedConfig, error) {
	path := resolveConfigPath(flagValue)
	cfg := defaultConfig()
	if path == "" {
		ov.apply(&cfg)
		if err := config.Validate(&cfg); err != nil {
			return nil, err
		}
		lc := &loadedConfig{Config: cfg, Source: "built-in defaults"}
		lc.resolveDataDir()
		return lc, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config file %s does not exist: create it (the package ships %s) or omit --config to use the built-in defaults", path, defaultConfigPath)
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	if err := config.Decode(path, data, &cfg, config.DecodeOptions{Adjust: func() { ov.apply(&cfg) }}); err != nil {
		return nil, err
	}
	lc := &loadedConfig{Config: cfg, Source: path, Path: path}
	lc.resolveDataDir()
	return lc, nil
}

// resolveDataDir fills in the data directory's default.
func (lc *loadedConfig) resolveDataDir() {
	if lc.DataDir == "" {
		if sd := os.Getenv("STATE_DIRECTORY"); sd != "" {
			lc.DataDir = filepath.SplitList(sd)[0]
		} else {
			lc.DataDir = "var"
		}
	}
	if abs, err := filepath.Abs(lc.DataDir); err == nil {
		lc.DataDir = abs
	}
	if lc.Storage.Path == "" {
		lc.Storage.Path = filepath.Join(lc.DataDir, "zhiyin.db")
	}
}
