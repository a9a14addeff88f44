package vad

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/inferencetest"
)

// The process's one ONNX Runtime, shared by the tests.
var (
	testRT    *inference.Runtime
	testRTErr error
)

func TestMain(m *testing.M) {
	testRT, testRTErr = inferencetest.Start("../..")
	os.Exit(inferencetest.Run(m, testRT))
}

// Where the real weights and the shared speech clips are, from this
// package's folder.
const (
	modelDir  = "../../third_party/models/silero-vad"
	speechDir = "../../../shared/data/speech"
)

// loadSilero loads the fetched Silero VAD on the CPU, or skips; the model
// closes with the test.
func loadSilero(tb testing.TB) *inference.Model {
	tb.Helper()
	rt := inferencetest.Need(tb, testRT, testRTErr)
	man, err := inference.ReadManifest(modelDir)
	if errors.Is(err, inference.ErrModelNotFound) {
		tb.Skipf("needs the Silero VAD weights in %s (run scripts/fetch-deps.sh): %v", modelDir, err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	m, err := rt.Load(context.Background(), man, inference.LoadOptions{Provider: "cpu"})
	if errors.Is(err, inference.ErrMissingFile) {
		tb.Skipf("needs the Silero VAD weights in %s (run scripts/fetch-deps.sh): %v", modelDir, err)
	}
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

// speechFiles returns the shared clips matching pattern, or skips.
func speechFiles(tb testing.TB, pattern string) []string {
	tb.Helper()
	if _, err := os.Stat(speechDir); err != nil {
		tb.Skipf("needs the shared speech clips in %s: %v", speechDir, err)
	}
	files, err := filepath.Glob(filepath.Join(speechDir, pattern))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no clips match %s in %s (%v)", pattern, speechDir, err)
	}
	return files
}

// readWAV decodes a test clip (package audio) into samples in [-1, 1]
// and its rate.
func readWAV(tb testing.TB, path string) ([]float32, int) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	r, err := audio.NewWAVReader(f)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	x, err := audio.ReadAll(r)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return x, r.Format().SampleRate
}
