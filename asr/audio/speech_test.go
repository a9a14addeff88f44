package audio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const speechDir = "../../../shared/data/speech"

// Every clip of the shared speech set decodes as 16 kHz mono, with as many
// samples as its data chunk holds and the duration its manifest gives.
func TestSpeechClips(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(speechDir, "*.wav"))
	if len(files) == 0 {
		t.Skipf("no speech clips in %s: this test needs the shared test data (see shared/data/README.md)", speechDir)
	}
	durations := manifestDurations(t)
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			file, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// The header is everything up to the data chunk's payload,
			// found here without the package's parser.
			i := bytes.Index(file, []byte("data"))
			if i < 0 {
				t.Fatal("no data chunk")
			}
			header := i + 8
			wantN := int64(len(file)-header) / 2
			if size := int64(binary.LittleEndian.Uint32(file[i+4:])); size/2 != wantN {
				t.Fatalf("data chunk says %d bytes, file has %d after the header", size, len(file)-header)
			}

			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := NewReader(f, "audio/wav", 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Format(); got.SampleRate != 16000 || got.Channels != 1 || got.Encoding != PCM || got.BitsPerSample != 16 {
				t.Errorf("format %v, want pcm 16-bit 16000 Hz mono", got)
			}
			if r.Samples() != wantN {
				t.Errorf("Samples() = %d, want %d", r.Samples(), wantN)
			}
			samples, err := ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(samples)) != wantN {
				t.Errorf("decoded %d samples, want (%d - %d) / 2 = %d", len(samples), len(file), header, wantN)
			}
			if d, ok := durations[name]; ok && math.Abs(float64(len(samples))/16000-d) > 0.001 {
				t.Errorf("%.4f s decoded, manifest says %.3f s", float64(len(samples))/16000, d)
			}
			// 16-bit audio goes through decode and EncodeWAV unchanged.
			if !bytes.Equal(EncodeWAV(samples, 16000)[44:], file[header:header+2*int(wantN)]) {
				t.Error("EncodeWAV of the decoded samples differs from the file's data")
			}
		})
	}
}

// manifestDurations reads file → duration_s from manifest.tsv, if present.
func manifestDurations(t *testing.T) map[string]float64 {
	out := map[string]float64{}
	f, err := os.Open(filepath.Join(speechDir, "manifest.tsv"))
	if err != nil {
		t.Logf("no manifest.tsv, durations not checked: %v", err)
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 2 {
			continue
		}
		if d, err := strconv.ParseFloat(cols[1], 64); err == nil {
			out[cols[0]] = d
		}
	}
	return out
}
