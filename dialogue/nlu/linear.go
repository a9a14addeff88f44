package nlu

import (
	"math"
	"math/rand/v2"
	"slices"
)

// sparse is a feature vector: vocabulary ids and values.
type sparse struct {
	ids  []int32
	vals []float32
}

// vocab maps feature hashes to rows.
type vocab struct {
	index map[uint64]int32
	keys  []uint64 // row -> hash
}

func newVocab() *vocab { return &vocab{index: map[uint64]int32{}} }

func (v *vocab) add(k uint64) int32 {
	if id, ok := v.index[k]; ok {
		return id
	}
	id := int32(len(v.keys))
	v.index[k] = id
	v.keys = append(v.keys, k)
	return id
}

func (v *vocab) size() int { return len(v.keys) }

// tfidf turns raw keys into an L2-normalized sublinear TF-IDF vector over the
// vocabulary; unknown keys are dropped. ids come out sorted.
func tfidf(keys []uint64, v *vocab, idf []float32) sparse {
	counts := map[int32]int{}
	for _, k := range keys {
		if id, ok := v.index[k]; ok {
			counts[id]++
		}
	}
	s := sparse{ids: make([]int32, 0, len(counts)), vals: make([]float32, 0, len(counts))}
	for id := range counts {
		s.ids = append(s.ids, id)
	}
	slices.Sort(s.ids)
	var norm float64
	for _, id := range s.ids {
		x := (1 + math.Log(float64(counts[id]))) * float64(idf[id])
		s.vals = append(s.vals, float32(x))
		norm += x * x
	}
	if norm > 0 {
		inv := float32(1 / math.Sqrt(norm))
		for i := range s.vals {
			s.vals[i] *= inv
		}
	}
	return s
}

// softmaxModel is a multinomial logistic regression: W is [features x
// classes] row-major, B the biases.
type softmaxModel struct {
	nf, nc int
	W      []float32
	B      []float32
}

func (m *softmaxModel) scores(x sparse, out []float64) {
	for c := 0; c < m.nc; c++ {
		out[c] = float64(m.B[c])
	}
	for i, id := range x.ids {
		v := float64(x.vals[i])
		row := m.W[int(id)*m.nc : int(id+1)*m.nc]
		for c, w := range row {
			out[c] += v * float64(w)
		}
	}
}

func softmaxInPlace(z []float64, temp float64) {
	mx := math.Inf(-1)
	for _, v := range z {
		mx = max(mx, v)
	}
	var sum float64
	for i, v := range z {
		z[i] = math.Exp((v - mx) / temp)
		sum += z[i]
	}
	for i := range z {
		z[i] /= sum
	}
}

// lrParams are the hyper-parameters of softmax regression training.
type lrParams struct {
	Epochs int
	LR     float64 // AdaGrad step size
	L2     float64
}

// trainSoftmax fits softmax regression with AdaGrad on the cross-entropy
// plus an L2 penalty applied to the rows an example touches. epochEnd, when
// not nil, is called after every epoch with the mean loss; returning false
// stops training.
func trainSoftmax(xs []sparse, ys []int, nf, nc int, p lrParams, seed uint64, epochEnd func(epoch int, loss float64, m *softmaxModel) bool) *softmaxModel {
	m := &softmaxModel{nf: nf, nc: nc, W: make([]float32, nf*nc), B: make([]float32, nc)}
	gW := make([]float32, nf*nc)
	gB := make([]float32, nc)
	const eps = 1e-6
	rng := rand.New(rand.NewPCG(seed, 0x6e6c75))
	order := make([]int, len(xs))
	for i := range order {
		order[i] = i
	}
	z := make([]float64, nc)
	for ep := 1; ep <= p.Epochs; ep++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var loss float64
		for _, i := range order {
			x := xs[i]
			m.scores(x, z)
			softmaxInPlace(z, 1)
			loss -= math.Log(max(z[ys[i]], 1e-12))
			z[ys[i]] -= 1 // gradient of the loss w.r.t. the scores
			for c := 0; c < nc; c++ {
				g := float32(z[c])
				gB[c] += g * g
				m.B[c] -= float32(p.LR) * g / float32(math.Sqrt(float64(gB[c])+eps))
			}
			for k, id := range x.ids {
				v := float64(x.vals[k])
				base := int(id) * nc
				for c := 0; c < nc; c++ {
					w := m.W[base+c]
					g := float32(z[c]*v + p.L2*float64(w))
					gW[base+c] += g * g
					m.W[base+c] = w - float32(p.LR)*g/float32(math.Sqrt(float64(gW[base+c])+eps))
				}
			}
		}
		if epochEnd != nil && !epochEnd(ep, loss/float64(len(xs)), m) {
			break
		}
	}
	return m
}

// argmax returns the index of the largest value.
func argmax(z []float64) int {
	best := 0
	for i, v := range z {
		if v > z[best] {
			best = i
		}
	}
	return best
}
