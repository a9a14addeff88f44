package bert

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/testmodels"
)

func TestClassify(t *testing.T) {
	for _, opts := range []testmodels.BERTOptions{{}, {NoTokenTypes: true}, {Int32Inputs: true}} {
		m := loadBERT(t, opts)
		if m.Task() != TaskSequence || m.MaxLen() != 64 || !slices.Equal(m.Labels(), testmodels.BERTLabels(TaskSequence)) {
			t.Fatalf("task %s, max_len %d, labels %v", m.Task(), m.MaxLen(), m.Labels())
		}
		for _, c := range []struct{ text, want string }{
			{"你好", "other"},
			{"今天天气不错", "other"},
			{"我想查一下余额", "query_balance"},
			{"Check my BALANCE please", "query_balance"},
			{"帮我充值一百块", "recharge"},
			{"我要投诉你们的服务", "complaint"},
			{"转人工", "human_agent"},
			{"我想查一下这个月的话费和流量还有套餐的情况，顺便看看余额", "query_balance"},
		} {
			scores, err := m.Classify(context.Background(), c.text)
			if err != nil {
				t.Fatal(err)
			}
			if len(scores) != 5 || scores[0].Label != c.want {
				t.Errorf("%+v: %q → %v, want %s", opts, c.text, scores, c.want)
			}
			sum := 0.0
			for i, s := range scores {
				sum += s.P
				if i > 0 && s.P > scores[i-1].P {
					t.Errorf("scores not sorted: %v", scores)
				}
			}
			if sum < 0.999 || sum > 1.001 {
				t.Errorf("probabilities sum to %v", sum)
			}
		}
		if _, err := m.Tag(context.Background(), "你好"); !errors.Is(err, ErrTask) {
			t.Errorf("Tag on a sequence model: %v", err)
		}
	}
}

