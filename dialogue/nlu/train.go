package nlu

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/dialogue/nlu/nludata"
	"github.com/zhiyin/zhiyin/dialogue/nlu/rules"
)

// TrainOptions configure Train.
type TrainOptions struct {
	// Seed makes training deterministic: the same data and seed give the
	// same model, byte for byte.
	Seed uint64
	// HeldOut is the fraction of the examples kept aside to choose the
	// number of epochs and calibrate confidences (default 0.1).
	HeldOut float64
	// MaxEpochs bounds each model's epochs (default 15 for the intent
	// classifier, 12 for the tagger).
	MaxIntentEpochs, MaxTagEpochs int
	// Progress, when not nil, receives a line of progress per epoch.
	Progress func(Progress)
}

// Progress is one training step for a progress display.
type Progress struct {
	// Model is "intent" or "entities"; Phase is "select" (held-out run
	// choosing the epochs) or "final" (all the data).
	Model, Phase  string
	Epoch, Epochs int
	Loss          float64
	// HeldOut is the held-out intent accuracy or entity F1 after this
	// epoch (select phase only; -1 otherwise).
	HeldOut float64
}

// TrainMetrics are measured on the held-out slice by the model trained
// without it.
type TrainMetrics struct {
	Examples        int     `json:"examples"`
	HeldOut         int     `json:"held_out"`
	IntentEpochs    int     `json:"intent_epochs"`
	TagEpochs       int     `json:"tag_epochs,omitempty"`
	IntentAccuracy  float64 `json:"held_out_intent_accuracy"`
	EntityF1        float64 `json:"held_out_entity_f1,omitempty"`
	Temperature     float64 `json:"temperature"`
	IntentFeatures  int     `json:"intent_features"`
	TagFeatures     int     `json:"tag_features,omitempty"`
	TrainSeconds    float64 `json:"-"`
	QuantizedAgree  float64 `json:"quantized_intent_agreement,omitempty"`
	QuantizedMaxErr float64 `json:"quantized_max_abs_logit_error,omitempty"`
}

// Trained is a trained model in memory, ready to export.
type Trained struct {
	feat     *featurizer
	intent   *softmaxModel
	crf      *crfModel // nil without entity types
	temp     float64
	Metrics  TrainMetrics
	DataHash string
	Seed     uint64
	synonyms map[string]string
	lookups  map[string][]string
	regexes  []rules.NamedRegex
}

// sample is an example in normalized coordinates.
type sample struct {
	rs     []rune
	intent int
	spans  []spanOf
}

// ErrTooFewExamples is returned by Train when the data cannot train a
// classifier.
var ErrTooFewExamples = errors.New("too few examples")

const gazFolds = 5

