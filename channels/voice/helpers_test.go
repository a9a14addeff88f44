package voice

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/asr"
	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/asr/vad"
	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/dialogue/session"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/inferencetest"
	"github.com/zhiyin/zhiyin/internal/store"
	"github.com/zhiyin/zhiyin/internal/store/storetest"
	"github.com/zhiyin/zhiyin/models"
)

const (
	speechDir   = "../../../shared/data/speech"
	contractDir = "../../models/testdata/asr"
	sileroDir   = "../../third_party/models"
	svSherpa    = "sherpa-onnx-sense-voice-zh-en-ja-ko-yue-2024-07-17"
	lineRate    = 8000
	frame       = lineRate / 50 // 20 ms
)

var (
	testRT    *inference.Runtime
	testRTErr error
	// speech is the one asr engine the test binary shares (loading the
	// models per test would dominate the package's test time).
	speechOnce sync.Once
	speechEng  *asr.Engine
	speechErr  string
	speechDirs []string
)

func TestMain(m *testing.M) {
	testRT, testRTErr = inferencetest.Start("../..")
	code := inferencetest.Run(m, testRT)
	for _, d := range speechDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
}

// speechEngine returns the shared engine over the SenseVoice contract model
// and the real Silero VAD, or skips.
func speechEngine(tb testing.TB) *asr.Engine {
	tb.Helper()
	rt := inferencetest.Need(tb, testRT, testRTErr)
	speechOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(sileroDir, "silero-vad", "silero_vad.onnx")); err != nil {
			speechErr = "needs the Silero VAD weights (run scripts/fetch-deps.sh)"
			return
		}
		dir, err := os.MkdirTemp("", "voice-models")
		if err != nil {
			speechErr = err.Error()
			return
		}
		speechDirs = append(speechDirs, dir)
		cat, err := inference.ParseCatalog(models.Catalog())
		if err != nil {
			speechErr = err.Error()
			return
		}
		if _, err := inference.NewStore(dir, cat).Install(context.Background(), filepath.Join(contractDir, svSherpa), inference.InstallOptions{}); err != nil {
			speechErr = "install the contract model: " + err.Error()
			return
		}
		abs, _ := filepath.Abs(sileroDir)
		cfg := inference.DefaultConfig()
		cfg.Provider = "cpu"
		reg := inference.NewRegistry(rt, cfg, []string{dir, abs}, quiet(), nil, nil)
		e := asr.New(asr.DefaultConfig(), reg, quiet())
		if _, _, err := e.Warm(context.Background()); err != nil {
			speechErr = "warm the contract model: " + err.Error()
			return
		}
		speechEng = e
	})
	if speechEng == nil {
		tb.Skip(speechErr)
	}
	return speechEng
}

// recognizer adapts asr.Engine as cmd does.
type recognizer struct{ e *asr.Engine }

func (r recognizer) Recognize(ctx context.Context, pcm []float32) (string, error) {
	seg, err := r.e.Recognize(ctx, pcm, asr.Options{})
	return seg.Text, err
}

// clip8k reads a speech clip as 8 kHz samples through G.711 µ-law, as a
// phone line carries it; trimmed to its speech (by energy) when trim.
func clip8k(tb testing.TB, name string, trim bool) []float32 {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(speechDir, name))
	if err != nil {
		tb.Skipf("needs the shared speech clips in %s (%v)", speechDir, err)
	}
	r, err := audio.NewWAVReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	pcm, err := audio.ReadAll(r)
	if err != nil {
		tb.Fatal(err)
	}
	narrow, err := audio.Resample(pcm, 16000, lineRate)
	if err != nil {
		tb.Fatal(err)
	}
	ulaw := make([]byte, len(narrow))
	audio.EncodeMuLaw(ulaw, narrow)
	audio.DecodeMuLaw(narrow, ulaw)
	if trim {
		on, off := speechSpan(narrow)
		narrow = narrow[on:off]
	}
	return narrow
}

// speechSpan finds the first and last loud 20 ms frames.
func speechSpan(pcm []float32) (on, off int) {
	on, off = -1, 0
	for i := 0; i+frame <= len(pcm); i += frame {
		if rms(pcm[i:i+frame]) > 0.02 {
			if on < 0 {
				on = i
			}
			off = i + frame
		}
	}
	if on < 0 {
		return 0, 0
	}
	return on, off
}

func rms(s []float32) float64 {
	var e float64
	for _, v := range s {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(max(len(s), 1)))
}

func silence(d time.Duration) []float32 { return make([]float32, int(d)*lineRate/int(time.Second)) }

