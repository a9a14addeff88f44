package inference

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/inference/testmodels"
	"github.com/zhiyin/zhiyin/internal/health"
)

// writeFolder writes a generated model folder under dir.
func writeFolder(t *testing.T, dir string, f testmodels.Folder) string {
	t.Helper()
	p := filepath.Join(dir, f.Name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, file := range f.Files {
		if err := os.WriteFile(filepath.Join(p, file.Name), file.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Provider = "cpu"
	cfg.Preload = nil
	cfg.Concurrency = 2
	cfg.Batching.MaxWait = 0
	return cfg
}

func newRegistry(t *testing.T, cfg Config, dirs []string) (*Registry, *readiness, *prometheus.Registry) {
	t.Helper()
	rt := needRT(t)
	ready := &readiness{}
	preg := prometheus.NewRegistry()
	r := NewRegistry(rt, cfg, dirs, discard(), preg, ready)
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r, ready, preg
}

func classifierInput(v float32) []Tensor {
	return []Tensor{NewTensor([]int64{1, 32}, floats(32, func(i int) float32 { return v * float32(i%5-2) }))}
}

func TestRegistryStartPreloadsAndReportsReadiness(t *testing.T) {
	cfg := testConfig()
	cfg.Preload = []string{"classifier", VADModel}
	r, ready, preg := newRegistry(t, cfg, []string{t.TempDir(), testdataDir})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	it, _ := ready.get("model:classifier")
	if !it.ready || !strings.Contains(it.detail, "warmed on cpu") {
		t.Errorf("classifier readiness %+v", it)
	}
	if ready.log[0].ready || ready.log[0].detail != StateLoading {
		t.Errorf("first readiness report %+v, want not ready, loading", ready.log[0])
	}
	vad, _ := ready.get("model:silero-vad")
	if !vad.ready || !strings.Contains(vad.detail, "not installed") || !strings.Contains(vad.detail, "fetch-deps") {
		t.Errorf("absent optional VAD readiness %+v: want ready with the fix", vad)
	}
	list := r.List()
	byName := map[string]ModelStatus{}
	for _, s := range list {
		byName[s.Name] = s
	}
	if s := byName["classifier"]; s.State != StateReady || s.EP != "cpu" || !s.Batching || s.HostMemory < 0 || s.Version != "1" {
		t.Errorf("classifier status %+v", s)
	}
	if s := byName[VADModel]; s.State != StateAbsent {
		t.Errorf("VAD status %+v", s)
	}
	if s := byName["dynlen"]; s.State != StateUnloaded {
		t.Errorf("installed, unused model status %+v", s)
	}
	rep, err := r.Report("classifier")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Report("nope"); !errors.Is(err, ErrModelNotFound) {
		t.Errorf("report of unknown model: %v", err)
	}
	h, err := r.Handle("classifier")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(context.Background(), classifierInput(1)); err != nil {
		t.Fatal(err)
	}
	mfs, err := preg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "zhiyin_inference_") {
			t.Errorf("metric %s lacks the zhiyin_inference_ prefix", mf.GetName())
		}
		names[mf.GetName()] = true
	}
	for _, n := range []string{"zhiyin_inference_run_duration_seconds", "zhiyin_inference_model_ready", "zhiyin_inference_load_duration_seconds",
		"zhiyin_inference_warmup_duration_seconds", "zhiyin_inference_model_memory_bytes", "zhiyin_inference_batch_size", "zhiyin_inference_queue_depth"} {
		if !names[n] {
			t.Errorf("metric %s not exported", n)
		}
	}
}

func TestRegistryRequiredMissingFailsStart(t *testing.T) {
	cfg := testConfig()
	cfg.Required = []string{"nope"}
	r, ready, _ := newRegistry(t, cfg, []string{t.TempDir()})
	err := r.Start(context.Background())
	if !errors.Is(err, ErrModelNotFound) {
		t.Fatalf("err = %v, want ErrModelNotFound", err)
	}
	if it, _ := ready.get("model:nope"); it.ready {
		t.Errorf("readiness %+v", it)
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Handle("classifier"); !errors.Is(err, ErrClosed) {
		t.Errorf("handle after stop: %v", err)
	}
}

func TestRegistryLoadsOnDemand(t *testing.T) {
	r, _, _ := newRegistry(t, testConfig(), []string{testdataDir})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Handle("nope"); !errors.Is(err, ErrModelNotFound) {
		t.Fatalf("unknown model: %v", err)
	}
	h, err := r.Handle("int8")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.Run(context.Background(), []Tensor{NewTensor([]int64{1, 16}, make([]float32, 16))}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if st, _ := r.Status("int8"); st.State != StateReady {
		t.Errorf("status %+v", st)
	}
	if n := counterValue(t, r.met.unloads.WithLabelValues("int8", "idle")); n != 0 {
		t.Errorf("unloads %v", n)
	}
}

func TestIdleUnloadAndReload(t *testing.T) {
	cfg := testConfig()
	cfg.Preload = []string{"classifier"}
	cfg.IdleUnload = time.Minute
	r, ready, _ := newRegistry(t, cfg, []string{testdataDir})
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	r.now = func() time.Time { return time.Unix(0, now.Load()) }
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.unloadIdle()
	if st, _ := r.Status("classifier"); st.State != StateReady {
		t.Fatalf("unloaded too early: %+v", st)
	}
	now.Add(int64(2 * time.Minute))
	r.unloadIdle()
	st, _ := r.Status("classifier")
	if st.State != StateUnloaded {
		t.Fatalf("not unloaded after idle time: %+v", st)
	}
	if it, _ := ready.get("model:classifier"); !it.ready || !strings.Contains(it.detail, "unloaded after") {
		t.Errorf("readiness %+v", it)
	}
	if n := counterValue(t, r.met.unloads.WithLabelValues("classifier", "idle")); n != 1 {
		t.Errorf("unloads_total{reason=idle} = %v", n)
	}
	h, _ := r.Handle("classifier")
	if _, err := h.Run(context.Background(), classifierInput(1)); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.Status("classifier"); st.State != StateReady || st.WarmupSeconds <= 0 {
		t.Errorf("not reloaded with warm-up: %+v", st)
	}
}

// installVersions sets up a store with classifier v1 serving and v2 (other
// weights) as candidate.
func installVersions(t *testing.T) (store string) {
	t.Helper()
	store = t.TempDir()
	s := NewStore(store, nil)
	if _, err := s.Install(context.Background(), filepath.Join(testdataDir, "classifier"), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	v2 := writeFolder(t, t.TempDir(), testmodels.ClassifierVersion(77, "2"))
	if _, err := s.Install(context.Background(), v2, InstallOptions{Candidate: true}); err != nil {
		t.Fatal(err)
	}
	return store
}

func TestShadowPromoteRollbackWithoutFailures(t *testing.T) {
	store := installVersions(t)
	cfg := testConfig()
	cfg.Preload = []string{"classifier"}
	r, ready, _ := newRegistry(t, cfg, []string{store, testdataDir})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, _ := r.Handle("classifier")
	ctx := context.Background()
	before, _ := h.Run(ctx, classifierInput(1))

	rep, err := r.StartShadow(ctx, "classifier", ShadowOptions{Fraction: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Candidate != "2" || rep.Serving != "1" || !rep.Active {
		t.Fatalf("shadow report %+v", rep)
	}
	for i := 0; i < 40; i++ {
		v := float32(i%7) - 3
		if i == 0 {
			v = 1
		}
		out, err := h.Run(ctx, classifierInput(v))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && !compareOutputs("close", 0, 0, out, before) {
			t.Fatal("a mirrored request returned the candidate's result")
		}
	}
	waitFor(t, func() bool {
		rep, _ := r.Report("classifier")
		return rep.Shadow != nil && rep.Shadow.Mirrored+rep.Shadow.Skipped == 40
	})
	full, _ := r.Report("classifier")
	sh := full.Shadow
	if sh.Agree+sh.Disagree+sh.Errors != sh.Mirrored || sh.Mirrored == 0 || sh.Errors != 0 || sh.CandidateP50 <= 0 || sh.ServingP50 <= 0 {
		t.Errorf("shadow report %+v", sh)
	}
	if sh.Disagree == 0 {
		t.Errorf("a candidate with other weights always agreed: %+v", sh)
	}
	if !full.Shadowing || full.Candidate != "2" {
		t.Errorf("status during shadow %+v", full.ModelStatus)
	}

	// Hammer the model while promoting and rolling back.
	var failures, runs atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := h.Run(ctx, classifierInput(0.5)); err != nil {
					failures.Add(1)
					t.Error(err)
				}
				runs.Add(1)
			}
		}()
	}
	waitFor(t, func() bool { return runs.Load() > 50 })
	ev, err := r.Promote(ctx, "classifier")
	if err != nil {
		t.Fatal(err)
	}
	if ev.From != "1" || ev.To != "2" {
		t.Errorf("promote event %+v", ev)
	}
	mid := runs.Load()
	waitFor(t, func() bool { return runs.Load() > mid+50 })
	after, _ := h.Run(ctx, classifierInput(1))
	if compareOutputs("close", 0, 0, after, before) {
		t.Error("outputs unchanged after promotion")
	}
	ev, err = r.Rollback(ctx, "classifier")
	if err != nil {
		t.Fatal(err)
	}
	if ev.From != "2" || ev.To != "1" {
		t.Errorf("rollback event %+v", ev)
	}
	mid = runs.Load()
	waitFor(t, func() bool { return runs.Load() > mid+50 })
	close(stop)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed during promote/rollback", failures.Load(), runs.Load())
	}
	back, _ := h.Run(ctx, classifierInput(1))
	if !compareOutputs("close", 0, 1e-6, back, before) {
		t.Error("rollback did not restore version 1's outputs")
	}
	// On disk: v1 serves again, v2 is the candidate.
	for slot, want := range map[string]string{SlotServing: "1", SlotCandidate: "2"} {
		d, err := FindModel([]string{store}, "classifier", slot)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := ReadManifest(d)
		if m.Version != want {
			t.Errorf("slot %q holds version %s, want %s", slot, m.Version, want)
		}
	}
	rep2, _ := r.Report("classifier")
	if len(rep2.History) != 2 || rep2.Shadow == nil || rep2.Shadow.Mirrored == 0 {
		t.Errorf("report after swaps: history %+v shadow %+v", rep2.History, rep2.Shadow)
	}
	if it, _ := ready.get("model:classifier"); !it.ready || !strings.Contains(it.detail, "rolled back from 2") {
		t.Errorf("readiness %+v", it)
	}
	if n := counterValue(t, r.met.unloads.WithLabelValues("classifier", "swap")); n < 2 {
		t.Errorf("unloads_total{reason=swap} = %v", n)
	}
}

func TestShadowRejectsIncompatibleCandidate(t *testing.T) {
	store := t.TempDir()
	cfg := testConfig()
	r, _, _ := newRegistry(t, cfg, []string{store, testdataDir})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The int8 model takes x[N,16]; the classifier takes x[N,32].
	dir := copyModel(t, "int8")
	b, _ := os.ReadFile(filepath.Join(dir, ManifestFile))
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(strings.Replace(string(b), "name: int8", "name: classifier", 1)), 0o644)
	_, err := r.StartShadow(context.Background(), "classifier", ShadowOptions{Dir: dir})
	if !errors.Is(err, ErrContract) || !strings.Contains(err.Error(), "input 0") {
		t.Fatalf("err = %v, want ErrContract naming input 0", err)
	}
	if _, err := r.StartShadow(context.Background(), "classifier", ShadowOptions{}); !errors.Is(err, ErrNoCandidate) {
		t.Fatalf("no candidate installed: %v", err)
	}
	if _, err := r.Promote(context.Background(), "classifier"); !errors.Is(err, ErrNoCandidate) {
		t.Fatalf("promote without candidate: %v", err)
	}
	if _, err := r.Rollback(context.Background(), "classifier"); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("rollback without previous: %v", err)
	}
	if _, err := r.StopShadow(context.Background(), "classifier"); !errors.Is(err, ErrNoCandidate) {
		t.Fatalf("stop without shadow: %v", err)
	}
}

