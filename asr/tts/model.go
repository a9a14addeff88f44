package tts

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/cmplx"
	"os"
	"strconv"
	"strings"

	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/onnxpb"
)

// VocoderModels are the vocoders a Matcha model without a `vocoder`
// metadata entry tries, in order (catalog names).
var VocoderModels = []string{"vocos-22khz", "hifigan-v2"}

// modelKind is a TTS model family.
type modelKind int

const (
	vitsIcefall modelKind = iota + 1 // tokens, tokens_lens, noise_scale, alpha, noise_scale_dur, speaker → audio
	vitsMelo                         // x, x_lengths, tones, sid, noise_scale, length_scale, noise_scale_w → y
	matchaTTS                        // x, x_length, noise_scale, length_scale → mel
)

// modelSynth speaks with an ONNX TTS model. Immutable once built; safe
// for concurrent use (runs go through the inference handle).
type modelSynth struct {
	name    string
	kind    modelKind
	h       *inference.Handle
	voc     *vocoder
	rate    int
	tokens  map[string]int64
	lex     *lexicon
	punct   map[string]bool
	addBlk  bool
	padID   int64
	bos     []int64 // Matcha use_eos_bos
	eos     []int64
	speaker int64
	noise   float32
	noiseW  float32
	length  float32
}

var _ Synthesizer = (*modelSynth)(nil)

// vocoder turns Matcha's mel frames into audio.
type vocoder struct {
	name  string
	h     *inference.Handle
	vocos bool // mag, x, y → inverse STFT; else hifigan mel → audio
	rate  int
	nFFT  int
	hop   int
}

// metadata merges a manifest's metadata with its ONNX file's (the
// manifest wins).
func metadata(man *inference.Manifest) (map[string]string, error) {
	md := map[string]string{}
	info, err := onnxpb.ReadInfoFile(man.GraphPath())
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrModelFiles, man.GraphPath(), err)
	}
	for k, v := range info.Metadata {
		md[k] = v
	}
	for k, v := range man.Metadata {
		md[k] = v
	}
	return md, nil
}

func mdInt(md map[string]string, key string, def int) int {
	if v, err := strconv.Atoi(strings.TrimSpace(md[key])); err == nil {
		return v
	}
	return def
}

