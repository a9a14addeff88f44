package nlu

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/zhiyin/zhiyin/inference"
)

// The process's one ONNX Runtime, shared by the tests.
var (
	testRT    *inference.Runtime
	testRTErr error
)

func TestMain(m *testing.M) {
	if os.Getenv(inference.EnvORTLibrary) == "" {
		if p, err := filepath.Abs("../../third_party/onnxruntime/libonnxruntime.so.1"); err == nil {
			if _, err := os.Stat(p); err == nil {
				os.Setenv(inference.EnvORTLibrary, p)
			}
		}
	}
	testRT = inference.NewRuntime(inference.DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	testRTErr = testRT.Start()
	code := m.Run()
	if err := testRT.Close(); err != nil && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// needRT returns the shared runtime or skips the test.
func needRT(tb testing.TB) *inference.Runtime {
	tb.Helper()
	if testRTErr != nil {
		tb.Skipf("needs the ONNX Runtime library (run scripts/fetch-deps.sh): %v", testRTErr)
	}
	return testRT
}
