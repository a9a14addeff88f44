package audio

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// ratios are the conversions the recognizer and telephony need, plus two
// that exercise the interpolated tables (44101:16000) and odd upsampling.
var ratios = [][2]int{
	{8000, 16000}, {44100, 16000}, {48000, 16000}, {22050, 16000},
	{16000, 8000}, {11025, 16000}, {16000, 48000}, {44101, 16000},
}

func noise(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.Float64()*2 - 1)
	}
	return s
}

func TestResampleLength(t *testing.T) {
	for _, rt := range append(ratios, [2]int{16000, 16000}) {
		for _, n := range []int{0, 1, 2, 7, 160, 1001, 16001} {
			from, to := rt[0], rt[1]
			out, err := Resample(noise(n, 1), from, to)
			if err != nil {
				t.Fatal(err)
			}
			exact := float64(n) * float64(to) / float64(from)
			if want := int(math.Ceil(exact)); len(out) != want {
				t.Errorf("%d→%d of %d samples: %d out, want ceil(%g) = %d", from, to, n, len(out), exact, want)
			}
			if d := math.Abs(float64(len(out)) - math.Round(exact)); d > 1 {
				t.Errorf("%d→%d of %d samples: %d out, round(%g) ±1 expected", from, to, n, len(out), exact)
			}
		}
	}
}

// Cutting the input into chunks of any size gives the same output, bit for
// bit, as one call; Flush resets so a second stream matches too.
func TestResampleChunkedEqualsOneShot(t *testing.T) {
	for _, rt := range ratios {
		from, to := rt[0], rt[1]
		src := noise(from/2+123, 7) // half a second and an odd tail
		want, err := Resample(src, from, to)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewResampler(from, to)
		if err != nil {
			t.Fatal(err)
		}
		for _, chunk := range []int{1, 3, 7, 13, 97, 1001, 4099, 5003} {
			t.Run(fmt.Sprintf("%d→%d/%d", from, to, chunk), func(t *testing.T) {
				var got []float32
				for s := src; len(s) > 0; {
					n := min(chunk, len(s))
					got = r.Process(got, s[:n])
					s = s[n:]
				}
				got = r.Flush(got)
				if len(got) != len(want) {
					t.Fatalf("%d samples, one-shot gave %d", len(got), len(want))
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("sample %d = %v, one-shot gave %v", i, got[i], want[i])
					}
				}
			})
		}
	}
}

// goertzel returns the amplitude of frequency f (Hz) in x sampled at rate.
func goertzel(x []float32, f float64, rate int) float64 {
	w := 2 * math.Pi * f / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s0 := float64(v) + c*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	return 2 * math.Sqrt(p) / float64(len(x))
}

func rms(x []float32) float64 {
	var e float64
	for _, v := range x {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(len(x)))
}

// A 1 kHz tone keeps its amplitude, its frequency and its phase: away from
// the edges the output is the same sine sampled at the new rate.
func TestResampleSine(t *testing.T) {
	const f, amp = 1000.0, 0.8
	for _, rt := range ratios {
		from, to := rt[0], rt[1]
		t.Run(fmt.Sprintf("%d→%d", from, to), func(t *testing.T) {
			out, err := Resample(tone(from, f, amp, from), from, to)
			if err != nil {
				t.Fatal(err)
			}
			edge := to / 10 // skip 100 ms at each end
			mid := out[edge : len(out)-edge]
			// Whole periods of 1 kHz for the Goertzel estimate.
			per := to / 1000
			mid = mid[:len(mid)/per*per]
			if g := 20 * math.Log10(goertzel(mid, f, to)/amp); math.Abs(g) > 0.5 {
				t.Errorf("1 kHz gain %.3f dB, want within ±0.5 dB", g)
			}
			if g := 20 * math.Log10(rms(mid)*math.Sqrt2/amp); math.Abs(g) > 0.5 {
				t.Errorf("RMS gain %.3f dB, want within ±0.5 dB", g)
			}
			// Zero crossings: 2 per period.
			zc := 0
			for i := 1; i < len(mid); i++ {
				if (mid[i-1] < 0) != (mid[i] < 0) {
					zc++
				}
			}
			if want := 2 * len(mid) / per; zc < want-1 || zc > want+1 {
				t.Errorf("%d zero crossings, want %d", zc, want)
			}
			// Phase: the output is the input sine at the output's times.
			var worst float64
			for i := edge; i < len(out)-edge; i++ {
				ideal := amp * math.Sin(2*math.Pi*f*float64(i)/float64(to))
				worst = max(worst, math.Abs(float64(out[i])-ideal))
			}
			if worst > 1e-3 {
				t.Errorf("differs from the ideal sine by up to %.2g", worst)
			}
		})
	}
}

