package tts

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zhiyin/zhiyin/internal/config"
)

func TestConfigValidate(t *testing.T) {
	if err := config.Validate(ptr(DefaultConfig())); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Engine = "Bad Name" }, "engine"},
		{func(c *Config) { c.Speed = 0 }, "speed"},
		{func(c *Config) { c.MaxSentence = 2 }, "max_sentence"},
		{func(c *Config) { c.Concurrency = 0 }, "concurrency"},
		{func(c *Config) { c.Speaker = -1 }, "speaker"},
		{func(c *Config) { c.Espeak.Voice = "-x" }, "espeak.voice"},
		{func(c *Config) { c.Espeak.Speed = 10 }, "espeak.speed"},
		{func(c *Config) { c.Espeak.Pitch = 100 }, "espeak.pitch"},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := config.Validate(&c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v", tc.want, err)
		}
	}
	c := DefaultConfig()
	c.Engine = "vits-zh-aishell3"
	if err := config.Validate(&c); err != nil {
		t.Errorf("model name: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// collect speaks and returns everything emitted and the chunk count.
func collect(t testing.TB, v *Voice, domain, response, text string, rate int) ([]float32, int) {
	t.Helper()
	var got []float32
	n := 0
	if err := v.Speak(context.Background(), domain, response, text, rate, func(s []float32) error {
		got = append(got, s...)
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got, n
}

func TestVoicePromptWins(t *testing.T) {
	dir := t.TempDir()
	writeWAV(t, filepath.Join(dir, "shop", "utter_greet.wav"), tone(16000, 16000, 440), 16000)
	cfg := DefaultConfig()
	cfg.Prompts = dir
	cfg.Espeak.Binary = filepath.Join(dir, "no-espeak") // never needed
	v, err := NewVoice(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, chunks := collect(t, v, "shop", "utter_greet", "您好", 8000)
	if len(got) != 8000 || chunks != 2 {
		t.Errorf("got %d samples in %d chunks, want 8000 in 2 (1 s at 8 kHz, 0.5 s chunks)", len(got), chunks)
	}
	if r := rms(got); r < 0.3 {
		t.Errorf("rms %.3f", r)
	}
	// No prompt and no espeak-ng: the error says how to install it.
	err = v.Speak(context.Background(), "shop", "utter_other", "您好", 8000, func([]float32) error { return nil })
	if !errors.Is(err, ErrEspeakMissing) {
		t.Errorf("got %v", err)
	}
}

func TestVoiceEspeakAt8k(t *testing.T) {
	needEspeak(t)
	v, err := NewVoice(DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	name, err := v.Warm(context.Background())
	if err != nil || name != "espeak-ng" {
		t.Fatalf("Warm = %q, %v", name, err)
	}
	got8, _ := collect(t, v, "", "", "您好，订单12345已发货。", 8000)
	got22, _ := collect(t, v, "", "", "您好，订单12345已发货。", EspeakRate)
	ratio := float64(len(got8)) / float64(len(got22))
	t.Logf("%d samples at 8 kHz, %d at 22.05 kHz (ratio %.4f), rms %.3f", len(got8), len(got22), ratio, rms(got8))
	if ratio < 0.36 || ratio > 0.37 {
		t.Errorf("8 kHz / 22.05 kHz length ratio %.4f, want 0.3628", ratio)
	}
	if rms(got8) < 0.01 {
		t.Error("silent")
	}
	// Nothing to say: nothing emitted, no error.
	if got, _ := collect(t, v, "", "", " 😀 ", 8000); len(got) != 0 {
		t.Errorf("%d samples for an emoji", len(got))
	}
}

func TestVoiceConcurrentAndCancel(t *testing.T) {
	needEspeak(t)
	cfg := DefaultConfig()
	cfg.Concurrency = 2
	v, err := NewVoice(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			n := 0
			err := v.Speak(context.Background(), "", "", "好的。谢谢。", 8000, func(s []float32) error { n += len(s); return nil })
			if err == nil && n < 4000 {
				err = errors.New("too little audio")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	err = v.Speak(ctx, "", "", "第一句。第二句。第三句。", 8000, func([]float32) error { cancel(); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: got %v", err)
	}
	boom := errors.New("hung up")
	if err := v.Speak(context.Background(), "", "", "第一句。第二句。", 8000, func([]float32) error { return boom }); err != boom {
		t.Errorf("emit error: got %v", err)
	}
}