// Train trains the intent classifier and the entity tagger on data.
func Train(ctx context.Context, data *nludata.Data, opts TrainOptions) (*Trained, error) {
	began := time.Now()
	if opts.HeldOut == 0 {
		opts.HeldOut = 0.1
	}
	if opts.MaxIntentEpochs == 0 {
		opts.MaxIntentEpochs = 15
	}
	if opts.MaxTagEpochs == 0 {
		opts.MaxTagEpochs = 12
	}
	f := &featurizer{maxN: 3, intents: data.Intents()}
	if len(f.intents) < 2 {
		return nil, fmt.Errorf("%w: the data has %d intent(s); an intent classifier needs examples of at least two", ErrTooFewExamples, len(f.intents))
	}
	typeSet := map[string]bool{}
	for _, ex := range data.Examples {
		for _, e := range ex.Entities {
			typeSet[e.Type] = true
		}
	}
	for t := range typeSet {
		f.types = append(f.types, t)
	}
	slices.Sort(f.types)
	f.labels = bioLabels(f.types)

	samples := make([]sample, 0, len(data.Examples))
	for _, ex := range data.Examples {
		samples = append(samples, toSample(ex, f))
	}
	// lookup-table values join the lexicon for every fold
	lookups := map[int][][]rune{}
	for name, vals := range data.Lookups {
		if t := slices.Index(f.types, name); t >= 0 {
			for _, v := range vals {
				rs, _ := normalize(v)
				lookups[t] = append(lookups[t], rs)
			}
		}
	}

	rng := rand.New(rand.NewPCG(opts.Seed, 0x686f6c64))
	perm := rng.Perm(len(samples))
	nHeld := int(math.Round(opts.HeldOut * float64(len(samples))))
	if len(samples) < 200 {
		// too few to hold some back and still learn: fixed epochs, no
		// calibration
		nHeld = 0
	}
	held := make([]sample, 0, nHeld)
	train := make([]sample, 0, len(samples)-nHeld)
	for i, p := range perm {
		if i < nHeld {
			held = append(held, samples[p])
		} else {
			train = append(train, samples[p])
		}
	}

	tr := &Trained{temp: 1, Seed: opts.Seed, DataHash: data.Hash(), synonyms: data.Synonyms, lookups: data.Lookups}
	for _, r := range data.Regexes {
		tr.regexes = append(tr.regexes, rules.NamedRegex{Name: r.Name, Pattern: r.Pattern})
	}
	tr.Metrics.Examples = len(samples)
	tr.Metrics.HeldOut = nHeld
	intentEpochs, tagEpochs := opts.MaxIntentEpochs, opts.MaxTagEpochs
	if nHeld > 0 {
		sel := fit(ctx, f, train, lookups, opts, held, opts.MaxIntentEpochs, opts.MaxTagEpochs, "select")
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		intentEpochs, tagEpochs = sel.bestIntent, sel.bestTag
		// calibrate and measure the whole pipeline on the held-out slice
		sc := &goScorer{intent: sel.intent, crf: sel.crf}
		var zs [][]float64
		var ys []int
		ok := 0
		var tp, fp, fn int
		for _, s := range held {
			p, err := sel.feat.run(ctx, sc, s.rs, 1)
			if err != nil {
				return nil, err
			}
			zs = append(zs, p.logits)
			ys = append(ys, s.intent)
			if argmax(p.logits) == s.intent {
				ok++
			}
			a, b, c := spanCounts(p.spans, s.spans)
			tp, fp, fn = tp+a, fp+b, fn+c
		}
		tr.temp = fitTemperature(zs, ys)
		tr.Metrics.IntentAccuracy = float64(ok) / float64(len(held))
		if len(f.types) > 0 {
			tr.Metrics.EntityF1 = f1(tp, fp, fn)
		}
	}
	final := fit(ctx, f, samples, lookups, opts, nil, intentEpochs, tagEpochs, "final")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tr.feat, tr.intent, tr.crf = final.feat, final.intent, final.crf
	tr.Metrics.IntentEpochs = intentEpochs
	tr.Metrics.Temperature = tr.temp
	tr.Metrics.IntentFeatures = tr.feat.intentVocab.size()
	if tr.crf != nil {
		tr.Metrics.TagEpochs = tagEpochs
		tr.Metrics.TagFeatures = tr.feat.tagVocab.size()
	}
	tr.Metrics.QuantizedAgree, tr.Metrics.QuantizedMaxErr = quantizationCheck(tr, samples)
	tr.Metrics.TrainSeconds = time.Since(began).Seconds()
	return tr, nil
}

// toSample normalizes an example and maps its entity spans onto the
// normalized text; overlapping spans after the first are dropped.
func toSample(ex nludata.Example, f *featurizer) sample {
	rs, orig := normalize(ex.Text)
	s := sample{rs: rs, intent: slices.Index(f.intents, ex.Intent)}
	used := make([]bool, len(rs))
	for _, e := range ex.Entities {
		a, b := toNormalized(orig, e.Start), toNormalized(orig, e.End)
		if a >= b {
			continue
		}
		clash := false
		for k := a; k < b; k++ {
			clash = clash || used[k]
		}
		if clash {
			continue
		}
		for k := a; k < b; k++ {
			used[k] = true
		}
		s.spans = append(s.spans, spanOf{Type: e.Type, Start: a, End: b, Confidence: 1})
	}
	slices.SortFunc(s.spans, func(x, y spanOf) int { return x.Start - y.Start })
	return s
}

// toNormalized maps an original rune offset to the first normalized
// position at or after it.
func toNormalized(orig []int, off int) int {
	i, _ := slices.BinarySearch(orig, off)
	return min(i, len(orig)-1)
}

// fitResult is one training run of both models.
type fitResult struct {
	feat                *featurizer
	intent              *softmaxModel
	crf                 *crfModel
	bestIntent, bestTag int
}

