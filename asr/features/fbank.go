package features

import (
	"fmt"
	"math"
	"time"
)

// FbankOptions configures Kaldi-compatible log-mel filter bank features.
// The zero value is not usable; start from DefaultFbankOptions.
type FbankOptions struct {
	// SampleRate of the input in Hz (16000 for every FunASR model).
	SampleRate int
	// NumMel is the number of mel bins, the feature dimension (80).
	NumMel int
	// FrameLength is the analysis window (25 ms) and FrameShift the hop
	// (10 ms). Both are truncated to whole samples; the FFT size is the
	// window in samples rounded up to a power of two.
	FrameLength, FrameShift time.Duration
	// LowFreq is the lowest mel filter edge in Hz (20). HighFreq is the
	// highest; as in Kaldi, a value ≤ 0 is an offset from the Nyquist
	// frequency, so 0 means Nyquist.
	LowFreq, HighFreq float64
	// Preemph is the pre-emphasis coefficient in [0, 1] (0.97); 0 turns it
	// off. The first sample of a window uses itself as its predecessor.
	Preemph float64
	// RemoveDC subtracts each window's mean before pre-emphasis (true).
	RemoveDC bool
	// ScaleInt16 multiplies the input samples, given in [-1, 1], by 32768
	// so that the features match those computed on int16 samples (true for
	// FunASR models; sherpa-onnx's normalize_samples=0).
	ScaleInt16 bool
	// Window is "hamming" (0.54 − 0.46·cos(2πn/(N−1))), "povey" (Kaldi's
	// default: a Hann window raised to 0.85) or "hann" ("hanning" is
	// accepted too).
	Window string
}

// DefaultFbankOptions returns FunASR's runtime front-end settings: 16 kHz,
// 80 mel bins, 25 ms / 10 ms, 20 Hz to Nyquist, pre-emphasis 0.97, DC
// removal, samples scaled to the int16 range, Hamming window.
func DefaultFbankOptions() FbankOptions {
	return FbankOptions{
		SampleRate:  16000,
		NumMel:      80,
		FrameLength: 25 * time.Millisecond,
		FrameShift:  10 * time.Millisecond,
		LowFreq:     20,
		HighFreq:    0,
		Preemph:     0.97,
		RemoveDC:    true,
		ScaleInt16:  true,
		Window:      "hamming",
	}
}

// Limits that keep a configuration from asking for absurd amounts of memory.
const (
	maxSampleRate  = 1_000_000
	maxFrameLength = 10 * time.Second
	maxFFT         = 1 << 16
)

// logFloor is FLT_EPSILON: energies below it are clamped before the log, so
// silence gives log(FLT_EPSILON) = −15.942385, as in Kaldi and torchaudio.
const logFloor = 1.1920928955078125e-07

// fbankGeometry is what validated options turn into.
type fbankGeometry struct {
	win, shift, nfft int
	high             float64
}

func (o FbankOptions) geometry() (fbankGeometry, error) {
	var g fbankGeometry
	bad := func(format string, args ...any) (fbankGeometry, error) {
		return g, fmt.Errorf("fbank options: %w: "+format, append([]any{ErrInvalidOptions}, args...)...)
	}
	if o.SampleRate <= 0 || o.SampleRate > maxSampleRate {
		return bad("SampleRate %d: must be in 1..%d Hz (16000 for FunASR models)", o.SampleRate, maxSampleRate)
	}
	if o.FrameLength <= 0 || o.FrameLength > maxFrameLength {
		return bad("FrameLength %v: must be in (0, %v] (25ms for FunASR models)", o.FrameLength, maxFrameLength)
	}
	if o.FrameShift <= 0 || o.FrameShift > maxFrameLength {
		return bad("FrameShift %v: must be in (0, %v] (10ms for FunASR models)", o.FrameShift, maxFrameLength)
	}
	g.win = int(int64(o.SampleRate) * int64(o.FrameLength) / int64(time.Second))
	g.shift = int(int64(o.SampleRate) * int64(o.FrameShift) / int64(time.Second))
	if g.win < 2 {
		return bad("FrameLength %v at %d Hz is %d samples: need at least 2", o.FrameLength, o.SampleRate, g.win)
	}
	if g.shift < 1 {
		return bad("FrameShift %v at %d Hz is less than one sample", o.FrameShift, o.SampleRate)
	}
	g.nfft = 4
	for g.nfft < g.win {
		g.nfft <<= 1
	}
	if g.nfft > maxFFT {
		return bad("FrameLength %v at %d Hz needs a %d-point FFT: at most %d", o.FrameLength, o.SampleRate, g.nfft, maxFFT)
	}
	nyquist := float64(o.SampleRate) / 2
	if !(o.LowFreq >= 0 && o.LowFreq < nyquist) { // also rejects NaN
		return bad("LowFreq %g: must be in [0, %g) Hz (20 for FunASR models)", o.LowFreq, nyquist)
	}
	if math.IsNaN(o.HighFreq) || math.IsInf(o.HighFreq, 0) {
		return bad("HighFreq %g: must be a number (0 means Nyquist)", o.HighFreq)
	}
	g.high = o.HighFreq
	if g.high <= 0 {
		g.high += nyquist
	}
	if !(g.high > o.LowFreq && g.high <= nyquist) {
		return bad("HighFreq %g (%g Hz): must lie above LowFreq %g and at most at Nyquist %g (0 means Nyquist)", o.HighFreq, g.high, o.LowFreq, nyquist)
	}
	if !(o.Preemph >= 0 && o.Preemph <= 1) {
		return bad("Preemph %g: must be in [0, 1] (0.97 for FunASR models)", o.Preemph)
	}
	if o.NumMel < 1 || o.NumMel > g.nfft/2 {
		return bad("NumMel %d: must be in 1..%d for a %d-point FFT (80 for FunASR models)", o.NumMel, g.nfft/2, g.nfft)
	}
	switch o.Window {
	case "hamming", "povey", "hann", "hanning":
	default:
		return bad("Window %q: use hamming, povey or hann", o.Window)
	}
	return g, nil
}

