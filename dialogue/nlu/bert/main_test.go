package bert

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/inferencetest"
	"github.com/zhiyin/zhiyin/inference/quantize"
	"github.com/zhiyin/zhiyin/inference/testmodels"
)

// The process's one ONNX Runtime, shared by the tests.
var (
	testRT    *inference.Runtime
	testRTErr error
)

func TestMain(m *testing.M) {
	testRT, testRTErr = inferencetest.Start("../../..")
	os.Exit(inferencetest.Run(m, testRT))
}

// needRT returns the shared runtime or skips the test.
func needRT(tb testing.TB) *inference.Runtime {
	tb.Helper()
	return inferencetest.Need(tb, testRT, testRTErr)
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