// fit builds vocabularies from samples and trains both models (in
// parallel). With held-out samples it records the epoch with the best
// held-out score.
func fit(ctx context.Context, base *featurizer, samples []sample, lookups map[int][][]rune, opts TrainOptions, held []sample, intentEpochs, tagEpochs int, phase string) fitResult {
	f := &featurizer{maxN: base.maxN, intents: base.intents, types: base.types, labels: base.labels,
		intentVocab: newVocab(), tagVocab: newVocab(), gaz: newGazetteer()}
	res := fitResult{feat: f, bestIntent: intentEpochs, bestTag: tagEpochs}

	// lexicons: the full one for run time, one per fold for training
	folds := make([]*gazetteer, gazFolds)
	for k := range folds {
		folds[k] = newGazetteer()
	}
	for t, vals := range lookups {
		for _, v := range vals {
			f.gaz.add(v, t)
			for _, g := range folds {
				g.add(v, t)
			}
		}
	}
	for n, s := range samples {
		for _, sp := range s.spans {
			t := slices.Index(f.types, sp.Type)
			f.gaz.add(s.rs[sp.Start:sp.End], t)
			for k, g := range folds {
				if k != n%gazFolds {
					g.add(s.rs[sp.Start:sp.End], t)
				}
			}
		}
	}

	// intent features: every example as text only, and again with its
	// entities when it has some. Two classifiers share the vocabulary: A
	// reads the text alone (first pass), B the text with its entities
	// (second pass); their weights sit side by side in one table.
	df := map[int32]int{}
	var rawA, rawB [][]uint64
	var ys []int
	count := func(keys []uint64) {
		seen := map[int32]bool{}
		for _, k := range keys {
			id := f.intentVocab.add(k)
			if !seen[id] {
				seen[id] = true
				df[id]++
			}
		}
	}
	for _, s := range samples {
		a := f.intentKeysFor(nil, s.rs, nil)
		count(a)
		b := a
		if len(s.spans) > 0 && len(f.types) > 0 {
			b = f.intentKeysFor(nil, s.rs, s.spans)
			count(b)
		}
		rawA, rawB = append(rawA, a), append(rawB, b)
		ys = append(ys, s.intent)
	}
	f.idf = make([]float32, f.intentVocab.size())
	nDocs := len(rawA) + len(rawB)
	for id := range f.idf {
		f.idf[id] = float32(math.Log(float64(1+nDocs)/float64(1+df[int32(id)])) + 1)
	}
	xsA := make([]sparse, len(rawA))
	xsB := make([]sparse, len(rawB))
	for i := range rawA {
		xsA[i] = tfidf(rawA[i], f.intentVocab, f.idf)
		xsB[i] = tfidf(rawB[i], f.intentVocab, f.idf)
	}

	// tagger features with the gold intent and the fold's lexicon
	var sents []sentence
	if len(f.types) > 0 {
		for n, s := range samples {
			keys := f.tagKeys(s.rs, f.intents[s.intent], folds[n%gazFolds])
			st := sentence{feats: make([][]int32, len(s.rs)), gold: make([]int, len(s.rs))}
			for i, ks := range keys {
				ids := make([]int32, len(ks))
				for j, k := range ks {
					ids[j] = f.tagVocab.add(k)
				}
				st.feats[i] = ids
			}
			for _, sp := range s.spans {
				t := slices.Index(f.types, sp.Type)
				st.gold[sp.Start] = 2*t + 1
				for k := sp.Start + 1; k < sp.End; k++ {
					st.gold[k] = 2*t + 2
				}
			}
			sents = append(sents, st)
		}
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	report := func(p Progress) {
		if opts.Progress != nil {
			mu.Lock()
			opts.Progress(p)
			mu.Unlock()
		}
	}
	// held-out inputs (text-only intent features; tagger with the gold
	// intent) are built before the goroutines start: the vocabularies are
	// complete and read-only from here on.
	heldX := make([]sparse, len(held))
	heldTag := make([][][]int32, len(held))
	for i, s := range held {
		heldX[i] = f.intentInput(s.rs, nil)
		if len(f.types) > 0 {
			heldTag[i] = f.tagInput(s.rs, f.intents[s.intent])
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		best := -1.0
		z := make([]float64, len(f.intents))
		nf, C := f.intentVocab.size(), len(f.intents)
		a := trainSoftmax(xsA, ys, nf, C, lrParams{Epochs: intentEpochs, LR: 1}, opts.Seed, func(ep int, loss float64, m *softmaxModel) bool {
			if ep < 3 {
				report(Progress{Model: "intent", Phase: phase, Epoch: ep, Epochs: intentEpochs, Loss: loss, HeldOut: -1})
				return true
			}
			acc := -1.0
			if len(held) > 0 {
				ok := 0
				for i, x := range heldX {
					m.scores(x, z)
					if argmax(z) == held[i].intent {
						ok++
					}
				}
				acc = float64(ok) / float64(len(held))
				if acc > best {
					best, res.bestIntent = acc, ep
				}
			}
			report(Progress{Model: "intent", Phase: phase, Epoch: ep, Epochs: intentEpochs, Loss: loss, HeldOut: acc})
			return ctx.Err() == nil
		})
		b := a
		if len(f.types) > 0 {
			b = trainSoftmax(xsB, ys, nf, C, lrParams{Epochs: res.bestIntent, LR: 1}, opts.Seed+1, func(ep int, loss float64, m *softmaxModel) bool {
				report(Progress{Model: "intent+e", Phase: phase, Epoch: ep, Epochs: res.bestIntent, Loss: loss, HeldOut: -1})
				return ctx.Err() == nil
			})
		}
		res.intent = stack(a, b)
	}()
	if len(f.types) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			best := -1.0
			L := len(f.labels)
			res.crf = trainCRF(sents, f.tagVocab.size(), L, crfParams{Epochs: tagEpochs, LR: 0.1}, opts.Seed, func(ep int, loss float64, m *crfModel) bool {
				score := -1.0
				if len(held) > 0 {
					var tp, fp, fn int
					var em []float64
					for i, s := range held {
						em = m.emissions(heldTag[i], em)
						pred := decodeSpans(viterbi(em, m.Trans, m.Start, L), f.labels, nil)
						a, b, c := spanCounts(pred, s.spans)
						tp, fp, fn = tp+a, fp+b, fn+c
					}
					score = f1(tp, fp, fn)
					if score >= best {
						best, res.bestTag = score, ep
					}
				}
				report(Progress{Model: "entities", Phase: phase, Epoch: ep, Epochs: tagEpochs, Loss: loss, HeldOut: score})
				return ctx.Err() == nil
			})
		}()
	}
	wg.Wait()
	return res
}

