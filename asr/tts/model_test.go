package tts

import (
	"context"
	"io"
	"log/slog"
	"math"
	"math/cmplx"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/zhiyin/zhiyin/asr/tts/ttstest"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/inferencetest"
	"github.com/zhiyin/zhiyin/models"
)

var (
	testRT    *inference.Runtime
	testRTErr error
)

func TestMain(m *testing.M) {
	testRT, testRTErr = inferencetest.Start("../..")
	os.Exit(inferencetest.Run(m, testRT))
}

const contractDir = "../../models/testdata/tts"

// registry installs the committed contract model folders with `zhiyin
// models install`'s code and returns a registry over them.
func registry(t testing.TB, folders ...string) *inference.Registry {
	t.Helper()
	rt := inferencetest.Need(t, testRT, testRTErr)
	dir := t.TempDir()
	cat, err := inference.ParseCatalog(models.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	st := inference.NewStore(dir, cat)
	for _, f := range folders {
		if _, err := st.Install(context.Background(), filepath.Join(contractDir, f), inference.InstallOptions{}); err != nil {
			t.Fatalf("install %s: %v", f, err)
		}
	}
	cfg := inference.DefaultConfig()
	cfg.Provider = "cpu"
	reg := inference.NewRegistry(rt, cfg, []string{dir}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
	t.Cleanup(func() { reg.Stop(context.Background()) })
	return reg
}

func voice(t testing.TB, engine string, reg Models) *Voice {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Engine = engine
	v, err := NewVoice(cfg, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestContractModelsSpeak(t *testing.T) {
	reg := registry(t, ttstest.VITSAishell3Name, ttstest.MatchaBakerName, ttstest.VocosName)
	for _, tc := range []struct {
		engine string
		rate   int
	}{{"vits-zh-aishell3", 8000}, {"matcha-zh-baker", 22050}} {
		t.Run(tc.engine, func(t *testing.T) {
			v := voice(t, tc.engine, reg)
			name, err := v.Warm(context.Background())
			if err != nil || name != tc.engine {
				t.Fatalf("Warm = %q, %v", name, err)
			}
			short, _ := collect(t, v, "", "", "您好。", 8000)
			long, chunks := collect(t, v, "", "", "您好，欢迎致电知音客服。您的订单已经发货，请注意查收。", 8000)
			t.Logf("short %d samples, long %d in %d chunks, rms %.3f", len(short), len(long), chunks, rms(long))
			if len(short) == 0 || len(long) < 4*len(short) {
				t.Errorf("audio does not grow with the text: %d then %d samples", len(short), len(long))
			}
			if rms(long) < 0.02 {
				t.Errorf("silent: rms %.4f", rms(long))
			}
			if chunks < 3 {
				t.Errorf("%d chunks: not streamed sentence by sentence", chunks)
			}
			native, _ := collect(t, v, "", "", "您好。", tc.rate)
			if r := float64(len(short)) / float64(len(native)); math.Abs(r-8000/float64(tc.rate)) > 0.01 {
				t.Errorf("8 kHz / native length ratio %.4f", r)
			}
		})
	}
}

// The VITS contract model gives ModelSamplesPerToken samples per token:
// sil + two phones and a blank per character + sil eos.
func TestVITSLength(t *testing.T) {
	reg := registry(t, ttstest.VITSAishell3Name)
	v := voice(t, "vits-zh-aishell3", reg)
	got, _ := collect(t, v, "", "", "您好", 8000)
	want := (1 + 2*3 + 2) * ttstest.ModelSamplesPerToken
	if len(got) != want {
		t.Errorf("%d samples, want %d", len(got), want)
	}
}

// auto picks an installed model over espeak-ng; a prompt wins over both;
// a Matcha model without its vocoder falls back to espeak-ng.
func TestVoicePicks(t *testing.T) {
	dir := t.TempDir()
	writeWAV(t, filepath.Join(dir, "utter_greet.wav"), tone(800, 8000, 440), 8000)
	reg := registry(t, ttstest.VITSAishell3Name)
	cfg := DefaultConfig()
	cfg.Prompts = dir
	v, err := NewVoice(cfg, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if name, err := v.Warm(context.Background()); err != nil || name != "vits-zh-aishell3" {
		t.Errorf("auto picked %q, %v", name, err)
	}
	if got, _ := collect(t, v, "shop", "utter_greet", "您好", 8000); len(got) != 800 {
		t.Errorf("prompt: %d samples", len(got))
	}
	needEspeak(t)
	noVoc := voice(t, "matcha-zh-baker", registry(t, ttstest.MatchaBakerName))
	if name, err := noVoc.Warm(context.Background()); err != nil || name != "espeak-ng" {
		t.Errorf("matcha without vocoder: %q, %v", name, err)
	}
	if probs := voice(t, "matcha-zh-baker", nil).Check(); len(probs) != 1 {
		t.Errorf("Check: %q", probs)
	}
}

// stft is torch.stft with center=True, reflect padding, a periodic Hann
// window: bins × frames, row-major by bin.
func stft(sig []float64, nFFT, hop int) (re, im []float64, frames int) {
	pad := nFFT / 2
	x := make([]float64, len(sig)+2*pad)
	for i := range x {
		j := i - pad
		if j < 0 {
			j = -j
		}
		if j >= len(sig) {
			j = 2*(len(sig)-1) - j
		}
		x[i] = sig[j]
	}
	frames = 1 + (len(x)-nFFT)/hop
	bins := nFFT/2 + 1
	re, im = make([]float64, bins*frames), make([]float64, bins*frames)
	buf := make([]complex128, nFFT)
	for t := 0; t < frames; t++ {
		for i := range buf {
			w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(nFFT))
			buf[i] = complex(x[t*hop+i]*w, 0)
		}
		fft(buf, false)
		for k := 0; k < bins; k++ {
			re[k*frames+t], im[k*frames+t] = real(buf[k]), imag(buf[k])
		}
	}
	return re, im, frames
}

// istft inverts stft: the vocos path reconstructs a signal from its
// spectrum given as magnitude and unit phase.
func TestISTFTInvertsSTFT(t *testing.T) {
	const nFFT, hop = 1024, 256
	n := hop * 40
	sig := make([]float64, n)
	for i := range sig {
		sig[i] = 0.4*math.Sin(2*math.Pi*220*float64(i)/22050) + 0.2*math.Sin(2*math.Pi*1330*float64(i)/22050+1)
	}
	re, im, frames := stft(sig, nFFT, hop)
	mag, x, y := make([]float32, len(re)), make([]float32, len(re)), make([]float32, len(re))
	for i := range re {
		c := complex(re[i], im[i])
		m := cmplx.Abs(c)
		mag[i] = float32(m)
		if m > 0 {
			x[i], y[i] = float32(re[i]/m), float32(im[i]/m)
		}
	}
	out := istft(mag, x, y, frames, nFFT, hop)
	if len(out) != hop*(frames-1) {
		t.Fatalf("%d samples from %d frames", len(out), frames)
	}
	var maxErr float64
	for i := range out {
		maxErr = math.Max(maxErr, math.Abs(float64(out[i])-sig[i]))
	}
	if maxErr > 1e-4 {
		t.Errorf("max reconstruction error %g", maxErr)
	}
}

func TestIcefallIDs(t *testing.T) {
	tokens := map[string]int64{" ": 0, "sil": 1, "eos": 2, "#0": 3, "n": 4, "i3": 5, "h": 6, "ao3": 7, "，": 8}
	lx := &lexicon{words: map[string][]int64{"你": {4, 5}, "好": {6, 7}, "hi": {6, 5}}, maxWord: 1}
	got := icefallIDs("你好，HI。好！", tokens, lx, map[string]bool{"，": true})
	want := [][]int64{{1, 4, 5, 0, 6, 7, 0, 8, 6, 5, 0, 3, 2}, {1, 6, 7, 0, 3, 2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestMatchIDs(t *testing.T) {
	tokens := map[string]int64{"_": 0, "a": 1, "b": 2, "c": 3, "，": 4}
	lx := &lexicon{words: map[string][]int64{"您": {1}, "好": {2}, "您好": {3}}, tones: map[string][]int64{"您": {1}, "好": {2}, "您好": {3}}, maxWord: 2}
	ids, tones := matchIDs("您好：好x", tokens, lx)
	if !reflect.DeepEqual(ids, []int64{3, 4, 2}) || !reflect.DeepEqual(tones, []int64{3, 0, 2}) {
		t.Errorf("ids %v tones %v", ids, tones)
	}
	if got := intersperse([]int64{5, 6}, 9); !reflect.DeepEqual(got, []int64{9, 5, 9, 6, 9}) {
		t.Errorf("intersperse %v", got)
	}
}

func TestParseTokens(t *testing.T) {
	got, err := ParseTokens([]byte("0\nsil 1\r\n#0 2\n\nni3 3\n"))
	if err != nil || !reflect.DeepEqual(got, map[string]int64{" ": 0, "sil": 1, "#0": 2, "ni3": 3}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "a b c\n", "a x\n", "a 1\na 2\n", "a -1\n"} {
		if _, err := ParseTokens([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseTokens(f *testing.F) {
	for _, s := range []string{"0\nsil 1\n", "a 1\nb 2\n", "a b c", "x 99999999999999999999", "\xff 1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		toks, err := ParseTokens(data)
		if err != nil {
			return
		}
		lx, err := parseLexicon(data, toks, false)
		if err == nil && lx.maxWord > maxLexiconWord {
			t.Fatal("word longer than the matcher's window")
		}
	})
}

func FuzzParseLexicon(f *testing.F) {
	tokens := map[string]int64{"a": 1, "b": 2, "1": 3}
	for _, s := range []string{"你 a b\n好 b\n", "hi a 1\n", "x\n", "你好 a b 1 2\n", "\xff a\n"} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, tones bool) {
		lx, err := parseLexicon(data, tokens, tones)
		if err != nil {
			return
		}
		for w, ids := range lx.words {
			if tones && len(lx.tones[w]) != len(ids) {
				t.Fatalf("word %q: %d phones, %d tones", w, len(ids), len(lx.tones[w]))
			}
		}
		ids, tn := matchIDs(string(data), tokens, lx)
		if tones && len(ids) != len(tn) {
			t.Fatalf("%d ids, %d tones", len(ids), len(tn))
		}
		icefallIDs(string(data), tokens, lx, nil)
	})
}