func concat(parts ...[]float32) []float32 { return slices.Concat(parts...) }

// fakeLine is a Media with its own 20 ms clock: it sends what Play queued,
// 20 ms per tick, and records what happened.
type fakeLine struct {
	rate     int
	transfer func(ctx context.Context, target string) error

	mu        sync.Mutex
	queue     []float32
	audioOut  int // 20 ms frames sent with sound
	plays     int
	playTimes []time.Time
	stops     []time.Time
	hung      string
	hungUp    bool
	transfers int
	changed   chan struct{}
	quit      chan struct{}
	wg        sync.WaitGroup
}

func newLine(t testing.TB) *fakeLine {
	l := &fakeLine{rate: lineRate, changed: make(chan struct{}), quit: make(chan struct{})}
	l.wg.Add(1)
	go l.clock()
	t.Cleanup(l.close)
	return l
}

func (l *fakeLine) close() {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	l.wg.Wait()
}

func (l *fakeLine) broadcast() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *fakeLine) clock() {
	defer l.wg.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	n := l.rate / 50
	for {
		select {
		case <-l.quit:
			return
		case <-tick.C:
		}
		l.mu.Lock()
		if len(l.queue) > 0 {
			k := min(n, len(l.queue))
			if rms(l.queue[:k]) > 0.001 {
				l.audioOut++
			}
			l.queue = l.queue[:copy(l.queue, l.queue[k:])]
			l.broadcast()
		}
		l.mu.Unlock()
	}
}

func (l *fakeLine) OutputRate() int { return l.rate }

func (l *fakeLine) Play(ctx context.Context, s []float32) error {
	l.mu.Lock()
	if l.hungUp {
		l.mu.Unlock()
		return ErrHungUp
	}
	l.queue = append(l.queue, s...)
	l.plays++
	if l.playTimes != nil || l.plays == 1 {
		l.playTimes = append(l.playTimes, time.Now())
	}
	for len(l.queue) > l.rate/10 {
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		l.mu.Lock()
		if l.hungUp {
			l.mu.Unlock()
			return ErrHungUp
		}
	}
	l.mu.Unlock()
	return nil
}

func (l *fakeLine) Drain(ctx context.Context) error {
	for {
		l.mu.Lock()
		if len(l.queue) == 0 || l.hungUp {
			l.mu.Unlock()
			return nil
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *fakeLine) StopPlayback() {
	l.mu.Lock()
	l.queue = l.queue[:0]
	l.stops = append(l.stops, time.Now())
	l.broadcast()
	l.mu.Unlock()
}

// hangupReason waits for the engine's Hangup, which it calls from its own
// goroutine (so it may land just after Done), and returns its reason; ""
// when none came within 5 s.
func (l *fakeLine) hangupReason() string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		hung, reason := l.hungUp, l.hung
		l.mu.Unlock()
		if hung || time.Now().After(deadline) {
			return reason
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *fakeLine) Hangup(reason string) {
	l.mu.Lock()
	if !l.hungUp {
		l.hungUp, l.hung = true, reason
		l.queue = l.queue[:0]
		l.broadcast()
	}
	l.mu.Unlock()
}

func (l *fakeLine) Transfer(ctx context.Context, target string) error {
	l.mu.Lock()
	l.transfers++
	l.mu.Unlock()
	if l.transfer == nil {
		return ErrTransferUnsupported
	}
	return l.transfer(ctx, target)
}

func (l *fakeLine) stopCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.stops)
}

// tones is a Speaker that says every text as a tone of per long, in 20 ms
// chunks, as fast as the line takes them, and records what it said.
type tones struct {
	per  time.Duration
	long map[string]time.Duration // text → duration override

	mu      sync.Mutex
	said    []string
	changed chan struct{}
}

func newTones(per time.Duration) *tones {
	return &tones{per: per, changed: make(chan struct{})}
}

func (s *tones) Speak(ctx context.Context, response, text string, rate int, emit func([]float32) error) error {
	s.mu.Lock()
	s.said = append(s.said, text)
	close(s.changed)
	s.changed = make(chan struct{})
	d := s.per
	if v, ok := s.long[text]; ok {
		d = v
	}
	s.mu.Unlock()
	n := int(d) * rate / int(time.Second)
	chunk := make([]float32, rate/50)
	for i := 0; i < n; i += len(chunk) {
		for j := range chunk {
			chunk[j] = float32(0.3 * math.Sin(2*math.Pi*440*float64(i+j)/float64(rate)))
		}
		if err := emit(chunk); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *tones) texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.said)
}

