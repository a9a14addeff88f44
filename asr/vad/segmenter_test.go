package vad

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/inference"
)

// fakeRunner is a Runner whose Run is a function field.
type fakeRunner struct {
	run   func(ctx context.Context, call int, inputs []inference.Tensor) ([]inference.Tensor, error)
	calls int
}

func (f *fakeRunner) Run(ctx context.Context, inputs []inference.Tensor) ([]inference.Tensor, error) {
	f.calls++
	return f.run(ctx, f.calls-1, inputs)
}

// outputs builds Silero's two outputs.
func outputs(p float32, state float32) []inference.Tensor {
	st := make([]float32, stateLen)
	for i := range st {
		st[i] = state
	}
	return []inference.Tensor{
		inference.NewTensor([]int64{1, 1}, []float32{p}),
		inference.NewTensor([]int64{2, 1, 128}, st),
	}
}

// scripted returns probs[call] for each run (0 past the end).
func scripted(probs []float32) *fakeRunner {
	return &fakeRunner{run: func(_ context.Context, call int, _ []inference.Tensor) ([]inference.Tensor, error) {
		p := float32(0)
		if call < len(probs) {
			p = probs[call]
		}
		return outputs(p, float32(call+1)), nil
	}}
}

// script parses "0*3 1*10 0.4" into probabilities (value*count).
func script(t testing.TB, s string) []float32 {
	t.Helper()
	var out []float32
	for _, f := range strings.Fields(s) {
		v, n, ok := strings.Cut(f, "*")
		count := 1
		if ok {
			var err error
			if count, err = strconv.Atoi(n); err != nil {
				t.Fatalf("script %q: %v", f, err)
			}
		}
		p, err := strconv.ParseFloat(v, 32)
		if err != nil {
			t.Fatalf("script %q: %v", f, err)
		}
		for range count {
			out = append(out, float32(p))
		}
	}
	return out
}

// testConfig: windows are 32 ms at both rates, so MinSpeech is 2 windows,
// MinSilence 3 and the pad 1.
func testConfig() Config {
	return Config{Threshold: 0.5, MinSpeech: 64 * time.Millisecond, MinSilence: 96 * time.Millisecond, SpeechPad: 32 * time.Millisecond}
}

// runScript feeds len(probs) windows of silence (plus extra samples) in one
// Accept and flushes.
func runScript(t *testing.T, cfg Config, rate int, probs []float32, extra int) ([]Segment, []Event) {
	t.Helper()
	d, err := New(scripted(probs), cfg, rate)
	if err != nil {
		t.Fatal(err)
	}
	n := len(probs)*d.Window() + extra
	ev, err := d.Accept(context.Background(), make([]float32, n), nil)
	if err != nil {
		t.Fatal(err)
	}
	ev = d.Flush(ev)
	checkEvents(t, ev, int64(n), cfg, rate)
	return pair(ev), ev
}

// checkEvents checks what every event sequence must satisfy.
func checkEvents(t testing.TB, ev []Event, fed int64, cfg Config, rate int) {
	t.Helper()
	var last int64
	for i, e := range ev {
		want := SpeechStart
		if i%2 == 1 {
			want = SpeechEnd
		}
		if e.Kind != want {
			t.Fatalf("event %d is %v, want %v: %v", i, e.Kind, want, ev)
		}
		if e.Sample < last || e.Sample < 0 || e.Sample > fed {
			t.Fatalf("event %d at %d: before %d or outside [0,%d]: %v", i, e.Sample, last, fed, ev)
		}
		if e.Kind == SpeechEnd && e.Sample == last {
			t.Fatalf("event %d: empty segment: %v", i, ev)
		}
		if e.Kind == SpeechEnd && cfg.MaxSpeech > 0 && e.Sample-last > samples(cfg.MaxSpeech, rate) {
			t.Fatalf("event %d: segment [%d,%d) longer than max_speech %v: %v", i, last, e.Sample, cfg.MaxSpeech, ev)
		}
		last = e.Sample
	}
	if len(ev)%2 != 0 {
		t.Fatalf("odd number of events after Flush: %v", ev)
	}
}

