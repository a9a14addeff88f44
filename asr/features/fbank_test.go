package features

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestRealFFTPower checks the split-radix power spectrum against a direct DFT.
func TestRealFFTPower(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{4, 8, 16, 64, 512, 1024} {
		t.Run("", func(t *testing.T) {
			x := make([]float64, n)
			for i := range x {
				x[i] = rng.NormFloat64() * 1000
			}
			got := make([]float64, n/2+1)
			newRealFFT(n).power(x, got)
			for k := 0; k <= n/2; k++ {
				var re, im float64
				for i, v := range x {
					a := -2 * math.Pi * float64(k*i%n) / float64(n)
					re += v * math.Cos(a)
					im += v * math.Sin(a)
				}
				want := re*re + im*im
				if d := math.Abs(got[k] - want); d > 1e-9*max(want, 1e6) {
					t.Fatalf("n=%d bin %d: power %g, direct DFT %g", n, k, got[k], want)
				}
			}
		})
	}
}

func TestFbankSilence(t *testing.T) {
	out, frames, err := ComputeFbank(make([]float32, 16000), DefaultFbankOptions())
	if err != nil {
		t.Fatal(err)
	}
	if frames != 98 || len(out) != 98*80 {
		t.Fatalf("1 s of silence: %d frames, %d values; want 98 frames of 80", frames, len(out))
	}
	for i, v := range out {
		if v != float32(math.Log(logFloor)) || math.Abs(float64(v)+15.942385) > 1e-6 {
			t.Fatalf("value %d is %v, want log(FLT_EPSILON) = -15.942385", i, v)
		}
	}
}

func TestFbankFrameCount(t *testing.T) {
	for _, tc := range []struct{ samples, frames int }{
		{0, 0}, {399, 0}, {400, 1}, {559, 1}, {560, 2}, {16000, 98}, {50834, 316},
	} {
		_, frames, err := ComputeFbank(make([]float32, tc.samples), DefaultFbankOptions())
		if err != nil {
			t.Fatal(err)
		}
		if frames != tc.frames {
			t.Errorf("%d samples: %d frames, want %d", tc.samples, frames, tc.frames)
		}
	}
}

// TestFbankScale checks that ScaleInt16 only multiplies the input by 32768.
func TestFbankScale(t *testing.T) {
	x := noise(2000, 3)
	scaled := make([]float32, len(x))
	for i, v := range x {
		scaled[i] = v * 32768
	}
	o := DefaultFbankOptions()
	a, _, err := ComputeFbank(x, o)
	if err != nil {
		t.Fatal(err)
	}
	o.ScaleInt16 = false
	b, _, err := ComputeFbank(scaled, o)
	if err != nil {
		t.Fatal(err)
	}
	if d, at := maxAbsDiff(a, b); d > 1e-5 {
		t.Fatalf("scaled inside vs outside differ by %g at %d", d, at)
	}
}

// noise returns n samples of deterministic noise with a tone in [-1, 1].
func noise(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(0.3*math.Sin(float64(i)*0.07) + 0.2*rng.NormFloat64())
		x[i] = max(-1, min(1, x[i]))
	}
	return x
}

// feedRandom feeds x to accept in random chunks (some empty, some large).
func feedRandom(rng *rand.Rand, x []float32, accept func([]float32)) {
	for len(x) > 0 {
		var n int
		switch rng.IntN(4) {
		case 0:
			n = rng.IntN(3) // 0, 1 or 2 samples
		case 1:
			n = rng.IntN(200)
		case 2:
			n = rng.IntN(1000)
		default:
			n = rng.IntN(5000)
		}
		n = min(n, len(x))
		accept(x[:n])
		x = x[n:]
	}
}

