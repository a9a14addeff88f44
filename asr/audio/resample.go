package audio

import (
	"fmt"
	"math"
)

// Filter design of the resampler. The low-pass filter is a Kaiser-windowed
// sinc with its cutoff at 95% of the lower Nyquist frequency and 32 zero
// crossings on each side at the lower rate. With beta 8.6 the Kaiser window
// gives about 86 dB of stop-band attenuation; the transition band is about
// 8% of the lower rate wide, centred on the cutoff. For 16 kHz output that
// is flat within 0.01 dB to 7 kHz, -6 dB at 7.6 kHz, and more than 85 dB
// down from 8.4 kHz (TestResampleAntiAliasing checks 70 dB).
const (
	zeroCrossings = 32
	kaiserBeta    = 8.6
	cutoff        = 0.95

	// maxExactTable bounds, in coefficients, the table of a resampler
	// that keeps one filter phase per output phase (to/gcd of them). The
	// usual ratios need 100 to 45000. Beyond it (ratios like 44101:16000)
	// the resampler keeps 256 phases per sample of the lower rate and
	// interpolates linearly between the two nearest, an error about
	// 100 dB below the signal.
	maxExactTable = 1 << 17

	// resampleBlock is how many input samples Process takes in at a time,
	// so the resampler's buffer stays bounded whatever len(src) is.
	resampleBlock = 4096
)

// Resampler converts a stream of samples from one rate to another with a
// windowed-sinc polyphase filter, for any ratio of rates between 1000 and
// 384000 Hz. It is zero-phase: output sample n is the input at time
// n·from/to, so a tone keeps its phase, and the output of one stream is
// the same, to the bit, however the input is cut into Process calls.
//
// It holds back the last few input samples (the filter's half-length: 34
// at 8→16 kHz, 102 at 48→16 kHz), which Flush releases at the end.
// Not safe for concurrent use; each stream needs its own.
type Resampler struct {
	l, m      int // output and input rate divided by their gcd
	step, rem int // m / l and m % l: how far each output moves in the input
	k         int // taps per side, in input samples
	taps      int // 2k
	phases    int // 0: one table row per output phase (l rows); else rows-1
	table     []float32

	buf  []float32 // input history and the block being processed
	pos  int       // buf index of the input sample at or before the next output
	p    int       // next output is at input time pos + p/l
	base int64     // stream index of buf[0] (negative: the zeros before the start)
	in   int64     // input samples received since the start or the last Flush
}

// NewResampler returns a Resampler from rate from to rate to, in Hz; equal
// rates give a passthrough. It computes the filter tables and does no I/O:
// from under 1 KiB (8→16 kHz) to about 200 KiB (44.1→16 kHz) for the usual
// rates; at most 512 KiB unless it downsamples by over 30 between rates with
// no common factor, up to 2 MiB. The error wraps ErrUnsupported for a rate
// outside 1000..384000.
func NewResampler(from, to int) (*Resampler, error) {
	for _, v := range []int{from, to} {
		if v < MinSampleRate || v > MaxSampleRate {
			return nil, fmt.Errorf("resample %d Hz to %d Hz: rates must be %d to %d Hz: %w", from, to, MinSampleRate, MaxSampleRate, ErrUnsupported)
		}
	}
	g := gcd(from, to)
	r := &Resampler{l: to / g, m: from / g}
	if r.l == r.m {
		return r, nil
	}
	r.step, r.rem = r.m/r.l, r.m%r.l

	// fc: cutoff in cycles per input sample.
	fc := cutoff / 2 * min(1, float64(r.l)/float64(r.m))
	half := zeroCrossings / (2 * fc) // window half-width in input samples
	r.k = int(math.Ceil(half))
	r.taps = 2 * r.k

	rows := r.l
	if r.l*r.taps > maxExactTable {
		// 256 phases per sample of the lower rate: when downsampling, the
		// filter is smooth over several input samples and needs fewer
		// phases per input sample.
		r.phases = 256
		if r.m > r.l {
			r.phases = max(16, 256*r.l/r.m)
		}
		rows = r.phases + 1
	}
	r.table = make([]float32, rows*r.taps)
	row := make([]float64, r.taps)
	i0b := besselI0(kaiserBeta)
	for q := range rows {
		var frac float64
		if r.phases == 0 {
			frac = float64(q) / float64(r.l)
		} else {
			frac = float64(q) / float64(r.phases)
		}
		// Tap j multiplies input sample pos-k+1+j; the output is at time
		// pos+frac, so the tap sits at distance frac+k-1-j.
		var sum float64
		for j := range row {
			t := frac + float64(r.k-1-j)
			v := 0.0
			if x := t / half; x > -1 && x < 1 {
				v = 2 * fc * sinc(2*fc*t) * besselI0(kaiserBeta*math.Sqrt(1-x*x)) / i0b
			}
			row[j] = v
			sum += v
		}
		// Unit gain at DC for every phase, so silence stays silence and a
		// constant stays exactly constant.
		for j, v := range row {
			r.table[q*r.taps+j] = float32(v / sum)
		}
	}
	r.buf = make([]float32, 0, r.taps+resampleBlock)
	r.reset()
	return r, nil
}