// newModelSynth reads a loaded TTS model's companion files and metadata
// (and, for Matcha, finds and loads its vocoder in models).
func newModelSynth(ctx context.Context, h *inference.Handle, man *inference.Manifest, models Models, cfg Config) (*modelSynth, error) {
	md, err := metadata(man)
	if err != nil {
		return nil, err
	}
	c := man.Contract
	s := &modelSynth{name: man.Name, h: h, punct: map[string]bool{}, length: float32(1 / cfg.Speed)}
	in0 := ""
	if len(c.Inputs) > 0 {
		in0 = c.Inputs[0].Name
	}
	switch {
	case len(c.Inputs) == 6 && in0 == "tokens":
		s.kind = vitsIcefall
	case len(c.Inputs) == 7 && in0 == "x":
		s.kind = vitsMelo
	case len(c.Inputs) == 4 && in0 == "x":
		s.kind = matchaTTS
	default:
		return nil, fmt.Errorf("%w: model %s has %d inputs starting with %q: not a VITS (icefall: tokens…; Melo: x… 7 inputs) or Matcha (x… 4 inputs) model",
			ErrModelFiles, man.Name, len(c.Inputs), in0)
	}
	tokData, err := os.ReadFile(man.Path("tokens.txt"))
	if err != nil {
		return nil, fmt.Errorf("%w: model %s: %v", ErrModelFiles, man.Name, err)
	}
	if s.tokens, err = ParseTokens(tokData); err != nil {
		return nil, fmt.Errorf("%w: model %s: %v", ErrModelFiles, man.Name, err)
	}
	lexData, err := os.ReadFile(man.Path("lexicon.txt"))
	if err != nil {
		return nil, fmt.Errorf("%w: model %s: %v", ErrModelFiles, man.Name, err)
	}
	if s.lex, err = parseLexicon(lexData, s.tokens, s.kind == vitsMelo); err != nil {
		return nil, fmt.Errorf("%w: model %s: %v", ErrModelFiles, man.Name, err)
	}
	for _, f := range strings.Fields(md["punctuation"]) {
		s.punct[f] = true
		for _, r := range f {
			s.punct[string(r)] = true
		}
	}
	s.rate = mdInt(md, "sample_rate", 0)
	switch s.kind {
	case vitsIcefall, vitsMelo:
		s.noise, s.noiseW = 0.667, 0.8
		s.addBlk = md["add_blank"] == "1"
		n := mdInt(md, "n_speakers", 1)
		if cfg.Speaker > 0 && cfg.Speaker < n {
			s.speaker = int64(cfg.Speaker)
		}
		if s.kind == vitsMelo && n <= 1 {
			s.speaker = int64(mdInt(md, "speaker_id", 0))
		}
	case matchaTTS:
		s.noise = 1
		s.addBlk = md["add_blank"] != "0"
		if _, ok := md["pad_id"]; !ok {
			return nil, fmt.Errorf("%w: model %s: the ONNX metadata has no pad_id (a sherpa-onnx Matcha export has it)", ErrModelFiles, man.Name)
		}
		s.padID = int64(mdInt(md, "pad_id", 0))
		if md["use_eos_bos"] == "1" {
			bos, eos := mdInt(md, "bos_id", -1), mdInt(md, "eos_id", -1)
			if bos >= 0 && eos >= 0 {
				s.bos, s.eos = []int64{int64(bos)}, []int64{int64(eos)}
			}
		}
		if c.Outputs[0].Name != "audio_output" {
			if s.voc, err = findVocoder(ctx, models, md["vocoder"]); err != nil {
				return nil, fmt.Errorf("model %s: %w", man.Name, err)
			}
			if s.rate == 0 {
				s.rate = s.voc.rate
			}
		}
	}
	if s.rate < 1000 || s.rate > 192000 {
		return nil, fmt.Errorf("%w: model %s: sample_rate %q missing or out of range in the ONNX metadata", ErrModelFiles, man.Name, md["sample_rate"])
	}
	return s, nil
}

