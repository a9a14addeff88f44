package features

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func testCMVN(dim int) *CMVN {
	c := &CMVN{NegMean: make([]float32, dim), InvStddev: make([]float32, dim)}
	for i := range dim {
		c.NegMean[i] = -float32(i%80) / 8
		c.InvStddev[i] = 0.1 + float32(i%7)/50
	}
	return c
}

// batchFrontend is the one-shot pipeline Frontend must equal.
func batchFrontend(t *testing.T, x []float32, c FrontendConfig) []float32 {
	t.Helper()
	fb, frames, err := ComputeFbank(x, c.Fbank)
	if err != nil {
		t.Fatal(err)
	}
	dim := c.Fbank.NumMel
	out, rows := ApplyLFR(fb, frames, dim, c.LFRM, c.LFRN)
	if c.CMVN != nil {
		w := c.LFRM * dim
		for r := range rows {
			c.CMVN.Apply(out[r*w : (r+1)*w])
		}
	}
	return out
}

func TestFrontendStreaming(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		name    string
		samples int
		cmvn    bool
	}{
		{"empty", 0, true},
		{"under one window", 399, true},
		{"one frame", 400, true},
		{"seven frames", 400 + 6*160, false},
		{"1.5 s", 24000, true},
		{"3.3 s no cmvn", 52800, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := FrontendConfig{Fbank: DefaultFbankOptions(), LFRM: 7, LFRN: 6}
			if tc.cmvn {
				c.CMVN = testCMVN(560)
			}
			x := noise(tc.samples, uint64(tc.samples))
			want := batchFrontend(t, x, c)
			f, err := NewFrontend(c)
			if err != nil {
				t.Fatal(err)
			}
			if f.Dim() != 560 {
				t.Fatalf("Dim %d, want 560", f.Dim())
			}
			for trial := range 8 {
				var got []float32
				keep := func(row []float32) {
					if len(row) != 560 {
						t.Fatalf("row of %d values", len(row))
					}
					got = append(got, row...)
				}
				feedRandom(rng, x, func(s []float32) { f.Accept(s, keep) })
				f.Flush(keep)
				if len(got) != len(want) {
					t.Fatalf("trial %d: %d values streaming, %d batch", trial, len(got), len(want))
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("trial %d: value %d is %v streaming, %v batch", trial, i, got[i], want[i])
					}
				}
			}
		})
	}
}

// TestFrontendReset checks that Reset mid-utterance and Flush both start
// the next utterance from scratch.
func TestFrontendReset(t *testing.T) {
	c := FrontendConfig{Fbank: DefaultFbankOptions(), LFRM: 7, LFRN: 6, CMVN: testCMVN(560)}
	x := noise(9000, 9)
	want := batchFrontend(t, x, c)
	f, err := NewFrontend(c)
	if err != nil {
		t.Fatal(err)
	}
	var got []float32
	keep := func(row []float32) { got = append(got, row...) }
	f.Accept(noise(5555, 1), keep)
	f.Reset()
	got = got[:0]
	f.Accept(x, keep)
	f.Flush(keep)
	if d, _ := maxAbsDiff(got, want); len(got) != len(want) || d != 0 {
		t.Fatalf("after Reset: %d values (want %d), max diff %g", len(got), len(want), d)
	}
	got = got[:0]
	f.Accept(x, keep)
	f.Flush(keep)
	if d, _ := maxAbsDiff(got, want); len(got) != len(want) || d != 0 {
		t.Fatalf("after Flush: %d values (want %d), max diff %g", len(got), len(want), d)
	}
}

func TestFrontendBadConfig(t *testing.T) {
	bad := DefaultFbankOptions()
	bad.NumMel = 0
	for _, tc := range []struct {
		name string
		c    FrontendConfig
	}{
		{"zero", FrontendConfig{}},
		{"bad fbank", FrontendConfig{Fbank: bad, LFRM: 7, LFRN: 6}},
		{"bad lfr", FrontendConfig{Fbank: DefaultFbankOptions(), LFRM: 0, LFRN: 6}},
		{"cmvn dim", FrontendConfig{Fbank: DefaultFbankOptions(), LFRM: 7, LFRN: 6, CMVN: testCMVN(80)}},
		{"cmvn ragged", FrontendConfig{Fbank: DefaultFbankOptions(), LFRM: 7, LFRN: 6,
			CMVN: &CMVN{NegMean: make([]float32, 560), InvStddev: make([]float32, 3)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewFrontend(tc.c); !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("error %v, want ErrInvalidOptions", err)
			}
		})
	}
}

func TestFrontendAcceptDoesNotAllocate(t *testing.T) {
	f, err := NewFrontend(FrontendConfig{Fbank: DefaultFbankOptions(), LFRM: 7, LFRN: 6, CMVN: testCMVN(560)})
	if err != nil {
		t.Fatal(err)
	}
	x := noise(3200, 5)
	var sink float32
	emit := func(row []float32) { sink += row[0] }
	if a := testing.AllocsPerRun(20, func() { f.Accept(x, emit) }); a != 0 {
		t.Errorf("Accept allocates %v times per call, want 0", a)
	}
	if a := testing.AllocsPerRun(20, func() { f.Accept(x, emit); f.Flush(emit) }); a != 0 {
		t.Errorf("Accept+Flush allocates %v times per call, want 0", a)
	}
	_ = sink
}

func TestMatrixRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 1023, 1024, 1025, 5000} {
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i)*0.25 - 7
		}
		if n > 3 {
			data[1], data[2], data[3] = float32(math.Inf(-1)), float32(math.NaN()), -0
		}
		var buf bytes.Buffer
		if err := WriteMatrix(&buf, data); err != nil {
			t.Fatal(err)
		}
		if buf.Len() != 4*n {
			t.Fatalf("n=%d: %d bytes", n, buf.Len())
		}
		got, err := ReadMatrix(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("n=%d: read %d values", n, len(got))
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(data[i]) {
				t.Fatalf("n=%d: value %d is %v, want %v", n, i, got[i], data[i])
			}
		}
	}
	if _, err := ReadMatrix(bytes.NewReader([]byte{1, 2, 3})); !errors.Is(err, ErrBadMatrix) {
		t.Errorf("3 bytes: error %v, want ErrBadMatrix", err)
	}
	// Little-endian: 1.0 is 00 00 80 3f.
	var buf bytes.Buffer
	if err := WriteMatrix(&buf, []float32{1}); err != nil || !bytes.Equal(buf.Bytes(), []byte{0, 0, 0x80, 0x3f}) {
		t.Errorf("1.0 written as % x (%v)", buf.Bytes(), err)
	}
}

type failWriter struct{}

var errWrite = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestWriteMatrixError(t *testing.T) {
	if err := WriteMatrix(failWriter{}, []float32{1}); !errors.Is(err, errWrite) {
		t.Fatalf("error %v, want the writer's", err)
	}
}

// FuzzReadMatrix checks that ReadMatrix takes any input without panicking
// and that what it accepts writes back to the same bytes.
func FuzzReadMatrix(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0x80, 0x3f})
	f.Add([]byte{1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ReadMatrix(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadMatrix) {
				t.Fatalf("error %v does not wrap ErrBadMatrix", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := WriteMatrix(&buf, m); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), in) {
			t.Fatal("round trip changed the bytes")
		}
	})
}
