package audio

import (
	"bytes"
	"math"
	"testing"
)

// benchResample streams 10 s of a tone at rate from through a Resampler in
// 20 ms chunks, as a live call would, and reports how many seconds of audio
// one core resamples per second of CPU.
func benchResample(b *testing.B, from, to int) {
	const seconds = 10
	src := tone(from, 440, 0.5, seconds*from)
	r, err := NewResampler(from, to)
	if err != nil {
		b.Fatal(err)
	}
	chunk := from / 50
	dst := make([]float32, 0, seconds*to+chunk)
	b.SetBytes(int64(4 * len(src)))
	b.ReportAllocs()
	for b.Loop() {
		dst = dst[:0]
		for s := src; len(s) > 0; {
			n := min(chunk, len(s))
			dst = r.Process(dst, s[:n])
			s = s[n:]
		}
		dst = r.Flush(dst)
	}
	b.ReportMetric(seconds*float64(b.N)/b.Elapsed().Seconds(), "x_realtime")
}

func BenchmarkResample8to16(b *testing.B)     { benchResample(b, 8000, 16000) }
func BenchmarkResample48to16(b *testing.B)    { benchResample(b, 48000, 16000) }
func BenchmarkResample44100to16(b *testing.B) { benchResample(b, 44100, 16000) }
func BenchmarkResample16to8(b *testing.B)     { benchResample(b, 16000, 8000) }

// BenchmarkWAVDecode decodes 10 s of 16 kHz 16-bit mono WAV from memory.
func BenchmarkWAVDecode(b *testing.B) {
	const seconds = 10
	file := EncodeWAV(tone(16000, 440, 0.5, seconds*16000), 16000)
	dst := make([]float32, 4096)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewWAVReader(bytes.NewReader(file))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Read(dst); err != nil {
				break
			}
		}
	}
	b.ReportMetric(seconds*float64(b.N)/b.Elapsed().Seconds(), "x_realtime")
}

// tone returns n samples of a sine of frequency f Hz and amplitude amp at
// rate Hz.
func tone(rate int, f, amp float64, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(amp * math.Sin(2*math.Pi*f*float64(i)/float64(rate)))
	}
	return s
}
