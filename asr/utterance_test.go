package asr

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/asr/vad"
)

// A caller-driven VAD plus Recognize gives the same text as Transcribe,
// and a missing VAD or an over-long utterance is refused plainly.
func TestRecognizeUtterance(t *testing.T) {
	wav := clip(t, "espeak_cmn_02.wav")
	e := New(DefaultConfig(), registry(t, true, svSherpa), quiet())
	want := transcribe(t, e, wav, Options{}).Text
	src, err := audio.NewReader(bytes.NewReader(wav), "audio/wav", 0)
	if err != nil {
		t.Fatal(err)
	}
	samples, err := audio.ReadAll(src)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	det, err := e.NewDetector(ctx, e.Config().VAD.VAD(), SampleRate)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	var start int64 = -1
	handle := func(evs []vad.Event) {
		for _, ev := range evs {
			if ev.Kind == vad.SpeechStart {
				start = ev.Sample
				continue
			}
			seg, err := e.Recognize(ctx, samples[start:ev.Sample], Options{})
			if err != nil {
				t.Fatal(err)
			}
			if seg.Start != 0 || seg.End <= 0 {
				t.Errorf("segment times %v..%v", seg.Start, seg.End)
			}
			texts = append(texts, seg.Text)
		}
	}
	for i := 0; i < len(samples); i += 320 {
		evs, err := det.Accept(ctx, samples[i:min(i+320, len(samples))], nil)
		if err != nil {
			t.Fatal(err)
		}
		handle(evs)
	}
	handle(det.Flush(nil))
	if got := JoinText(texts); got != want || got == "" {
		t.Errorf("utterances give %q, Transcribe %q", got, want)
	}

	cfg := DefaultConfig()
	cfg.MaxDuration = time.Second
	short := New(cfg, registry(t, false, svSherpa), quiet())
	if _, err := short.Recognize(ctx, samples, Options{}); !errors.Is(err, ErrTooLong) {
		t.Errorf("3 s utterance with a 1 s limit: %v", err)
	}
	if _, err := short.NewDetector(ctx, vad.DefaultConfig(), 8000); !errors.Is(err, ErrNoVAD) {
		t.Errorf("no VAD installed: %v", err)
	}
}