func TestTag(t *testing.T) {
	m := loadBERT(t, testmodels.BERTOptions{Task: TaskToken})
	type span struct {
		typ        string
		start, end int
	}
	for _, c := range []struct {
		text string
		want []span
	}{
		{"我要办理北京联通的宽带", []span{{"city", 4, 6}, {"carrier", 6, 8}}},
		{"上海移动", []span{{"city", 0, 2}, {"carrier", 2, 4}}},
		{"你好", nil},
		// 通 alone is I-carrier: it starts a span (lenient BIO).
		{"打不通", []span{{"carrier", 2, 3}}},
		// B then B: two spans.
		{"北上", []span{{"city", 0, 1}, {"city", 1, 2}}},
		// Offsets are runes of the original text, spaces included; I-city
		// continues the span across the space.
		{"hello 深 圳 ok", []span{{"city", 6, 9}}},
	} {
		spans, err := m.Tag(context.Background(), c.text)
		if err != nil {
			t.Fatal(err)
		}
		var got []span
		for _, s := range spans {
			got = append(got, span{s.Type, s.Start, s.End})
			if s.Confidence <= 0.5 || s.Confidence > 1 {
				t.Errorf("%q: confidence %v", c.text, s.Confidence)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q → %v, want %v", c.text, got, c.want)
		}
	}
	if _, err := m.Classify(context.Background(), "你好"); !errors.Is(err, ErrTask) {
		t.Errorf("Classify on a token model: %v", err)
	}
}

func TestTagContinuationPieces(t *testing.T) {
	// A word of several pieces is labelled by its first piece and the span
	// covers all of them. The generated token model tags letters O, so
	// check the decoding on a crafted label sequence instead.
	w := smallVocab(t)
	enc := w.Encode("cards 你", 0)
	if !slices.Equal(enc.Tokens, []string{"[CLS]", "card", "##s", "你", "[SEP]"}) {
		t.Fatalf("tokens %q", enc.Tokens)
	}
	m := &Model{task: TaskToken, labels: []string{"O", "B-x", "I-x"}}
	rows := [][]float32{{9, 0, 0}, {0, 9, 0}, {9, 0, 0}, {0, 0, 9}, {9, 0, 0}}
	spans := m.decode(enc, rows)
	if len(spans) != 1 || spans[0].Type != "x" || spans[0].Start != 0 || spans[0].End != 7 {
		t.Errorf("spans %+v", spans)
	}
}

func TestSplitBIO(t *testing.T) {
	for label, want := range map[string][2]string{
		"O": {"O", ""}, "B-carrier": {"B", "carrier"}, "I-carrier": {"I", "carrier"}, "B_city": {"B", "city"},
		"carrier": {"I", "carrier"}, "B-": {"I", "B-"}, "Bx": {"I", "Bx"},
	} {
		p, typ := splitBIO(label)
		if p != want[0] || typ != want[1] {
			t.Errorf("%q → %q %q, want %q", label, p, typ, want)
		}
	}
}

func TestBind(t *testing.T) {
	in := func(name string, dt inference.DType) inference.TensorSpec {
		return inference.TensorSpec{Name: name, DType: dt, Shape: []inference.Dim{{Size: -1, Sym: "N"}, {Size: -1, Sym: "T"}}}
	}
	logits := inference.TensorSpec{Name: "logits", DType: inference.Float32, Shape: []inference.Dim{{Size: -1, Sym: "N"}, {Size: 3}}}
	for _, c := range []struct {
		name  string
		ins   []inference.TensorSpec
		out   inference.TensorSpec
		roles []role
		err   string
	}{
		{"standard", []inference.TensorSpec{in("input_ids", inference.Int64), in("attention_mask", inference.Int64), in("token_type_ids", inference.Int64)}, logits, []role{roleIDs, roleMask, roleTypes}, ""},
		{"reordered", []inference.TensorSpec{in("input_ids", inference.Int64), in("segment_ids", inference.Int64), in("input_mask", inference.Int64)}, logits, []role{roleIDs, roleTypes, roleMask}, ""},
		{"two inputs", []inference.TensorSpec{in("ids", inference.Int32), in("mask", inference.Int32)}, logits, []role{roleIDs, roleMask}, ""},
		{"unknown names by position", []inference.TensorSpec{in("a", inference.Int64), in("b", inference.Int64), in("c", inference.Int64)}, logits, []role{roleIDs, roleMask, roleTypes}, ""},
		{"one input", []inference.TensorSpec{in("input_ids", inference.Int64)}, logits, nil, "has 1 inputs"},
		{"float input", []inference.TensorSpec{in("input_ids", inference.Float32), in("attention_mask", inference.Int64)}, logits, nil, "int64 or int32"},
		{"wrong class count", []inference.TensorSpec{in("input_ids", inference.Int64), in("attention_mask", inference.Int64)},
			inference.TensorSpec{Name: "logits", DType: inference.Float32, Shape: []inference.Dim{{Size: -1, Sym: "N"}, {Size: 4}}}, nil, "4 classes but the labels file lists 3"},
		{"token logits for a sequence task", []inference.TensorSpec{in("input_ids", inference.Int64), in("attention_mask", inference.Int64)},
			inference.TensorSpec{Name: "logits", DType: inference.Float32, Shape: []inference.Dim{{Size: -1, Sym: "N"}, {Size: -1, Sym: "T"}, {Size: 3}}}, nil, "rank 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &Model{task: TaskSequence, labels: []string{"a", "b", "c"}}
			err := m.bind(&inference.Contract{Inputs: c.ins, Outputs: []inference.TensorSpec{c.out}})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want …%s…", err, c.err)
				}
				return
			}
			if err != nil || !slices.Equal(m.roles, c.roles) {
				t.Fatalf("roles %v, err %v; want %v", m.roles, err, c.roles)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	rt := needRT(t)
	edit := func(t *testing.T, fn func(dir string)) string {
		dir := writeFolder(t, testmodels.BERT(testmodels.BERTOptions{}))
		fn(dir)
		return dir
	}
	replaceYAML := func(old, new string) func(string) {
		return func(dir string) {
			p := filepath.Join(dir, "model.yaml")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644)
		}
	}
	for _, c := range []struct {
		name string
		edit func(string)
		is   error
		msg  string
	}{
		{"no folder", func(dir string) { os.RemoveAll(dir) }, inference.ErrModelNotFound, "model.yaml does not exist"},
		{"kind", replaceYAML("kind: nlu-bert", "kind: nlu"), ErrModel, "kind: nlu-bert"},
		{"task", replaceYAML("task: sequence", "task: intent"), ErrModel, "metadata.task is \"intent\""},
		{"max_len", replaceYAML(`max_len: "64"`, `max_len: "1"`), ErrModel, "metadata.max_len"},
		{"lower_case", replaceYAML(`lower_case: "true"`, `lower_case: "maybe"`), ErrModel, "metadata.lower_case"},
		{"no vocab", func(dir string) { os.Remove(filepath.Join(dir, "vocab.txt")) }, ErrModel, "vocab.txt"},
		{"labels count", func(dir string) { os.WriteFile(filepath.Join(dir, "labels.txt"), []byte("a\nb\n"), 0o644) }, ErrModel, "5 classes but the labels file lists 2"},
		{"token task on sequence logits", replaceYAML("task: sequence", "task: token"), ErrModel, "rank 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := edit(t, c.edit)
			m, err := Load(context.Background(), rt, dir, inference.LoadOptions{Provider: "cpu", SkipVerify: true})
			if m != nil || !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("err = %v, want %v …%s…", err, c.is, c.msg)
			}
		})
	}
	// The sha256 of every file is checked before loading.
	dir := edit(t, func(dir string) { os.WriteFile(filepath.Join(dir, "labels.txt"), []byte("x\ny\n"), 0o644) })
	if _, err := Load(context.Background(), rt, dir, inference.LoadOptions{Provider: "cpu"}); !errors.Is(err, inference.ErrChecksum) {
		t.Errorf("tampered labels: %v", err)
	}
}

