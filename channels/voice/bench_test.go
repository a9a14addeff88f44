package voice

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func reportLatency(b *testing.B, name string, ds []time.Duration) {
	b.ReportMetric(float64(percentile(ds, 0.5).Microseconds())/1000, name+"_p50_ms")
	b.ReportMetric(float64(percentile(ds, 0.95).Microseconds())/1000, name+"_p95_ms")
}

// waitIdle waits until the call's loop took every queued frame.
func waitIdle(c *call) {
	for len(c.frames) > 0 {
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkBargeIn: caller speech onset (the first loud frame handed to
// Audio at real-time pace) → Media.StopPlayback on the fake line.
func BenchmarkBargeIn(b *testing.B) {
	r := newRig(b, testConfig(), nil)
	speech := clip8k(b, "espeak_cmn_02.wav", true)[:lineRate] // 1 s of speech
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		r.voice.long = nil
		l := newLine(b)
		c := r.call(fmt.Sprintf("bench-barge-%d", i), l)
		r.voice.mu.Lock()
		r.voice.long = map[string]time.Duration{"您好": 30 * time.Second}
		r.voice.mu.Unlock()
		r.voice.waitSaid(b, "您好", i+1)
		feed(c, silence(200*time.Millisecond), 20*time.Millisecond, nil)
		var onset time.Time
		feed(c, speech, 20*time.Millisecond, func(j int, at time.Time) {
			if j == 0 {
				onset = at
			}
		})
		l.mu.Lock()
		if len(l.stops) > 0 {
			lat = append(lat, l.stops[0].Sub(onset))
		}
		l.mu.Unlock()
		c.End("bye")
	}
	if len(lat) < b.N {
		b.Fatalf("%d of %d calls saw no barge-in", b.N-len(lat), b.N)
	}
	reportLatency(b, "onset_to_stop", lat)
}

// BenchmarkEndOfSpeechToFirstAudio: the last speech frame handed to Audio
// → the reply's first audio queued on the fake line (Play), with the
// contract ASR model, the rule dialogue and the tone speaker: with the
// end_silence wait (e2e), with a confident intent (quick), and the
// response stage alone (turn end decided → first reply audio, from the
// turn records).
func BenchmarkEndOfSpeechToFirstAudio(b *testing.B) {
	speech := clip8k(b, "espeak_cmn_01.wav", true)
	for _, mode := range []string{"end_silence", "quick"} {
		b.Run(mode, func(b *testing.B) {
			var intent IntentFunc
			if mode == "quick" {
				intent = func(context.Context, string) (string, float64, error) { return "x", 0.95, nil }
			}
			r := newRig(b, testConfig(), intent)
			l := newLine(b)
			c := r.call("bench-e2e-"+mode, l)
			r.voice.waitSaid(b, "您好", 1)
			time.Sleep(500 * time.Millisecond)
			var e2e []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				feed(c, speech, 0, nil)
				waitIdle(c)
				l.mu.Lock()
				l.playTimes = l.playTimes[:0]
				l.mu.Unlock()
				end := time.Now()
				feed(c, silence(900*time.Millisecond), 20*time.Millisecond, nil)
				r.dlg.waitTurns(b, i+1)
				l.mu.Lock()
				for _, t := range l.playTimes {
					if t.After(end) {
						e2e = append(e2e, t.Sub(end))
						break
					}
				}
				l.mu.Unlock()
			}
			b.StopTimer()
			feed(c, silence(400*time.Millisecond), 20*time.Millisecond, nil)
			c.End("bye")
			rec, err := GetCall(context.Background(), r.db.Read(), r.keys, c.info.ID)
			if err != nil {
				b.Fatal(err)
			}
			var resp, vw, asrD []time.Duration
			for _, t := range rec.Transcript {
				if t.Response > 0 {
					resp = append(resp, t.Response)
				}
				vw = append(vw, t.VADWait)
				asrD = append(asrD, t.ASR)
			}
			reportLatency(b, "e2e", e2e)
			reportLatency(b, "response", resp)
			reportLatency(b, "vad_wait", vw)
			reportLatency(b, "asr", asrD)
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// rssBytes is the process's resident set now (Linux), 0 elsewhere.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res uint64
	if _, err := fmt.Sscan(string(b), &size, &res); err != nil {
		return 0
	}
	return res * uint64(os.Getpagesize())
}

// BenchmarkIdleCallMemory: N calls answered and idle (the greeting said,
// silence flowing in); Go heap growth per call. The Silero state in ONNX
// Runtime's C memory is not in the Go heap: the RSS growth per call
// is reported beside it.
func BenchmarkIdleCallMemory(b *testing.B) {
	const n = 50
	cfg := testConfig()
	cfg.MaxCalls = n
	r := newRig(b, cfg, nil)
	quiet := silence(time.Second)
	for i := 0; i < b.N; i++ {
		before, rss0 := heapInUse(), rssBytes()
		var calls []*call
		for j := 0; j < n; j++ {
			calls = append(calls, r.call(fmt.Sprintf("idle-%d-%d", i, j), newLine(b)))
		}
		var wg sync.WaitGroup
		for _, c := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				feed(c, quiet, 0, nil)
				waitIdle(c)
			}()
		}
		wg.Wait()
		time.Sleep(400 * time.Millisecond) // greetings out
		after, rss1 := heapInUse(), rssBytes()
		b.ReportMetric(float64(after-before)/n/1024, "heap_KiB/call")
		b.ReportMetric((float64(rss1)-float64(rss0))/n/1024, "rss_KiB/call")
		for _, c := range calls {
			c.End("bye")
		}
	}
}

// BenchmarkConcurrentCalls: 100 calls, each fed real speech (a clip then
// 1.2 s of silence, twice) at real-time pace by its own 20 ms ticker, with
// the VAD, the contract ASR model, the rule dialogue and the tone speaker
// running. It reports the process's CPU share (of all cores, fakes
// included), the frames dropped because a loop fell behind, the turns
// answered, and how long the loops took to catch up after the last frame.
func BenchmarkConcurrentCalls(b *testing.B) {
	const n = 100
	cfg := testConfig()
	cfg.MaxCalls = n
	r := newRig(b, cfg, nil)
	speech := clip8k(b, "espeak_cmn_01.wav", true)
	audioIn := concat(speech, silence(1200*time.Millisecond), speech, silence(1200*time.Millisecond))
	for i := 0; i < b.N; i++ {
		var calls []*call
		for j := 0; j < n; j++ {
			calls = append(calls, r.call(fmt.Sprintf("load-%d-%d", i, j), newLine(b)))
		}
		turns0 := len(r.dlg.all())
		var ru0, ru1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		t0 := time.Now()
		var wg sync.WaitGroup
		for j, c := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(j) * 20 * time.Millisecond / n) // spread the frame phases
				feed(c, audioIn, 20*time.Millisecond, nil)
			}()
		}
		wg.Wait()
		fedAt := time.Now()
		for _, c := range calls {
			waitIdle(c)
		}
		catchUp := time.Since(fedAt)
		wall := time.Since(t0)
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
		var dropped int64
		for _, c := range calls {
			dropped += c.dropped.Load()
		}
		time.Sleep(time.Second)
		turns := len(r.dlg.all()) - turns0
		for _, c := range calls {
			c.End("bye")
		}
		b.ReportMetric(cpu.Seconds()/wall.Seconds()/float64(runtime.NumCPU())*100, "cpu_%")
		b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
		b.ReportMetric(float64(dropped), "dropped_frames")
		b.ReportMetric(float64(turns)/float64(n), "turns/call")
		b.ReportMetric(float64(catchUp.Milliseconds()), "catch_up_ms")
	}
}
