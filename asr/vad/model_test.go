package vad

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// speechFrames marks the 20 ms frames of x that an energy detector would
// call speech: 15 dB over the clip's noise floor (its 10th-percentile
// frame) and within 30 dB of its loudest frame. ok is false when the
// background is too loud for that to mean anything.
func speechFrames(x []float32, rate int) (speech []bool, frame int, ok bool) {
	frame = rate / 50
	db := make([]float64, len(x)/frame)
	for i := range db {
		var e float64
		for _, v := range x[i*frame : (i+1)*frame] {
			e += float64(v) * float64(v)
		}
		db[i] = 10 * math.Log10(e/float64(frame)+1e-10)
	}
	sorted := slices.Sorted(slices.Values(db))
	floor, peak := sorted[len(sorted)/10], sorted[len(sorted)-1]
	speech = make([]bool, len(db))
	for i, v := range db {
		speech[i] = v >= floor+15 && v >= peak-30
	}
	return speech, frame, peak-floor >= 15
}

// onset returns the first sample of the first 100 ms run of speech frames,
// or -1.
func onset(speech []bool, frame int) int64 {
	run := 0
	for i, s := range speech {
		if run = run + 1; !s {
			run = 0
		}
		if run == 5 {
			return int64((i - 4) * frame)
		}
	}
	return -1
}

// covered reports whether sample s lies in one of segs.
func covered(segs []Segment, s int64) bool {
	for _, g := range segs {
		if s >= g.Start && s < g.End {
			return true
		}
	}
	return false
}

// Every speech clip gives segments that cover its loud part and start
// before it; the noise clips give none.
func TestSpeechClips(t *testing.T) {
	m := loadSilero(t)
	var files []string
	for _, p := range []string{"real_*.wav", "espeak_*.wav", "tts_*.wav"} {
		files = append(files, speechFiles(t, p)...)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			x, rate := readWAV(t, f)
			segs, err := Segments(context.Background(), m, x, rate, DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			for i, g := range segs {
				if g.Start < 0 || g.End > int64(len(x)) || g.Start >= g.End || i > 0 && g.Start < segs[i-1].End {
					t.Errorf("segment %d %v outside [0,%d) or out of order", i, g, len(x))
				}
				total += g.End - g.Start
			}
			share := float64(total) / float64(len(x))
			t.Logf("%d segments %v: %.0f%% of %.2fs", len(segs), segs, 100*share, float64(len(x))/float64(rate))
			if len(segs) == 0 {
				t.Fatal("no segment")
			}
			if share < 0.5 {
				t.Errorf("segments cover %.0f%% of a speech clip, want at least 50%%", 100*share)
			}
			speech, frame, ok := speechFrames(x, rate)
			on := onset(speech, frame)
			if !ok || on < 0 {
				t.Logf("background too loud for the energy reference: onset and coverage not checked")
				return
			}
			var in, n int
			for i, s := range speech {
				if s {
					n++
					if covered(segs, int64(i*frame+frame/2)) {
						in++
					}
				}
			}
			t.Logf("energy onset %d (first segment %+d); %d/%d speech frames covered", on, segs[0].Start-on, in, n)
			// The start pad should cover the onset; a consonant the model
			// scores low may take up to another pad.
			if tol := samples(DefaultConfig().SpeechPad, rate); segs[0].Start > on+tol {
				t.Errorf("first segment starts at %d, over %d samples after the energy onset %d", segs[0].Start, tol, on)
			}
			if cov := float64(in) / float64(n); cov < 0.9 {
				t.Errorf("segments cover %.0f%% of the speech frames, want at least 90%%", 100*cov)
			}
		})
	}
}

func TestNoiseClips(t *testing.T) {
	m := loadSilero(t)
	for _, f := range speechFiles(t, "noise_*.wav") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			x, rate := readWAV(t, f)
			segs, err := Segments(context.Background(), m, x, rate, DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			probs, err := Probabilities(context.Background(), m, x, rate)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("segments %v; highest probability %.3f", segs, slices.Max(probs))
			if len(segs) != 0 {
				t.Errorf("found speech in noise: %v", segs)
			}
		})
	}
}

// Feeding the real model in random chunks gives the segments of the whole
// buffer, with and without MaxSpeech cuts.
func TestStreamingRealModel(t *testing.T) {
	m := loadSilero(t)
	rng := rand.New(rand.NewPCG(5, 8))
	short := DefaultConfig()
	short.MaxSpeech = 2 * time.Second
	silero := Config{Threshold: 0.5, MinSpeech: 250 * time.Millisecond, MinSilence: 100 * time.Millisecond, SpeechPad: 30 * time.Millisecond}
	for _, name := range []string{"real_wenetspeech_test_meeting_S00000.wav", "tts_sherpa_matcha_baker_0.wav", "real_ppasr_test.wav"} {
		x, rate := readWAV(t, speechFiles(t, name)[0])
		for _, cfg := range []Config{DefaultConfig(), short, silero} {
			whole, err := Segments(context.Background(), m, x, rate, cfg)
			if err != nil {
				t.Fatal(err)
			}
			d, err := New(m, cfg, rate)
			if err != nil {
				t.Fatal(err)
			}
			var ev []Event
			for rest := x; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(3000))
				if ev, err = d.Accept(context.Background(), rest[:n], ev); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			ev = d.Flush(ev)
			checkEvents(t, ev, int64(len(x)), cfg, rate)
			if got := pair(ev); !slices.Equal(got, whole) {
				t.Errorf("%s %+v: streamed %v, whole %v", name, cfg, got, whole)
			}
			t.Logf("%s max_speech %v min_silence %v: %v", name, cfg.MaxSpeech, cfg.MinSilence, whole)
		}
	}
}

// At 8 kHz (the clip decimated by 2 after a 2-tap average) the model still
// finds the speech.
func TestRealModel8k(t *testing.T) {
	m := loadSilero(t)
	x, _ := readWAV(t, speechFiles(t, "real_aishell1_BAC009S0764W0121.wav")[0])
	y := make([]float32, len(x)/2)
	for i := range y {
		y[i] = (x[2*i] + x[2*i+1]) / 2
	}
	segs, err := Segments(context.Background(), m, y, 8000, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("8 kHz segments %v of %d samples", segs, len(y))
	var speech int64
	for _, g := range segs {
		speech += g.End - g.Start
	}
	if len(segs) == 0 || float64(speech) < 0.5*float64(len(y)) {
		t.Errorf("8 kHz: segments %v cover under half of %d samples", segs, len(y))
	}
}