// Tones above the lower Nyquist frequency are removed, not folded back.
func TestResampleAntiAliasing(t *testing.T) {
	tests := []struct {
		from, to int
		f        float64 // Hz, in the stop band
		minDB    float64
	}{
		{16000, 8000, 6000, 60}, // the brief's case
		{16000, 8000, 4300, 70},
		{16000, 8000, 5000, 70},
		{16000, 8000, 7000, 70},
		{48000, 16000, 8500, 70},
		{48000, 16000, 12000, 70},
		{48000, 16000, 20000, 70},
		{44100, 16000, 9000, 70},
		{44100, 16000, 21000, 70},
		{22050, 16000, 10000, 70},
		{44101, 16000, 9000, 70},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d→%d@%g", tt.from, tt.to, tt.f), func(t *testing.T) {
			out, err := Resample(tone(tt.from, tt.f, 1, tt.from/2), tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			edge := tt.to / 20
			att := -20 * math.Log10(rms(out[edge:len(out)-edge])*math.Sqrt2)
			if att < tt.minDB {
				t.Errorf("attenuated %.1f dB, want ≥ %g dB", att, tt.minDB)
			}
		})
	}
}

// A constant passes with gain 1 at every ratio, including the extremes.
func TestResampleDC(t *testing.T) {
	for _, rt := range append(ratios, [2]int{384000, 1000}, [2]int{1000, 384000}, [2]int{8000, 8001}) {
		from, to := rt[0], rt[1]
		src := make([]float32, 4*from/10)
		for i := range src {
			src[i] = 0.5
		}
		out, err := Resample(src, from, to)
		if err != nil {
			t.Fatal(err)
		}
		edge := len(out) / 4
		for i, v := range out[edge : len(out)-edge] {
			if math.Abs(float64(v)/0.5-1) > 1e-3 {
				t.Fatalf("%d→%d: sample %d = %v, want 0.5 ±0.1%%", from, to, edge+i, v)
			}
		}
	}
}

func TestResamplePassthrough(t *testing.T) {
	src := noise(100, 3)
	out, err := Resample(src, 16000, 16000)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(src) || &out[0] == &src[0] {
		t.Fatal("passthrough must return a copy of the same length")
	}
	for i := range src {
		if out[i] != src[i] {
			t.Fatalf("sample %d changed", i)
		}
	}
	r, _ := NewResampler(8000, 8000)
	if got := r.Flush(r.Process(nil, src[:3])); len(got) != 3 {
		t.Errorf("streaming passthrough gave %d samples, want 3", len(got))
	}
}

func TestNewResamplerErrors(t *testing.T) {
	for _, rt := range [][2]int{{0, 16000}, {16000, 0}, {-8000, 16000}, {999, 16000}, {16000, 384001}} {
		if _, err := NewResampler(rt[0], rt[1]); !errors.Is(err, ErrUnsupported) {
			t.Errorf("NewResampler(%d, %d) error = %v, want ErrUnsupported", rt[0], rt[1], err)
		}
		if _, err := Resample([]float32{1}, rt[0], rt[1]); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Resample(%d, %d) error = %v, want ErrUnsupported", rt[0], rt[1], err)
		}
	}
}

// Process allocates nothing once dst has room.
func TestResampleNoAllocs(t *testing.T) {
	r, _ := NewResampler(48000, 16000)
	src := noise(960, 5)
	dst := make([]float32, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { dst = r.Process(dst[:0], src) }); n != 0 {
		t.Errorf("Process allocates %v times per call", n)
	}
}

// refResample computes every output sample directly from the filter's
// formula in float64, without tables or streaming: the specification the
// polyphase tables, their interpolation and the chunking must meet.
func refResample(x []float32, from, to int) []float64 {
	g := gcd(from, to)
	l, m := to/g, from/g
	fc := cutoff / 2 * min(1, float64(l)/float64(m))
	half := zeroCrossings / (2 * fc)
	h := func(d float64) float64 {
		u := d / half
		if u <= -1 || u >= 1 {
			return 0
		}
		return 2 * fc * sinc(2*fc*d) * besselI0(kaiserBeta*math.Sqrt(1-u*u)) / besselI0(kaiserBeta)
	}
	n := (len(x)*l + m - 1) / m
	y := make([]float64, n)
	for i := range y {
		t := float64(i) * float64(m) / float64(l)
		var sum, norm float64
		for j := int(math.Floor(t - half)); j <= int(math.Ceil(t+half)); j++ {
			w := h(t - float64(j))
			norm += w
			if j >= 0 && j < len(x) {
				sum += float64(x[j]) * w
			}
		}
		y[i] = sum / norm
	}
	return y
}

func TestResampleMatchesDirectFormula(t *testing.T) {
	for _, rt := range append(ratios, [2]int{8000, 8001}, [2]int{96000, 8000}) {
		from, to := rt[0], rt[1]
		t.Run(fmt.Sprintf("%d→%d", from, to), func(t *testing.T) {
			src := noise(from/20, 11) // 50 ms, edges included
			got, err := Resample(src, from, to)
			if err != nil {
				t.Fatal(err)
			}
			want := refResample(src, from, to)
			if len(got) != len(want) {
				t.Fatalf("%d samples, want %d", len(got), len(want))
			}
			var worst float64
			for i := range got {
				worst = max(worst, math.Abs(float64(got[i])-want[i]))
			}
			// float32 tables and sums: about 1e-6; interpolated phases
			// add about 1e-5.
			if worst > 5e-5 {
				t.Errorf("differs from the direct formula by up to %.2g", worst)
			}
			t.Logf("worst difference %.2g", worst)
		})
	}
}