func TestSegmenterScripts(t *testing.T) {
	base := testConfig()
	with := func(f func(*Config)) Config {
		c := base
		f(&c)
		return c
	}
	wide := with(func(c *Config) { c.MinSilence = 32 * time.Millisecond; c.SpeechPad = 96 * time.Millisecond })
	maxed := with(func(c *Config) { c.MaxSpeech = 2 * time.Second })
	tests := []struct {
		name   string
		cfg    Config
		rate   int
		script string
		extra  int // samples fed after the scripted windows
		want   []Segment
	}{
		{"silence", base, 16000, "0*30", 0, nil},
		{"speech in the middle", base, 16000, "0*10 1*10 0*10", 0, []Segment{{4608, 10752}}},
		{"threshold is inclusive", base, 16000, "0*10 0.5*10 0*10", 0, []Segment{{4608, 10752}}},
		{"below threshold never starts", base, 16000, "0*5 0.49*20 0*5", 0, nil},
		{"burst of MinSpeech dropped", base, 16000, "0*5 1*2 0*10", 0, nil},
		{"burst over MinSpeech kept", base, 16000, "0*5 1*3 0*10", 0, []Segment{{2048, 4608}}},
		{"pad clamped at 0", base, 16000, "1*10 0*10", 0, []Segment{{0, 5632}}},
		{"flush closes at the end", base, 16000, "0*5 1*10", 0, []Segment{{2048, 7680}}},
		{"flush closes at the last sample fed", base, 16000, "0*5 1*10", 100, []Segment{{2048, 7780}}},
		{"flush ends at the tentative end", base, 16000, "0*5 1*10 0*2", 0, []Segment{{2048, 8192}}},
		{"flush drops a short open segment", base, 16000, "0*5 1*2", 0, nil},
		{"pad clamped at the end", wide, 16000, "0*5 1*10 0*1", 0, []Segment{{1024, 8192}}},
		{"two segments", base, 16000, "0*10 1*10 0*10 1*10 0*10", 0, []Segment{{4608, 10752}, {14848, 20992}}},
		{"short gap split in half", wide, 16000, "0*10 1*10 0*2 1*10 0*10", 0, []Segment{{3584, 10752}, {10752, 17920}}},
		{"wide gap padded", wide, 16000, "0*10 1*10 0*8 1*10 0*10", 0, []Segment{{3584, 11776}, {12800, 20992}}},
		{"dropped burst does not split", wide, 16000, "0*10 1*10 0*2 1*1 0*20", 0, []Segment{{3584, 11776}}},
		{"hysteresis: between neg and thr stays speech", base, 16000, "0*5 1*10 0.4*20 0*5", 0, []Segment{{2048, 18432}}},
		{"hysteresis: between neg and thr neither cancels nor confirms", base, 16000, "0*5 1*10 0*1 0.4*10 1*5 0*5", 0, []Segment{{2048, 16384}}},
		{"hysteresis: silence confirmed at the next window below neg", base, 16000, "0*5 1*10 0*1 0.4*10 0*6", 0, []Segment{{2048, 8192}}},
		{"explicit neg threshold", with(func(c *Config) { c.NegThreshold = 0.45 }), 16000, "0*5 1*10 0.4*5 0*5", 0, []Segment{{2048, 8192}}},
		{"max speech cut at the limit", maxed, 16000, "0*5 1*100 0*10", 0, []Segment{{2048, 33024}, {33024, 54272}}},
		{"max speech cut at the quietest window", maxed, 16000, "0*5 1*40 0.4*1 1*59 0*10", 0, []Segment{{2048, 23296}, {23296, 54272}}},
		{"max speech cut where silence began", maxed, 16000, "0*5 1*58 0*1 0.4*10 0*10", 0, []Segment{{2048, 32768}}},
		{"8 kHz", base, 8000, "0*10 1*10 0*10", 0, []Segment{{2304, 5376}}},
		{"8 kHz short burst", base, 8000, "0*5 1*2 0*10", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probs := script(t, tt.script)
			got, _ := runScript(t, tt.cfg, tt.rate, probs, tt.extra)
			if !slices.Equal(got, tt.want) {
				t.Errorf("segments %v, want %v", got, tt.want)
			}
			// Window by window the same events come out.
			if got2 := streamSegments(t, tt.cfg, tt.rate, probs, tt.extra, rand.New(rand.NewPCG(1, 2))); !slices.Equal(got2, got) {
				t.Errorf("streamed: %v, whole: %v", got2, got)
			}
		})
	}
}

