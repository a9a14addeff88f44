package asr

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/inferencetest"
	"github.com/zhiyin/zhiyin/models"
)

// benchAudio is about a minute of the shared Mandarin clips, each followed
// by a second of quiet.
func benchAudio(b *testing.B) []byte {
	b.Helper()
	names, _ := filepath.Glob(filepath.Join(speechDir, "*.wav"))
	var all []float32
	for _, n := range names {
		if filepath.Base(n)[:5] == "noise" {
			continue
		}
		data, err := os.ReadFile(n)
		if err != nil {
			b.Skip(err)
		}
		r, err := audio.NewWAVReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		s, _ := audio.ReadAll(r)
		all = append(all, s...)
		all = append(all, make([]float32, 16000)...)
		if len(all) > 60*16000 {
			break
		}
	}
	if len(all) == 0 {
		b.Skip("needs the shared speech clips")
	}
	return audio.EncodeWAV(all, 16000)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ortSeconds sums the time of every ONNX Runtime run recorded in reg.
func ortSeconds(b *testing.B, reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var s float64
	for _, mf := range mfs {
		if mf.GetName() != "zhiyin_inference_run_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			s += m.GetHistogram().GetSampleSum()
		}
	}
	return s
}

// BenchmarkTranscribe runs a minute of speech through the whole pipeline
// (WAV decode, VAD, fbank+LFR+CMVN, the contract model, decoding) with one
// ONNX Runtime thread and one segment at a time, so that the process's CPU
// time is ONNX Runtime's runs plus zhiyin's own work. It reports × real
// time and the share of CPU time spent outside ONNX Runtime.
func BenchmarkTranscribe(b *testing.B) {
	for _, folder := range []string{svSherpa, pfSherpa} {
		b.Run(folder, func(b *testing.B) {
			wav := benchAudio(b)
			rt := inferencetest.Need(b, testRT, testRTErr)
			dir := b.TempDir()
			cat, _ := inference.ParseCatalog(models.Catalog())
			if _, err := inference.NewStore(dir, cat).Install(context.Background(), filepath.Join(contractDir, folder), inference.InstallOptions{}); err != nil {
				b.Fatal(err)
			}
			abs, _ := filepath.Abs(sileroDir)
			icfg := inference.DefaultConfig()
			icfg.Provider = "cpu"
			icfg.CPU.IntraOpThreads = 1
			icfg.CPU.InterOpThreads = 1
			preg := prometheus.NewRegistry()
			reg := inference.NewRegistry(rt, icfg, []string{dir, abs}, quiet(), preg, nil)
			defer reg.Stop(context.Background())
			cfg := DefaultConfig()
			cfg.Concurrency = 1
			e := New(cfg, reg, quiet())
			if _, _, err := e.Warm(context.Background()); err != nil {
				b.Fatal(err)
			}
			if h, err := reg.Handle("silero-vad"); err != nil {
				b.Skip("needs the Silero VAD weights (scripts/fetch-deps.sh)")
			} else if _, err := h.Model(context.Background()); err != nil {
				b.Skip(err)
			}
			var dur float64
			ort0, cpu0 := ortSeconds(b, preg), cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := e.TranscribeReader(context.Background(), bytes.NewReader(wav), "audio/wav", 0, Options{})
				if err != nil {
					b.Fatal(err)
				}
				dur += res.Duration
			}
			b.StopTimer()
			ort, cpu := ortSeconds(b, preg)-ort0, (cpuTime() - cpu0).Seconds()
			b.ReportMetric(dur/b.Elapsed().Seconds(), "x_realtime")
			b.ReportMetric(100*(cpu-ort)/cpu, "%cpu_outside_ort")
		})
	}
}
