package tts

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/asr/audio"
)

func tone(n, rate int, hz float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(0.5 * math.Sin(2*math.Pi*hz*float64(i)/float64(rate)))
	}
	return s
}

func writeWAV(t testing.TB, path string, samples []float32, rate int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, audio.EncodeWAV(samples, rate), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPromptsLookup(t *testing.T) {
	dir := t.TempDir()
	writeWAV(t, filepath.Join(dir, "shop", "utter_greet.wav"), tone(1600, 16000, 440), 16000)
	writeWAV(t, filepath.Join(dir, "utter_greet.wav"), tone(800, 8000, 440), 8000)
	writeWAV(t, filepath.Join(dir, "utter_bye.wav"), tone(441, 44100, 440), 44100)
	p := NewPrompts(dir, 0, nil)

	for _, tc := range []struct {
		domain, response string
		rate, n          int
	}{
		{"shop", "utter_greet", 16000, 1600},
		{"bank", "utter_greet", 8000, 800}, // fallback
		{"", "utter_greet", 8000, 800},
		{"shop", "utter_bye", 44100, 441}, // fallback from a domain
	} {
		c, ok := p.Lookup(tc.domain, tc.response)
		if !ok || c.Rate != tc.rate || len(c.Samples) != tc.n {
			t.Errorf("Lookup(%q, %q) = %v, %v; want %d samples at %d", tc.domain, tc.response, c, ok, tc.n, tc.rate)
		}
	}
	if _, ok := p.Lookup("shop", "utter_none"); ok {
		t.Error("a missing prompt was found")
	}
	if _, err := p.Load("shop", "utter_none"); !errors.Is(err, ErrNoPrompt) {
		t.Errorf("got %v", err)
	}
	// Cached: the same clip; changed on disk: read again.
	a, _ := p.Lookup("shop", "utter_greet")
	b, _ := p.Lookup("shop", "utter_greet")
	if a != b {
		t.Error("second lookup not cached")
	}
	path := filepath.Join(dir, "shop", "utter_greet.wav")
	writeWAV(t, path, tone(3200, 16000, 440), 16000)
	later := time.Now().Add(time.Minute)
	os.Chtimes(path, later, later)
	if c, _ := p.Lookup("shop", "utter_greet"); len(c.Samples) != 3200 {
		t.Errorf("changed file not reread: %d samples", len(c.Samples))
	}
	if d := a.Duration(); d != 100*time.Millisecond {
		t.Errorf("duration %s", d)
	}
}

func TestPromptsNamesRefused(t *testing.T) {
	dir := t.TempDir()
	writeWAV(t, filepath.Join(dir, "ok.wav"), tone(100, 8000, 440), 8000)
	p := NewPrompts(filepath.Join(dir), 0, nil)
	for _, tc := range [][2]string{
		{"", "../secret"}, {"..", "secret"}, {"a/b", "ok"}, {"", "a/ok"}, {"", ".hidden"},
		{"", ""}, {"", "x\x00y"}, {"", "/etc/passwd"}, {`a\b`, "ok"}, {"", strings.Repeat("a", 200)}, {"", "a..b"},
	} {
		if _, err := p.Load(tc[0], tc[1]); !errors.Is(err, ErrBadName) {
			t.Errorf("Load(%q, %q) = %v, want ErrBadName", tc[0], tc[1], err)
		}
	}
	if _, err := p.Load("客服", "问候_1"); !errors.Is(err, ErrNoPrompt) {
		t.Errorf("Chinese names: %v", err)
	}
}

func TestPromptsBadWAV(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "utter_x.wav"), []byte("ID3 this is an mp3"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "utter_empty.wav"), audio.EncodeWAV(nil, 8000), 0o644); err != nil {
		t.Fatal(err)
	}
	p := NewPrompts(dir, 0, nil)
	_, err := p.Load("shop", "utter_x")
	if !errors.Is(err, ErrBadPrompt) || !strings.Contains(err.Error(), "utter_x.wav") {
		t.Fatalf("got %v", err)
	}
	if _, ok := p.Lookup("shop", "utter_x"); ok {
		t.Error("bad WAV found")
	}
	if _, err := p.Load("", "utter_empty"); !errors.Is(err, ErrBadPrompt) {
		t.Errorf("empty WAV: %v", err)
	}
	probs := p.Check()
	if len(probs) != 2 {
		t.Errorf("Check: %q", probs)
	}
}

func TestPromptsCacheBound(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		writeWAV(t, filepath.Join(dir, n+".wav"), tone(1000, 8000, 300), 8000) // 4000 bytes decoded
	}
	p := NewPrompts(dir, 9000, nil)
	for _, n := range []string{"a", "b", "c", "a"} {
		if _, ok := p.Lookup("", n); !ok {
			t.Fatal(n)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.size > 9000 || p.lru.Len() != 2 {
		t.Errorf("cache holds %d bytes in %d entries, bound 9000", p.size, p.lru.Len())
	}
}

func TestPromptsNoDir(t *testing.T) {
	p := NewPrompts("", 0, nil)
	if _, ok := p.Lookup("a", "b"); ok {
		t.Error("found a prompt without a folder")
	}
	if probs := NewPrompts(filepath.Join(t.TempDir(), "none"), 0, nil).Check(); len(probs) != 0 {
		t.Errorf("missing folder: %q", probs)
	}
}
