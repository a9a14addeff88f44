package quantize

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/inferencetest"
	pb "github.com/zhiyin/zhiyin/inference/onnxpb"
	"github.com/zhiyin/zhiyin/inference/testmodels"
)

// The process's one ONNX Runtime, shared by the tests that check the
// numerics of quantized models.
var (
	testRT    *inference.Runtime
	testRTErr error
)

func TestMain(m *testing.M) {
	testRT, testRTErr = inferencetest.Start("../..")
	os.Exit(inferencetest.Run(m, testRT))
}

// loadGraph loads a generated model folder with its graph replaced by
// graph (the manifest's sha256 is not checked).
func loadGraph(tb testing.TB, f testmodels.Folder, graph []byte) *inference.Model {
	tb.Helper()
	rt := inferencetest.Need(tb, testRT, testRTErr)
	dir := filepath.Join(tb.TempDir(), f.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, file := range f.Files {
		data := file.Data
		if file.Name == "model.onnx" {
			data = graph
		}
		if err := os.WriteFile(filepath.Join(dir, file.Name), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	man, err := inference.ReadManifest(dir)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := rt.Load(context.Background(), man, inference.LoadOptions{Provider: "cpu", SkipVerify: true, Concurrency: 1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	return m
}

func run(tb testing.TB, m *inference.Model, ins ...inference.Tensor) []float32 {
	tb.Helper()
	outs, err := m.Run(context.Background(), ins)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := inference.Values[float32](outs[0])
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

func argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// bertInputs returns n deterministic encodings ([CLS] ids… [SEP]) of 4 to
// 48 tokens; every other one holds a keyword.
func bertInputs(task string, n int) [][]int64 {
	vocab := testmodels.BERTVocab()
	ids := map[string]int64{}
	for i, t := range vocab {
		ids[t] = int64(i)
	}
	var keywords []int64
	for tok := range testmodels.BERTKeywords(task) {
		keywords = append(keywords, ids[tok])
	}
	// Map order is random: sort for determinism.
	for i := range keywords {
		for j := i + 1; j < len(keywords); j++ {
			if keywords[j] < keywords[i] {
				keywords[i], keywords[j] = keywords[j], keywords[i]
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	var out [][]int64
	for i := 0; i < n; i++ {
		t := 4 + r.IntN(45)
		seq := []int64{ids["[CLS]"]}
		for j := 0; j < t-2; j++ {
			seq = append(seq, 5+r.Int64N(int64(len(vocab)-5)))
		}
		if i%2 == 0 {
			seq[1+r.IntN(t-2)] = keywords[r.IntN(len(keywords))]
		}
		out = append(out, append(seq, ids["[SEP]"]))
	}
	return out
}

func bertRun(tb testing.TB, m *inference.Model, seq []int64) []float32 {
	t := int64(len(seq))
	ones := make([]int64, t)
	for i := range ones {
		ones[i] = 1
	}
	return run(tb, m, inference.NewTensor([]int64{1, t}, seq), inference.NewTensor([]int64{1, t}, ones), inference.NewTensor([]int64{1, t}, make([]int64, t)))
}

// TestBERTNumerics quantizes the generated BERT models and compares the
// int8 model's logits with the float model's under ONNX Runtime.
func TestBERTNumerics(t *testing.T) {
	for _, task := range []string{testmodels.TaskSequence, testmodels.TaskToken} {
		for _, variant := range []struct {
			name string
			opts Options
		}{{"per-tensor", Options{}}, {"per-channel", Options{PerChannel: true}}, {"reduce-range", Options{ReduceRange: true}}, {"keep-gather", Options{KeepGather: true}}} {
			opts := variant.opts
			t.Run(task+"/"+variant.name, func(t *testing.T) {
				f := testmodels.BERT(testmodels.BERTOptions{Task: task})
				q, rep, err := Dynamic(f.Files[0].Data, opts)
				if err != nil {
					t.Fatal(err)
				}
				// 2 layers × 6 MatMuls + pooler (sequence) + word and position
				// embeddings (unless KeepGather).
				want := 12
				if task == testmodels.TaskSequence {
					want++
				}
				if !opts.KeepGather {
					want += 2
				}
				if len(rep.Quantized) != want {
					t.Errorf("quantized %d nodes, want %d: %v", len(rep.Quantized), want, rep.Quantized)
				}
				ratio := float64(rep.SizeBefore) / float64(rep.SizeAfter)
				if minRatio := map[bool]float64{false: 3, true: 1.4}[opts.KeepGather]; ratio < minRatio {
					t.Errorf("size %d -> %d (%.2fx), want at least %.1fx", rep.SizeBefore, rep.SizeAfter, ratio, minRatio)
				}
				fm, qm := loadGraph(t, f, f.Files[0].Data), loadGraph(t, f, q)
				c := len(testmodels.BERTLabels(task))
				minCos, agree, total := 1.0, 0, 0
				for _, seq := range bertInputs(task, 40) {
					a, b := bertRun(t, fm, seq), bertRun(t, qm, seq)
					for i := 0; i+c <= len(a); i += c {
						minCos = math.Min(minCos, cosine(a[i:i+c], b[i:i+c]))
						if argmax(a[i:i+c]) == argmax(b[i:i+c]) {
							agree++
						}
						total++
					}
				}
				t.Logf("size %d -> %d bytes (%.2fx); logits cosine min %.5f; argmax agreement %d/%d", rep.SizeBefore, rep.SizeAfter, ratio, minCos, agree, total)
				if minCos < 0.99 || float64(agree) < 0.97*float64(total) {
					t.Errorf("int8 model too far from float: cosine %.4f, agreement %d/%d", minCos, agree, total)
				}
			})
		}
	}
}

// TestGemmNumerics checks transB, alpha, beta and the bias under ONNX
// Runtime against the float model.
func TestGemmNumerics(t *testing.T) {
	attrs := []pb.Attr{{Name: "transB", Type: pb.AttrInt, I: 1}, {Name: "alpha", Type: pb.AttrFloat, F: 0.5}, {Name: "beta", Type: pb.AttrFloat, F: 2}}
	m := model([]pb.Node{{Name: "g", OpType: "Gemm", Inputs: []string{"x", "W", "C"}, Outputs: []string{"y"}, Attrs: attrs}},
		[]pb.Tensor{pb.FloatTensor("W", []int64{32, 64}, seq(2048, 0.5)), pb.FloatTensor("C", []int64{32}, seq(32, 1))},
		[]pb.ValueInfo{vi("x", pb.Float, "N", 64)}, []pb.ValueInfo{vi("y", pb.Float, "N", 32)})
	m.Opsets = []pb.Opset{{Version: 9}} // raised to 11 by the quantizer
	graph := m.Marshal()
	manifest := `name: gemm
kind: test
version: "1"
graph: model.onnx
files:
  - {path: model.onnx, sha256: 0000000000000000000000000000000000000000000000000000000000000000}
contract:
  batch_dim: N
  inputs:
    - {name: x, dtype: float32, shape: [N, 64]}
  outputs:
    - {name: y, dtype: float32, shape: [N, 32]}
`
	f := testmodels.Folder{Name: "gemm", Files: []testmodels.File{{Name: "model.onnx", Data: graph}, {Name: "model.yaml", Data: []byte(manifest)}}}
	for _, pc := range []bool{false, true} {
		q, rep, err := Dynamic(graph, Options{PerChannel: pc})
		if err != nil || len(rep.Quantized) != 1 {
			t.Fatalf("%v %+v", err, rep)
		}
		fm, qm := loadGraph(t, f, graph), loadGraph(t, f, q)
		x := inference.NewTensor([]int64{3, 64}, seq(192, 2))
		a, b := run(t, fm, x), run(t, qm, x)
		var maxErr, maxAbs float64
		for i := range a {
			maxErr = math.Max(maxErr, math.Abs(float64(a[i]-b[i])))
			maxAbs = math.Max(maxAbs, math.Abs(float64(a[i])))
		}
		t.Logf("per-channel=%v: max |float−int8| %.4f of max |y| %.3f", pc, maxErr, maxAbs)
		if maxErr > 0.02*maxAbs {
			t.Errorf("per-channel=%v: max error %.4f, max |y| %.3f", pc, maxErr, maxAbs)
		}
	}
}

// TestMLPNumerics quantizes the project's MLP test model.
func TestMLPNumerics(t *testing.T) {
	f := testmodels.Build("mlp")
	q, rep, err := Dynamic(f.Files[0].Data, Options{PerChannel: true})
	if err != nil || len(rep.Quantized) != 3 {
		t.Fatalf("%v %+v", err, rep)
	}
	fm, qm := loadGraph(t, f, f.Files[0].Data), loadGraph(t, f, q)
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, 64*256)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	in := inference.NewTensor([]int64{64, 256}, x)
	a, b := run(t, fm, in), run(t, qm, in)
	agree := 0
	for i := 0; i < 64; i++ {
		if argmax(a[i*16:(i+1)*16]) == argmax(b[i*16:(i+1)*16]) {
			agree++
		}
	}
	if c := cosine(a, b); c < 0.999 || agree < 60 {
		t.Errorf("cosine %.5f, argmax agreement %d/64", c, agree)
	}
}

func BenchmarkDynamicBERT(b *testing.B) {
	f := testmodels.BERT(testmodels.BERTOptions{})
	b.SetBytes(int64(len(f.Files[0].Data)))
	for b.Loop() {
		if _, _, err := Dynamic(f.Files[0].Data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