// streamSegments feeds the scripted windows in random chunks, checking on
// the way that events are never in the future and Speaking agrees.
func streamSegments(t *testing.T, cfg Config, rate int, probs []float32, extra int, rng *rand.Rand) []Segment {
	t.Helper()
	d, err := New(scripted(probs), cfg, rate)
	if err != nil {
		t.Fatal(err)
	}
	total := len(probs)*d.Window() + extra
	var ev []Event
	for fed := 0; fed < total; {
		n := min(rng.IntN(3*d.Window()), total-fed)
		before := len(ev)
		if ev, err = d.Accept(context.Background(), make([]float32, n), ev); err != nil {
			t.Fatal(err)
		}
		fed += n
		if d.Pos() != int64(fed) {
			t.Fatalf("Pos %d, fed %d", d.Pos(), fed)
		}
		for _, e := range ev[before:] {
			if e.Sample > int64(fed) {
				t.Fatalf("event %v past the %d samples fed", e, fed)
			}
		}
		if want := len(ev) > 0 && ev[len(ev)-1].Kind == SpeechStart; d.Speaking() != want {
			t.Fatalf("Speaking %v after %v", d.Speaking(), ev)
		}
	}
	ev = d.Flush(ev)
	if d.Speaking() || d.Pos() != 0 {
		t.Fatalf("after Flush: Speaking %v, Pos %d", d.Speaking(), d.Pos())
	}
	checkEvents(t, ev, int64(total), cfg, rate)
	return pair(ev)
}

// When the MinSilence is at least 2 pads, the End comes with the window
// that confirms the silence.
func TestEndLatency(t *testing.T) {
	probs := script(t, "0*10 1*10 0*10")
	d, err := New(scripted(probs), testConfig(), 16000)
	if err != nil {
		t.Fatal(err)
	}
	var ev []Event
	for i := range probs {
		n := len(ev)
		if ev, err = d.Accept(context.Background(), make([]float32, 512), ev); err != nil {
			t.Fatal(err)
		}
		for _, e := range ev[n:] {
			t.Logf("window %d: %v at %d", i, e.Kind, e.Sample)
			switch e.Kind {
			case SpeechStart:
				// Raw start 10·512 is confirmed once the next window
				// (12·512) is more than MinSpeech (2 windows) after it.
				if i != 12 {
					t.Errorf("start at window %d, want 12", i)
				}
			case SpeechEnd:
				// Silence from window 20 is confirmed at window 23.
				if i != 23 {
					t.Errorf("end at window %d, want 23", i)
				}
			}
		}
	}
}

