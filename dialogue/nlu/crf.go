package nlu

import (
	"math"
	"math/rand/v2"
	"strings"
)

// A linear-chain CRF over BIO labels. Label 0 is O; label 2k+1 is B-type k
// and 2k+2 is I-type k. Emission scores are sums of per-feature weight rows
// (E, [features x labels]); Trans[i*L+j] scores label i followed by j and
// Start[j] a sentence starting with j. Decoding forbids I-x after anything
// but B-x or I-x, so every decoded span is well formed.

// bioLabels returns the label names for entity types.
func bioLabels(types []string) []string {
	out := []string{"O"}
	for _, t := range types {
		out = append(out, "B-"+t, "I-"+t)
	}
	return out
}

// allowed reports whether label j may follow label i (i == -1: start).
func allowed(i, j int) bool {
	if j == 0 || j%2 == 1 {
		return true // O and B-x may follow anything
	}
	// j is I-x: previous must be B-x (j-1) or I-x (j)
	return i == j-1 || i == j
}

// sentence is one training sequence: per position feature ids and gold
// labels.
type sentence struct {
	feats [][]int32
	gold  []int
}

type crfModel struct {
	nf, L int
	E     []float32 // [nf*L]
	Trans []float32 // [L*L]
	Start []float32 // [L]
}

// emissions computes [T*L] emission scores.
func (m *crfModel) emissions(s [][]int32, out []float64) []float64 {
	L := m.L
	out = out[:0]
	for t := range s {
		for y := 0; y < L; y++ {
			out = append(out, 0)
		}
		row := out[t*L : (t+1)*L]
		for _, f := range s[t] {
			w := m.E[int(f)*L : int(f+1)*L]
			for y, v := range w {
				row[y] += float64(v)
			}
		}
	}
	return out
}

// viterbi decodes the best allowed label sequence from emissions em
// ([T*L]), transitions and start scores.
func viterbi(em []float64, trans, start []float32, L int) []int {
	T := len(em) / L
	if T == 0 {
		return nil
	}
	score := make([]float64, T*L)
	back := make([]int32, T*L)
	negInf := math.Inf(-1)
	for j := 0; j < L; j++ {
		if allowed(-1, j) {
			score[j] = float64(start[j]) + em[j]
		} else {
			score[j] = negInf
		}
	}
	for t := 1; t < T; t++ {
		for j := 0; j < L; j++ {
			best, bi := negInf, 0
			for i := 0; i < L; i++ {
				if !allowed(i, j) {
					continue
				}
				v := score[(t-1)*L+i] + float64(trans[i*L+j])
				if v > best {
					best, bi = v, i
				}
			}
			score[t*L+j] = best + em[t*L+j]
			back[t*L+j] = int32(bi)
		}
	}
	out := make([]int, T)
	bj := 0
	for j := 1; j < L; j++ {
		if score[(T-1)*L+j] > score[(T-1)*L+bj] {
			bj = j
		}
	}
	for t := T - 1; t >= 0; t-- {
		out[t] = bj
		bj = int(back[t*L+bj])
	}
	return out
}

// crfWork holds buffers reused across sentences.
type crfWork struct {
	em, psi, alpha, beta, scale, phi []float64
}

// marginals runs forward-backward over emissions em with the allowed
// transitions and returns per-position label marginals ([T*L]), pairwise
// expected transition counts accumulated into xi ([L*L]) when xi is not
// nil, and log Z.
func marginals(w *crfWork, em []float64, trans, start []float32, L int, xi []float64) (mu []float64, logZ float64) {
	T := len(em) / L
	grow := func(b []float64, n int) []float64 {
		if cap(b) < n {
			return make([]float64, n)
		}
		return b[:n]
	}
	w.phi = grow(w.phi, L*L)
	for i := 0; i < L; i++ {
		for j := 0; j < L; j++ {
			if allowed(i, j) {
				w.phi[i*L+j] = math.Exp(float64(trans[i*L+j]))
			} else {
				w.phi[i*L+j] = 0
			}
		}
	}
	w.psi = grow(w.psi, T*L)
	w.alpha = grow(w.alpha, T*L)
	w.beta = grow(w.beta, T*L)
	w.scale = grow(w.scale, T)
	for t := 0; t < T; t++ {
		mx := math.Inf(-1)
		for j := 0; j < L; j++ {
			mx = max(mx, em[t*L+j])
		}
		logZ += mx
		for j := 0; j < L; j++ {
			w.psi[t*L+j] = math.Exp(em[t*L+j] - mx)
		}
	}
	// forward
	var c float64
	for j := 0; j < L; j++ {
		v := 0.0
		if allowed(-1, j) {
			v = math.Exp(float64(start[j])) * w.psi[j]
		}
		w.alpha[j] = v
		c += v
	}
	w.scale[0] = c
	for j := 0; j < L; j++ {
		w.alpha[j] /= c
	}
	for t := 1; t < T; t++ {
		prev := w.alpha[(t-1)*L : t*L]
		cur := w.alpha[t*L : (t+1)*L]
		for j := range cur {
			cur[j] = 0
		}
		for i, a := range prev {
			if a == 0 {
				continue
			}
			row := w.phi[i*L : (i+1)*L]
			for j, p := range row {
				cur[j] += a * p
			}
		}
		c = 0
		for j := range cur {
			cur[j] *= w.psi[t*L+j]
			c += cur[j]
		}
		w.scale[t] = c
		for j := range cur {
			cur[j] /= c
		}
	}
	for t := 0; t < T; t++ {
		logZ += math.Log(w.scale[t])
	}
	// backward
	for j := 0; j < L; j++ {
		w.beta[(T-1)*L+j] = 1
	}
	for t := T - 2; t >= 0; t-- {
		next := w.beta[(t+1)*L : (t+2)*L]
		cur := w.beta[t*L : (t+1)*L]
		for i := 0; i < L; i++ {
			row := w.phi[i*L : (i+1)*L]
			var s float64
			for j, p := range row {
				if p != 0 {
					s += p * w.psi[(t+1)*L+j] * next[j]
				}
			}
			cur[i] = s / w.scale[t+1]
		}
	}
	mu = make([]float64, T*L)
	for t := 0; t < T; t++ {
		var s float64
		for j := 0; j < L; j++ {
			mu[t*L+j] = w.alpha[t*L+j] * w.beta[t*L+j]
			s += mu[t*L+j]
		}
		if s > 0 {
			for j := 0; j < L; j++ {
				mu[t*L+j] /= s
			}
		}
	}
	if xi != nil {
		for t := 1; t < T; t++ {
			inv := 1 / w.scale[t]
			for i := 0; i < L; i++ {
				a := w.alpha[(t-1)*L+i]
				if a == 0 {
					continue
				}
				for j := 0; j < L; j++ {
					p := w.phi[i*L+j]
					if p == 0 {
						continue
					}
					xi[i*L+j] += a * p * w.psi[t*L+j] * w.beta[t*L+j] * inv
				}
			}
		}
	}
	return mu, logZ
}