// windowFunc returns the analysis window of n samples (symmetric, as Kaldi).
func windowFunc(name string, n int) []float64 {
	w := make([]float64, n)
	a := 2 * math.Pi / float64(n-1)
	for i := range w {
		c := math.Cos(a * float64(i))
		switch name {
		case "hamming":
			w[i] = 0.54 - 0.46*c
		case "povey":
			w[i] = math.Pow(0.5-0.5*c, 0.85)
		default: // hann
			w[i] = 0.5 - 0.5*c
		}
	}
	return w
}

// melBanks returns, for each of the numMel triangular filters, the first
// FFT bin it covers and its weights over the following bins. The filters
// are triangles in the mel domain (mel = 1127·ln(1 + f/700)) over FFT bins
// 0..nfft/2−1, as in Kaldi's MelBanks and torchaudio's get_mel_banks (the
// Nyquist bin gets no weight).
//
// The weights are computed in float32 arithmetic on purpose: Kaldi,
// kaldi-native-fbank and torchaudio all do, and near the tips of the narrow
// low-frequency triangles float64 weights differ enough to move some
// columns by up to 1e-4 against them. The rest of the pipeline is float64.
func melBanks(numMel, nfft, sampleRate int, low, high float64) (starts []int, weights [][]float64, err error) {
	mel32 := func(f float32) float32 {
		return 1127 * float32(math.Log(float64(1+f/700)))
	}
	width := float32(float64(sampleRate) / float64(nfft))
	melLow := float32(1127 * math.Log(1+low/700))
	melHigh := float32(1127 * math.Log(1+high/700))
	delta := (melHigh - melLow) / float32(numMel+1)
	starts = make([]int, numMel)
	weights = make([][]float64, numMel)
	var flat []float64
	for b := range numMel {
		left := melLow + float32(b)*delta
		center := melLow + float32(b+1)*delta
		right := melLow + float32(b+2)*delta
		first := -1
		off := len(flat)
		for i := 0; i < nfft/2; i++ {
			mel := mel32(width * float32(i))
			w := max(0, min((mel-left)/(center-left), (right-mel)/(right-center)))
			if w <= 0 {
				if first >= 0 {
					break // past the triangle
				}
				continue
			}
			if first < 0 {
				first = i
			}
			flat = append(flat, float64(w))
		}
		if first < 0 {
			return nil, nil, fmt.Errorf("fbank options: %w: NumMel %d: mel bin %d covers no FFT bin; use fewer mel bins or a longer FrameLength", ErrInvalidOptions, numMel, b)
		}
		starts[b] = first
		weights[b] = flat[off:len(flat):len(flat)] // re-sliced below if flat moves
	}
	// append may have moved flat: point every filter into the final array.
	off := 0
	for b := range weights {
		n := len(weights[b])
		weights[b] = flat[off : off+n : off+n]
		off += n
	}
	return starts, weights, nil
}

// Fbank computes log-mel filter bank frames incrementally. Feed it audio in
// any chunks with Accept; every completed frame goes to the emit callback.
// It keeps at most one window of samples between calls (the partial next
// frame; snip_edges: a trailing partial window never becomes a frame).
//
// An Fbank is not safe for concurrent use; use one per stream.
type Fbank struct {
	opts   FbankOptions
	g      fbankGeometry
	scale  float64
	window []float64
	starts []int
	mel    [][]float64
	fft    *realFFT

	pend []float64 // scaled samples of the next frame, len < win
	skip int       // input samples to drop before the next frame (shift > win)
	buf  []float64 // nfft work buffer
	pow  []float64 // nfft/2+1 power spectrum
	out  []float32 // NumMel, handed to emit
}

