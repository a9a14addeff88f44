package asr

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/inferencetest"
	"github.com/zhiyin/zhiyin/models"
)

// EnvRealModel names a real SenseVoice or Paraformer folder (sherpa-onnx
// or FunASR export) for TestRealModel.
const EnvRealModel = "ZHIYIN_TEST_ASR_MODEL"

// cer is the character error rate of hyp against ref: edit distance over
// the characters, punctuation and spaces ignored.
func cer(ref, hyp string) float64 {
	norm := func(s string) []rune {
		var out []rune
		for _, r := range strings.ToLower(s) {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				out = append(out, r)
			}
		}
		return out
	}
	a, b := norm(ref), norm(hyp)
	if len(a) == 0 {
		return 0
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return float64(prev[len(b)]) / float64(len(a))
}

func TestCER(t *testing.T) {
	for _, c := range []struct {
		ref, hyp string
		want     float64
	}{
		{"甚至出现交易几乎停滞的情况", "甚至出现交易几乎停滞的情况。", 0},
		{"换一首歌", "换一首", 0.25},
		{"换一首歌", "换一手歌曲", 0.5},
		{"abc", "", 1},
		{"", "x", 0},
	} {
		if got := cer(c.ref, c.hyp); got != c.want {
			t.Errorf("cer(%q, %q) = %v, want %v", c.ref, c.hyp, got, c.want)
		}
	}
}

// TestRealModel installs the real model folder named by
// $ZHIYIN_TEST_ASR_MODEL the way an integrator does and transcribes the
// AISHELL clips: the character error rate must be at most 10% on each.
func TestRealModel(t *testing.T) {
	src := os.Getenv(EnvRealModel)
	if src == "" {
		t.Skipf("set %s to a real SenseVoice-small or Paraformer folder (sherpa-onnx or FunASR export) to test recognition accuracy; no such weights can be downloaded on the build machines", EnvRealModel)
	}
	rt := inferencetest.Need(t, testRT, testRTErr)
	dir := t.TempDir()
	cat, _ := inference.ParseCatalog(models.Catalog())
	in, err := inference.NewStore(dir, cat).Install(context.Background(), src, inference.InstallOptions{})
	if err != nil {
		t.Fatalf("install %s: %v", src, err)
	}
	abs, _ := filepath.Abs(sileroDir)
	icfg := inference.DefaultConfig()
	icfg.Provider = "auto"
	reg := inference.NewRegistry(rt, icfg, []string{dir, abs}, quiet(), nil, nil)
	defer reg.Stop(context.Background())
	cfg := DefaultConfig()
	cfg.Model = in.Manifest.Name
	e := New(cfg, reg, quiet())
	manifest, err := os.ReadFile(filepath.Join(speechDir, "manifest.jsonl"))
	if err != nil {
		t.Skip(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(manifest)), "\n") {
		var m struct{ File, Transcript string }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(filepath.Base(m.File), "real_aishell1_") {
			continue
		}
		res := transcribe(t, e, clip(t, filepath.Base(m.File)), Options{Language: "zh"})
		c := cer(m.Transcript, res.Text)
		t.Logf("%s: CER %.1f%% %q (reference %q), rtf %.3f", filepath.Base(m.File), 100*c, res.Text, m.Transcript, res.RTF)
		if c > 0.10 {
			t.Errorf("%s: CER %.1f%% > 10%%", m.File, 100*c)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no real_aishell1_ clips in the manifest")
	}
}
