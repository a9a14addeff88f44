package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/zhiyin/zhiyin/internal/config"
)

func TestNewAndLevel(t *testing.T) {
	var buf bytes.Buffer
	log, lv := New(Config{Level: "warn", Format: "json"}, &buf)
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	if strings.Contains(buf.String(), "hidden") {
		t.Error("info logged at level warn")
	}
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &rec); err != nil || rec["msg"] != "shown" {
		t.Fatalf("not one JSON record: %q", buf.String())
	}
	lv.Set(slog.LevelDebug) // what SIGHUP does
	buf.Reset()
	log.Debug("now visible")
	if !strings.Contains(buf.String(), "now visible") {
		t.Error("level change not applied")
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Level: "loud", Format: "text"}, `log.level: unknown level "loud": use debug, info, warn or error`},
		{Config{Level: "info", Format: "xml"}, `log.format: must be json or text, got "xml"`},
	} {
		v := config.NewValidator("")
		tc.c.Validate(v.Sub("log"))
		if err := v.Err(); err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
	d := DefaultConfig()
	v := config.NewValidator("")
	d.Validate(v)
	if v.Err() != nil {
		t.Errorf("defaults invalid: %v", v.Err())
	}
}
