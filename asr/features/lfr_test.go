package features

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestApplyLFRRule spells FunASR's rule out on a tiny input whose frames
// are their own indices.
func TestApplyLFRRule(t *testing.T) {
	for _, tc := range []struct {
		frames, m, n int
		want         [][]float32
	}{
		{0, 7, 6, nil},
		{1, 7, 6, [][]float32{{0, 0, 0, 0, 0, 0, 0}}},
		{6, 7, 6, [][]float32{{0, 0, 0, 0, 1, 2, 3}}},
		{7, 7, 6, [][]float32{{0, 0, 0, 0, 1, 2, 3}, {3, 4, 5, 6, 6, 6, 6}}},
		{10, 7, 6, [][]float32{{0, 0, 0, 0, 1, 2, 3}, {3, 4, 5, 6, 7, 8, 9}}},
		{13, 7, 6, [][]float32{{0, 0, 0, 0, 1, 2, 3}, {3, 4, 5, 6, 7, 8, 9}, {9, 10, 11, 12, 12, 12, 12}}},
		{3, 1, 1, [][]float32{{0}, {1}, {2}}},
		{5, 2, 3, [][]float32{{0, 1}, {3, 4}}},
	} {
		t.Run(fmt.Sprintf("T%d_m%d_n%d", tc.frames, tc.m, tc.n), func(t *testing.T) {
			in := make([]float32, tc.frames)
			for i := range in {
				in[i] = float32(i)
			}
			got, rows := ApplyLFR(in, tc.frames, 1, tc.m, tc.n)
			if rows != len(tc.want) || len(got) != rows*tc.m {
				t.Fatalf("%d rows (%d values), want %d", rows, len(got), len(tc.want))
			}
			for r, w := range tc.want {
				for j := range w {
					if got[r*tc.m+j] != w[j] {
						t.Fatalf("row %d = %v, want %v", r, got[r*tc.m:(r+1)*tc.m], w)
					}
				}
			}
		})
	}
}

// TestLFRStreaming checks that LFR.Accept + Flush equals ApplyLFR for every
// length and several (m, n), and that Accept emits no row early (every row
// it emits is final, even though the last rows depend on T).
func TestLFRStreaming(t *testing.T) {
	const dim = 3
	rng := rand.New(rand.NewPCG(3, 4))
	for _, mn := range [][2]int{{7, 6}, {1, 1}, {3, 1}, {5, 8}, {7, 2}, {4, 4}, {2, 5}} {
		m, n := mn[0], mn[1]
		l, err := NewLFR(m, n, dim)
		if err != nil {
			t.Fatal(err)
		}
		for frames := 0; frames <= 40; frames++ {
			feats := make([]float32, frames*dim)
			for i := range feats {
				feats[i] = rng.Float32()
			}
			want, rows := ApplyLFR(feats, frames, dim, m, n)
			var got []float32
			keep := func(row []float32) { got = append(got, row...) }
			for i := range frames {
				l.Accept(feats[i*dim:(i+1)*dim], keep)
				// Whatever has been emitted must already equal the
				// final rows.
				for j := range got {
					if got[j] != want[j] {
						t.Fatalf("m=%d n=%d T=%d: after frame %d, value %d is %v, final %v", m, n, frames, i, j, got[j], want[j])
					}
				}
			}
			l.Flush(keep)
			if len(got) != rows*m*dim {
				t.Fatalf("m=%d n=%d T=%d: %d values streaming, %d one-shot", m, n, frames, len(got), len(want))
			}
			for j := range got {
				if got[j] != want[j] {
					t.Fatalf("m=%d n=%d T=%d: value %d is %v streaming, %v one-shot", m, n, frames, j, got[j], want[j])
				}
			}
		}
	}
}

// TestLFREmitsEarly checks that, with FunASR's (7, 6), row i comes out of
// Accept as soon as fbank frame 6i+3 arrives.
func TestLFREmitsEarly(t *testing.T) {
	l, err := NewLFR(7, 6, 1)
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for i := range 30 {
		l.Accept([]float32{float32(i)}, func([]float32) { rows++ })
		if want := (i + 3) / 6; i >= 3 && rows != want {
			t.Fatalf("after frame %d: %d rows, want %d", i, rows, want)
		}
	}
}

func TestLFRBadOptions(t *testing.T) {
	for _, tc := range [][3]int{{0, 6, 80}, {7, 0, 80}, {7, 6, 0}, {-1, 6, 80}, {1 << 20, 1, 2}} {
		if _, err := NewLFR(tc[0], tc[1], tc[2]); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("NewLFR%v: error %v, want ErrInvalidOptions", tc, err)
		}
	}
}
