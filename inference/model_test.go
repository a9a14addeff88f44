package inference

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/zhiyin/zhiyin/inference/onnxpb"
	"github.com/zhiyin/zhiyin/inference/testmodels"
)

// Every generated model loads, warms up and runs its warm-up shapes.
func TestLoadEveryTestModel(t *testing.T) {
	for _, name := range testmodels.Names() {
		t.Run(name, func(t *testing.T) {
			m := load(t, name, LoadOptions{Provider: "cpu", Concurrency: 1, Batch: BatchConfig{Mode: "auto", MaxBatch: 4, QueueSize: 8}})
			if m.EP() != "cpu" {
				t.Errorf("EP = %s", m.EP())
			}
			cases, err := m.warmupCases(false, 0)
			if err != nil {
				t.Fatal(err)
			}
			outs, err := m.Run(context.Background(), cases[0])
			if err != nil {
				t.Fatal(err)
			}
			if len(outs) != len(m.Contract().Outputs) {
				t.Fatalf("%d outputs", len(outs))
			}
			st := m.Stats()
			if st.Load <= 0 || st.Warmup <= 0 || st.LoadedAt.IsZero() {
				t.Errorf("stats not recorded: %+v", st)
			}
		})
	}
}

// The generated files are what the generator writes today.
func TestGeneratedModelsAreReproducible(t *testing.T) {
	for _, f := range testmodels.Generate() {
		for _, file := range f.Files {
			p := filepath.Join(testdataDir, f.Name, file.Name)
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("%v (run: go run ./scripts/gen-test-models)", err)
			}
			if !slices.Equal(got, file.Data) {
				t.Errorf("%s differs from the generator's output: run go run ./scripts/gen-test-models and commit", p)
			}
			if len(got) > 5<<20 {
				t.Errorf("%s is %d bytes; generated files must stay under 5 MB", p, len(got))
			}
		}
	}
}

