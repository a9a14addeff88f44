// Package inferencetest gives test binaries outside package inference the
// one ONNX Runtime they share (onnxruntime_go keeps its environment in
// package state, so a process starts it once).
package inferencetest

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/zhiyin/zhiyin/inference"
)

// Start points $ZHIYIN_ORT_LIB at the source tree's fetched library when it
// is unset (repoRoot is the test package's path to the repository root) and
// starts a CPU runtime. The error says why tests needing it must skip.
func Start(repoRoot string) (*inference.Runtime, error) {
	if os.Getenv(inference.EnvORTLibrary) == "" {
		if p, err := filepath.Abs(filepath.Join(repoRoot, "third_party/onnxruntime/libonnxruntime.so.1")); err == nil {
			if _, err := os.Stat(p); err == nil {
				os.Setenv(inference.EnvORTLibrary, p)
			}
		}
	}
	rt := inference.NewRuntime(inference.DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	return rt, rt.Start()
}

// Run runs the tests, closes rt and returns the exit code (a failed Close
// fails the run).
func Run(m *testing.M, rt *inference.Runtime) int {
	code := m.Run()
	if err := rt.Close(); err != nil && code == 0 {
		code = 1
	}
	return code
}

// Need returns rt, or skips the test when the runtime did not start.
func Need(tb testing.TB, rt *inference.Runtime, err error) *inference.Runtime {
	tb.Helper()
	if err != nil {
		tb.Skipf("needs the ONNX Runtime library (run scripts/fetch-deps.sh): %v", err)
	}
	return rt
}
