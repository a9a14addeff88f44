package nlu

import (
	"context"
	"math"
	"slices"
)

// featurizer turns normalized text into the models' inputs. Everything in
// it is saved with a model.
type featurizer struct {
	maxN        int
	intentVocab *vocab
	idf         []float32
	tagVocab    *vocab
	intents     []string
	types       []string
	labels      []string // BIO labels of types
	gaz         *gazetteer
}

// Template bytes of the entity-aware intent features.
const (
	tplDelex = 'x' // n-grams of the text with entity spans replaced by their type
)

// typeRune stands for entity type t inside delexicalized text.
func typeRune(t int) rune { return rune(0xE100 + t) }

// intentKeysFor returns the raw intent feature keys of rs given the entity
// spans found in it (none on the first pass).
func (f *featurizer) intentKeysFor(dst []uint64, rs []rune, ents []spanOf) []uint64 {
	dst = intentKeys(dst, rs, f.maxN)
	if len(ents) == 0 {
		return dst
	}
	delex := make([]rune, 0, len(rs))
	last := 0
	for _, e := range ents {
		if e.Start < last {
			continue
		}
		t := slices.Index(f.types, e.Type)
		if t < 0 {
			continue
		}
		delex = append(delex, rs[last:e.Start]...)
		delex = append(delex, typeRune(t))
		last = e.End
		h := newHash(tplEntity)
		for _, c := range e.Type {
			h = h.rune(c)
		}
		dst = append(dst, uint64(h))
	}
	delex = append(delex, rs[last:]...)
	start := len(dst)
	dst = intentKeys(dst, delex, f.maxN)
	for i := start; i < len(dst); i++ {
		dst[i] = uint64(hasher(dst[i]).byte(tplDelex))
	}
	return dst
}

// intentInput is the TF-IDF vector of rs (unknown features dropped).
func (f *featurizer) intentInput(rs []rune, ents []spanOf) sparse {
	return tfidf(f.intentKeysFor(nil, rs, ents), f.intentVocab, f.idf)
}

// intentKey is the tagger feature naming the first-pass intent.
func intentKey(intent string) hasher {
	h := newHash('I')
	for _, c := range intent {
		h = h.rune(c)
	}
	return h
}

// tagKeys returns each position's raw tagger feature keys.
func (f *featurizer) tagKeys(rs []rune, intent string, g *gazetteer) [][]uint64 {
	keys := make([][]uint64, len(rs))
	ih := intentKey(intent)
	for i := range rs {
		k := taggerKeys(make([]uint64, 0, 20), rs, i)
		keys[i] = append(k, uint64(ih), uint64(ih.rune(rs[i])))
	}
	gazKeys(keys, g.matches(rs, nil))
	return keys
}

// tagInput maps tagger keys to vocabulary ids (unknown keys dropped).
func (f *featurizer) tagInput(rs []rune, intent string) [][]int32 {
	keys := f.tagKeys(rs, intent, f.gaz)
	out := make([][]int32, len(rs))
	for i, ks := range keys {
		ids := make([]int32, 0, len(ks))
		for _, k := range ks {
			if id, ok := f.tagVocab.index[k]; ok {
				ids = append(ids, id)
			}
		}
		out[i] = ids
	}
	return out
}

// scorer computes the models' raw outputs: in Go from trained weights, or
// through ONNX Runtime from exported ones.
type scorer interface {
	intentScores(ctx context.Context, x sparse) ([]float64, error)
	// emissions returns [T*L] scores plus the transition and start scores.
	emissions(ctx context.Context, feats [][]int32) (em []float64, trans, start []float32, err error)
}

// rawParse is a parse in normalized coordinates.
type rawParse struct {
	scores []float64 // softmax probabilities over f.intents (second pass)
	logits []float64 // the scores before the softmax
	first  int       // first-pass intent
	spans  []spanOf
}

// run parses normalized runes rs: intent from the text, entities given that
// intent, then the intent again knowing the entities.
func (f *featurizer) run(ctx context.Context, sc scorer, rs []rune, temp float64) (rawParse, error) {
	zz, err := sc.intentScores(ctx, f.intentInput(rs, nil))
	if err != nil {
		return rawParse{}, err
	}
	C := len(f.intents)
	z := zz[:C] // classifier A: the text alone
	first := argmax(z)
	p := rawParse{first: first}
	if len(f.types) > 0 && len(rs) > 0 {
		em, trans, start, err := sc.emissions(ctx, f.tagInput(rs, f.intents[first]))
		if err != nil {
			return rawParse{}, err
		}
		L := len(f.labels)
		path := viterbi(em, trans, start, L)
		mu, _ := marginals(&crfWork{}, em, trans, start, L, nil)
		conf := make([]float64, len(path))
		for t, y := range path {
			conf[t] = mu[t*L+y]
		}
		p.spans = decodeSpans(path, f.labels, conf)
		if len(p.spans) > 0 {
			z2, err := sc.intentScores(ctx, f.intentInput(rs, p.spans))
			if err != nil {
				return rawParse{}, err
			}
			for i := range z { // average with classifier B: text and entities
				z[i] = (z[i] + z2[C+i]) / 2
			}
		}
	}
	p.logits = slices.Clone(z)
	softmaxInPlace(z, temp)
	p.scores = z
	return p, nil
}

// goScorer scores with in-memory weights.
type goScorer struct {
	intent *softmaxModel
	crf    *crfModel
	buf    []float64
}

func (g *goScorer) intentScores(_ context.Context, x sparse) ([]float64, error) {
	z := make([]float64, g.intent.nc)
	g.intent.scores(x, z)
	return z, nil
}

func (g *goScorer) emissions(_ context.Context, feats [][]int32) ([]float64, []float32, []float32, error) {
	em := g.crf.emissions(feats, nil)
	return em, g.crf.Trans, g.crf.Start, nil
}

// fitTemperature returns the softmax temperature minimizing the negative
// log-likelihood of logits zs for labels ys (a grid search; calibrates the
// confidence reported to users).
func fitTemperature(zs [][]float64, ys []int) float64 {
	if len(zs) == 0 {
		return 1
	}
	best, bestT := math.Inf(1), 1.0
	buf := make([]float64, 0, 128)
	for e := -30; e <= 20; e++ {
		T := math.Pow(10, float64(e)/20)
		var nll float64
		for i, z := range zs {
			if ys[i] < 0 {
				continue
			}
			buf = append(buf[:0], z...)
			softmaxInPlace(buf, T)
			nll -= math.Log(max(buf[ys[i]], 1e-12))
		}
		if nll < best {
			best, bestT = nll, T
		}
	}
	return bestT
}
