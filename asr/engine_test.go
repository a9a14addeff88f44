package asr

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/inferencetest"
	"github.com/zhiyin/zhiyin/models"
)

var (
	testRT    *inference.Runtime
	testRTErr error
)

func TestMain(m *testing.M) {
	testRT, testRTErr = inferencetest.Start("..")
	os.Exit(inferencetest.Run(m, testRT))
}

const (
	speechDir   = "../../shared/data/speech"
	contractDir = "../models/testdata/asr"
	sileroDir   = "../third_party/models"
)

// The contract model folders, by layout.
const (
	svSherpa   = "sherpa-onnx-sense-voice-zh-en-ja-ko-yue-2024-07-17"
	svFunASR   = "SenseVoiceSmall"
	pfSherpa   = "sherpa-onnx-paraformer-zh-2024-03-09"
	pfStamps   = "sherpa-onnx-paraformer-zh-2023-09-14"
	pfFunASR   = "speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-onnx"
	quietLevel = slog.LevelError
)

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: quietLevel}))
}

// registry installs the given model folders with `zhiyin models install`'s
// code into a fresh models folder and returns a registry over it and the
// fetched Silero VAD (withVAD).
func registry(t testing.TB, withVAD bool, folders ...string) *inference.Registry {
	t.Helper()
	rt := inferencetest.Need(t, testRT, testRTErr)
	dir := t.TempDir()
	cat, err := inference.ParseCatalog(models.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	st := inference.NewStore(dir, cat)
	for _, f := range folders {
		if _, err := st.Install(context.Background(), filepath.Join(contractDir, f), inference.InstallOptions{}); err != nil {
			t.Fatalf("install %s: %v", f, err)
		}
	}
	dirs := []string{dir}
	if withVAD {
		if _, err := os.Stat(filepath.Join(sileroDir, "silero-vad", "silero_vad.onnx")); err != nil {
			t.Skip("needs the Silero VAD weights (run scripts/fetch-deps.sh)")
		}
		abs, _ := filepath.Abs(sileroDir)
		dirs = append(dirs, abs)
	}
	cfg := inference.DefaultConfig()
	cfg.Provider = "cpu"
	reg := inference.NewRegistry(rt, cfg, dirs, quiet(), nil, nil)
	t.Cleanup(func() { reg.Stop(context.Background()) })
	return reg
}

func clip(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(speechDir, name))
	if err != nil {
		t.Skipf("needs the shared speech clips (%v)", err)
	}
	return b
}