// sileroTimestamps is a line-by-line port of get_speech_timestamps's
// segmenting (silero-vad utils_vad.py @0dd45f0) without max_speech, from
// window probabilities.
func sileroTimestamps(probs []float32, ws, audioLen int64, thr, neg float64, minSpeech, minSilence, pad int64) []Segment {
	triggered := false
	var speeches []Segment
	var cur Segment
	have := false
	tempEnd := int64(0)
	for i, p := range probs {
		at := int64(i) * ws
		pp := float64(p)
		if pp >= thr && tempEnd != 0 {
			tempEnd = 0
		}
		if pp >= thr && !triggered {
			triggered, cur, have = true, Segment{Start: at}, true
			continue
		}
		if pp < neg && triggered {
			if tempEnd == 0 {
				tempEnd = at
			}
			if at-tempEnd < minSilence {
				continue
			}
			cur.End = tempEnd
			if cur.End-cur.Start > minSpeech {
				speeches = append(speeches, cur)
			}
			have, tempEnd, triggered = false, 0, false
		}
	}
	if have && audioLen-cur.Start > minSpeech {
		cur.End = audioLen
		speeches = append(speeches, cur)
	}
	for i := range speeches {
		s := &speeches[i]
		if i == 0 {
			s.Start = max(0, s.Start-pad)
		}
		if i != len(speeches)-1 {
			n := &speeches[i+1]
			if gap := n.Start - s.End; gap < 2*pad {
				s.End += gap / 2
				n.Start = max(0, n.Start-gap/2)
			} else {
				s.End = min(audioLen, s.End+pad)
				n.Start = max(0, n.Start-pad)
			}
		} else {
			s.End = min(audioLen, s.End+pad)
		}
	}
	return speeches
}

// randomProbs returns runs of probabilities around the thresholds, ending
// with enough silence to close any segment (where Flush differs from
// silero on purpose).
func randomProbs(rng *rand.Rand, n int, tail int) []float32 {
	levels := []float32{0, 0.1, 0.3, 0.34, 0.35, 0.4, 0.49, 0.5, 0.6, 0.9, 1}
	var probs []float32
	for len(probs) < n {
		p, run := levels[rng.IntN(len(levels))], 1+rng.IntN(25)
		for range run {
			probs = append(probs, p)
		}
	}
	return append(probs[:n], make([]float32, tail)...)
}

func randomConfig(rng *rand.Rand) Config {
	ms := func(n int) time.Duration { return time.Duration(rng.IntN(n)) * time.Millisecond }
	c := Config{
		Threshold:  []float64{0.3, 0.5, 0.7}[rng.IntN(3)],
		MinSpeech:  ms(400),
		MinSilence: ms(700),
		SpeechPad:  ms(250),
	}
	if rng.IntN(2) == 0 {
		c.NegThreshold = c.Threshold * rng.Float64()
		if c.NegThreshold == 0 {
			c.NegThreshold = c.Threshold
		}
	}
	return c
}

// Streaming, in any chunks, gives silero's offline segments.
func TestMatchesSilero(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 300 {
		cfg := randomConfig(rng)
		rate := []int{16000, 8000}[rng.IntN(2)]
		ws := 512 * rate / 16000
		tail := int(samples(cfg.MinSilence, rate))/ws + 2
		probs := randomProbs(rng, 20+rng.IntN(300), tail)
		want := sileroTimestamps(probs, int64(ws), int64(len(probs)*ws), cfg.Threshold, cfg.negThreshold(),
			samples(cfg.MinSpeech, rate), samples(cfg.MinSilence, rate), samples(cfg.SpeechPad, rate))
		got := streamSegments(t, cfg, rate, probs, 0, rng)
		if !slices.Equal(got, want) {
			t.Fatalf("case %d (%+v at %d Hz, probs %v):\n got %v\nwant %v", i, cfg, rate, probs, got, want)
		}
	}
}

// With MaxSpeech set, the invariants hold (checked in streamSegments) and
// chunking does not matter.
func TestMaxSpeechRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range 200 {
		cfg := randomConfig(rng)
		cfg.MaxSpeech = time.Second + 2*cfg.MinSpeech + 2*cfg.SpeechPad + time.Duration(rng.IntN(1500))*time.Millisecond
		probs := randomProbs(rng, 50+rng.IntN(400), rng.IntN(20))
		extra := rng.IntN(512)
		whole, _ := runScript(t, cfg, 16000, probs, extra)
		if got := streamSegments(t, cfg, 16000, probs, extra, rng); !slices.Equal(got, whole) {
			t.Fatalf("case %d (%+v): streamed %v, whole %v", i, cfg, got, whole)
		}
	}
}