// findVocoder loads the named vocoder, or the first installed of
// VocoderModels.
func findVocoder(ctx context.Context, models Models, name string) (*vocoder, error) {
	names := VocoderModels
	if name != "" {
		names = []string{name}
	}
	for _, n := range names {
		h, err := models.Handle(n)
		if errors.Is(err, inference.ErrModelNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		m, err := h.Model(ctx)
		if errors.Is(err, inference.ErrModelNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load vocoder %s: %w", n, err)
		}
		man := m.Manifest()
		md, err := metadata(man)
		if err != nil {
			return nil, err
		}
		v := &vocoder{name: n, h: h, vocos: len(man.Contract.Outputs) == 3, rate: mdInt(md, "sample_rate", 22050),
			nFFT: mdInt(md, "n_fft", 1024), hop: mdInt(md, "hop_length", 256)}
		if v.vocos && (v.nFFT < 16 || v.nFFT > 8192 || v.nFFT&(v.nFFT-1) != 0 || v.hop < 1 || v.hop > v.nFFT) {
			return nil, fmt.Errorf("%w: vocoder %s: n_fft %d / hop_length %d unsupported (n_fft must be a power of two)", ErrModelFiles, n, v.nFFT, v.hop)
		}
		return v, nil
	}
	return nil, fmt.Errorf("%w: no vocoder installed (tried %s): put vocos-22khz-univ.onnx in a folder named vocos-22khz-univ and run `zhiyin models install DIR`", ErrNoModel, strings.Join(names, ", "))
}

// Name returns the model's name.
func (s *modelSynth) Name() string { return s.name }

// SampleRate returns the model's (or its vocoder's) rate.
func (s *modelSynth) SampleRate() int { return s.rate }

// Synthesize implements Synthesizer: one model run per sentence.
func (s *modelSynth) Synthesize(ctx context.Context, text string, emit func([]float32) error) error {
	return eachSentence(ctx, text, func(ctx context.Context, sentence string) error {
		for _, seq := range s.sequences(sentence) {
			pcm, err := s.run(ctx, seq)
			if err != nil {
				return err
			}
			step := max(s.rate/10, 1)
			for len(pcm) > 0 {
				n := min(step, len(pcm))
				if err := emit(pcm[:n]); err != nil {
					return err
				}
				pcm = pcm[n:]
			}
		}
		return nil
	})
}

// seq is one model input: token ids and, for Melo, tones.
type seq struct{ ids, tones []int64 }

// sequences converts a sentence to model inputs.
func (s *modelSynth) sequences(text string) []seq {
	var out []seq
	switch s.kind {
	case vitsIcefall:
		for _, ids := range icefallIDs(text, s.tokens, s.lex, s.punct) {
			if s.addBlk {
				ids = intersperse(ids, 0)
			}
			out = append(out, seq{ids: ids})
		}
	case vitsMelo:
		ids, tones := matchIDs(text, s.tokens, s.lex)
		if len(ids) == 0 {
			return nil
		}
		ids = append(append([]int64{0}, ids...), 0)
		tones = append(append([]int64{0}, tones...), 0)
		if s.addBlk {
			ids, tones = intersperse(ids, 0), intersperse(tones, 0)
		}
		out = append(out, seq{ids: ids, tones: tones})
	case matchaTTS:
		ids, _ := matchIDs(text, s.tokens, s.lex)
		if len(ids) == 0 {
			return nil
		}
		if s.addBlk {
			ids = intersperse(ids, s.padID)
		}
		ids = append(append(append([]int64(nil), s.bos...), ids...), s.eos...)
		out = append(out, seq{ids: ids})
	}
	return out
}

func f1(v float32) inference.Tensor { return inference.NewTensor([]int64{1}, []float32{v}) }
func i1(v int64) inference.Tensor   { return inference.NewTensor([]int64{1}, []int64{v}) }

// run synthesises one sequence to samples in [-1,1].
func (s *modelSynth) run(ctx context.Context, q seq) ([]float32, error) {
	n := int64(len(q.ids))
	ids := inference.NewTensor([]int64{1, n}, q.ids)
	var in []inference.Tensor
	switch s.kind {
	case vitsIcefall:
		in = []inference.Tensor{ids, i1(n), f1(s.noise), f1(s.length), f1(s.noiseW), i1(s.speaker)}
	case vitsMelo:
		in = []inference.Tensor{ids, i1(n), inference.NewTensor([]int64{1, n}, q.tones), i1(s.speaker), f1(s.noise), f1(s.length), f1(s.noiseW)}
	case matchaTTS:
		in = []inference.Tensor{ids, i1(n), f1(s.noise), f1(s.length)}
	}
	out, err := s.h.Run(ctx, in)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrSynthesis, s.name, err)
	}
	var pcm []float32
	if s.kind == matchaTTS && s.voc != nil {
		if pcm, err = s.voc.run(ctx, out[0]); err != nil {
			return nil, err
		}
	} else if pcm, err = inference.Values[float32](out[0]); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrSynthesis, s.name, err)
	}
	if len(pcm) == 0 {
		return nil, fmt.Errorf("%w: %s returned no audio", ErrSynthesis, s.name)
	}
	clamp(pcm)
	return pcm, nil
}

// clamp maps NaN to 0 and clips to [-1,1].
func clamp(pcm []float32) {
	for i, v := range pcm {
		switch {
		case v != v:
			pcm[i] = 0
		case v > 1:
			pcm[i] = 1
		case v < -1:
			pcm[i] = -1
		}
	}
}

