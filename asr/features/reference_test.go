package features

import (
	"path/filepath"
	"testing"
)

var refClips = []string{"espeak_cmn_02", "noise_silence_3s", "real_aishell1_BAC009S0764W0121"}

// TestReference compares every stage with the torchaudio/FunASR reference
// features: fbank, lfr and lfr_cmvn, computed in one shot and streaming.
//
// The remaining fbank error (about 2.6e-4 at worst, in narrow low-frequency
// mel bins of loud frames) is the float32 FFT of the reference: a float32
// FFT moves our own features by the same amount against float64.
func TestReference(t *testing.T) {
	needData(t)
	const tol = 1e-3
	cmvn := loadAMMVN(t)
	for _, clip := range refClips {
		t.Run(clip, func(t *testing.T) {
			samples := loadWAV(t, filepath.Join(sharedData, "speech", clip+".wav"))
			refFbank := loadRef(t, clip, "fbank")
			refLFR := loadRef(t, clip, "lfr")
			refCMVN := loadRef(t, clip, "lfr_cmvn")
			if len(samples) != refFbank.NSamples {
				t.Fatalf("wav has %d samples, reference says %d", len(samples), refFbank.NSamples)
			}
			fb, frames, err := ComputeFbank(samples, DefaultFbankOptions())
			if err != nil {
				t.Fatal(err)
			}
			check := func(stage string, got []float32, rows, cols int, ref refMatrix) {
				t.Helper()
				if rows != ref.Rows || cols != ref.Cols || len(got) != rows*cols {
					t.Fatalf("%s: shape [%d %d] (%d values), reference [%d %d]", stage, rows, cols, len(got), ref.Rows, ref.Cols)
				}
				d, at := maxAbsDiff(got, ref.Data)
				if at < 0 {
					t.Logf("%s: shape [%d %d], max abs error 0 (bit-exact)", stage, rows, cols)
					return
				}
				t.Logf("%s: shape [%d %d], max abs error %.3g (row %d col %d)", stage, rows, cols, d, at/cols, at%cols)
				if !(d <= tol) {
					t.Errorf("%s: max abs error %g at row %d col %d (got %g, want %g), tolerance %g",
						stage, d, at/cols, at%cols, got[at], ref.Data[at], tol)
				}
			}
			check("fbank", fb, frames, 80, refFbank)
			lfr, rows := ApplyLFR(fb, frames, 80, 7, 6)
			check("lfr", lfr, rows, 560, refLFR)
			for r := range rows {
				cmvn.Apply(lfr[r*560 : (r+1)*560])
			}
			check("lfr_cmvn", lfr, rows, 560, refCMVN)

			// The streaming front-end in 1234-sample chunks.
			fe, err := NewFrontend(FrontendConfig{Fbank: DefaultFbankOptions(), LFRM: 7, LFRN: 6, CMVN: cmvn})
			if err != nil {
				t.Fatal(err)
			}
			var got []float32
			keep := func(row []float32) { got = append(got, row...) }
			for s := samples; len(s) > 0; {
				n := min(1234, len(s))
				fe.Accept(s[:n], keep)
				s = s[n:]
			}
			fe.Flush(keep)
			check("frontend (streaming)", got, len(got)/fe.Dim(), fe.Dim(), refCMVN)

			// LFR and CMVN alone, fed the reference input, must be exact:
			// the README says they were verified bit-exact against FunASR.
			lfrRef, rows := ApplyLFR(refFbank.Data, refFbank.Rows, 80, 7, 6)
			if d, at := maxAbsDiff(lfrRef, refLFR.Data); rows != refLFR.Rows || d != 0 {
				t.Errorf("ApplyLFR(reference fbank): %d rows (want %d), max abs error %g at %d; want bit-exact", rows, refLFR.Rows, d, at)
			}
			cm := append([]float32(nil), refLFR.Data...)
			for r := range refLFR.Rows {
				cmvn.Apply(cm[r*560 : (r+1)*560])
			}
			d, _ := maxAbsDiff(cm, refCMVN.Data)
			t.Logf("CMVN(reference lfr): max abs error %.3g", d)
			if d > 1e-5 {
				t.Errorf("CMVN(reference lfr): max abs error %g, want ≤ 1e-5", d)
			}
		})
	}
}
