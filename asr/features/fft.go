package features

import "math"

// realFFT computes the power spectrum of a real sequence of length n (a
// power of two, at least 4) through one complex FFT of length n/2 and a
// split step. All tables are built once; power does not allocate.
type realFFT struct {
	n, m   int       // real length, complex length m = n/2
	rev    []int32   // bit reversal of 0..m-1
	twr    []float64 // per-stage twiddles, stage s (size 2^s) at [half-1 : 2*half-1]
	twi    []float64
	splitC []float64 // cos(2πk/n), k = 0..m/2
	splitS []float64 // sin(2πk/n)
	re, im []float64 // work buffers, length m
	log2m  int
}

func newRealFFT(n int) *realFFT {
	m := n / 2
	f := &realFFT{n: n, m: m}
	for 1<<f.log2m < m {
		f.log2m++
	}
	f.rev = make([]int32, m)
	for i := range m {
		r := 0
		for b := 0; b < f.log2m; b++ {
			if i&(1<<b) != 0 {
				r |= 1 << (f.log2m - 1 - b)
			}
		}
		f.rev[i] = int32(r)
	}
	// Twiddles for each stage laid out contiguously: for a butterfly
	// span of size 2h, the h factors exp(-2πij/(2h)), j < h, start at h-1.
	f.twr = make([]float64, max(m-1, 1))
	f.twi = make([]float64, max(m-1, 1))
	for h := 1; h < m; h <<= 1 {
		for j := range h {
			a := -math.Pi * float64(j) / float64(h)
			f.twr[h-1+j] = math.Cos(a)
			f.twi[h-1+j] = math.Sin(a)
		}
	}
	f.splitC = make([]float64, m/2+1)
	f.splitS = make([]float64, m/2+1)
	for k := 0; k <= m/2; k++ {
		a := 2 * math.Pi * float64(k) / float64(n)
		f.splitC[k] = math.Cos(a)
		f.splitS[k] = math.Sin(a)
	}
	f.re = make([]float64, m)
	f.im = make([]float64, m)
	return f
}

// power writes |X[k]|² for k = 0..n/2 into out (length n/2+1), where X is
// the DFT of x (length n). x is not modified.
func (f *realFFT) power(x []float64, out []float64) {
	m := f.m
	re, im := f.re[:m], f.im[:m]
	x = x[:f.n]
	// Pack even samples as real parts and odd samples as imaginary parts,
	// in bit-reversed order.
	for i, r := range f.rev[:m] {
		re[r] = x[2*i]
		im[r] = x[2*i+1]
	}
	// First stage (span 2) has the trivial twiddle 1.
	for i := 0; i+1 < m; i += 2 {
		ar, ai := re[i], im[i]
		br, bi := re[i+1], im[i+1]
		re[i], im[i] = ar+br, ai+bi
		re[i+1], im[i+1] = ar-br, ai-bi
	}
	for h := 2; h < m; h <<= 1 {
		wr := f.twr[h-1 : 2*h-1]
		wi := f.twi[h-1 : 2*h-1]
		for s := 0; s < m; s += 2 * h {
			lr := re[s : s+h]
			li := im[s : s+h]
			ur := re[s+h : s+2*h]
			ui := im[s+h : s+2*h]
			for j := range lr {
				c, d := wr[j], wi[j]
				tr := ur[j]*c - ui[j]*d
				ti := ur[j]*d + ui[j]*c
				ar, ai := lr[j], li[j]
				lr[j], li[j] = ar+tr, ai+ti
				ur[j], ui[j] = ar-tr, ai-ti
			}
		}
	}
	// Split: X[k] = E[k] + W^k O[k] with E, O the DFTs of the even and odd
	// samples, recovered from Z[k] and conj(Z[m-k]).
	out = out[:m+1]
	z0r, z0i := re[0], im[0]
	out[0] = (z0r + z0i) * (z0r + z0i)
	out[m] = (z0r - z0i) * (z0r - z0i)
	for k := 1; k <= m/2; k++ {
		j := m - k
		ar, ai := re[k], im[k]
		br, bi := re[j], -im[j] // conj(Z[m-k])
		er, ei := 0.5*(ar+br), 0.5*(ai+bi)
		or, oi := 0.5*(ai-bi), -0.5*(ar-br)
		c, s := f.splitC[k], f.splitS[k]
		// W^k = c - i s
		xr := er + c*or + s*oi
		xi := ei + c*oi - s*or
		out[k] = xr*xr + xi*xi
		if j != k {
			// X[m-k] = conj(E[k]) + W^(m-k) conj(O[k]); W^(m-k) = -c - i s.
			yr := er - c*or - s*oi
			yi := -ei + c*oi - s*or
			out[j] = yr*yr + yi*yi
		}
	}
}