// waitSaid waits until text was said n times.
func (s *tones) waitSaid(t testing.TB, text string, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s.mu.Lock()
		c := 0
		for _, x := range s.said {
			if x == text {
				c++
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if c >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("waited for %q said %d times; said %q", text, n, s.texts())
		}
	}
}

// rules is a Dialogue answering by rules, in the turn's transaction when it
// has a database, like dialogue.Engine.
type rules struct {
	db *store.DB

	mu      sync.Mutex
	turns   []channels.Turn
	changed chan struct{}
}

func newRules() *rules { return &rules{changed: make(chan struct{})} }

func (d *rules) Respond(ctx context.Context, t *channels.Turn, commit func(*sql.Tx, *channels.Answer) error) error {
	d.mu.Lock()
	d.turns = append(d.turns, *t)
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
	a := &channels.Answer{SessionID: "s-" + t.Conversation}
	switch {
	case strings.Contains(t.Text, "转人工"):
		a.Handoff = true
	case t.Text == "666":
		return errors.New("dialogue broken")
	default:
		a.Replies = []channels.Reply{{Text: "好的：" + t.Text, Response: "utter_ok"}}
	}
	if d.db == nil {
		return commit(nil, a)
	}
	return d.db.Write(ctx, func(tx *sql.Tx) error { return commit(tx, a) })
}

func (d *rules) waitTurns(t testing.TB, n int) []channels.Turn {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		d.mu.Lock()
		ch := d.changed
		if len(d.turns) >= n {
			out := slices.Clone(d.turns)
			d.mu.Unlock()
			return out
		}
		d.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("waited for %d turns, got %+v", n, d.all())
		}
	}
}

func (d *rules) all() []channels.Turn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.turns)
}

// rig is an engine over the real speech models, a database and fakes.
type rig struct {
	t     testing.TB
	dir   string
	db    *store.DB
	keys  *session.Keyring
	dlg   *rules
	voice *tones
	eng   *Engine
	reg   *prometheus.Registry
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Greeting = "您好"
	return cfg
}

func newRig(t testing.TB, cfg Config, intent IntentFunc) *rig {
	t.Helper()
	asrEng := speechEngine(t)
	dir := t.TempDir()
	scfg := storetest.Fast()
	scfg.Path = filepath.Join(dir, "zhiyin.db")
	db, err := store.Open(context.Background(), scfg, nil, nil, store.Options{}, store.MigrationSet{Component: MigrationComponent, FS: Migrations()})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := session.LoadKeyring(filepath.Join(dir, "keys"), true)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, dir: dir, db: db, keys: keys, dlg: newRules(), voice: newTones(300 * time.Millisecond), reg: prometheus.NewRegistry()}
	r.dlg.db = db
	r.eng, err = New(cfg, Deps{
		Dialogue: r.dlg, Recognizer: recognizer{asrEng},
		VAD: func(ctx context.Context, c vad.Config, rate int) (*vad.Detector, error) {
			return asrEng.NewDetector(ctx, c, rate)
		},
		Speaker: r.voice, Intent: intent, DB: db, Sealer: keys,
		RecordDir: filepath.Join(dir, "recordings"), Log: quiet(), Metrics: r.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.eng.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		db.Close()
	})
	return r
}

func (r *rig) call(id string, l *fakeLine) *call {
	r.t.Helper()
	h, err := r.eng.Start(context.Background(), CallInfo{Channel: "sip", ID: id, From: "sip:1001@pbx", To: "sip:hotline@zhiyin",
		Remote: "127.0.0.1:5060", Started: time.Now(), Setup: 30 * time.Millisecond}, l, lineRate)
	if err != nil {
		r.t.Fatal(err)
	}
	return h.(*call)
}

// feed sends pcm to the call in 20 ms frames, one per pace (0: as fast as
// the call's loop takes them without dropping). at, when set, gets each
// frame's wall time.
func feed(c *call, pcm []float32, pace time.Duration, at func(i int, t time.Time)) {
	var tick *time.Ticker
	if pace > 0 {
		tick = time.NewTicker(pace)
		defer tick.Stop()
	}
	for i := 0; i+frame <= len(pcm); i += frame {
		if tick != nil {
			<-tick.C
		} else {
			for len(c.frames) > frameQueue/2 {
				time.Sleep(time.Millisecond)
			}
		}
		if at != nil {
			at(i, time.Now())
		}
		c.Audio(pcm[i : i+frame])
	}
}

// metric returns the sum of a metric's samples (counter values,
// gauge values, or histogram counts) whose labels include want.
func (r *rig) metric(name string, want map[string]string) float64 {
	r.t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func waitDone(t testing.TB, c *call) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the call did not end")
	}
}
