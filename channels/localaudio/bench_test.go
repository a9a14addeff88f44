package localaudio

import (
	"context"
	"testing"
	"time"
)

// BenchmarkCaptureFrame is the capture path's own cost per 20 ms frame at
// 16 kHz: the echo gate while playing (the dearest policy) and the copy
// the handler gets.
func BenchmarkCaptureFrame(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Echo = EchoGate
	e := newEchoFilter(cfg)
	e.played(tone(320, 0.2))
	in := tone(320, 0.5)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		frame := make([]float32, len(in))
		copy(frame, in)
		e.apply(frame, now)
	}
}

// BenchmarkPlayerFrame is the playback queue's cost per 20 ms frame: Play
// of one frame and the playback goroutine's take.
func BenchmarkPlayerFrame(b *testing.B) {
	ctx := context.Background()
	p := newPlayer(16000, 320)
	over := make(chan struct{})
	in, out := tone(320, 0.5), make([]float32, 320)
	b.ReportAllocs()
	for b.Loop() {
		if err := p.play(ctx, in, over); err != nil {
			b.Fatal(err)
		}
		p.take(ctx, out)
	}
}
