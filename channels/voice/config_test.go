package voice

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

// hasPath reports whether err is config.Errors holding a problem at path.
func hasPath(err error, path string) bool {
	var es config.Errors
	if !errors.As(err, &es) {
		return false
	}
	for _, e := range es {
		if e.Path == path {
			return true
		}
	}
	return false
}

func TestConfigValidate(t *testing.T) {
	def := DefaultConfig()
	if err := config.Validate(&def); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		key  string
		edit func(*Config)
	}{
		{"end_silence", func(c *Config) { c.EndSilence = 50 * time.Millisecond }},
		{"quick_silence", func(c *Config) { c.QuickSilence = time.Second }},
		{"quick_confidence", func(c *Config) { c.QuickConfidence = 1.5 }},
		{"vad.threshold", func(c *Config) { c.VAD.Threshold = 1 }},
		{"vad.min_speech", func(c *Config) { c.VAD.MinSpeech = 0 }},
		{"vad.speech_pad", func(c *Config) { c.VAD.SpeechPad = 200 * time.Millisecond }},
		{"vad.max_speech", func(c *Config) { c.VAD.MaxSpeech = time.Second }},
		{"no_input", func(c *Config) { c.NoInput = 0 }},
		{"max_no_input", func(c *Config) { c.MaxNoInput = -1 }},
		{"max_duration", func(c *Config) { c.MaxDuration = time.Second }},
		{"texts.goodbye", func(c *Config) { c.Texts.Goodbye = "" }},
		{"texts.error", func(c *Config) { c.Texts.Error = "" }},
		{"texts.transfer", func(c *Config) { c.Texts.TransferFailed = "" }},
		{"texts.reprompt", func(c *Config) { c.Texts.Reprompt = "" }},
		{"dtmf.terminator", func(c *Config) { c.DTMF.Terminator = "##" }},
		{"dtmf.inter_digit", func(c *Config) { c.DTMF.InterDigit = 0 }},
		{"dtmf.menu", func(c *Config) { c.DTMF.Menu = map[string]string{"12": "x"} }},
		{"dtmf.menu", func(c *Config) { c.DTMF.Menu = map[string]string{"#": "x"} }},
		{"dtmf.menu", func(c *Config) { c.DTMF.Menu = map[string]string{"1": ""} }},
		{"max_calls", func(c *Config) { c.MaxCalls = 0 }},
	} {
		cfg := DefaultConfig()
		tc.edit(&cfg)
		if err := config.Validate(&cfg); !hasPath(err, tc.key) {
			t.Errorf("%s: %v", tc.key, err)
		}
		if _, err := New(cfg, Deps{}); err == nil || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("New with a bad %s: %v", tc.key, err)
		}
	}
	if _, err := New(DefaultConfig(), Deps{}); err == nil {
		t.Error("New without dependencies")
	}
	cfg := DefaultConfig()
	cfg.Record = true
	if _, err := New(cfg, Deps{Dialogue: newRules(), Recognizer: recognizer{}, VAD: nil, Speaker: newTones(0)}); err == nil {
		t.Error("New without a VAD")
	}
}

// On hold no re-prompt runs and caller audio is ignored; max_duration says
// goodbye and hangs up.
func TestHoldAndMaxDuration(t *testing.T) {
	cfg := testConfig()
	cfg.NoInput = time.Second
	r := newRig(t, cfg, nil)
	r.eng.cfg.MaxDuration = 2500 * time.Millisecond // below what Validate allows, to keep the test short
	l := newLine(t)
	c := r.call("call-hold", l)
	r.voice.waitSaid(t, "您好", 1)
	c.Hold(true)
	feed(c, concat(clip8k(t, "espeak_cmn_01.wav", true), silence(700*time.Millisecond)), 20*time.Millisecond, nil)
	waitDone(t, c)
	if got := strings.Join(r.voice.texts(), "|"); got != "您好|"+cfg.Texts.Goodbye {
		t.Errorf("said %q (no re-prompt or turn on hold)", got)
	}
	if n := len(r.dlg.all()); n != 0 {
		t.Errorf("%d turns on hold", n)
	}
	hung := l.hangupReason()
	if hung != endMaxDuration {
		t.Errorf("hangup %q", hung)
	}
}
