package features

import "testing"

// benchAudio is 10 s of 16 kHz deterministic noise with a tone. The cost
// of the front-end does not depend on the signal.
func benchAudio() []float32 { return noise(10*16000, 42) }

func reportRealtime(b *testing.B, audioSeconds float64) {
	b.ReportMetric(audioSeconds*float64(b.N)/b.Elapsed().Seconds(), "x_realtime")
}

// BenchmarkFbank measures 10 s of audio through Fbank.Accept in 1600-sample
// (100 ms) chunks. x_realtime is per core (run with -cpu 1).
func BenchmarkFbank(b *testing.B) {
	x := benchAudio()
	f, err := NewFbank(DefaultFbankOptions())
	if err != nil {
		b.Fatal(err)
	}
	var sink float32
	emit := func(fr []float32) { sink += fr[0] }
	b.ReportAllocs()
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		for s := x; len(s) > 0; s = s[min(1600, len(s)):] {
			f.Accept(s[:min(1600, len(s))], emit)
		}
		f.Reset()
	}
	reportRealtime(b, 10)
	_ = sink
}

// BenchmarkFrontend measures 10 s of audio through fbank, LFR and CMVN.
func BenchmarkFrontend(b *testing.B) {
	x := benchAudio()
	f, err := NewFrontend(FrontendConfig{Fbank: DefaultFbankOptions(), LFRM: 7, LFRN: 6, CMVN: testCMVN(560)})
	if err != nil {
		b.Fatal(err)
	}
	var sink float32
	emit := func(row []float32) { sink += row[0] }
	b.ReportAllocs()
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		for s := x; len(s) > 0; s = s[min(1600, len(s)):] {
			f.Accept(s[:min(1600, len(s))], emit)
		}
		f.Flush(emit)
	}
	reportRealtime(b, 10)
	_ = sink
}