// Our protobuf reader sees what ONNX Runtime sees.
func TestReadInfoMatchesORT(t *testing.T) {
	needRT(t)
	paths := []string{}
	for _, n := range testmodels.Names() {
		paths = append(paths, filepath.Join(testdataDir, n, "model.onnx"))
	}
	if p := "../third_party/models/silero-vad/silero_vad.onnx"; fileExists(p) {
		paths = append(paths, p)
	}
	for _, p := range paths {
		info, err := onnxpb.ReadInfoFile(p)
		if err != nil {
			t.Fatal(err)
		}
		ins, outs, err := ort.GetInputOutputInfo(p)
		if err != nil {
			t.Fatal(err)
		}
		cmp := func(what string, ours []onnxpb.ValueInfo, theirs []ort.InputOutputInfo) {
			if len(ours) != len(theirs) {
				t.Fatalf("%s %s: %d vs ORT %d", p, what, len(ours), len(theirs))
			}
			for i := range ours {
				o, e := ours[i], theirs[i]
				if o.Name != e.Name || int(o.ElemType) != int(e.DataType) || len(o.Shape) != len(e.Dimensions) {
					t.Errorf("%s %s %d: ours %+v, ORT %+v", p, what, i, o, e)
					continue
				}
				for j, d := range o.Shape {
					if d.Value != e.Dimensions[j] {
						t.Errorf("%s %s %s dim %d: ours %d, ORT %d", p, what, o.Name, j, d.Value, e.Dimensions[j])
					}
				}
			}
		}
		cmp("inputs", info.Inputs, ins)
		cmp("outputs", info.Outputs, outs)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// The int8 model computes x·dequantize(W).
func TestInt8Numerics(t *testing.T) {
	m := load(t, "int8", LoadOptions{Provider: "cpu", Concurrency: 1})
	q, scale := testmodels.Int8Weights()
	x := floats(2*16, func(i int) float32 { return float32(i%7) - 3 })
	outs, err := m.Run(context.Background(), []Tensor{NewTensor([]int64{2, 16}, x)})
	if err != nil {
		t.Fatal(err)
	}
	y, _ := Values[float32](outs[0])
	for r := 0; r < 2; r++ {
		for c := 0; c < 4; c++ {
			var want float64
			for k := 0; k < 16; k++ {
				want += float64(x[r*16+k]) * float64(q[k*4+c]) * float64(scale)
			}
			if got := y[r*4+c]; math.Abs(float64(got)-want) > 1e-3 {
				t.Errorf("y[%d,%d] = %v, want %v", r, c, got, want)
			}
		}
	}
}

func TestContractMismatch(t *testing.T) {
	needRT(t)
	cases := []struct {
		name   string
		edit   func(c *Contract)
		expect []string
	}{
		{"input name", func(c *Contract) { c.Inputs[0].Name = "speech" }, []string{"input 0", "name", "speech", "graph has x"}},
		{"alias accepted", func(c *Contract) { c.Inputs[0].Name, c.Inputs[0].Aliases = "speech", []string{"x"} }, nil},
		{"dtype", func(c *Contract) { c.Inputs[1].DType = Int64 }, []string{"input 1 (x_length)", "dtype", "int64", "int32"}},
		{"rank", func(c *Contract) { c.Inputs[0].Shape = c.Inputs[0].Shape[:2] }, []string{"input 0 (x)", "rank", "says 2"}},
		{"fixed dim", func(c *Contract) { c.Inputs[0].Shape[2] = Dim{Size: 560} }, []string{"input 0 (x)", "dim 2", "560", "16"}},
		{"dynamic vs fixed", func(c *Contract) { c.Outputs[0].Shape[2] = Dim{Size: -1, Sym: "T"} }, []string{"output 0 (y)", "dim 2", "dynamic T", "fixes it to 8"}},
		// A symbol no input binds (a vocabulary) may be fixed by the graph.
		{"free output symbol", func(c *Contract) { c.Outputs[0].Shape[2] = Dim{Size: -1, Sym: "V"} }, nil},
		{"count", func(c *Contract) { c.Outputs = c.Outputs[:1] }, []string{"outputs", "lists 1", "graph has 2", "y_length"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			man := testManifest(t, "dynlen")
			tc.edit(&man.Contract)
			m, err := testRT.Load(context.Background(), man, LoadOptions{Provider: "cpu", Concurrency: 1, SkipWarmup: true})
			if tc.expect == nil {
				if err != nil {
					t.Fatal(err)
				}
				_ = m.Close()
				return
			}
			if err == nil {
				_ = m.Close()
				t.Fatal("loaded")
			}
			if !errors.Is(err, ErrContract) {
				t.Fatalf("err = %v, want ErrContract", err)
			}
			for _, s := range tc.expect {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

// copyModel copies a test model folder to a temporary one.
func copyModel(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := copyTree(context.Background(), filepath.Join(testdataDir, name), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestMissingAndCorruptFiles(t *testing.T) {
	rt := needRT(t)
	t.Run("corrupt", func(t *testing.T) {
		dir := copyModel(t, "classifier")
		p := filepath.Join(dir, "model.onnx")
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0xff
		os.WriteFile(p, b, 0o644)
		man, err := ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = rt.Load(context.Background(), man, LoadOptions{})
		if !errors.Is(err, ErrChecksum) {
			t.Fatalf("err = %v, want ErrChecksum", err)
		}
		for _, s := range []string{p, man.Files[0].SHA256, "zhiyin models verify"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
	})
	t.Run("missing", func(t *testing.T) {
		dir := copyModel(t, "classifier")
		p := filepath.Join(dir, "model.onnx")
		os.Remove(p)
		man, _ := ReadManifest(dir)
		_, err := rt.Load(context.Background(), man, LoadOptions{})
		if !errors.Is(err, ErrMissingFile) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), man.Files[0].SHA256) {
			t.Fatalf("err = %v, want ErrMissingFile naming %s and its sha256", err, p)
		}
	})
	t.Run("not onnx", func(t *testing.T) {
		dir := copyModel(t, "classifier")
		p := filepath.Join(dir, "model.onnx")
		os.WriteFile(p, []byte("not a model"), 0o644)
		man, _ := ReadManifest(dir)
		_, err := rt.Load(context.Background(), man, LoadOptions{SkipVerify: true})
		if !errors.Is(err, onnxpb.ErrMalformed) || !strings.Contains(err.Error(), p) {
			t.Fatalf("err = %v, want ErrMalformed naming %s", err, p)
		}
	})
	t.Run("no manifest", func(t *testing.T) {
		_, err := ReadManifest(t.TempDir())
		if !errors.Is(err, ErrModelNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestBadInputs(t *testing.T) {
	m := load(t, "dynlen", LoadOptions{Provider: "cpu", Concurrency: 1})
	x := func(n, T int) Tensor { return NewTensor([]int64{int64(n), int64(T), 16}, make([]float32, n*T*16)) }
	l := func(v ...int32) Tensor { return NewTensor([]int64{int64(len(v))}, v) }
	cases := []struct {
		name   string
		in     []Tensor
		expect []string
	}{
		{"count", []Tensor{x(1, 3)}, []string{"got 1 inputs", "takes 2", "x, x_length"}},
		{"dtype", []Tensor{x(1, 3), NewTensor([]int64{1}, []int64{3})}, []string{"input 1 (x_length)", "dtype", "int64", "int32"}},
		{"rank", []Tensor{NewTensor([]int64{3, 16}, make([]float32, 48)), l(3)}, []string{"input 0 (x)", "rank", "[N T 16]"}},
		{"fixed dim", []Tensor{NewTensor([]int64{1, 3, 15}, make([]float32, 45)), l(3)}, []string{"input 0 (x)", "dim 2", "got 15", "says 16"}},
		{"symbol", []Tensor{x(2, 3), l(3)}, []string{"input 1 (x_length)", "dim 0 (N)", "got 1", "N to 2"}},
		{"data length", []Tensor{NewTensor([]int64{1, 3, 16}, make([]float32, 10)), l(3)}, []string{"input 0 (x)", "needs 48", "got 10"}},
		{"data type", []Tensor{{Shape: []int64{1}, Data: []string{"a"}}, l(3)}, []string{"input 0 (x)", "[]string"}},
		{"negative", []Tensor{{Shape: []int64{-1, 3, 16}, Data: []float32{}}, l(3)}, []string{"negative"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Run(context.Background(), tc.in)
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("err = %v, want ErrBadInput", err)
			}
			for _, s := range tc.expect {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
	if _, err := m.Run(context.Background(), []Tensor{x(1, 3), l(3)}); err != nil {
		t.Fatalf("model unusable after bad inputs: %v", err)
	}
}

func multioInputs(n int, id int64) []Tensor {
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = (int64(i) + id) % 16
	}
	if id >= 16 {
		ids[n-1] = id
	}
	return []Tensor{
		NewTensor([]int64{int64(n), 8}, floats(n*8, func(i int) float32 { return float32(i%5) * 0.1 })),
		NewTensor([]int64{int64(n)}, ids),
		NewTensor([]int64{1}, []float32{1.5}),
	}
}

// An ONNX Runtime error fails only that call; the model stays usable, also
// when the bad request shares a batch with good ones.
func TestRunErrorKeepsModelUsable(t *testing.T) {
	for _, mode := range []string{"off", "on"} {
		t.Run("batching "+mode, func(t *testing.T) {
			m := load(t, "multio", LoadOptions{Provider: "cpu", Concurrency: 1, Batch: BatchConfig{Mode: mode, MaxBatch: 8, MaxWait: 20 * time.Millisecond, QueueSize: 16}})
			_, err := m.Run(context.Background(), multioInputs(2, 100))
			if !errors.Is(err, ErrRun) || !strings.Contains(err.Error(), "multio") {
				t.Fatalf("err = %v, want ErrRun", err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 6)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := int64(i)
					if i == 3 {
						id = 99
					}
					_, errs[i] = m.Run(context.Background(), multioInputs(1+i%2, id))
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if i == 3 {
					if !errors.Is(err, ErrRun) {
						t.Errorf("bad request: err = %v, want ErrRun", err)
					}
				} else if err != nil {
					t.Errorf("good request %d failed: %v", i, err)
				}
			}
		})
	}
}

// Cancelling the context terminates the ONNX Runtime run.
func TestCancelTerminatesRun(t *testing.T) {
	m := load(t, "slow", LoadOptions{Provider: "cpu", Concurrency: 1})
	in := []Tensor{NewTensor([]int64{1024, 256}, make([]float32, 1024*256))}
	t0 := time.Now()
	if _, err := m.Run(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	full := time.Since(t0)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(full/10, cancel)
	t0 = time.Now()
	_, err := m.Run(ctx, in)
	took := time.Since(t0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	t.Logf("full run %s, cancelled after %s returned in %s", full, full/10, took)
	// Terminated, not run to the end (a loose bound: full is ~10× the cancel delay).
	if took > full*3/4 {
		t.Errorf("cancelled run took %s, the full run %s: not terminated", took, full)
	}
	// The slot and run options are usable again.
	if _, err := m.Run(context.Background(), []Tensor{NewTensor([]int64{1, 256}, make([]float32, 256))}); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}

// A cancelled caller leaves the batch queue (or the batch being formed) at
// once, freeing its place.
func TestCancelFreesBatchSlot(t *testing.T) {
	met, _ := NewMetrics(nil)
	m := load(t, "slow", LoadOptions{Provider: "cpu", Concurrency: 1, Metrics: met, Batch: BatchConfig{Mode: "on", MaxBatch: 1, QueueSize: 1}, SkipWarmup: true})
	// ~30 s of work: it holds the only run slot until the test cancels it.
	big := []Tensor{NewTensor([]int64{1 << 15, 256}, make([]float32, 1<<23))}
	small := []Tensor{NewTensor([]int64{1, 256}, make([]float32, 256))}
	longCtx, stopLong := context.WithCancel(context.Background())
	defer stopLong()
	longDone := make(chan error, 1)
	go func() { _, err := m.Run(longCtx, big); longDone <- err }()
	waitFor(t, func() bool { return histCount(t, met.batchSize.WithLabelValues("slow", "1")) == 1 })
	queued := func() int { m.batch.mu.Lock(); defer m.batch.mu.Unlock(); return m.batch.n }
	// One request forms the next batch (full at 1 row), one waits in the
	// queue (full at 1).
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, err := m.Run(ctx, small); errs <- err }()
	waitFor(t, func() bool { return m.batch.taken.Load() == 2 })
	go func() { _, err := m.Run(ctx, small); errs <- err }()
	waitFor(t, func() bool { return queued() == 1 })
	if _, err := m.Run(context.Background(), small); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("third request: err = %v, want ErrOverloaded", err)
	}
	cancel()
	for i := 0; i < 2; i++ {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled request: err = %v", err)
		}
	}
	// Their places are free while the long run still holds the slot.
	waitFor(t, func() bool { return queued() == 0 })
	done := make(chan error, 1)
	go func() { _, err := m.Run(context.Background(), small); done <- err }()
	waitFor(t, func() bool { return m.batch.taken.Load() == 3 }) // in the forming batch
	stopLong()
	if err := <-longDone; !errors.Is(err, context.Canceled) {
		t.Errorf("long run: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("request after cancellations: %v", err)
	}
	// The cancelled requests never ran: 1 long batch + 1 small one.
	if n := histCount(t, met.batchSize.WithLabelValues("slow", "1")); n != 2 {
		t.Errorf("%d batches ran, want 2", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Batched results equal unbatched ones, with variable lengths padded and
// trimmed back (dynlen) and with rows of equal shape concatenated (multio,
// with a shared non-batched input).
func TestBatchingMatchesUnbatched(t *testing.T) {
	const n = 8
	gen := map[string]func(i int) []Tensor{
		"dynlen": func(i int) []Tensor {
			rows, T := 1+i%2, 3+5*i
			x := floats(rows*T*16, func(k int) float32 { return float32((k*7+i)%13) - 6 })
			lens := make([]int32, rows)
			for r := range lens {
				lens[r] = int32(T)
			}
			return []Tensor{NewTensor([]int64{int64(rows), int64(T), 16}, x), NewTensor([]int64{int64(rows)}, lens)}
		},
		"multio": func(i int) []Tensor {
			in := multioInputs(1+i%3, int64(i))
			in[0] = NewTensor(in[0].Shape, floats(in[0].Len(), func(k int) float32 { return float32((k+i)%5) * 0.3 }))
			return in
		},
	}
	for name, mk := range gen {
		t.Run(name, func(t *testing.T) {
			single := load(t, name, LoadOptions{Provider: "cpu", Concurrency: 1})
			met, _ := NewMetrics(nil)
			batched := load(t, name, LoadOptions{Provider: "cpu", Concurrency: 1, Metrics: met,
				Batch: BatchConfig{Mode: "on", MaxBatch: 16, MaxWait: 200 * time.Millisecond, QueueSize: 64}})
			if on, _ := batched.Batching(); !on {
				t.Fatal("batching is off")
			}
			inputs := make([][]Tensor, n)
			for i := range inputs {
				inputs[i] = mk(i)
			}
			got := make([][]Tensor, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range inputs {
				wg.Add(1)
				go func() { defer wg.Done(); got[i], errs[i] = batched.Run(context.Background(), inputs[i]) }()
			}
			wg.Wait()
			for i := range inputs {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				want, err := single.Run(context.Background(), inputs[i])
				if err != nil {
					t.Fatal(err)
				}
				for j := range want {
					if !slices.Equal(got[i][j].Shape, want[j].Shape) {
						t.Fatalf("request %d output %d: shape %v, want %v", i, j, got[i][j].Shape, want[j].Shape)
					}
					if !compareOutputs("close", j, 1e-5, got[i], want) {
						t.Errorf("request %d output %d differs", i, j)
					}
				}
			}
			if c := histCount(t, met.batchSize.WithLabelValues(name, "1")); c >= n {
				t.Errorf("%d runs for %d requests: nothing was batched", c, n)
			}
		})
	}
}

func TestCloseIsIdempotentAndNilSafe(t *testing.T) {
	var nilModel *Model
	if err := nilModel.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := nilModel.Run(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	rt := needRT(t)
	for _, mode := range []string{"off", "on"} {
		m, err := rt.Load(context.Background(), testManifest(t, "classifier"), LoadOptions{Provider: "cpu", Batch: BatchConfig{Mode: mode, MaxBatch: 4, QueueSize: 4}})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		in := []Tensor{NewTensor([]int64{1, 32}, make([]float32, 32))}
		if _, err := m.Run(context.Background(), in); !errors.Is(err, ErrClosed) {
			t.Fatalf("run after close: %v", err)
		}
	}
	var nilRT *Runtime
	if err := nilRT.Close(); err != nil {
		t.Fatal(err)
	}
}

// Shutdown with an expired context terminates runs still executing.
func TestShutdownTerminatesRunning(t *testing.T) {
	rt := needRT(t)
	m, err := rt.Load(context.Background(), testManifest(t, "slow"), LoadOptions{Provider: "cpu", Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := m.Run(context.Background(), []Tensor{NewTensor([]int64{2048, 256}, make([]float32, 2048*256))})
		done <- err
	}()
	waitFor(t, func() bool { return len(m.slots) == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("running request: err = %v, want ErrClosed", err)
	}
}

func TestSileroVAD(t *testing.T) {
	rt := needRT(t)
	man, err := ReadManifest("../models/silero-vad")
	if err != nil {
		t.Fatal(err)
	}
	man.Dir = "../third_party/models/silero-vad"
	if !fileExists(man.GraphPath()) {
		t.Skip("needs the Silero VAD weights: run scripts/fetch-deps.sh")
	}
	m, err := rt.Load(context.Background(), man, LoadOptions{Provider: "auto", Batch: BatchConfig{Mode: "auto", MaxBatch: 8, QueueSize: 8}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if on, _ := m.Batching(); on {
		t.Error("stateful VAD is batched")
	}
	state := NewTensor([]int64{2, 1, 128}, make([]float32, 256))
	var probs []float32
	for i := 0; i < 4; i++ {
		// A 440 Hz tone is not speech; silence neither: low probabilities.
		x := floats(576, func(k int) float32 { return 0.1 * float32(math.Sin(float64(k+512*i)*2*math.Pi*440/16000)) })
		outs, err := m.Run(context.Background(), []Tensor{NewTensor([]int64{1, 576}, x), state, NewTensor([]int64{}, []int64{16000})})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(outs[0].Shape, []int64{1, 1}) || !slices.Equal(outs[1].Shape, []int64{2, 1, 128}) {
			t.Fatalf("shapes %v %v", outs[0].Shape, outs[1].Shape)
		}
		p, _ := Values[float32](outs[0])
		probs = append(probs, p[0])
		state = outs[1]
	}
	for _, p := range probs {
		if p < 0 || p > 1 || math.IsNaN(float64(p)) {
			t.Fatalf("probabilities %v", probs)
		}
	}
}

// Requests share a batch only when their lengths are within LengthRatio of
// every request already in it; the batch symbol and unbound symbols do not
// count.
func TestSameBucket(t *testing.T) {
	req := func(vals ...int64) *batchReq { return &batchReq{vals: vals} }
	b := &batcher{m: &Model{cc: &compiled{batchSym: 0}}, cfg: BatchConfig{LengthRatio: 1.5}}
	batch := []*batchReq{req(1, 100, -1), req(3, 120, -1)}
	for _, c := range []struct {
		r    *batchReq
		want bool
	}{
		{req(8, 150, -1), true},   // 150 ≤ 1.5·100
		{req(1, 151, -1), false},  // too long for the shortest
		{req(1, 80, -1), true},    // 120 ≤ 1.5·80
		{req(1, 79, -1), false},   // too short for the longest
		{req(1, 100, 9000), true}, // an output-only symbol bound by nobody else
	} {
		if got := b.sameBucket(batch, c.r); got != c.want {
			t.Errorf("vals %v: sameBucket = %v, want %v", c.r.vals, got, c.want)
		}
	}
	b.cfg.LengthRatio = 0
	if !b.sameBucket(batch, req(1, 10000, -1)) {
		t.Error("LengthRatio 0 must batch any lengths")
	}
}
