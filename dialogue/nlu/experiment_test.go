package nlu

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/dialogue/nlu/nludata"
)

// TestExperiment trains on a data set's train split and reports dev
// numbers; NLU_EXP=cais,smp2017_task1,... selects the sets.
func TestExperiment(t *testing.T) {
	if os.Getenv("NLU_EXP") == "" {
		t.Skip("set NLU_EXP")
	}
	for _, ds := range strings.Split(os.Getenv("NLU_EXP"), ",") {
		tr, err := nludata.Load("../../../shared/data/nlu/" + ds + "/train.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		dv, err := nludata.Load("../../../shared/data/nlu/" + ds + "/dev.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		m, err := Train(context.Background(), tr, TrainOptions{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		sc := &goScorer{intent: m.intent, crf: m.crf}
		ok1, ok2 := 0, 0
		var tp, fp, fn int
		for _, ex := range dv.Examples {
			s := toSample(ex, m.feat)
			p, err := m.feat.run(context.Background(), sc, s.rs, m.temp)
			if err != nil {
				t.Fatal(err)
			}
			if p.first == s.intent {
				ok1++
			}
			if argmax(p.scores) == s.intent {
				ok2++
			}
			a, b, c := spanCounts(p.spans, s.spans)
			tp, fp, fn = tp+a, fp+b, fn+c
		}
		n := float64(len(dv.Examples))
		fmt.Printf("%s: train %s metrics %+v\n   dev intent pass1 %.2f%% final %.2f%% entity F1 %.2f%%\n", ds, took.Round(time.Millisecond), m.Metrics, 100*float64(ok1)/n, 100*float64(ok2)/n, 100*f1(tp, fp, fn))
	}
}
