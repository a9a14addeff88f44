package nlu

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/zhiyin/zhiyin/dialogue/nlu/nludata"
)

// EvalReport is what `zhiyin nlu eval` prints.
type EvalReport struct {
	N              int            `json:"n"`
	IntentAccuracy float64        `json:"intent_accuracy"`
	IntentMacroF1  float64        `json:"intent_macro_f1"`
	PerIntent      map[string]PRF `json:"per_intent"`
	Confused       []Confusion    `json:"confused"`
	EntityP        float64        `json:"entity_precision"`
	EntityR        float64        `json:"entity_recall"`
	EntityF1       float64        `json:"entity_f1"`
	PerEntity      map[string]PRF `json:"per_entity,omitempty"`
	// Fallbacks counts parses below the fallback threshold; accuracy and
	// F1 score the top-ranked intent, AccuracyWithFallback counts those
	// parses as wrong (what a deployment answers).
	Fallbacks            int            `json:"fallbacks"`
	AccuracyWithFallback float64        `json:"intent_accuracy_with_fallback"`
	LatencyP50           float64        `json:"latency_p50_ms"`
	LatencyP99           float64        `json:"latency_p99_ms"`
	Unknown              map[string]int `json:"unknown_intents,omitempty"`
	Errors               []string       `json:"errors,omitempty"`
}

// PRF is precision, recall and F1 with the support (gold count).
type PRF struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`
}

// Confusion is a gold intent predicted as another, Count times.
type Confusion struct {
	Gold      string `json:"gold"`
	Predicted string `json:"predicted"`
	Count     int    `json:"count"`
}

type prfCounts struct{ tp, fp, fn int }

func (c *prfCounts) prf() PRF {
	p := PRF{Support: c.tp + c.fn}
	if c.tp+c.fp > 0 {
		p.Precision = float64(c.tp) / float64(c.tp+c.fp)
	}
	if c.tp+c.fn > 0 {
		p.Recall = float64(c.tp) / float64(c.tp+c.fn)
	}
	if p.Precision+p.Recall > 0 {
		p.F1 = 2 * p.Precision * p.Recall / (p.Precision + p.Recall)
	}
	return p
}

// Evaluate parses every example of data with p and compares with the gold
// intents and entities. Entities are scored span-level (exact type and
// boundaries); predictions of types the data never uses and the model does
// not know (a rule extractor's dates in a data set without dates) are not
// counted.
func Evaluate(ctx context.Context, p *Parser, data *nludata.Data) (*EvalReport, error) {
	r := &EvalReport{PerIntent: map[string]PRF{}, PerEntity: map[string]PRF{}, Unknown: map[string]int{}}
	intentCounts := map[string]*prfCounts{}
	entCounts := map[string]*prfCounts{}
	get := func(m map[string]*prfCounts, k string) *prfCounts {
		if m[k] == nil {
			m[k] = &prfCounts{}
		}
		return m[k]
	}
	scored := map[string]bool{}
	for _, t := range p.man.EntityTypes {
		scored[t] = true
	}
	for _, t := range data.EntityTypes() {
		scored[t] = true
	}
	confusion := map[[2]string]int{}
	var lat []float64
	correct, withFallback := 0, 0
	for _, ex := range data.Examples {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		res, err := p.Parse(ctx, ex.Text)
		lat = append(lat, float64(time.Since(start).Microseconds())/1000)
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", ex.Pos, err))
			continue
		}
		r.N++
		if !slices.Contains(p.man.Intents, ex.Intent) {
			r.Unknown[ex.Intent]++
		}
		pred := res.Ranking[0].Name
		if res.Intent.Name == FallbackIntent {
			r.Fallbacks++
		} else if pred == ex.Intent {
			withFallback++
		}
		if pred == ex.Intent {
			correct++
			get(intentCounts, pred).tp++
		} else {
			get(intentCounts, pred).fp++
			get(intentCounts, ex.Intent).fn++
			confusion[[2]string{ex.Intent, pred}]++
		}
		type key struct {
			t    string
			a, b int
		}
		gold := map[key]bool{}
		for _, e := range ex.Entities {
			gold[key{e.Type, e.Start, e.End}] = true
		}
		seen := map[key]bool{}
		for _, e := range res.Entities {
			k := key{e.Type, e.Start, e.End}
			if !scored[e.Type] || seen[k] {
				continue
			}
			seen[k] = true
			if gold[k] {
				get(entCounts, e.Type).tp++
				delete(gold, k)
			} else {
				get(entCounts, e.Type).fp++
			}
		}
		for k := range gold {
			get(entCounts, k.t).fn++
		}
	}
	if r.N > 0 {
		r.IntentAccuracy = float64(correct) / float64(r.N)
		r.AccuracyWithFallback = float64(withFallback) / float64(r.N)
	}
	var f1sum float64
	nIntents := 0
	for name, c := range intentCounts {
		prf := c.prf()
		r.PerIntent[name] = prf
		if prf.Support > 0 {
			f1sum += prf.F1
			nIntents++
		}
	}
	if nIntents > 0 {
		r.IntentMacroF1 = f1sum / float64(nIntents)
	}
	var all prfCounts
	for name, c := range entCounts {
		r.PerEntity[name] = c.prf()
		all.tp += c.tp
		all.fp += c.fp
		all.fn += c.fn
	}
	ep := all.prf()
	r.EntityP, r.EntityR, r.EntityF1 = ep.Precision, ep.Recall, ep.F1
	for k, n := range confusion {
		r.Confused = append(r.Confused, Confusion{Gold: k[0], Predicted: k[1], Count: n})
	}
	sort.Slice(r.Confused, func(i, j int) bool {
		a, b := r.Confused[i], r.Confused[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Gold+"\x00"+a.Predicted < b.Gold+"\x00"+b.Predicted
	})
	if len(r.Confused) > 10 {
		r.Confused = r.Confused[:10]
	}
	r.LatencyP50, r.LatencyP99 = percentile(lat, 0.5), percentile(lat, 0.99)
	return r, nil
}

func percentile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return s[min(i, len(s)-1)]
}