// spanCounts compares predicted and gold spans: true positives, false
// positives, false negatives (exact type and boundaries).
func spanCounts(pred, gold []spanOf) (tp, fp, fn int) {
	for _, p := range pred {
		hit := false
		for _, g := range gold {
			if g.Type == p.Type && g.Start == p.Start && g.End == p.End {
				hit = true
				break
			}
		}
		if hit {
			tp++
		} else {
			fp++
		}
	}
	return tp, fp, len(gold) - tp
}

func f1(tp, fp, fn int) float64 { return (&prfCounts{tp: tp, fp: fp, fn: fn}).prf().F1 }

// quantizationCheck compares the int8 intent weights with the float ones on
// (up to 2000 of) the training texts: how often the top intent agrees and
// the largest logit difference.
func quantizationCheck(tr *Trained, samples []sample) (agree, maxErr float64) {
	m := tr.intent
	q, scales := quantize(m.W, m.nf, m.nc)
	qm := &softmaxModel{nf: m.nf, nc: m.nc, W: dequantize(q, scales, m.nc), B: m.B}
	a, b := make([]float64, m.nc), make([]float64, m.nc)
	n, same := 0, 0
	for i := 0; i < len(samples) && n < 2000; i++ {
		x := tr.feat.intentInput(samples[i].rs, nil)
		m.scores(x, a)
		qm.scores(x, b)
		n++
		if argmax(a[:m.nc/2]) == argmax(b[:m.nc/2]) {
			same++
		}
		for c := range a {
			maxErr = max(maxErr, math.Abs(a[c]-b[c]))
		}
	}
	if n == 0 {
		return 1, 0
	}
	return float64(same) / float64(n), math.Round(maxErr*1e6) / 1e6
}

// stack puts the weights of two classifiers over the same features side by
// side: classes 0..C-1 are a's, C..2C-1 b's.
func stack(a, b *softmaxModel) *softmaxModel {
	C := a.nc
	m := &softmaxModel{nf: a.nf, nc: 2 * C, W: make([]float32, a.nf*2*C), B: append(slices.Clone(a.B), b.B...)}
	for r := 0; r < a.nf; r++ {
		copy(m.W[r*2*C:], a.W[r*C:(r+1)*C])
		copy(m.W[r*2*C+C:], b.W[r*C:(r+1)*C])
	}
	return m
}
