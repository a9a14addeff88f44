package features

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// sharedData is the shared test data folder, relative to this package.
const sharedData = "../../../shared/data"

// needData skips t when the shared data folder is missing.
func needData(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(sharedData, "frontend")); err != nil {
		t.Skipf("needs the shared test data in %s (frontend/ and speech/): %v", sharedData, err)
	}
}

// loadWAV reads a 16-bit PCM WAV: it finds the "data" chunk and scales the
// int16 samples to [-1, 1). Test-only; package asr/audio is the real reader.
func loadWAV(t testing.TB, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("%s: not a RIFF/WAVE file", path)
	}
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:]))
		p += 8
		if id == "fmt " && binary.LittleEndian.Uint16(b[p+14:]) != 16 {
			t.Fatalf("%s: not 16-bit PCM", path)
		}
		if id == "data" {
			size = min(size, len(b)-p)
			out := make([]float32, size/2)
			for i := range out {
				out[i] = float32(int16(binary.LittleEndian.Uint16(b[p+2*i:]))) / 32768
			}
			return out
		}
		p += size + size&1
	}
	t.Fatalf("%s: no data chunk", path)
	return nil
}

// refMatrix is one reference .bin with the shape from its .json.
type refMatrix struct {
	Rows, Cols int
	NSamples   int
	Data       []float32
}

func loadRef(t testing.TB, clip, stage string) refMatrix {
	t.Helper()
	base := filepath.Join(sharedData, "frontend", clip+"."+stage)
	js, err := os.ReadFile(base + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Shape    []int `json:"shape"`
		NSamples int   `json:"n_samples"`
	}
	if err := json.Unmarshal(js, &meta); err != nil || len(meta.Shape) != 2 {
		t.Fatalf("%s.json: bad metadata (%v)", base, err)
	}
	f, err := os.Open(base + ".bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := ReadMatrix(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != meta.Shape[0]*meta.Shape[1] {
		t.Fatalf("%s.bin: %d values, shape %v", base, len(data), meta.Shape)
	}
	return refMatrix{Rows: meta.Shape[0], Cols: meta.Shape[1], NSamples: meta.NSamples, Data: data}
}

func loadAMMVN(t testing.TB) *CMVN {
	t.Helper()
	f, err := os.Open(filepath.Join(sharedData, "frontend", "am.mvn"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := ParseAMMVN(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// maxAbsDiff returns the largest |a[i]−b[i]| and its index.
func maxAbsDiff(a, b []float32) (float64, int) {
	var worst float64
	at := -1
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	return worst, at
}
