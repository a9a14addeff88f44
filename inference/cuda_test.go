package inference

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// setProbe makes the shared runtime see a CUDA status until the test ends.
func setProbe(t *testing.T, rt *Runtime, probe func(string, int) CUDAStatus) {
	t.Helper()
	rt.mu.Lock()
	old := rt.probe
	rt.probe, rt.cuda = probe, nil
	rt.mu.Unlock()
	t.Cleanup(func() {
		rt.mu.Lock()
		rt.probe, rt.cuda = old, nil
		rt.mu.Unlock()
	})
}

// With the CPU-only ONNX Runtime, a model asked to run on CUDA (or auto)
// runs on the CPU, with one log line, a metric and the reason.
func TestCUDAFallbackWithoutProviderLibrary(t *testing.T) {
	rt := needRT(t)
	if st := rt.CUDA(); st.Usable {
		t.Skip("this machine has a usable CUDA provider; TestCUDAOnGPU covers it")
	}
	for _, provider := range []string{"cuda", "auto"} {
		t.Run(provider, func(t *testing.T) {
			var logs logBuffer
			met, _ := NewMetrics(nil)
			m, err := rt.Load(context.Background(), testManifest(t, "classifier"), LoadOptions{Provider: provider, Concurrency: 1, Metrics: met,
				Log: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			reason, detail := m.Fallback()
			if m.EP() != "cpu" || reason != FallbackNoProviderLibrary || !strings.Contains(detail, cudaProviderLib) {
				t.Errorf("EP %s, fallback %s: %s", m.EP(), reason, detail)
			}
			if n := counterValue(t, met.fallbacks.WithLabelValues("classifier", FallbackNoProviderLibrary)); n != 1 {
				t.Errorf("fallback metric = %v", n)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			level := map[string]string{"cuda": "level=WARN", "auto": "level=INFO"}[provider]
			if len(lines) != 1 || !strings.Contains(lines[0], level) || !strings.Contains(lines[0], "running on CPU") || !strings.Contains(lines[0], FallbackNoProviderLibrary) {
				t.Errorf("want one clear warning, got:\n%s", logs.String())
			}
			if _, err := m.Run(context.Background(), classifierInput(1)); err != nil {
				t.Fatal(err)
			}
		})
	}
	// cpu asks for nothing: no fallback.
	m := load(t, "classifier", LoadOptions{Provider: "cpu", Concurrency: 1})
	if r, _ := m.Fallback(); r != "" {
		t.Errorf("cpu model reports fallback %s", r)
	}
}

// When the probe passes but ONNX Runtime refuses the CUDA provider (here:
// a CPU-only library), the model falls back with provider_error.
func TestCUDAFallbackWhenProviderFails(t *testing.T) {
	rt := needRT(t)
	if rt.CUDA().Usable {
		t.Skip("this machine has a usable CUDA provider")
	}
	setProbe(t, rt, func(string, int) CUDAStatus { return CUDAStatus{Usable: true, Detail: "pretend"} })
	met, _ := NewMetrics(nil)
	m, err := rt.Load(context.Background(), testManifest(t, "classifier"), LoadOptions{Provider: "cuda", Concurrency: 1, Metrics: met})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	reason, detail := m.Fallback()
	if m.EP() != "cpu" || reason != FallbackProviderError || detail == "" {
		t.Fatalf("EP %s, fallback %s: %s", m.EP(), reason, detail)
	}
	t.Logf("ONNX Runtime said: %s", firstLine(detail))
	if n := counterValue(t, met.fallbacks.WithLabelValues("classifier", FallbackProviderError)); n != 1 {
		t.Errorf("fallback metric = %v", n)
	}
	if _, err := m.Run(context.Background(), classifierInput(1)); err != nil {
		t.Fatal(err)
	}
}

func TestCUDAOptionsMapping(t *testing.T) {
	c := DefaultConfig().CUDA
	c.DeviceID, c.MemoryLimit, c.ArenaExtendStrategy, c.CuDNNConvAlgoSearch, c.CopyInDefaultStream = 1, 2<<30, "next_power_of_two", "exhaustive", false
	got := cudaOptions(c)
	want := map[string]string{"device_id": "1", "gpu_mem_limit": "2147483648", "arena_extend_strategy": "kNextPowerOfTwo",
		"cudnn_conv_algo_search": "EXHAUSTIVE", "do_copy_in_default_stream": "0"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	d := cudaOptions(DefaultConfig().CUDA)
	if d["arena_extend_strategy"] != "kSameAsRequested" || d["cudnn_conv_algo_search"] != "HEURISTIC" || d["do_copy_in_default_stream"] != "1" || d["gpu_mem_limit"] != "" {
		t.Errorf("defaults %v", d)
	}
}

// NVML and the CUDA driver are absent here: the probes say so cleanly.
func TestGPUProbesDegrade(t *testing.T) {
	if n, err := openNVML(); err == nil {
		gpus, _ := n.gpus()
		n.close()
		t.Skipf("NVML present (%d GPUs); nothing to degrade", len(gpus))
	} else if !strings.Contains(err.Error(), nvmlLibrary) {
		t.Errorf("NVML error does not name the library: %v", err)
	}
	if _, _, err := cudaDriverDevices(); err == nil {
		t.Skip("CUDA driver present")
	} else if !strings.Contains(err.Error(), "driver") {
		t.Errorf("driver error: %v", err)
	}
	lib := t.TempDir() + "/libonnxruntime.so.1"
	os.WriteFile(filepath.Join(filepath.Dir(lib), cudaProviderLib), nil, 0o644)
	if st := probeCUDA(lib, 0); st.Usable || st.Reason != FallbackNoDriver {
		t.Errorf("probe with provider but no driver: %+v", st)
	}
	var n *nvml
	n.close()
	if _, ok := n.usedMemory(0); ok {
		t.Error("nil NVML reports memory")
	}
}

// cudaORT is where scripts/fetch-deps.sh --cuda puts the CUDA build of
// ONNX Runtime (core library and provider libraries); $ZHIYIN_TEST_ORT_CUDA
// names another copy.
func cudaORT() string {
	if p := os.Getenv("ZHIYIN_TEST_ORT_CUDA"); p != "" {
		return p
	}
	return "../third_party/onnxruntime-cuda/libonnxruntime.so.1"
}

type subResult struct {
	Version, EP, Reason, Detail string
	ProbeReason, ForcedReason   string
	ForcedDetail                string
	RunErr                      string
}

// The real CUDA build of ONNX Runtime (1.29 with its CUDA provider) on a
// machine without the NVIDIA driver: the probe reports no_driver, and even
// forced past the probe ONNX Runtime's own failure falls back to the CPU.
func TestCUDABuildFallsBackWithoutDriver(t *testing.T) {
	lib, _ := filepath.Abs(cudaORT())
	if !fileExists(lib) {
		t.Skip("needs the CUDA build of ONNX Runtime: run scripts/fetch-deps.sh --cuda")
	}
	if _, _, err := cudaDriverDevices(); err == nil {
		t.Skip("the NVIDIA driver is installed: TestCUDAOnGPU covers this machine")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), subprocessEnv+"=cuda-build", EnvORTLibrary+"="+lib)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("subprocess: %v\n%s", err, out)
	}
	var res subResult
	if err := json.Unmarshal(out[strings.LastIndexByte(strings.TrimSpace(string(out)), '\n')+1:], &res); err != nil {
		t.Fatalf("subprocess output %q: %v", out, err)
	}
	t.Logf("%+v", res)
	if !strings.HasPrefix(res.Version, "1.29") || res.EP != "cpu" || res.Reason != FallbackNoDriver || res.RunErr != "" {
		t.Errorf("real probe: %+v", res)
	}
	if res.ForcedReason != FallbackProviderError || !strings.Contains(res.ForcedDetail, "lib") {
		t.Errorf("forced past the probe: %+v", res)
	}
}

// subCUDABuild runs in the subprocess of TestCUDABuildFallsBackWithoutDriver.
func subCUDABuild() int {
	rt := NewRuntime(DefaultConfig(), discard())
	if err := rt.Start(); err != nil {
		println(err.Error())
		return 1
	}
	defer rt.Close()
	man, err := ReadManifest(filepath.Join(testdataDir, "classifier"))
	if err != nil {
		println(err.Error())
		return 1
	}
	res := subResult{Version: rt.Version(), ProbeReason: rt.CUDA().Reason}
	m, err := rt.Load(context.Background(), man, LoadOptions{Provider: "cuda", Concurrency: 1})
	if err != nil {
		println(err.Error())
		return 1
	}
	res.EP = m.EP()
	res.Reason, res.Detail = m.Fallback()
	if _, err := m.Run(context.Background(), classifierInput(1)); err != nil {
		res.RunErr = err.Error()
	}
	m.Close()
	rt.mu.Lock()
	rt.probe, rt.cuda = func(string, int) CUDAStatus { return CUDAStatus{Usable: true} }, nil
	rt.mu.Unlock()
	m, err = rt.Load(context.Background(), man, LoadOptions{Provider: "cuda", Concurrency: 1})
	if err != nil {
		println(err.Error())
		return 1
	}
	res.ForcedReason, res.ForcedDetail = m.Fallback()
	m.Close()
	b, _ := json.Marshal(res)
	os.Stdout.Write(append([]byte("\n"), b...))
	return 0
}
