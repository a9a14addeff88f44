package vad

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkVAD runs the real model over 10 s of meeting audio at 16 kHz
// (the runtime's default intra-op threads) and reports × real time and the
// mean latency of one 512-sample window.
func BenchmarkVAD(b *testing.B) {
	m := loadSilero(b)
	x, rate := readWAV(b, speechFiles(b, "real_wenetspeech_test_meeting_S00000.wav")[0])
	x = x[:10*rate]
	d, err := New(m, DefaultConfig(), rate)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var ev []Event
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if ev, err = d.Accept(ctx, x, ev[:0]); err != nil {
			b.Fatal(err)
		}
		ev = d.Flush(ev)
	}
	elapsed := time.Since(start).Seconds()
	b.ReportMetric(10*float64(b.N)/elapsed, "x_realtime")
	b.ReportMetric(elapsed/float64(b.N*(len(x)/d.Window()))*1e6, "us/window")
}

// BenchmarkSegmenter measures the state machine alone, per window.
func BenchmarkSegmenter(b *testing.B) {
	probs := randomProbs(rand.New(rand.NewPCG(1, 1)), 4096, 0)
	cfg := DefaultConfig()
	s := newSegmenter(cfg, 16000, 512)
	var ev []Event
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%len(probs) == 0 {
			s.reset()
			ev = ev[:0]
		}
		ev = s.window(probs[i%len(probs)], ev)
	}
}
