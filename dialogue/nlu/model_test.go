package nlu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/dialogue/nlu/nludata"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/testmodels"
)

var (
	shopOnce  sync.Once
	shopDir   string
	shopModel *Trained
	shopErr   error
)

// shop trains the test shop model once per test binary and saves it.
func shop(t testing.TB) (string, *Trained) {
	t.Helper()
	shopOnce.Do(func() {
		data, err := nludata.Load("testdata/shop")
		if err != nil {
			shopErr = err
			return
		}
		shopModel, shopErr = Train(context.Background(), data, TrainOptions{Seed: 7})
		if shopErr != nil {
			return
		}
		shopDir, shopErr = os.MkdirTemp("", "nlu-shop-")
		if shopErr == nil {
			_, shopErr = shopModel.Save(shopDir)
		}
	})
	if shopErr != nil {
		t.Fatal(shopErr)
	}
	return shopDir, shopModel
}

func fixedNow() time.Time {
	loc, _ := time.LoadLocation("Asia/Shanghai")
	return time.Date(2026, 11, 22, 10, 0, 0, 0, loc)
}

func loadShop(t testing.TB, opts Options) *Parser {
	t.Helper()
	dir, _ := shop(t)
	opts.Now = fixedNow
	opts.Load = inference.LoadOptions{Provider: "cpu"}
	p, err := Load(context.Background(), needRT(t), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestParseShop(t *testing.T) {
	p := loadShop(t, Options{})
	cases := []struct {
		text, intent string
		ents         map[string]string // type -> normalized
	}{
		{"我的快递SF1234567890到哪了", "query_logistics", map[string]string{"tracking_no": "SF1234567890"}},
		{"我要投诉", "complain", nil},
		{"帮我转人工", "human_agent", nil},
		{"申请退货", "return_goods", nil},
		{"明天下午三点前能送到吗", "delivery_time", map[string]string{"datetime": "2026-11-23T15:00:00+08:00"}},
		{"退款三百五十元什么时候到账", "refund", map[string]string{"amount": "350"}},
		{"你好", "greet", nil},
		{"谢谢你", "thanks", nil},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			res, err := p.Parse(context.Background(), c.text)
			if err != nil {
				t.Fatal(err)
			}
			if res.Intent.Name != c.intent {
				t.Errorf("intent %q (%.3f), want %q; ranking %+v", res.Intent.Name, res.Intent.Confidence, c.intent, res.Ranking)
			}
			if len(res.Ranking) != 5 || res.Ranking[0].Confidence < res.Ranking[1].Confidence {
				t.Errorf("ranking %+v: want 5 sorted", res.Ranking)
			}
			rs := []rune(c.text)
			for typ, want := range c.ents {
				found := false
				for _, e := range res.Entities {
					if e.Type == typ && e.Normalized == want {
						found = true
					}
				}
				if !found {
					t.Errorf("no %s=%s in %+v", typ, want, res.Entities)
				}
			}
			for _, e := range res.Entities {
				if e.Start < 0 || e.End > len(rs) || string(rs[e.Start:e.End]) != e.Value {
					t.Errorf("entity %+v does not point at its value in %q", e, c.text)
				}
			}
		})
	}
}