// run vocodes mel [1,80,F].
func (v *vocoder) run(ctx context.Context, mel inference.Tensor) ([]float32, error) {
	out, err := v.h.Run(ctx, []inference.Tensor{mel})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: vocoder %s: %v", ErrSynthesis, v.name, err)
	}
	if !v.vocos {
		pcm, err := inference.Values[float32](out[0])
		if err != nil {
			return nil, fmt.Errorf("%w: vocoder %s: %v", ErrSynthesis, v.name, err)
		}
		return pcm, nil
	}
	var parts [3][]float32
	for i := range parts {
		if parts[i], err = inference.Values[float32](out[i]); err != nil {
			return nil, fmt.Errorf("%w: vocoder %s: %v", ErrSynthesis, v.name, err)
		}
	}
	shape := out[0].Shape
	bins := v.nFFT/2 + 1
	if len(shape) != 3 || shape[1] != int64(bins) {
		return nil, fmt.Errorf("%w: vocoder %s: output shape %v, want [1 %d F]", ErrSynthesis, v.name, shape, bins)
	}
	return istft(parts[0], parts[1], parts[2], int(shape[2]), v.nFFT, v.hop), nil
}

// istft is torch.istft (and kaldi-native-fbank IStft) with a periodic
// Hann window of n_fft samples, center=True, normalized=False, onesided:
// the spectrum of frame t, bin k is mag·(x + i·y) at [k*frames+t]; each
// frame is inverse-transformed, windowed, overlap-added every hop samples,
// divided by the summed squared window, and n_fft/2 samples are trimmed
// from both ends, giving (frames−1)·hop samples.
func istft(mag, re, im []float32, frames, nFFT, hop int) []float32 {
	if frames < 1 {
		return nil
	}
	bins := nFFT/2 + 1
	win := make([]float64, nFFT)
	for i := range win {
		win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(nFFT))
	}
	total := nFFT + hop*(frames-1)
	sig := make([]float64, total)
	env := make([]float64, total)
	buf := make([]complex128, nFFT)
	for t := 0; t < frames; t++ {
		for k := 0; k < bins; k++ {
			i := k*frames + t
			m := float64(mag[i])
			buf[k] = complex(m*float64(re[i]), m*float64(im[i]))
		}
		// Hermitian: DC and Nyquist are real, the rest mirrored.
		buf[0] = complex(real(buf[0]), 0)
		buf[nFFT/2] = complex(real(buf[nFFT/2]), 0)
		for k := 1; k < nFFT/2; k++ {
			buf[nFFT-k] = cmplx.Conj(buf[k])
		}
		fft(buf, true)
		off := t * hop
		for i := 0; i < nFFT; i++ {
			sig[off+i] += real(buf[i]) / float64(nFFT) * win[i]
			env[off+i] += win[i] * win[i]
		}
	}
	pad := nFFT / 2
	n := hop * (frames - 1)
	out := make([]float32, n)
	for i := range out {
		j := i + pad
		if env[j] > 1e-11 {
			out[i] = float32(sig[j] / env[j])
		} else {
			out[i] = float32(sig[j])
		}
	}
	return out
}

// fft transforms a in place (len a power of two); inverse uses e^{+i}
// without the 1/N scale.
func fft(a []complex128, inverse bool) {
	n := len(a)
	for i, j := 1, 0; i < n; i++ {
		bit := n >> 1
		for ; j&bit != 0; bit >>= 1 {
			j ^= bit
		}
		j ^= bit
		if i < j {
			a[i], a[j] = a[j], a[i]
		}
	}
	sign := -1.0
	if inverse {
		sign = 1
	}
	for size := 2; size <= n; size <<= 1 {
		w := cmplx.Rect(1, sign*2*math.Pi/float64(size))
		for start := 0; start < n; start += size {
			wk := complex(1, 0)
			for k := 0; k < size/2; k++ {
				u := a[start+k]
				v := a[start+k+size/2] * wk
				a[start+k] = u + v
				a[start+k+size/2] = u - v
				wk *= w
			}
		}
	}
}
