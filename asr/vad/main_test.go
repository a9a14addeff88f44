package vad

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

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

// readWAV reads a 16-bit PCM mono WAV file into samples in [-1,1) and its
// rate. Only for the test clips: package audio is the real decoder.
func readWAV(tb testing.TB, path string) ([]float32, int) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	x, rate, err := parseWAV(b)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return x, rate
}

func parseWAV(b []byte) ([]float32, int, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New("not a RIFF/WAVE file")
	}
	rate := 0
	for p := 12; p+8 <= len(b); {
		id, n := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:]))
		body := b[p+8 : min(p+8+n, len(b))]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, 0, errors.New("short fmt chunk")
			}
			format, ch, bits := binary.LittleEndian.Uint16(body), binary.LittleEndian.Uint16(body[2:]), binary.LittleEndian.Uint16(body[14:])
			if format != 1 || ch != 1 || bits != 16 {
				return nil, 0, fmt.Errorf("format %d, %d channels, %d bits: want PCM mono 16-bit", format, ch, bits)
			}
			rate = int(binary.LittleEndian.Uint32(body[4:]))
		case "data":
			if rate == 0 {
				return nil, 0, errors.New("data before fmt")
			}
			x := make([]float32, len(body)/2)
			for i := range x {
				x[i] = float32(int16(binary.LittleEndian.Uint16(body[2*i:]))) / 32768
			}
			return x, rate, nil
		}
		p += 8 + n + n%2
	}
	return nil, 0, errors.New("no data chunk")
}