func TestParseFullWidthOffsets(t *testing.T) {
	p := loadShop(t, Options{})
	text := "我的快递ＳＦ１２３４５６７８９０到哪了"
	res, err := p.Parse(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	rs := []rune(text)
	ok := false
	for _, e := range res.Entities {
		if string(rs[e.Start:e.End]) != e.Value {
			t.Errorf("entity %+v value is not the original text", e)
		}
		if e.Type == "tracking_no" && e.Normalized == "SF1234567890" && e.Value == "ＳＦ１２３４５６７８９０" {
			ok = true
		}
	}
	if !ok {
		t.Errorf("no full-width tracking number in %+v", res.Entities)
	}
}

func TestParseBadInput(t *testing.T) {
	p := loadShop(t, Options{MaxChars: 10})
	for _, c := range []struct {
		text string
		want error
	}{
		{"", ErrEmpty},
		{" \t\n　", ErrEmpty},
		{"\xff\xfe投诉", ErrInvalidUTF8},
		{strings.Repeat("投", 11), ErrTooLong},
	} {
		if _, err := p.Parse(context.Background(), c.text); !errors.Is(err, c.want) {
			t.Errorf("Parse(%q) = %v, want %v", c.text, err, c.want)
		}
	}
	if _, err := p.Parse(context.Background(), strings.Repeat("投", 10)); err != nil {
		t.Errorf("10 characters: %v", err)
	}
}

func TestFallbackThreshold(t *testing.T) {
	p := loadShop(t, Options{FallbackThreshold: 0.999})
	res, err := p.Parse(context.Background(), "嗯嗯")
	if err != nil {
		t.Fatal(err)
	}
	if res.Intent.Name != FallbackIntent {
		t.Errorf("intent %+v, want %s", res.Intent, FallbackIntent)
	}
}

// TestONNXMatchesGo checks that the exported int8 graphs give the same
// decisions as the float weights they came from.
func TestONNXMatchesGo(t *testing.T) {
	p := loadShop(t, Options{})
	_, m := shop(t)
	data, err := nludata.Load("testdata/shop")
	if err != nil {
		t.Fatal(err)
	}
	gs := &goScorer{intent: m.intent, crf: m.crf}
	agree := 0
	for _, ex := range data.Examples {
		rs, _ := normalize(ex.Text)
		a, err := m.feat.run(context.Background(), gs, rs, m.temp)
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.feat.run(context.Background(), (*ortScorer)(p), rs, p.man.Temperature)
		if err != nil {
			t.Fatal(err)
		}
		if argmax(a.scores) == argmax(b.scores) {
			agree++
		}
		for i := range a.scores {
			if d := a.scores[i] - b.scores[i]; d > 0.05 || d < -0.05 {
				t.Errorf("%q: probability %d float %.4f int8 %.4f", ex.Text, i, a.scores[i], b.scores[i])
				break
			}
		}
	}
	if agree != len(data.Examples) {
		t.Errorf("int8 and float intents agree on %d of %d examples", agree, len(data.Examples))
	}
}

func TestTrainDeterministic(t *testing.T) {
	dir, _ := shop(t)
	data, err := nludata.Load("testdata/shop")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Train(context.Background(), data, TrainOptions{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	again := t.TempDir()
	if _, err := m.Save(again); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ManifestName, intentGraph, entitiesGraph, intentVocab, entitiesVocab, lexiconFile} {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, _ := os.ReadFile(filepath.Join(again, name))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
}

func TestLoadRefusesTampered(t *testing.T) {
	dir, _ := shop(t)
	copyDir := func() string {
		d := t.TempDir()
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			os.WriteFile(filepath.Join(d, e.Name()), b, 0o644)
		}
		return d
	}
	rt := needRT(t)
	d := copyDir()
	b, _ := os.ReadFile(filepath.Join(d, intentGraph))
	b[len(b)/2] ^= 1
	os.WriteFile(filepath.Join(d, intentGraph), b, 0o644)
	if _, err := Load(context.Background(), rt, d, Options{}); !errors.Is(err, ErrBadModel) || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("tampered graph: %v", err)
	}
	d = copyDir()
	if _, err := Load(context.Background(), rt, d, Options{DataHash: "0123"}); !errors.Is(err, ErrBadModel) || !strings.Contains(err.Error(), "data") {
		t.Errorf("data hash mismatch: %v", err)
	}
	d = copyDir()
	os.Remove(filepath.Join(d, ManifestName))
	if _, err := Load(context.Background(), rt, d, Options{}); !errors.Is(err, ErrBadModel) || !strings.Contains(err.Error(), "zhiyin train") {
		t.Errorf("no manifest: %v", err)
	}
}

// BenchmarkParse measures one parse (normalization, rules, both ONNX
// models, Viterbi) of a 30-character message on one goroutine.
func BenchmarkParse(b *testing.B) {
	p := loadShop(b, Options{FallbackThreshold: 0.3})
	text := "你好，我的快递SF1234567890到哪了，明天能送到吗？"
	if n := len([]rune(text)); n != 30 {
		b.Fatalf("message has %d characters", n)
	}
	ctx := context.Background()
	lat := make([]float64, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := p.Parse(ctx, text); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, float64(time.Since(start).Nanoseconds())/1e3)
	}
	b.ReportMetric(percentile(lat, 0.5), "p50-µs")
	b.ReportMetric(percentile(lat, 0.99), "p99-µs")
}

// FuzzParseText feeds arbitrary text through normalization, features and
// the Go-side models: no panic, entity spans inside the text.
func FuzzParseText(f *testing.F) {
	for _, s := range []string{"我的快递SF1234567890到哪了", "", " ", "\xff\xfe", "ＡＢＣ　１２３", "明天下午三点", "[x](y)", "\u0000\u200b"} {
		f.Add(s)
	}
	_, m := shop(f)
	sc := &goScorer{intent: m.intent, crf: m.crf}
	f.Fuzz(func(t *testing.T, s string) {
		rs, orig := normalize(s)
		if len(orig) != len(rs)+1 {
			t.Fatalf("orig has %d entries for %d runes", len(orig), len(rs))
		}
		p, err := m.feat.run(context.Background(), sc, rs, m.temp)
		if err != nil {
			t.Fatal(err)
		}
		for _, sp := range p.spans {
			if sp.Start < 0 || sp.End > len(rs) || sp.Start >= sp.End {
				t.Fatalf("span %+v outside %d runes", sp, len(rs))
			}
		}
		var sum float64
		for _, v := range p.scores {
			sum += v
		}
		if sum < 0.999 || sum > 1.001 {
			t.Fatalf("probabilities sum to %f", sum)
		}
	})
}

func writeTestFolder(t *testing.T, f testmodels.Folder) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), f.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, file := range f.Files {
		if err := os.WriteFile(filepath.Join(dir, file.Name), file.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBringYourOwnTransformer: BERT-style folders replace the trained
// intent classifier and tagger; rules still run.
func TestBringYourOwnTransformer(t *testing.T) {
	seq := writeTestFolder(t, testmodels.BERT(testmodels.BERTOptions{Task: testmodels.TaskSequence}))
	tok := writeTestFolder(t, testmodels.BERT(testmodels.BERTOptions{Task: testmodels.TaskToken}))
	p := loadShop(t, Options{IntentTransformer: seq, EntityTransformer: tok})
	res, err := p.Parse(context.Background(), "我要投诉移动，电话13812345678")
	if err != nil {
		t.Fatal(err)
	}
	if res.Intent.Name != "complaint" { // the transformer's label, not the trained "complain"
		t.Errorf("intent %+v, want the transformer's complaint", res.Intent)
	}
	var carrier, phone bool
	for _, e := range res.Entities {
		carrier = carrier || (e.Type == "carrier" && e.Value == "移动" && e.Extractor == "transformer")
		phone = phone || (e.Type == "phone_number" && e.Normalized == "13812345678")
	}
	if !carrier || !phone {
		t.Errorf("entities %+v: want the transformer's carrier and the rule's phone", res.Entities)
	}
	if _, err := Load(context.Background(), needRT(t), shopDir, Options{IntentTransformer: tok}); err == nil || !strings.Contains(err.Error(), "sequence") {
		t.Errorf("token model as intent transformer: %v", err)
	}
}
