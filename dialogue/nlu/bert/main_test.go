package bert

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/quantize"
	"github.com/zhiyin/zhiyin/inference/testmodels"
)

// The process's one ONNX Runtime, shared by the tests.
var (
	testRT    *inference.Runtime
	testRTErr error
)

func TestMain(m *testing.M) {
	if os.Getenv(inference.EnvORTLibrary) == "" {
		if p, err := filepath.Abs("../../../third_party/onnxruntime/libonnxruntime.so.1"); err == nil {
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

// writeFolder writes a generated model folder under a temporary directory.
func writeFolder(tb testing.TB, f testmodels.Folder) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), f.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, file := range f.Files {
		if err := os.WriteFile(filepath.Join(dir, file.Name), file.Data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// loadBERT generates and loads a BERT folder; the model closes with the
// test.
func loadBERT(tb testing.TB, opts testmodels.BERTOptions) *Model {
	tb.Helper()
	rt := needRT(tb)
	m, err := Load(context.Background(), rt, writeFolder(tb, testmodels.BERT(opts)), inference.LoadOptions{Provider: "cpu", Concurrency: 1})
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

// loadBenchModel loads the generated sequence model, float32 or quantized
// to int8.
func loadBenchModel(tb testing.TB, quantized bool) *Model {
	tb.Helper()
	f := testmodels.BERT(testmodels.BERTOptions{})
	dir := writeFolder(tb, f)
	if quantized {
		q, _, err := quantize.Dynamic(f.Files[0].Data, quantize.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "model.onnx"), q, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	m, err := Load(context.Background(), needRT(tb), dir, inference.LoadOptions{Provider: "cpu", SkipVerify: quantized})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = m.Close() })
	return m
}