func TestClose(t *testing.T) {
	var nilModel *Model
	if err := nilModel.Close(); err != nil {
		t.Error(err)
	}
	m := loadBERT(t, testmodels.BERTOptions{})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Error("second Close:", err)
	}
	if _, err := m.Classify(context.Background(), "你好"); !errors.Is(err, inference.ErrClosed) {
		t.Errorf("Classify after Close: %v", err)
	}
}

func TestConcurrentClassify(t *testing.T) {
	m := loadBERT(t, testmodels.BERTOptions{})
	texts := map[string]string{"我想查一下余额": "query_balance", "帮我充值": "recharge", "你好": "other", "我要投诉": "complaint"}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for text, want := range texts {
				s, err := m.Classify(context.Background(), text)
				if err == nil && s[0].Label != want {
					err = errors.New(text + " → " + s[0].Label)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClassifyCanceled(t *testing.T) {
	m := loadBERT(t, testmodels.BERTOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Classify(ctx, "你好"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// BenchmarkClassify reports the latency of one Classify call on the CPU
// (the generated 2-layer, hidden-128 model; a 30-character text), p50 and
// p95 as metrics.
func BenchmarkClassify(b *testing.B) {
	for _, quant := range []bool{false, true} {
		b.Run(map[bool]string{false: "float32", true: "int8"}[quant], func(b *testing.B) {
			m := loadBenchModel(b, quant)
			text := "您好，我想查一下这个月的话费余额，顺便问问怎么充值流量"
			var lat []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := m.Classify(context.Background(), text); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds()), "p95-µs")
		})
	}
}

// TestBatchedMatchesSingle: with inference's micro-batching on, texts of
// different lengths are padded into one run (input_ids with [PAD],
// attention_mask with 0) and the answers equal those of single runs.
func TestBatchedMatchesSingle(t *testing.T) {
	rt := needRT(t)
	texts := []string{"你好", "我想查一下这个月的余额", "转人工", "北京联通的宽带怎么办理才能便宜一点", "上海移动", "投诉"}
	for _, task := range []string{TaskSequence, TaskToken} {
		dir := writeFolder(t, testmodels.BERT(testmodels.BERTOptions{Task: task}))
		single, err := Load(context.Background(), rt, dir, inference.LoadOptions{Provider: "cpu", Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer single.Close()
		batched, err := Load(context.Background(), rt, dir, inference.LoadOptions{Provider: "cpu", Batch: inference.BatchConfig{Mode: "on", MaxBatch: 8, MaxWait: 50 * time.Millisecond, QueueSize: 64}})
		if err != nil {
			t.Fatal(err)
		}
		defer batched.Close()
		answer := func(m *Model, text string) (string, error) {
			if task == TaskSequence {
				s, err := m.Classify(context.Background(), text)
				if err != nil {
					return "", err
				}
				return s[0].Label + " " + strconv.FormatFloat(s[0].P, 'f', 3, 64), nil
			}
			spans, err := m.Tag(context.Background(), text)
			return fmt.Sprintf("%+v", spans), err
		}
		want := map[string]string{}
		for _, text := range texts {
			a, err := answer(single, text)
			if err != nil {
				t.Fatal(err)
			}
			want[text] = a
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, text := range texts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := answer(batched, text)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Error(err)
				} else if got != want[text] {
					t.Errorf("%s %q: batched %s, single %s", task, text, got, want[text])
				}
			}()
		}
		wg.Wait()
	}
}