// FuzzSegmenter: bytes are probabilities (b/255) after two bytes choosing
// the config; events keep their invariants, chunking does not matter, and
// without MaxSpeech (and with a silent tail) they equal silero's.
func FuzzSegmenter(f *testing.F) {
	f.Add(uint8(0), uint8(0), []byte{0, 0, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0})
	f.Add(uint8(1), uint8(7), []byte{255, 100, 90, 0, 255, 255, 128, 127, 255, 0, 255, 0})
	f.Add(uint8(255), uint8(3), make([]byte, 40))
	f.Add(uint8(2), uint8(200), []byte(strings.Repeat("\xff", 200)))
	f.Fuzz(func(t *testing.T, c1, c2 uint8, data []byte) {
		if len(data) > 4000 {
			return
		}
		rng := rand.New(rand.NewPCG(uint64(c1), uint64(c2)))
		cfg := randomConfig(rng)
		if c1%2 == 1 {
			cfg.MaxSpeech = time.Second + 2*cfg.MinSpeech + 2*cfg.SpeechPad + time.Duration(c2)*10*time.Millisecond
		}
		probs := make([]float32, len(data))
		for i, b := range data {
			probs[i] = float32(b) / 255
		}
		whole, _ := runScript(t, cfg, 16000, probs, int(c2))
		if got := streamSegments(t, cfg, 16000, probs, int(c2), rng); !slices.Equal(got, whole) {
			t.Fatalf("streamed %v, whole %v", got, whole)
		}
		if cfg.MaxSpeech == 0 {
			probs = append(probs, make([]float32, int(samples(cfg.MinSilence, 16000))/512+2)...)
			want := sileroTimestamps(probs, 512, int64(len(probs)*512), cfg.Threshold, cfg.negThreshold(),
				samples(cfg.MinSpeech, 16000), samples(cfg.MinSilence, 16000), samples(cfg.SpeechPad, 16000))
			if got, _ := runScript(t, cfg, 16000, probs, 0); !slices.Equal(got, want) {
				t.Fatalf("got %v, silero %v", got, want)
			}
		}
	})
}