// NewFbank validates o and builds the window, FFT and mel tables. It does
// no I/O. Errors wrap ErrInvalidOptions and name the field at fault.
func NewFbank(o FbankOptions) (*Fbank, error) {
	g, err := o.geometry()
	if err != nil {
		return nil, err
	}
	starts, mel, err := melBanks(o.NumMel, g.nfft, o.SampleRate, o.LowFreq, g.high)
	if err != nil {
		return nil, err
	}
	f := &Fbank{
		opts:   o,
		g:      g,
		scale:  1,
		window: windowFunc(o.Window, g.win),
		starts: starts,
		mel:    mel,
		fft:    newRealFFT(g.nfft),
		pend:   make([]float64, 0, g.win),
		buf:    make([]float64, g.nfft),
		pow:    make([]float64, g.nfft/2+1),
		out:    make([]float32, o.NumMel),
	}
	if o.ScaleInt16 {
		f.scale = 32768
	}
	return f, nil
}

// Dim is the number of values in each frame (NumMel).
func (f *Fbank) Dim() int { return f.opts.NumMel }

// Reset forgets buffered samples so that the next Accept starts a new
// utterance. The tables are kept.
func (f *Fbank) Reset() {
	f.pend = f.pend[:0]
	f.skip = 0
}

// Accept appends samples (in [-1, 1] when ScaleInt16, else in the units the
// model expects) and calls emit, synchronously and in order, with each frame
// completed by them. The frame slice is owned by f and overwritten by the
// next frame: copy it to keep it. samples is not retained. Accept does not
// allocate.
func (f *Fbank) Accept(samples []float32, emit func(frame []float32)) {
	win := f.g.win
	for len(samples) > 0 {
		if f.skip > 0 {
			n := min(f.skip, len(samples))
			f.skip -= n
			samples = samples[n:]
			continue
		}
		n := min(win-len(f.pend), len(samples))
		p := f.pend[len(f.pend) : len(f.pend)+n]
		for i, s := range samples[:n] {
			p[i] = float64(s) * f.scale
		}
		f.pend = f.pend[:len(f.pend)+n]
		samples = samples[n:]
		if len(f.pend) < win {
			return
		}
		f.compute(f.pend)
		emit(f.out)
		if sh := f.g.shift; sh < win {
			f.pend = f.pend[:copy(f.pend, f.pend[sh:])]
		} else {
			f.pend = f.pend[:0]
			f.skip = sh - win
		}
	}
}

// compute turns one window of scaled samples into f.out.
func (f *Fbank) compute(x []float64) {
	win := f.g.win
	x = x[:win]
	buf := f.buf
	var mean float64
	if f.opts.RemoveDC {
		for _, v := range x {
			mean += v
		}
		mean /= float64(win)
	}
	w := f.window[:win]
	if p := f.opts.Preemph; p != 0 {
		prev := x[0] - mean
		for i := win - 1; i > 0; i-- {
			buf[i] = ((x[i] - mean) - p*(x[i-1]-mean)) * w[i]
		}
		buf[0] = (prev - p*prev) * w[0]
	} else {
		for i, v := range x {
			buf[i] = (v - mean) * w[i]
		}
	}
	clear(buf[win:])
	f.fft.power(buf, f.pow)
	for b, ws := range f.mel {
		s := f.pow[f.starts[b]:]
		s = s[:len(ws)]
		var e float64
		for i, wt := range ws {
			e += wt * s[i]
		}
		if e < logFloor {
			e = logFloor
		}
		f.out[b] = float32(math.Log(e))
	}
}

// ComputeFbank computes all frames of samples at once: it returns them flat
// ([frames·NumMel], row-major, newly allocated and owned by the caller) and
// the frame count, 1 + (len(samples) − win)/shift, or 0 when the audio is
// shorter than one window. Errors wrap ErrInvalidOptions.
func ComputeFbank(samples []float32, o FbankOptions) ([]float32, int, error) {
	f, err := NewFbank(o)
	if err != nil {
		return nil, 0, err
	}
	frames := 0
	if len(samples) >= f.g.win {
		frames = 1 + (len(samples)-f.g.win)/f.g.shift
	}
	out := make([]float32, 0, frames*f.Dim())
	f.Accept(samples, func(frame []float32) { out = append(out, frame...) })
	return out, frames, nil
}
