package features

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/zhiyin/zhiyin/asr/audio"
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

// loadWAV decodes a test clip with package audio.
func loadWAV(t testing.TB, path string) []float32 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := audio.NewWAVReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	x, err := audio.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return x
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