// The model sees the previous window's last samples as context (zeros at
// first), the state it returned last, and the rate as an int64 scalar.
func TestModelInputs(t *testing.T) {
	for _, rate := range []int{16000, 8000} {
		t.Run(strconv.Itoa(rate), func(t *testing.T) {
			ws, cn := 512*rate/16000, 64*rate/16000
			audio := make([]float32, 5*ws+7)
			for i := range audio {
				audio[i] = float32(i+1) / float32(len(audio))
			}
			r := &fakeRunner{run: func(_ context.Context, call int, in []inference.Tensor) ([]inference.Tensor, error) {
				if len(in) != 3 {
					return nil, fmt.Errorf("%d inputs", len(in))
				}
				x, err := inference.Values[float32](in[0])
				if err != nil || !slices.Equal(in[0].Shape, []int64{1, int64(cn + ws)}) {
					return nil, fmt.Errorf("input %v %v", in[0].Shape, err)
				}
				for j := range cn + ws {
					k := call*ws - cn + j
					want := float32(0)
					if k >= 0 {
						want = audio[k]
					}
					if x[j] != want {
						return nil, fmt.Errorf("window %d: input[%d] = %v, want sample %d = %v", call, j, x[j], k, want)
					}
				}
				st, err := inference.Values[float32](in[1])
				if err != nil || !slices.Equal(in[1].Shape, []int64{2, 1, 128}) || len(st) != stateLen {
					return nil, fmt.Errorf("state %v %v", in[1].Shape, err)
				}
				for _, v := range st {
					if v != float32(call) {
						return nil, fmt.Errorf("window %d: state %v, want the previous stateN %d", call, v, call)
					}
				}
				sr, err := inference.Values[int64](in[2])
				if err != nil || len(in[2].Shape) != 0 || len(sr) != 1 || sr[0] != int64(rate) {
					return nil, fmt.Errorf("sr %v %v %v", in[2].Shape, sr, err)
				}
				return outputs(0, float32(call+1)), nil
			}}
			d, err := New(r, DefaultConfig(), rate)
			if err != nil {
				t.Fatal(err)
			}
			if d.SampleRate() != rate || d.Window() != ws {
				t.Fatalf("rate %d window %d", d.SampleRate(), d.Window())
			}
			rng := rand.New(rand.NewPCG(9, 9))
			for rest := audio; len(rest) > 0; {
				n := min(len(rest), rng.IntN(ws+ws/2))
				if _, err := d.Accept(context.Background(), rest[:n], nil); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			if r.calls != 5 {
				t.Errorf("%d runs, want 5", r.calls)
			}
			// After Reset the state and context are zeros again.
			d.Reset()
			r.calls = 0
			if _, err := d.Accept(context.Background(), audio[:ws], nil); err != nil {
				t.Fatal(err)
			}
			probs, err := Probabilities(context.Background(), scripted(script(t, "0.1 0.2 0.3")), audio, rate)
			if err != nil || !slices.Equal(probs, []float32{0.1, 0.2, 0.3, 0, 0}) {
				t.Errorf("Probabilities: %v, %v", probs, err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"threshold 0", func(c *Config) { c.Threshold = 0 }, "threshold:"},
		{"threshold 1", func(c *Config) { c.Threshold = 1 }, "threshold:"},
		{"threshold NaN", func(c *Config) { c.Threshold = math.NaN() }, "threshold:"},
		{"neg above threshold", func(c *Config) { c.NegThreshold = 0.6 }, "neg_threshold:"},
		{"neg negative", func(c *Config) { c.NegThreshold = -0.1 }, "neg_threshold:"},
		{"min speech negative", func(c *Config) { c.MinSpeech = -time.Millisecond }, "min_speech:"},
		{"min silence too long", func(c *Config) { c.MinSilence = 2 * time.Hour }, "min_silence:"},
		{"pad negative", func(c *Config) { c.SpeechPad = -1 }, "speech_pad:"},
		{"max speech negative", func(c *Config) { c.MaxSpeech = -time.Second }, "max_speech:"},
		{"max speech too short", func(c *Config) { c.MaxSpeech = time.Second }, "max_speech: must be 0 (no limit) or at least 1s + 2×min_speech + 2×speech_pad (1.7s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("Validate: %v, want %v naming %q", err, ErrConfig, tt.field)
			}
			if _, err := New(scripted(nil), cfg, 16000); !errors.Is(err, ErrConfig) {
				t.Errorf("New: %v", err)
			}
			if _, err := Segments(context.Background(), scripted(nil), nil, 16000, cfg); !errors.Is(err, ErrConfig) {
				t.Errorf("Segments: %v", err)
			}
		})
	}
	for _, cfg := range []Config{DefaultConfig(), testConfig(), {Threshold: 0.5, NegThreshold: 0.5}} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	// Every problem is named at once.
	err := Config{Threshold: 2, MinSpeech: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "threshold:") || !strings.Contains(err.Error(), "min_speech:") {
		t.Errorf("two problems: %v", err)
	}
}

func TestSampleRateErrors(t *testing.T) {
	for _, rate := range []int{0, -16000, 22050, 44100, 48000, 16001} {
		if _, err := New(scripted(nil), DefaultConfig(), rate); !errors.Is(err, ErrSampleRate) || !strings.Contains(err.Error(), "resample") {
			t.Errorf("New at %d Hz: %v", rate, err)
		}
		if _, err := Probabilities(context.Background(), scripted(nil), nil, rate); !errors.Is(err, ErrSampleRate) {
			t.Errorf("Probabilities at %d Hz: %v", rate, err)
		}
	}
	if _, err := New(nil, DefaultConfig(), 16000); err == nil {
		t.Error("nil runner accepted")
	}
}

var errFake = errors.New("fake failure")

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name string
		out  func(call int) ([]inference.Tensor, error)
		want error
	}{
		{"runner error", func(int) ([]inference.Tensor, error) { return nil, errFake }, errFake},
		{"one output", func(int) ([]inference.Tensor, error) { return outputs(0, 0)[:1], nil }, ErrModelOutput},
		{"float64 probability", func(int) ([]inference.Tensor, error) {
			return []inference.Tensor{inference.NewTensor([]int64{1, 1}, []float64{0}), outputs(0, 0)[1]}, nil
		}, ErrModelOutput},
		{"small state", func(int) ([]inference.Tensor, error) {
			return []inference.Tensor{outputs(0, 0)[0], inference.NewTensor([]int64{2, 1, 64}, make([]float32, 128))}, nil
		}, ErrModelOutput},
		{"NaN", func(int) ([]inference.Tensor, error) { return outputs(float32(math.NaN()), 0), nil }, ErrModelOutput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeRunner{run: func(_ context.Context, call int, _ []inference.Tensor) ([]inference.Tensor, error) {
				if call < 3 {
					return outputs(1, 0), nil
				}
				return tt.out(call)
			}}
			d, err := New(r, testConfig(), 16000)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := d.Accept(context.Background(), make([]float32, 10*512), nil)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), "sample 1536") {
				t.Fatalf("Accept: %v, want %v at sample 1536", err, tt.want)
			}
			// The Start confirmed before the failure is returned.
			if !slices.Equal(ev, []Event{{SpeechStart, 0}}) {
				t.Errorf("events %v", ev)
			}
			if _, err := d.Accept(context.Background(), make([]float32, 512), nil); !errors.Is(err, ErrBroken) || !errors.Is(err, tt.want) {
				t.Errorf("second Accept: %v", err)
			}
			// Flush closes the open segment after the last window run.
			if ev := d.Flush(nil); !slices.Equal(ev, []Event{{SpeechEnd, 1536}}) {
				t.Errorf("Flush: %v", ev)
			}
			r.run = func(context.Context, int, []inference.Tensor) ([]inference.Tensor, error) { return outputs(0, 0), nil }
			if _, err := d.Accept(context.Background(), make([]float32, 512), nil); err != nil {
				t.Errorf("Accept after Flush: %v", err)
			}
			if _, err := Segments(context.Background(), &fakeRunner{run: func(context.Context, int, []inference.Tensor) ([]inference.Tensor, error) {
				return tt.out(0)
			}}, make([]float32, 512), 16000, DefaultConfig()); !errors.Is(err, tt.want) {
				t.Errorf("Segments: %v", err)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &fakeRunner{run: func(ctx context.Context, call int, _ []inference.Tensor) ([]inference.Tensor, error) {
		if call == 2 {
			cancel()
		}
		return outputs(0, 0), nil
	}}
	d, err := New(r, DefaultConfig(), 16000)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Accept(ctx, make([]float32, 100*512), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Accept: %v", err)
	}
	if r.calls != 3 {
		t.Errorf("%d runs after cancelling in the third, want 3", r.calls)
	}
	d.Reset()
	if _, err := d.Accept(ctx, make([]float32, 512), nil); !errors.Is(err, context.Canceled) || r.calls != 3 {
		t.Errorf("Accept with a cancelled context: %v after %d runs", err, r.calls)
	}
	if _, err := Probabilities(ctx, r, make([]float32, 512), 16000); !errors.Is(err, context.Canceled) {
		t.Errorf("Probabilities: %v", err)
	}
}

func TestEventKindString(t *testing.T) {
	if SpeechStart.String() != "start" || SpeechEnd.String() != "end" || EventKind(9).String() != "EventKind(9)" {
		t.Error(SpeechStart, SpeechEnd, EventKind(9))
	}
}
