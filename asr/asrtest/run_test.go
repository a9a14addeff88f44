package asrtest_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zhiyin/zhiyin/asr/asrtest"
	"github.com/zhiyin/zhiyin/inference"
)

// features returns n×t×560 pseudo-random features in about ±2 (CMVN'd
// speech has this range).
func features(seed uint64, n, t int) []float32 {
	out := make([]float32, n*t*asrtest.FeatureDim)
	s := seed
	for i := range out {
		s += 0x9e3779b97f4a7c15
		z := (s ^ (s >> 31)) * 0xbf58476d1ce4e5b9
		out[i] = float32(int64(z>>40)%4001-2000) / 1000
	}
	return out
}

func i32s(v ...int32) inference.Tensor { return inference.NewTensor([]int64{int64(len(v))}, v) }

func values[T inference.Element](t testing.TB, x inference.Tensor) []T {
	t.Helper()
	v, err := inference.Values[T](x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// argmax returns the argmax of each row of a [rows, v] matrix.
func argmax(data []float32, v int) []int {
	out := make([]int, len(data)/v)
	for r := range out {
		row := data[r*v : (r+1)*v]
		best := 0
		for j, x := range row {
			if x > row[best] {
				best = j
			}
		}
		out[r] = best
	}
	return out
}

// ctc collapses repeats and drops blank 0 in the first n frames.
func ctc(frames []int, n int) []int {
	var out []int
	prev := -1
	for _, id := range frames[:n] {
		if id != prev && id != 0 {
			out = append(out, id)
		}
		prev = id
	}
	return out
}

func runSenseVoice(t testing.TB, m *inference.Model, x []float32, tLen int, lens, lang, textNorm []int32) []inference.Tensor {
	t.Helper()
	n := len(lens)
	outs, err := m.Run(context.Background(), []inference.Tensor{
		inference.NewTensor([]int64{int64(n), int64(tLen), asrtest.FeatureDim}, x), i32s(lens...), i32s(lang...), i32s(textNorm...),
	})
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

func TestSenseVoiceRun(t *testing.T) {
	text := asrtest.SenseVoiceTextIDs()
	pad := int(asrtest.SenseVoicePadID())
	var results [][]int // argmax per layout, for comparison
	for _, name := range []string{asrtest.SenseVoiceSherpaName, asrtest.SenseVoiceFunASRName} {
		t.Run(name, func(t *testing.T) {
			m := load(t, folder(t, name))
			funasr := name == asrtest.SenseVoiceFunASRName
			if got := len(m.Contract().Outputs); got != map[bool]int{false: 1, true: 2}[funasr] {
				t.Fatalf("%d outputs", got)
			}
			const tLen = 30
			x := features(1, 2, tLen)
			var all []int
			for _, c := range []struct {
				lang, textNorm [2]int32
				tags           [2][4]int
			}{
				{[2]int32{asrtest.LangAuto, asrtest.LangZh}, [2]int32{asrtest.WithITN, asrtest.WithoutITN},
					[2][4]int{{asrtest.TagZh, asrtest.TagNeutral, asrtest.TagSpeech, asrtest.TagWithITN}, {asrtest.TagZh, asrtest.TagNeutral, asrtest.TagSpeech, asrtest.TagWoITN}}},
				{[2]int32{asrtest.LangEn, asrtest.LangYue}, [2]int32{asrtest.WithoutITN, asrtest.WithITN},
					[2][4]int{{asrtest.TagEn, asrtest.TagNeutral, asrtest.TagSpeech, asrtest.TagWoITN}, {asrtest.TagYue, asrtest.TagNeutral, asrtest.TagSpeech, asrtest.TagWithITN}}},
				{[2]int32{asrtest.LangJa, asrtest.LangKo}, [2]int32{0, 99},
					[2][4]int{{asrtest.TagJa, asrtest.TagNeutral, asrtest.TagSpeech, asrtest.TagWoITN}, {asrtest.TagKo, asrtest.TagNeutral, asrtest.TagSpeech, asrtest.TagWoITN}}},
				{[2]int32{asrtest.LangNoSpeech, -5}, [2]int32{asrtest.WithITN, asrtest.WithITN},
					[2][4]int{{asrtest.TagNoSpeech, asrtest.TagNeutral, asrtest.TagSpeech, asrtest.TagWithITN}, {asrtest.TagZh, asrtest.TagNeutral, asrtest.TagSpeech, asrtest.TagWithITN}}},
				{[2]int32{1, 1000}, [2]int32{asrtest.WithoutITN, asrtest.WithoutITN},
					[2][4]int{{asrtest.TagZh, asrtest.TagNeutral, asrtest.TagSpeech, asrtest.TagWoITN}, {asrtest.TagZh, asrtest.TagNeutral, asrtest.TagSpeech, asrtest.TagWoITN}}},
			} {
				lens := []int32{tLen, 17}
				outs := runSenseVoice(t, m, x, tLen, lens, c.lang[:], c.textNorm[:])
				if s := outs[0].Shape; !slices.Equal(s, []int64{2, tLen + 4, asrtest.SenseVoiceVocabSize}) {
					t.Fatalf("logits shape %v", s)
				}
				logits := values[float32](t, outs[0])
				if funasr {
					if got := values[int32](t, outs[1]); !slices.Equal(got, []int32{tLen + 4, 17 + 4}) || !slices.Equal(outs[1].Shape, []int64{2}) {
						t.Errorf("encoder_out_lens %v %v", outs[1].Shape, got)
					}
					checkLogSoftmax(t, logits, asrtest.SenseVoiceVocabSize)
				}
				frames := argmax(logits, asrtest.SenseVoiceVocabSize)
				all = append(all, frames...)
				for n := 0; n < 2; n++ {
					f := frames[n*(tLen+4) : (n+1)*(tLen+4)]
					if got := [4]int(f[:4]); got != c.tags[n] {
						t.Errorf("language %d, text_norm %d: tag frames %v, want %v", c.lang[n], c.textNorm[n], got, c.tags[n])
					}
					for i, id := range f[4:] {
						switch {
						case i >= int(lens[n]) && id != pad:
							t.Errorf("sequence %d frame %d past x_length %d: %d, want the pad marker %d", n, i, lens[n], id, pad)
						case i < int(lens[n]) && id != 0 && !slices.Contains(text, int32(id)):
							t.Errorf("sequence %d frame %d: %d is neither blank nor a text id", n, i, id)
						}
					}
					if len(ctc(f[4:], int(lens[n]))) == 0 {
						t.Errorf("sequence %d: random features decode to no text", n)
					}
				}
			}
			results = append(results, all)
		})
	}
	if len(results) == 2 && !slices.Equal(results[0], results[1]) {
		t.Error("the sherpa-onnx and FunASR layouts disagree on the same features")
	}
}

// checkLogSoftmax checks that every row's probabilities sum to 1.
func checkLogSoftmax(t testing.TB, data []float32, v int) {
	t.Helper()
	for r := 0; r < len(data)/v; r++ {
		s := 0.0
		for _, x := range data[r*v : (r+1)*v] {
			s += math.Exp(float64(x))
		}
		if math.Abs(s-1) > 1e-4 {
			t.Fatalf("row %d: Σ exp = %v", r, s)
		}
	}
}

// Inputs whose features are all equal, and the CMVN of log-floor silence,
// give blank in every text frame.
func TestSenseVoiceSilenceIsBlank(t *testing.T) {
	m := load(t, folder(t, asrtest.SenseVoiceSherpaName))
	negMean, invStd := asrtest.SenseVoiceCMVN()
	const tLen = 8
	for _, c := range []struct {
		name string
		x    func(i int) float32
	}{
		{"zero", func(int) float32 { return 0 }},
		{"constant", func(int) float32 { return 2.75 }},
		{"negative", func(int) float32 { return -6 }},
		{"log floor", func(i int) float32 {
			d := i % asrtest.FeatureDim
			return (asrtest.LogFloor + negMean[d]) * invStd[d]
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := make([]float32, tLen*asrtest.FeatureDim)
			for i := range x {
				x[i] = c.x(i)
			}
			outs := runSenseVoice(t, m, x, tLen, []int32{tLen}, []int32{0}, []int32{15})
			if frames := argmax(values[float32](t, outs[0]), asrtest.SenseVoiceVocabSize); !slices.Equal(frames[4:], make([]int, tLen)) {
				t.Errorf("text frames %v, want blank", frames[4:])
			}
		})
	}
}

func runParaformer(t testing.TB, m *inference.Model, x []float32, tLen int, lens []int32) []inference.Tensor {
	t.Helper()
	outs, err := m.Run(context.Background(), []inference.Tensor{
		inference.NewTensor([]int64{int64(len(lens)), int64(tLen), asrtest.FeatureDim}, x), i32s(lens...),
	})
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

// decodeFunASR is FunASR's rule: argmax, drop 0 and 2, keep the first
// token_num − predictor_bias (1).
func decodeFunASR(rows []int, tokenNum int) []int {
	var out []int
	for _, id := range rows {
		if id != asrtest.ParaformerBlankID && id != asrtest.ParaformerEOSID {
			out = append(out, id)
		}
	}
	return out[:min(len(out), max(tokenNum-1, 0))]
}

// decodeSherpa is sherpa-onnx's rule: argmax until </s>.
func decodeSherpa(rows []int) []int {
	var out []int
	for _, id := range rows {
		if id == asrtest.ParaformerEOSID {
			break
		}
		out = append(out, id)
	}
	return out
}

func TestParaformerRun(t *testing.T) {
	text := asrtest.ParaformerTextIDs()
	pad := int(asrtest.ParaformerPadID())
	const tLen = 40
	x := features(2, 2, tLen)
	var results [][]int
	for _, name := range []string{asrtest.ParaformerSherpaName, asrtest.ParaformerTimestampsName, asrtest.ParaformerFunASRName} {
		t.Run(name, func(t *testing.T) {
			m := load(t, folder(t, name))
			timestamps := name == asrtest.ParaformerTimestampsName
			var all []int
			for _, lens := range [][]int32{{tLen, 9}, {3, tLen}, {0, 1}} {
				outs := runParaformer(t, m, x, tLen, lens)
				if len(outs) != map[bool]int{false: 2, true: 4}[timestamps] {
					t.Fatalf("%d outputs", len(outs))
				}
				if s := outs[0].Shape; !slices.Equal(s, []int64{2, tLen, asrtest.ParaformerVocabSize}) {
					t.Fatalf("logits shape %v", s)
				}
				logits := values[float32](t, outs[0])
				checkLogSoftmax(t, logits, asrtest.ParaformerVocabSize)
				tokenNum := values[int32](t, outs[1])
				rows := argmax(logits, asrtest.ParaformerVocabSize)
				all = append(all, rows...)
				for n, l := range lens {
					tn := int(tokenNum[n])
					if want := asrtest.ParaformerTokenNum(l, tLen); tn != int(want) || tn < 1 || tn > tLen {
						t.Fatalf("length %d: token_num %d, want %d (1 ≤ token_num ≤ U = %d)", l, tn, want, tLen)
					}
					r := rows[n*tLen : (n+1)*tLen]
					for i, id := range r {
						switch {
						case i < tn-1 && !slices.Contains(text, int32(id)):
							t.Errorf("length %d row %d: %d is not a text id", l, i, id)
						case i == tn-1 && id != asrtest.ParaformerEOSID:
							t.Errorf("length %d row %d = token_num−1: %d, want </s>", l, i, id)
						case i >= tn && id != pad:
							t.Errorf("length %d row %d past token_num: %d, want the pad marker", l, i, id)
						}
					}
					fa, sh := decodeFunASR(r, tn), decodeSherpa(r)
					if !slices.Equal(fa, sh) || len(fa) != tn-1 {
						t.Errorf("length %d: FunASR rule %v, sherpa-onnx rule %v, want token_num−1 = %d tokens", l, fa, sh, tn-1)
					}
					if timestamps {
						checkTimestamps(t, outs[2], outs[3], n, tLen, tn, len(sh))
					}
				}
			}
			results = append(results, all)
		})
	}
	for i := 1; i < len(results); i++ {
		if !slices.Equal(results[0], results[i]) {
			t.Errorf("Paraformer layout %d disagrees with the first on the same features", i)
		}
	}
}

// checkTimestamps applies sherpa-onnx's rule to sequence n: peaks above
// 1−1e-4, at k·0.02 s, the last dropped; they must number the tokens.
func checkTimestamps(t testing.TB, alphas, peaks inference.Tensor, n, tLen, tokenNum, tokens int) {
	t.Helper()
	if !slices.Equal(alphas.Shape, []int64{2, 3 * int64(tLen)}) || !slices.Equal(peaks.Shape, alphas.Shape) {
		t.Fatalf("us_alphas %v, us_cif_peak %v, want [2 %d]", alphas.Shape, peaks.Shape, 3*tLen)
	}
	a := values[float32](t, alphas)[n*3*tLen : (n+1)*3*tLen]
	p := values[float32](t, peaks)[n*3*tLen : (n+1)*3*tLen]
	sum := 0.0
	for _, x := range a {
		sum += float64(x)
	}
	if math.Abs(sum-float64(tokenNum)) > 1e-3 {
		t.Errorf("Σ us_alphas = %v, want token_num %d", sum, tokenNum)
	}
	var at []int
	for k, x := range p {
		if x > 1-1e-4 {
			at = append(at, k)
		}
	}
	if len(at) != tokenNum {
		t.Fatalf("%d peaks, want token_num %d", len(at), tokenNum)
	}
	for r, k := range at {
		if k != 3*r+2 {
			t.Errorf("peak %d at frame %d, want %d", r, k, 3*r+2)
		}
	}
	if len(at)-1 != tokens {
		t.Errorf("%d timestamps after dropping the last, %d tokens", len(at)-1, tokens)
	}
}

// A sequence decodes the same alone and in a padded batch when the decoder
// honours the lengths.
func TestBatchMatchesSingle(t *testing.T) {
	const long, short = 24, 11
	x := features(3, 2, long)
	single := func(n, l int) []float32 {
		return x[n*long*asrtest.FeatureDim : (n*long+l)*asrtest.FeatureDim]
	}
	t.Run("sense-voice", func(t *testing.T) {
		m := load(t, folder(t, asrtest.SenseVoiceSherpaName))
		v := asrtest.SenseVoiceVocabSize
		batch := argmax(values[float32](t, runSenseVoice(t, m, x, long, []int32{long, short}, []int32{0, 0}, []int32{15, 15})[0]), v)
		for n, l := range []int{long, short} {
			alone := argmax(values[float32](t, runSenseVoice(t, m, single(n, l), l, []int32{int32(l)}, []int32{0}, []int32{15})[0]), v)
			inBatch := batch[n*(long+4) : (n+1)*(long+4)]
			if got, want := ctc(inBatch, l+4), ctc(alone, l+4); !slices.Equal(got, want) {
				t.Errorf("sequence %d: batched %v, alone %v", n, got, want)
			}
			if l < long && slices.Equal(ctc(inBatch, long+4), ctc(alone, l+4)) {
				t.Errorf("sequence %d: decoding past x_length+4 should show the pad marker", n)
			}
		}
	})
	t.Run("paraformer", func(t *testing.T) {
		m := load(t, folder(t, asrtest.ParaformerSherpaName))
		v := asrtest.ParaformerVocabSize
		batch := argmax(values[float32](t, runParaformer(t, m, x, long, []int32{long, short})[0]), v)
		for n, l := range []int{long, short} {
			alone := argmax(values[float32](t, runParaformer(t, m, single(n, l), l, []int32{int32(l)})[0]), v)
			if got, want := decodeSherpa(batch[n*long:(n+1)*long]), decodeSherpa(alone); !slices.Equal(got, want) {
				t.Errorf("sequence %d: batched %v, alone %v", n, got, want)
			}
		}
	})
}

func readFloats(t testing.TB, p string) []float32 {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func cmvnApply(lfr, negMean, invStd []float32) []float32 {
	out := make([]float32, len(lfr))
	for i, x := range lfr {
		d := i % asrtest.FeatureDim
		out[i] = (x + negMean[d]) * invStd[d]
	}
	return out
}

// The shared reference features (real speech, espeak, silence) through the
// models' own CMVN: speech gives a short text, silence none.
func TestRealFeatures(t *testing.T) {
	dir := filepath.Join(sharedData, "frontend")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		t.Skipf("needs the shared test data in %s", dir)
	}
	sv := load(t, folder(t, asrtest.SenseVoiceSherpaName))
	svF := load(t, folder(t, asrtest.SenseVoiceFunASRName))
	pf := load(t, folder(t, asrtest.ParaformerSherpaName))
	svTok, pfTok := asrtest.SenseVoiceTokens(), asrtest.ParaformerTokens()
	svMean, svStd := asrtest.SenseVoiceCMVN()
	pfMean, pfStd := asrtest.ParaformerCMVN()
	for _, c := range []struct {
		clip    string
		silence bool
	}{{"espeak_cmn_02", false}, {"real_aishell1_BAC009S0764W0121", false}, {"noise_silence_3s", true}} {
		t.Run(c.clip, func(t *testing.T) {
			lfr := readFloats(t, filepath.Join(dir, c.clip+".lfr.bin"))
			tLen := len(lfr) / asrtest.FeatureDim
			x := cmvnApply(lfr, svMean, svStd)
			var texts []string
			for _, m := range []*inference.Model{sv, svF} {
				ids := ctc(argmax(values[float32](t, runSenseVoice(t, m, x, tLen, []int32{int32(tLen)}, []int32{0}, []int32{15})[0]), asrtest.SenseVoiceVocabSize), tLen+4)
				var b strings.Builder
				for _, id := range ids[4:] {
					b.WriteString(svTok[id])
				}
				texts = append(texts, b.String())
			}
			if texts[0] != texts[1] {
				t.Errorf("sherpa-onnx layout %q, FunASR layout %q", texts[0], texts[1])
			}
			n := len([]rune(texts[0]))
			if c.silence && n != 0 || !c.silence && (n == 0 || n > tLen/2) {
				t.Errorf("SenseVoice text %q (%d characters) for %d frames", texts[0], n, tLen)
			}
			outs := runParaformer(t, pf, cmvnApply(lfr, pfMean, pfStd), tLen, []int32{int32(tLen)})
			var b strings.Builder
			for _, id := range decodeSherpa(argmax(values[float32](t, outs[0]), asrtest.ParaformerVocabSize)) {
				b.WriteString(pfTok[id])
			}
			t.Logf("%d frames: SenseVoice %q, Paraformer %q", tLen, texts[0], b.String())
		})
	}
}

// The models load with the catalog's warm-up and release everything on
// Close (a second Close is a no-op, a run after it fails).
func TestClose(t *testing.T) {
	rt := needRT(t)
	for _, f := range generated() {
		inst := install(t, f)
		m, err := rt.Load(context.Background(), inst.Manifest, inference.LoadOptions{Provider: "cpu", Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		if st := m.Stats(); st.Warmup <= 0 || m.EP() != "cpu" {
			t.Errorf("%s: not warmed up on the CPU: %+v %s", f.Name, st, m.EP())
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		x := make([]float32, 4*asrtest.FeatureDim)
		in := []inference.Tensor{inference.NewTensor([]int64{1, 4, asrtest.FeatureDim}, x), i32s(4)}
		if f.Name == asrtest.SenseVoiceSherpaName || f.Name == asrtest.SenseVoiceFunASRName {
			in = append(in, i32s(0), i32s(15))
		}
		if _, err := m.Run(context.Background(), in); !errors.Is(err, inference.ErrClosed) {
			t.Errorf("%s: run after Close: %v", f.Name, err)
		}
	}
}