func transcribe(t testing.TB, e *Engine, wav []byte, o Options) *Result {
	t.Helper()
	res, err := e.TranscribeReader(context.Background(), bytes.NewReader(wav), "audio/wav", 0, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Every layout installs, loads, warms and transcribes; speech gives text
// inside the clip's time, noise gives nothing, and the two exports of the
// same weights agree.
func TestTranscribeContractModels(t *testing.T) {
	speech := clip(t, "espeak_cmn_02.wav")
	noise := clip(t, "noise_white_3s.wav")
	texts := map[string]string{}
	for _, f := range []string{svSherpa, svFunASR, pfSherpa, pfStamps, pfFunASR} {
		t.Run(f, func(t *testing.T) {
			e := New(DefaultConfig(), registry(t, true, f), quiet())
			name, _, err := e.Warm(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			res := transcribe(t, e, speech, Options{})
			t.Logf("%s: %q in %d segments, %.2fs, rtf %.3f", name, res.Text, len(res.Segments), res.Duration, res.RTF)
			if res.Text == "" || len(res.Segments) == 0 {
				t.Fatalf("no text from speech: %+v", res)
			}
			if d := res.Duration; d < 3.1 || d > 3.2 { // 50834 samples
				t.Errorf("duration %.3f", d)
			}
			for _, s := range res.Segments {
				if s.Start < 0 || s.End > res.Duration+1e-9 || s.End <= s.Start {
					t.Errorf("segment %+v outside the clip", s)
				}
				if strings.HasPrefix(name, "sense-voice") && (s.Lang != "zh" || s.Emotion != "neutral" || s.Event != "speech") {
					t.Errorf("tags %q %q %q", s.Lang, s.Emotion, s.Event)
				}
				for _, tok := range s.Tokens {
					if tok.Start < s.Start-1e-9 || tok.End > s.End+1e-9 {
						t.Errorf("token %+v outside its segment %.3f-%.3f", tok, s.Start, s.End)
					}
				}
			}
			if again := transcribe(t, e, speech, Options{}); again.Text != res.Text {
				t.Errorf("not deterministic: %q then %q", res.Text, again.Text)
			}
			if r := transcribe(t, e, noise, Options{}); r.Text != "" || len(r.Segments) != 0 {
				t.Errorf("noise gave %+v", r)
			}
			texts[f] = res.Text
		})
	}
	if texts[svSherpa] != texts[svFunASR] {
		t.Errorf("SenseVoice layouts disagree: %q vs %q", texts[svSherpa], texts[svFunASR])
	}
	if texts[pfSherpa] != texts[pfFunASR] {
		t.Errorf("Paraformer layouts disagree: %q vs %q", texts[pfSherpa], texts[pfFunASR])
	}
}

// SenseVoice's language and ITN inputs reach the model (the contract
// model echoes them in its tags).
func TestLanguageAndITN(t *testing.T) {
	e := New(DefaultConfig(), registry(t, true, svSherpa), quiet())
	speech := clip(t, "espeak_cmn_02.wav")
	res := transcribe(t, e, speech, Options{Language: "en"})
	if res.Segments[0].Lang != "en" {
		t.Errorf("language en: tag %q", res.Segments[0].Lang)
	}
	if res := transcribe(t, e, speech, Options{Language: "nospeech"}); res.Text != "" {
		t.Errorf("nospeech tag still gave text %q", res.Text)
	}
}

// Telephone audio: 8 kHz µ-law WAV is decoded, resampled and recognised.
func TestTelephoneAudio(t *testing.T) {
	e := New(DefaultConfig(), registry(t, true, svSherpa), quiet())
	src, err := audio.NewWAVReader(bytes.NewReader(clip(t, "real_aishell1_BAC009S0764W0121.wav")))
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := audio.ReadAll(src)
	if err != nil {
		t.Fatal(err)
	}
	narrow, err := audio.Resample(pcm, 16000, 8000)
	if err != nil {
		t.Fatal(err)
	}
	ulaw := make([]byte, len(narrow))
	audio.EncodeMuLaw(ulaw, narrow)
	res, err := e.TranscribeReader(context.Background(), bytes.NewReader(ulaw), "audio/PCMU", 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text == "" || res.Duration < 4 {
		t.Errorf("8 kHz µ-law: %+v", res)
	}
}

// A stream fed in 60 ms chunks gives the same segments as Transcribe;
// partial results come before the final of their segment.
func TestStreamMatchesTranscribe(t *testing.T) {
	e := New(DefaultConfig(), registry(t, true, svSherpa), quiet())
	wav := clip(t, "real_wenet_mid_notext.wav")
	want := transcribe(t, e, wav, Options{})
	src, err := audio.NewWAVReader(bytes.NewReader(wav))
	if err != nil {
		t.Fatal(err)
	}
	pcm, _ := audio.ReadAll(src)

	var mu sync.Mutex
	var finals []Segment
	partials := 0
	finalIdx := map[int]bool{}
	s, err := e.NewStream(context.Background(), StreamOptions{SampleRate: 16000, Partials: true, OnEvent: func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Kind {
		case Final:
			finals = append(finals, ev.Segment)
			finalIdx[ev.Index] = true
		case Partial:
			partials++
			if finalIdx[ev.Index] {
				t.Errorf("partial of segment %d after its final", ev.Index)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(pcm); i += 960 {
		if err := s.Write(context.Background(), pcm[i:min(i+960, len(pcm))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range finals {
		if f.Text != "" {
			got = append(got, f.Text)
		}
	}
	t.Logf("%d segments, %d partials, %.1fs", len(finals), partials, want.Duration)
	if JoinText(got) != want.Text {
		t.Errorf("stream %q\nfile   %q", JoinText(got), want.Text)
	}
	if partials == 0 {
		t.Error("no partial results")
	}
	if err := s.Write(context.Background(), pcm[:10]); !errors.Is(err, ErrClosed) {
		t.Errorf("write after finish: %v", err)
	}
	s.Close() // idempotent after Finish
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	speech := clip(t, "espeak_cmn_02.wav")
	// No model installed.
	e := New(DefaultConfig(), registry(t, true), quiet())
	if _, err := e.TranscribeReader(ctx, bytes.NewReader(speech), "audio/wav", 0, Options{}); !errors.Is(err, ErrNoModel) || !strings.Contains(err.Error(), "zhiyin models install") {
		t.Errorf("no model: %v", err)
	}
	if _, err := e.NewStream(ctx, StreamOptions{SampleRate: 16000}); !errors.Is(err, ErrNoModel) {
		t.Errorf("no model, stream: %v", err)
	}
	if _, _, err := e.Warm(ctx); !errors.Is(err, ErrNoModel) {
		t.Errorf("warm: %v", err)
	}

	cfg := DefaultConfig()
	cfg.MaxDuration = 2 * time.Second
	cfg.MaxStreams = 1
	e = New(cfg, registry(t, true, pfSherpa), quiet())
	// Too long, by the header and (raw PCM, no length) while reading.
	if _, err := e.TranscribeReader(ctx, bytes.NewReader(speech), "audio/wav", 0, Options{}); !errors.Is(err, ErrTooLong) {
		t.Errorf("long WAV: %v", err)
	}
	if _, err := e.TranscribeReader(ctx, bytes.NewReader(speech[44:]), "audio/pcm", 16000, Options{}); !errors.Is(err, ErrTooLong) {
		t.Errorf("long PCM: %v", err)
	}
	// Formats.
	if _, err := e.TranscribeReader(ctx, strings.NewReader("ID3\x03\x00..."), "audio/mpeg", 0, Options{}); !errors.Is(err, audio.ErrUnsupported) {
		t.Errorf("mp3: %v", err)
	}
	if _, err := e.TranscribeReader(ctx, bytes.NewReader(speech[:30]), "audio/wav", 0, Options{}); !errors.Is(err, audio.ErrMalformed) {
		t.Errorf("truncated header: %v", err)
	}
	// Empty audio: no text, no error.
	res, err := e.TranscribeReader(ctx, bytes.NewReader(nil), "audio/pcm", 16000, Options{})
	if err != nil || res.Text != "" || res.Duration != 0 {
		t.Errorf("empty: %+v %v", res, err)
	}
	// Streams: a bad rate, then the limit.
	if _, err := e.NewStream(ctx, StreamOptions{SampleRate: 100}); !errors.Is(err, audio.ErrUnsupported) {
		t.Errorf("bad rate: %v", err)
	}
	s, err := e.NewStream(ctx, StreamOptions{SampleRate: 16000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.NewStream(ctx, StreamOptions{SampleRate: 16000}); !errors.Is(err, ErrBusy) {
		t.Errorf("second stream: %v", err)
	}
	s.Close()
	s2, err := e.NewStream(ctx, StreamOptions{SampleRate: 16000})
	if err != nil {
		t.Fatalf("stream after close: %v", err)
	}
	s2.Close()
	// Cancellation.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	cfg.MaxDuration = time.Hour
	e = New(cfg, registry(t, true, pfSherpa), quiet())
	if _, err := e.TranscribeReader(cctx, bytes.NewReader(speech), "audio/wav", 0, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// Without the VAD model, audio is cut into fixed windows and still
// transcribed.
func TestWithoutVAD(t *testing.T) {
	e := New(DefaultConfig(), registry(t, false, svSherpa), quiet())
	res := transcribe(t, e, clip(t, "espeak_cmn_02.wav"), Options{})
	if res.Text == "" || len(res.Segments) != 1 || res.Segments[0].Start != 0 {
		t.Errorf("%+v", res)
	}
}

// Concurrent requests share model runs (length-bucketed batches) and get
// the same answers as alone.
func TestConcurrentTranscriptions(t *testing.T) {
	e := New(DefaultConfig(), registry(t, true, svSherpa), quiet())
	names := []string{"espeak_cmn_00.wav", "espeak_cmn_01.wav", "espeak_cmn_02.wav", "real_aishell1_BAC009S0764W0121.wav"}
	want := map[string]string{}
	for _, n := range names {
		want[n] = transcribe(t, e, clip(t, n), Options{}).Text
	}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		n := names[i%len(names)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got := transcribe(t, e, clip(t, n), Options{}).Text; got != want[n] {
				t.Errorf("%s concurrently: %q, alone %q", n, got, want[n])
			}
		}()
	}
	wg.Wait()
}