// reset starts a new stream: k-1 zeros stand for the input before it.
func (r *Resampler) reset() {
	r.buf = r.buf[:r.k-1]
	clear(r.buf)
	r.pos = r.k - 1
	r.p = 0
	r.base = -int64(r.k - 1)
	r.in = 0
}

// Process resamples src, appends the output samples that are complete to
// dst and returns it; the last few input samples wait in r for the next
// call or Flush. It does not keep src or dst, and allocates only when dst
// must grow.
func (r *Resampler) Process(dst, src []float32) []float32 {
	if r.table == nil {
		return append(dst, src...)
	}
	for len(src) > 0 {
		n := min(cap(r.buf)-len(r.buf), len(src))
		r.buf = append(r.buf, src[:n]...)
		src = src[n:]
		r.in += int64(n)
		dst = r.run(dst, math.MaxInt64)
	}
	return dst
}

// Flush appends the rest of the output, as if the input went on with
// silence, and resets r for a new stream. After Flush the stream has given
// ceil(in·to/from) samples for in input samples.
func (r *Resampler) Flush(dst []float32) []float32 {
	if r.table == nil {
		return dst
	}
	for r.base+int64(r.pos) < r.in {
		n := cap(r.buf) - len(r.buf)
		r.buf = r.buf[:len(r.buf)+n]
		clear(r.buf[len(r.buf)-n:])
		dst = r.run(dst, r.in)
	}
	r.reset()
	return dst
}

// run appends every output whose window lies in buf and whose time is
// before the stream index limit, then drops the input no output needs.
func (r *Resampler) run(dst []float32, limit int64) []float32 {
	k, taps := r.k, r.taps
	for r.pos+k < len(r.buf) && r.base+int64(r.pos) < limit {
		x := r.buf[r.pos-k+1 : r.pos+k+1]
		var y float32
		if r.phases == 0 {
			y = dot(r.table[r.p*taps:(r.p+1)*taps], x)
		} else {
			num := int64(r.p) * int64(r.phases)
			q := int(num / int64(r.l))
			a := float32(float64(num%int64(r.l)) / float64(r.l))
			y0 := dot(r.table[q*taps:(q+1)*taps], x)
			y1 := dot(r.table[(q+1)*taps:(q+2)*taps], x)
			y = y0 + a*(y1-y0)
		}
		dst = append(dst, y)
		r.pos += r.step
		if r.p += r.rem; r.p >= r.l {
			r.p -= r.l
			r.pos++
		}
	}
	if d := min(r.pos-k+1, len(r.buf)); d > 0 {
		n := copy(r.buf, r.buf[d:])
		r.buf = r.buf[:n]
		r.pos -= d
		r.base += int64(d)
	}
	return dst
}

// Resample returns src converted from rate from to rate to, in Hz: about
// len(src)·to/from samples (exactly ceil of it), aligned with the input.
// The caller owns the result; src is not modified. The error wraps
// ErrUnsupported for a rate outside 1000..384000.
func Resample(src []float32, from, to int) ([]float32, error) {
	r, err := NewResampler(from, to)
	if err != nil {
		return nil, err
	}
	n := (int64(len(src))*int64(r.l) + int64(r.m) - 1) / int64(r.m)
	out := make([]float32, 0, n)
	out = r.Process(out, src)
	return r.Flush(out), nil
}

// dot returns the dot product of a and b[:len(a)], with eight partial sums
// so that the additions do not wait on each other.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		aa := a[i : i+8 : i+8]
		bb := b[i : i+8 : i+8]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
		s4 += aa[4] * bb[4]
		s5 += aa[5] * bb[5]
		s6 += aa[6] * bb[6]
		s7 += aa[7] * bb[7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the modified Bessel function of the first kind, order 0, by
// its power series (converges fast for the x ≤ 9 of a Kaiser window).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 100; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