// TestFbankStreaming checks that any chunking gives exactly the one-shot
// frames, for several option sets (shift longer than the window included).
func TestFbankStreaming(t *testing.T) {
	x := noise(23456, 7)
	povey := DefaultFbankOptions()
	povey.Window, povey.RemoveDC, povey.Preemph = "povey", false, 0
	hopBig := DefaultFbankOptions()
	hopBig.FrameShift = 40 * time.Millisecond
	small := DefaultFbankOptions()
	small.SampleRate, small.NumMel, small.HighFreq, small.ScaleInt16, small.Window = 8000, 23, -200, false, "hann"
	for _, tc := range []struct {
		name string
		o    FbankOptions
	}{
		{"default", DefaultFbankOptions()},
		{"povey-no-dc-no-preemph", povey},
		{"shift-longer-than-window", hopBig},
		{"8kHz-23-mel-hann", small},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, frames, err := ComputeFbank(x, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if frames == 0 {
				t.Fatal("no frames")
			}
			f, err := NewFbank(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(11, 12))
			for trial := range 20 {
				var got []float32
				feedRandom(rng, x, func(s []float32) {
					f.Accept(s, func(fr []float32) { got = append(got, fr...) })
				})
				// One-sample chunks on the first trial.
				if trial == 0 {
					f.Reset()
					got = got[:0]
					for i := range x {
						f.Accept(x[i:i+1], func(fr []float32) { got = append(got, fr...) })
					}
				}
				f.Reset()
				if len(got) != len(want) {
					t.Fatalf("trial %d: %d values streaming, %d one-shot", trial, len(got), len(want))
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("trial %d: value %d is %v streaming, %v one-shot", trial, i, got[i], want[i])
					}
				}
			}
		})
	}
}

func TestFbankBadOptions(t *testing.T) {
	mod := func(f func(*FbankOptions)) FbankOptions {
		o := DefaultFbankOptions()
		f(&o)
		return o
	}
	for _, tc := range []struct {
		name, field string
		o           FbankOptions
	}{
		{"zero", "SampleRate", FbankOptions{}},
		{"negative rate", "SampleRate", mod(func(o *FbankOptions) { o.SampleRate = -16000 })},
		{"huge rate", "SampleRate", mod(func(o *FbankOptions) { o.SampleRate = 1 << 30 })},
		{"no mel", "NumMel", mod(func(o *FbankOptions) { o.NumMel = 0 })},
		{"too many mel", "NumMel", mod(func(o *FbankOptions) { o.NumMel = 300 })},
		{"empty mel bin", "NumMel", mod(func(o *FbankOptions) { o.NumMel = 200 })},
		{"zero length", "FrameLength", mod(func(o *FbankOptions) { o.FrameLength = 0 })},
		{"one sample", "FrameLength", mod(func(o *FbankOptions) { o.FrameLength = 70 * time.Microsecond })},
		{"hour-long window", "FrameLength", mod(func(o *FbankOptions) { o.FrameLength = time.Hour })},
		{"window too big for FFT", "FrameLength", mod(func(o *FbankOptions) { o.FrameLength = 5 * time.Second })},
		{"zero shift", "FrameShift", mod(func(o *FbankOptions) { o.FrameShift = 0 })},
		{"sub-sample shift", "FrameShift", mod(func(o *FbankOptions) { o.FrameShift = time.Microsecond })},
		{"negative low", "LowFreq", mod(func(o *FbankOptions) { o.LowFreq = -1 })},
		{"NaN low", "LowFreq", mod(func(o *FbankOptions) { o.LowFreq = math.NaN() })},
		{"low above Nyquist", "LowFreq", mod(func(o *FbankOptions) { o.LowFreq = 9000 })},
		{"high above Nyquist", "HighFreq", mod(func(o *FbankOptions) { o.HighFreq = 8001 })},
		{"high below low", "HighFreq", mod(func(o *FbankOptions) { o.HighFreq = 10 })},
		{"offset below low", "HighFreq", mod(func(o *FbankOptions) { o.HighFreq = -7990 })},
		{"inf high", "HighFreq", mod(func(o *FbankOptions) { o.HighFreq = math.Inf(1) })},
		{"preemph > 1", "Preemph", mod(func(o *FbankOptions) { o.Preemph = 1.5 })},
		{"NaN preemph", "Preemph", mod(func(o *FbankOptions) { o.Preemph = math.NaN() })},
		{"window", "Window", mod(func(o *FbankOptions) { o.Window = "blackman" })},
		{"empty window", "Window", mod(func(o *FbankOptions) { o.Window = "" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewFbank(tc.o)
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("error %v, want ErrInvalidOptions", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
			if _, _, err2 := ComputeFbank(nil, tc.o); !errors.Is(err2, ErrInvalidOptions) {
				t.Errorf("ComputeFbank: error %v, want ErrInvalidOptions", err2)
			}
		})
	}
}

func TestFbankAcceptDoesNotAllocate(t *testing.T) {
	f, err := NewFbank(DefaultFbankOptions())
	if err != nil {
		t.Fatal(err)
	}
	x := noise(1600, 5)
	var sink float32
	emit := func(fr []float32) { sink += fr[0] }
	if a := testing.AllocsPerRun(20, func() { f.Accept(x, emit) }); a != 0 {
		t.Errorf("Accept allocates %v times per call, want 0", a)
	}
	_ = sink
}