// crfParams are the CRF's training hyper-parameters.
type crfParams struct {
	Epochs int
	LR     float64
	L2     float64
}

// trainCRF fits the CRF with AdaGrad on the negative log-likelihood.
func trainCRF(data []sentence, nf, L int, p crfParams, seed uint64, epochEnd func(epoch int, loss float64, m *crfModel) bool) *crfModel {
	m := &crfModel{nf: nf, L: L, E: make([]float32, nf*L), Trans: make([]float32, L*L), Start: make([]float32, L)}
	gE := make([]float32, nf*L)
	gT := make([]float64, L*L)
	gS := make([]float64, L)
	xi := make([]float64, L*L)
	var w crfWork
	rng := rand.New(rand.NewPCG(seed, 0x637266))
	order := make([]int, len(data))
	for i := range order {
		order[i] = i
	}
	const eps = 1e-6
	lr := float32(p.LR)
	for ep := 1; ep <= p.Epochs; ep++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var loss float64
		for _, si := range order {
			s := data[si]
			T := len(s.gold)
			if T == 0 {
				continue
			}
			w.em = m.emissions(s.feats, w.em)
			for i := range xi {
				xi[i] = 0
			}
			mu, logZ := marginals(&w, w.em, m.Trans, m.Start, L, xi)
			gold := float64(m.Start[s.gold[0]])
			for t, y := range s.gold {
				gold += w.em[t*L+y]
				if t > 0 {
					gold += float64(m.Trans[s.gold[t-1]*L+y])
				}
			}
			loss += logZ - gold
			// emission gradients
			for t := 0; t < T; t++ {
				mu[t*L+s.gold[t]] -= 1
				for _, f := range s.feats[t] {
					base := int(f) * L
					for y := 0; y < L; y++ {
						g := float32(mu[t*L+y])
						wv := m.E[base+y]
						if g == 0 && wv == 0 {
							continue
						}
						g += float32(p.L2) * wv
						gE[base+y] += g * g
						m.E[base+y] = wv - lr*g/float32(math.Sqrt(float64(gE[base+y])+eps))
					}
				}
			}
			// transition gradients
			for t := 1; t < T; t++ {
				xi[s.gold[t-1]*L+s.gold[t]] -= 1
			}
			for i, g := range xi {
				if g == 0 {
					continue
				}
				gT[i] += g * g
				m.Trans[i] -= float32(p.LR * g / math.Sqrt(gT[i]+eps))
			}
			for y := 0; y < L; y++ {
				g := mu[y] // mu[0*L+y] already has the gold subtracted
				if g == 0 {
					continue
				}
				gS[y] += g * g
				m.Start[y] -= float32(p.LR * g / math.Sqrt(gS[y]+eps))
			}
		}
		if epochEnd != nil && !epochEnd(ep, loss/float64(max(1, len(data))), m) {
			break
		}
	}
	return m
}

// spanOf is a decoded entity span.
type spanOf struct {
	Type       string
	Start, End int
	Confidence float64
}

// decodeSpans turns a label sequence into spans; conf, when not nil, gives
// each position's marginal of its label and a span's confidence is the
// smallest over its positions.
func decodeSpans(labels []int, names []string, conf []float64) []spanOf {
	var out []spanOf
	for t := 0; t < len(labels); {
		y := labels[t]
		if y == 0 || y%2 == 0 {
			t++
			continue
		}
		end := t + 1
		for end < len(labels) && labels[end] == y+1 {
			end++
		}
		sp := spanOf{Type: strings.TrimPrefix(names[y], "B-"), Start: t, End: end, Confidence: 1}
		if conf != nil {
			for k := t; k < end; k++ {
				sp.Confidence = min(sp.Confidence, conf[k])
			}
		}
		out = append(out, sp)
		t = end
	}
	return out
}