func TestShadowWindowAndStop(t *testing.T) {
	store := installVersions(t)
	r, _, _ := newRegistry(t, testConfig(), []string{store})
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	r.now = func() time.Time { return time.Unix(0, now.Load()) }
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, _ := r.Handle("classifier")
	if _, err := r.StartShadow(context.Background(), "classifier", ShadowOptions{Fraction: 1, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(2 * time.Minute))
	for i := 0; i < 5; i++ {
		if _, err := h.Run(context.Background(), classifierInput(1)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := r.StopShadow(context.Background(), "classifier")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mirrored != 0 || rep.Active {
		t.Errorf("mirrored after the window: %+v", rep)
	}
	full, _ := r.Report("classifier")
	if full.Shadowing || full.Shadow == nil {
		t.Errorf("report after stop %+v", full)
	}
}

func TestRegistryListShowsCandidates(t *testing.T) {
	store := installVersions(t)
	r, _, _ := newRegistry(t, testConfig(), []string{store})
	list := r.List()
	i := slices.IndexFunc(list, func(s ModelStatus) bool { return s.Name == "classifier" })
	if i < 0 || list[i].Candidate != "2" || list[i].Version != "1" || list[i].State != StateUnloaded {
		t.Fatalf("list %+v", list)
	}
}

func testmodelsClassifier(t *testing.T, version string) testmodels.Folder {
	t.Helper()
	return testmodels.ClassifierVersion(91, version)
}

// A version replaced while a long request runs on it drains in the
// background; Stop waits for it and terminates it when its context ends.
func TestStopReleasesDrainingVersion(t *testing.T) {
	store := t.TempDir()
	s := NewStore(store, nil)
	if _, err := s.Install(context.Background(), filepath.Join(testdataDir, "slow"), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	v2 := copyModel(t, "slow")
	b, _ := os.ReadFile(filepath.Join(v2, ManifestFile))
	os.WriteFile(filepath.Join(v2, ManifestFile), []byte(strings.Replace(string(b), `version: "1"`, `version: "2"`, 1)), 0o644)
	if _, err := s.Install(context.Background(), v2, InstallOptions{Candidate: true}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Preload = []string{"slow"}
	cfg.Concurrency = 1
	r, _, _ := newRegistry(t, cfg, []string{store})
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, _ := r.Handle("slow")
	long := make(chan error, 1)
	go func() {
		_, err := h.Run(context.Background(), []Tensor{NewTensor([]int64{1 << 15, 256}, make([]float32, 1<<23))})
		long <- err
	}()
	m, _ := h.Model(context.Background())
	waitFor(t, func() bool { return len(m.slots) == 0 })
	// Promote loads and warms version 2 (however long that takes on a
	// loaded machine), switches, then waits for version 1 to drain until
	// its ctx ends: end it as soon as version 2 serves, so that version 1
	// is left draining in the background.
	promoteCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer cancel()
		for promoteCtx.Err() == nil {
			if st, err := r.Status("slow"); err == nil && st.Version == "2" {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if _, err := r.Promote(promoteCtx, "slow"); err != nil {
		t.Fatal(err)
	}
	// New requests go to version 2 while version 1 still runs the long one.
	if _, err := h.Run(context.Background(), []Tensor{NewTensor([]int64{1, 256}, make([]float32, 256))}); err != nil {
		t.Fatal(err)
	}
	stopCtx, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if err := r.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if err := <-long; !errors.Is(err, ErrClosed) {
		t.Fatalf("long request on the replaced version: %v, want ErrClosed (terminated by Stop)", err)
	}
}

// The daemon's readiness tracker is a ReadinessSink; with the fetched VAD
// the default configuration loads it before reporting ready.
func TestDefaultConfigLoadsVAD(t *testing.T) {
	if !fileExists("../third_party/models/silero-vad/silero_vad.onnx") || !fileExists("../third_party/models/silero-vad/model.yaml") {
		t.Skip("needs the Silero VAD model folder: run scripts/fetch-deps.sh")
	}
	ready := health.NewReadiness()
	var sink ReadinessSink = ready
	cfg := DefaultConfig()
	r := NewRegistry(needRT(t), cfg, []string{t.TempDir(), "../third_party/models"}, discard(), prometheus.NewRegistry(), sink)
	defer r.Close()
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ok, items := ready.Snapshot()
	if !ok || len(items) != 1 || items[0].Name != "model:silero-vad" || !strings.Contains(items[0].Detail, "silero-vad 5 warmed on") {
		t.Fatalf("readiness %v %+v", ok, items)
	}
	t.Log(items[0].Detail)
}
