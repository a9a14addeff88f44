package inference

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestCUDAOnGPU runs a model on a real GPU: device memory before load,
// after load and after Close (which must return to within 5% of the
// baseline), and the warm-up effect (first request vs steady state).
func TestCUDAOnGPU(t *testing.T) {
	rt := needRT(t)
	st := rt.CUDA()
	if !st.Usable {
		t.Skipf("needs an NVIDIA GPU with its driver, CUDA 13, cuDNN 9 and the CUDA build of ONNX Runtime "+
			"(scripts/fetch-deps.sh --cuda, then ZHIYIN_ORT_LIB=third_party/onnxruntime-cuda/libonnxruntime.so.1): %s: %s", st.Reason, st.Detail)
	}
	used := func() float64 {
		u, ok := rt.gpuUsed()
		if !ok {
			t.Fatal("NVML cannot read the GPU's memory")
		}
		return float64(u)
	}
	// The process's CUDA context (created by the first session, kept by
	// the driver until exit) is not the model's: the baseline is taken
	// after one load and Close.
	before := used()
	prime, err := rt.Load(context.Background(), testManifest(t, "mlp"), LoadOptions{Provider: "cuda", Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	prime.Close()
	base := used()
	t.Logf("VRAM before any CUDA session %.0f MiB; with the CUDA context %.0f MiB", before/(1<<20), base/(1<<20))
	for _, warm := range []bool{true, false} {
		m, err := rt.Load(context.Background(), testManifest(t, "mlp"), LoadOptions{Provider: "cuda", Concurrency: 1, SkipWarmup: !warm})
		if err != nil {
			t.Fatal(err)
		}
		if m.EP() != "cuda" {
			r, d := m.Fallback()
			t.Fatalf("runs on %s: %s %s", m.EP(), r, d)
		}
		loaded := used()
		in := []Tensor{NewTensor([]int64{1, 256}, make([]float32, 256))}
		t0 := time.Now()
		if _, err := m.Run(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		first := time.Since(t0)
		var lat []time.Duration
		for i := 0; i < 200; i++ {
			t0 := time.Now()
			if _, err := m.Run(context.Background(), in); err != nil {
				t.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		p50 := lat[len(lat)/2]
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		after := used()
		t.Logf("warm-up %v: VRAM before %.0f MiB, loaded %.0f MiB (model %d MiB), after Close %.0f MiB; first request %s, p50 %s (%.1f×)",
			warm, base/(1<<20), loaded/(1<<20), m.Stats().GPUMemory>>20, after/(1<<20), first, p50, float64(first)/float64(p50))
		if after > base*1.05 {
			t.Errorf("VRAM after Close %.0f MiB, more than 5%% above the baseline %.0f MiB", after/(1<<20), base/(1<<20))
		}
		if warm && first > 2*p50 {
			t.Errorf("first request after warm-up %s > 2× p50 %s", first, p50)
		}
	}
}
