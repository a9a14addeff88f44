package inference

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The process's one runtime, shared by the tests (onnxruntime_go keeps the
// environment in package state).
var (
	testRT    *Runtime
	testRTErr error
)

const testdataDir = "../models/testdata"

func TestMain(m *testing.M) {
	if os.Getenv(EnvORTLibrary) == "" {
		if p, err := filepath.Abs("../third_party/onnxruntime/libonnxruntime.so.1"); err == nil {
			if _, err := os.Stat(p); err == nil {
				os.Setenv(EnvORTLibrary, p)
			}
		}
	}
	if sub := os.Getenv(subprocessEnv); sub != "" {
		os.Exit(runSubprocess(sub))
	}
	testRT = NewRuntime(DefaultConfig(), discard())
	testRTErr = testRT.Start()
	code := m.Run()
	if err := testRT.Close(); err != nil && code == 0 {
		code = 1
	}
	os.Exit(code)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// needRT returns the shared runtime or skips the test.
func needRT(tb testing.TB) *Runtime {
	tb.Helper()
	if testRTErr != nil {
		tb.Skipf("needs the ONNX Runtime library (run scripts/fetch-deps.sh): %v", testRTErr)
	}
	return testRT
}

// testManifest reads a generated test model's manifest.
func testManifest(tb testing.TB, name string) *Manifest {
	tb.Helper()
	m, err := ReadManifest(filepath.Join(testdataDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// load loads a test model and closes it with the test.
func load(tb testing.TB, name string, opts LoadOptions) *Model {
	tb.Helper()
	rt := needRT(tb)
	m, err := rt.Load(context.Background(), testManifest(tb, name), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Error(err)
		}
	})
	return m
}

// logBuffer is a concurrency-safe log sink for tests that read log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// readiness records Set calls.
type readiness struct {
	mu    sync.Mutex
	items map[string]readyItem
	log   []readyItem
}

type readyItem struct {
	name   string
	ready  bool
	detail string
}

func (r *readiness) Set(name string, ready bool, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.items == nil {
		r.items = map[string]readyItem{}
	}
	it := readyItem{name, ready, detail}
	r.items[name] = it
	r.log = append(r.log, it)
}

func (r *readiness) get(name string) (readyItem, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	it, ok := r.items[name]
	return it, ok
}

func floats(n int, f func(i int) float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}
