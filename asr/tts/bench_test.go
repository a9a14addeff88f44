package tts

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/asr/tts/ttstest"
)

// benchReply is a two-sentence reply.
const benchReply = "您好，您的订单已经发货了。预计明天下午送达，请注意查收。"

// benchSpeak measures time to the first chunk (median, ms) and the
// real-time factor (synthesis time / audio length) of Speak at 8 kHz.
func benchSpeak(b *testing.B, v *Voice) {
	b.Helper()
	ctx := context.Background()
	var firsts []float64
	var audioSec, wall float64
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		var first time.Duration
		n := 0
		if err := v.Speak(ctx, "", "", benchReply, 8000, func(s []float32) error {
			if n == 0 {
				first = time.Since(start)
			}
			n += len(s)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		wall += time.Since(start).Seconds()
		audioSec += float64(n) / 8000
		firsts = append(firsts, float64(first.Microseconds())/1000)
	}
	sort.Float64s(firsts)
	b.ReportMetric(firsts[len(firsts)/2], "first-chunk-ms")
	b.ReportMetric(wall/audioSec, "rtf")
}

func BenchmarkSpeakEspeak(b *testing.B) {
	needEspeak(b)
	benchSpeak(b, voice(b, EngineEspeak, nil))
}

func BenchmarkSpeakVITSContract(b *testing.B) {
	v := voice(b, "vits-zh-aishell3", registry(b, ttstest.VITSAishell3Name))
	if _, err := v.Warm(context.Background()); err != nil {
		b.Fatal(err)
	}
	benchSpeak(b, v)
}

func BenchmarkSpeakMatchaVocosContract(b *testing.B) {
	v := voice(b, "matcha-zh-baker", registry(b, ttstest.MatchaBakerName, ttstest.VocosName))
	if _, err := v.Warm(context.Background()); err != nil {
		b.Fatal(err)
	}
	benchSpeak(b, v)
}
