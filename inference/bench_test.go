package inference

import (
	"context"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// Speed and memory targets (issue 3), reported as custom metrics:
//
//	BenchmarkOverhead          ratio, ratio-prealloc ≤ 1.10  (this package's Run vs a bare onnxruntime_go call)
//	BenchmarkBatching          speedup ≥ 3   (64 concurrent callers, batched vs unbatched)
//	BenchmarkFirstRequest      first/p50 ≤ 2 (first request after load vs steady state)
//	BenchmarkLoadRunCloseRSS   MB ≤ 5        (RSS growth over 100 load → run → Close cycles)
//
// go test -run '^$' -bench . -count 5 ./inference/

// bareSession opens the model's graph with onnxruntime_go directly, with
// the same session options this package uses.
func bareSession(b *testing.B, rt *Runtime, name string, in, out []string) *ort.DynamicAdvancedSession {
	so, err := rt.cpuOptions()
	if err != nil {
		b.Fatal(err)
	}
	defer so.Destroy()
	s, err := ort.NewDynamicAdvancedSession(filepath.Join(testdataDir, name, "model.onnx"), in, out, so)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkOverhead interleaves blocks of bare onnxruntime_go calls and
// Model.Run calls on the small classifier (batch 1) and reports the ratio
// of their times, so that machine load affects both alike.
func BenchmarkOverhead(b *testing.B) {
	rt := needRT(b)
	sess := bareSession(b, rt, "classifier", []string{"x"}, []string{"logits", "label"})
	defer sess.Destroy()
	m := load(b, "classifier", LoadOptions{Provider: "cpu", Concurrency: 1, Batch: BatchConfig{Mode: "off"}})
	x := floats(32, func(i int) float32 { return float32(i%7) - 3 })
	shape := ort.NewShape(1, 32)
	bare := func() {
		in, err := ort.NewTensor(shape, x)
		if err != nil {
			b.Fatal(err)
		}
		outs := []ort.Value{nil, nil}
		if err := sess.Run([]ort.Value{in}, outs); err != nil {
			b.Fatal(err)
		}
		// What a caller needs: each output's data and shape.
		o0, o1 := outs[0].(*ort.Tensor[float32]), outs[1].(*ort.Tensor[int64])
		_, _ = o0.GetData(), o0.GetShape()
		_, _ = o1.GetData(), o1.GetShape()
		in.Destroy()
		outs[0].Destroy()
		outs[1].Destroy()
	}
	// The same done the best way onnxruntime_go allows: output tensors
	// allocated in Go before the run (fresh per call, as they belong to
	// the caller), so ONNX Runtime writes them in place.
	barePre := func() {
		in, err := ort.NewTensor(shape, x)
		if err != nil {
			b.Fatal(err)
		}
		o0, _ := ort.NewTensor(ort.NewShape(1, 8), make([]float32, 8))
		o1, _ := ort.NewTensor(ort.NewShape(1), make([]int64, 1))
		if err := sess.Run([]ort.Value{in}, []ort.Value{o0, o1}); err != nil {
			b.Fatal(err)
		}
		_, _ = o0.GetData(), o1.GetData()
		in.Destroy()
		o0.Destroy()
		o1.Destroy()
	}
	inputs := []Tensor{NewTensor([]int64{1, 32}, x)}
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ours := func(ctx context.Context) func() {
		return func() {
			outs, err := m.Run(ctx, inputs)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = Values[float32](outs[0])
		}
	}
	fns := []func(){bare, barePre, ours(context.Background()), ours(cctx)}
	for _, f := range fns {
		for i := 0; i < 200; i++ {
			f()
		}
	}
	const block = 64
	var total [4]time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Alternate the order so that neither side always runs first.
		for jj := range fns {
			j := jj
			if i%2 == 1 {
				j = len(fns) - 1 - jj
			}
			t0 := time.Now()
			for k := 0; k < block; k++ {
				fns[j]()
			}
			total[j] += time.Since(t0)
		}
	}
	n := float64(b.N * block)
	b.ReportMetric(float64(total[0].Nanoseconds())/n, "bare-ns/call")
	b.ReportMetric(float64(total[1].Nanoseconds())/n, "bare-prealloc-ns/call")
	b.ReportMetric(float64(total[2].Nanoseconds())/n, "zhiyin-ns/call")
	// ratio: against the usual bare call (outputs allocated by ORT);
	// ratio-prealloc: against the best bare call; cancelctx: Run with a
	// cancellable context (terminate hook armed).
	b.ReportMetric(float64(total[2])/float64(total[0]), "ratio")
	b.ReportMetric(float64(total[2])/float64(total[1]), "ratio-prealloc")
	b.ReportMetric(float64(total[3])/float64(total[1]), "ratio-prealloc-cancelctx")
}

// throughput runs n requests from 64 concurrent callers and returns
// requests per second.
func throughput(b *testing.B, m *Model, n int, in []Tensor) float64 {
	const callers = 64
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := m.Run(context.Background(), in); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(t0).Seconds()
}

// BenchmarkBatching compares the throughput of a batchable model under 64
// concurrent callers without batching (the better of 1 and 2 concurrent
// runs) and with micro-batching as configured by default.
func BenchmarkBatching(b *testing.B) {
	for _, name := range []string{"encoder", "mlp", "classifier"} {
		b.Run(name, func(b *testing.B) {
			width := map[string]int64{"encoder": 128, "mlp": 256, "classifier": 32}[name]
			in := []Tensor{NewTensor([]int64{1, width}, floats(int(width), func(i int) float32 { return float32(i%9)/9 - .5 }))}
			modes := []struct {
				label string
				opts  LoadOptions
			}{
				{"unbatched-c1", LoadOptions{Provider: "cpu", Concurrency: 1, Batch: BatchConfig{Mode: "off"}}},
				{"unbatched-c2", LoadOptions{Provider: "cpu", Concurrency: 2, Batch: BatchConfig{Mode: "off"}}},
				// The defaults: one run at a time, max_batch 32, max_wait 2ms.
				{"batched", LoadOptions{Provider: "cpu", Batch: DefaultConfig().Batching}},
			}
			models := make([]*Model, len(modes))
			for i, md := range modes {
				models[i] = load(b, name, md.opts)
				throughput(b, models[i], 256, in) // warm the path
			}
			// Short rounds, modes interleaved, speedup taken per round: load
			// from elsewhere on the machine hits every mode alike.
			const perRound = 2048
			rates := make([][]float64, len(modes))
			var speedups []float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range modes {
					rates[j] = append(rates[j], throughput(b, models[j], perRound, in))
				}
				speedups = append(speedups, rates[2][i]/max(rates[0][i], rates[1][i]))
			}
			for j := range modes {
				b.ReportMetric(median(rates[j]), modes[j].label+"-req/s")
			}
			b.ReportMetric(median(speedups), "speedup")
		})
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkFirstRequest loads a model, times its first request and then the
// steady-state median, with and without warm-up.
func BenchmarkFirstRequest(b *testing.B) {
	rt := needRT(b)
	type tc struct {
		name string
		man  func() *Manifest
		in   []Tensor
	}
	cases := []tc{
		{"mlp", func() *Manifest { return testManifest(b, "mlp") }, []Tensor{NewTensor([]int64{1, 256}, make([]float32, 256))}},
		{"dynlen", func() *Manifest { return testManifest(b, "dynlen") }, []Tensor{
			NewTensor([]int64{1, 50, 16}, make([]float32, 50*16)), NewTensor([]int64{1}, []int32{50})}},
	}
	if vad, err := ReadManifest("../models/silero-vad"); err == nil {
		vad.Dir = "../third_party/models/silero-vad"
		if fileExists(vad.GraphPath()) {
			cases = append(cases, tc{"silero-vad", func() *Manifest { return vad }, []Tensor{
				NewTensor([]int64{1, 576}, make([]float32, 576)), NewTensor([]int64{2, 1, 128}, make([]float32, 256)), NewTensor([]int64{}, []int64{16000})}})
		}
	}
	for _, c := range cases {
		for _, warm := range []bool{true, false} {
			label := c.name + "/warmup"
			if !warm {
				label = c.name + "/cold"
			}
			b.Run(label, func(b *testing.B) {
				var ratios []float64
				for i := 0; i < b.N; i++ {
					m, err := rt.Load(context.Background(), c.man(), LoadOptions{Provider: "cpu", Concurrency: 1, Batch: BatchConfig{Mode: "off"}, SkipWarmup: !warm})
					if err != nil {
						b.Fatal(err)
					}
					t0 := time.Now()
					if _, err := m.Run(context.Background(), c.in); err != nil {
						b.Fatal(err)
					}
					first := time.Since(t0)
					lat := make([]time.Duration, 100)
					for k := range lat {
						t0 := time.Now()
						if _, err := m.Run(context.Background(), c.in); err != nil {
							b.Fatal(err)
						}
						lat[k] = time.Since(t0)
					}
					m.Close()
					slices.Sort(lat)
					ratios = append(ratios, float64(first)/float64(lat[len(lat)/2]))
				}
				slices.Sort(ratios)
				b.ReportMetric(ratios[len(ratios)/2], "first/p50")
			})
		}
	}
}

// BenchmarkLoadRunCloseRSS measures RSS growth over 100 load → run → Close
// cycles (after 5 cycles that bring in code and allocator pools).
func BenchmarkLoadRunCloseRSS(b *testing.B) {
	rt := needRT(b)
	for _, name := range []string{"mlp", "dynlen"} {
		b.Run(name, func(b *testing.B) {
			man := testManifest(b, name)
			cycle := func() {
				m, err := rt.Load(context.Background(), man, LoadOptions{Provider: "cpu", Concurrency: 2, Batch: BatchConfig{Mode: "auto", MaxBatch: 8, QueueSize: 16}})
				if err != nil {
					b.Fatal(err)
				}
				cases, _ := m.warmupCases(false, 0)
				if _, err := m.Run(context.Background(), cases[0]); err != nil {
					b.Fatal(err)
				}
				if err := m.Close(); err != nil {
					b.Fatal(err)
				}
			}
			var growth []float64
			for i := 0; i < b.N; i++ {
				for k := 0; k < 5; k++ {
					cycle()
				}
				runtime.GC()
				debug.FreeOSMemory()
				before := processRSS()
				for k := 0; k < 100; k++ {
					cycle()
				}
				runtime.GC()
				debug.FreeOSMemory()
				growth = append(growth, float64(processRSS()-before)/(1<<20))
			}
			slices.Sort(growth)
			b.ReportMetric(growth[len(growth)/2], "MB-growth/100cycles")
		})
	}
}
