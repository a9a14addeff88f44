package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/asr"
	"github.com/zhiyin/zhiyin/asr/audio"
	"github.com/zhiyin/zhiyin/asr/features"
	"github.com/zhiyin/zhiyin/asr/vad"
	"github.com/zhiyin/zhiyin/inference"
)

// openASR starts ONNX Runtime and a model registry over the configured
// model folders, in this process, for the speech commands.
func openASR(lc *loadedConfig, log *slog.Logger) (*inference.Registry, func(), error) {
	_, reg, closeFn, err := openModels(lc, log)
	return reg, closeFn, err
}

// openModels is openASR that also gives the runtime (for NLU models,
// which load outside the registry).
func openModels(lc *loadedConfig, log *slog.Logger) (*inference.Runtime, *inference.Registry, func(), error) {
	rt := inference.NewRuntime(lc.Inference, log)
	if err := rt.Start(); err != nil {
		rt.Close()
		return nil, nil, nil, fmt.Errorf("start ONNX Runtime: %w (zhiyin doctor says why)", err)
	}
	reg := inference.NewRegistry(rt, lc.Inference, inference.SearchDirs(lc.Inference, lc.DataDir), log, prometheus.NewRegistry(), nil)
	return rt, reg, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = reg.Stop(ctx)
		_ = rt.Close()
	}, nil
}

// openAudio opens a WAV file ("-": standard input), or raw PCM when rate
// is given.
func openAudio(path string, stdin io.Reader, rate int) (*audio.Reader, func(), error) {
	var r io.Reader = stdin
	closeFn := func() {}
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		r, closeFn = f, func() { f.Close() }
	}
	mt := ""
	if rate > 0 {
		mt = "audio/pcm"
	}
	src, err := audio.NewReader(r, mt, rate)
	if err != nil {
		closeFn()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return src, closeFn, nil
}

// runTranscribe is `zhiyin transcribe FILE…`.
func runTranscribe(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("transcribe", cio.stderr)
	configPath := fs.String("config", "", "configuration file (asr and inference sections, model folders)")
	asJSON := fs.Bool("json", false, "print one JSON object per file: text, segments (start, end, text, lang, emotion, event), duration, rtf")
	lang := fs.String("language", "", "spoken language: auto, zh, en, yue, ja or ko (default: asr.language)")
	itn := fs.String("itn", "", "inverse text normalisation (numbers, punctuation): true or false (default: asr.itn)")
	model := fs.String("model", "", "recognition model name (default: asr.model)")
	rate := fs.Int("rate", 0, "the files are raw 16-bit little-endian PCM at this sample rate (default: WAV)")
	progress := fs.String("progress", "auto", "progress bar on standard error: auto (on a terminal), always or never")
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usagef("name at least one audio file (WAV; - reads standard input)")
	}
	switch *progress {
	case "auto", "always", "never":
	default:
		return usagef("--progress must be auto, always or never, got %q", *progress)
	}
	o, err := asrOptions(*lang, *itn)
	if err != nil {
		return usagef("%v", err)
	}
	lc, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if *model != "" {
		lc.ASR.Model = *model
	}
	log := slog.New(slog.NewTextHandler(cio.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg, closeASR, err := openASR(lc, log)
	if err != nil {
		return err
	}
	defer closeASR()
	e := asr.New(lc.ASR, reg, log)
	bar := newTranscribeBar(cio.stderr, *progress)
	failed := 0
	for _, path := range files {
		res, err := transcribeFile(ctx, e, path, cio.stdin, *rate, o, bar)
		bar.done()
		if errors.Is(err, asr.ErrNoModel) || ctx.Err() != nil {
			return err
		}
		if err != nil {
			fmt.Fprintf(cio.stderr, "zhiyin transcribe: %s: %v\n", path, err)
			failed++
			continue
		}
		switch {
		case *asJSON:
			out := struct {
				File string `json:"file"`
				*asr.Result
			}{path, res}
			b, _ := json.Marshal(out)
			fmt.Fprintln(cio.stdout, string(b))
		case len(files) > 1:
			fmt.Fprintf(cio.stdout, "%s\t%s\n", path, res.Text)
		default:
			fmt.Fprintln(cio.stdout, res.Text)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files failed", failed, len(files))
	}
	return nil
}

func transcribeFile(ctx context.Context, e *asr.Engine, path string, stdin io.Reader, rate int, o asr.Options, bar *transcribeBar) (*asr.Result, error) {
	src, closeFn, err := openAudio(path, stdin, rate)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	bar.name = filepath.Base(path)
	o.Progress = bar.update
	return e.Transcribe(ctx, src, o)
}

// transcribeBar draws a file's progress on a terminal, at most 10 times a
// second.
type transcribeBar struct {
	w     io.Writer
	on    bool
	name  string
	last  time.Time
	drawn bool
	start time.Time
}

func newTranscribeBar(w io.Writer, mode string) *transcribeBar {
	return &transcribeBar{w: w, on: mode == "always" || mode == "auto" && isTerminal(w)}
}

func (b *transcribeBar) update(done, total time.Duration) {
	if !b.on {
		return
	}
	now := time.Now()
	if b.start.IsZero() {
		b.start = now
	}
	if now.Sub(b.last) < 100*time.Millisecond && done != total {
		return
	}
	b.last = now
	const width = 24
	line := fmt.Sprintf("%s %s", b.name, clock(done))
	if total > 0 {
		fill := int(int64(width) * int64(min(done, total)) / int64(total))
		line = fmt.Sprintf("%s %s%s %3d%% %s/%s", b.name, strings.Repeat("█", fill), strings.Repeat("░", width-fill),
			100*int64(min(done, total))/int64(total), clock(done), clock(total))
	}
	if el := now.Sub(b.start); el > 0 && done > 0 {
		line += fmt.Sprintf("  %.0f× real time", done.Seconds()/el.Seconds())
	}
	fmt.Fprintf(b.w, "\r\033[K%s", line)
	b.drawn = true
}

func (b *transcribeBar) done() {
	if b.drawn {
		fmt.Fprintln(b.w)
	}
	b.drawn, b.start, b.last = false, time.Time{}, time.Time{}
}

func clock(d time.Duration) string {
	s := int64(d.Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// runASR is `zhiyin asr features|vad`: the speech front-end's debug tools.
func runASR(ctx context.Context, cio cmdIO, args []string) error {
	if len(args) == 0 {
		return usagef("asr needs a subcommand: features or vad")
	}
	switch args[0] {
	case "features":
		return runASRFeatures(cio, args[1:])
	case "vad":
		return runASRVAD(ctx, cio, args[1:])
	}
	return usagef("unknown asr subcommand %q: use features or vad", args[0])
}

// readSpeech decodes a whole audio file at 16 kHz.
func readSpeech(path string, stdin io.Reader, rate int) ([]float32, error) {
	src, closeFn, err := openAudio(path, stdin, rate)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	samples, err := audio.ReadAll(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r := src.Format().SampleRate; r != asr.SampleRate {
		if samples, err = audio.Resample(samples, r, asr.SampleRate); err != nil {
			return nil, err
		}
	}
	return samples, nil
}

// runASRFeatures writes the front-end's features of a WAV file.
func runASRFeatures(cio cmdIO, args []string) error {
	fs := newFlagSet("asr features", cio.stderr)
	stage := fs.String("stage", "cmvn", "fbank (80-dim Kaldi fbank), lfr (560-dim stacked frames) or cmvn (lfr normalised with --cmvn)")
	cmvnPath := fs.String("cmvn", "", "am.mvn file (FunASR format); required for --stage cmvn")
	rate := fs.Int("rate", 0, "the input is raw 16-bit little-endian PCM at this sample rate (default: WAV)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("give IN.wav and OUT.bin")
	}
	fo := features.DefaultFbankOptions()
	cfg := features.FrontendConfig{Fbank: fo, LFRM: 7, LFRN: 6}
	switch *stage {
	case "fbank", "lfr":
	case "cmvn":
		if *cmvnPath == "" {
			return usagef("--stage cmvn needs --cmvn am.mvn (the model folder's)")
		}
		f, err := os.Open(*cmvnPath)
		if err != nil {
			return err
		}
		cfg.CMVN, err = features.ParseAMMVN(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *cmvnPath, err)
		}
	default:
		return usagef("--stage must be fbank, lfr or cmvn, got %q", *stage)
	}
	samples, err := readSpeech(pos[0], cio.stdin, *rate)
	if err != nil {
		return err
	}
	var data []float32
	dim := fo.NumMel
	if *stage == "fbank" {
		var rows int
		if data, rows, err = features.ComputeFbank(samples, fo); err != nil {
			return err
		}
		_ = rows
	} else {
		fe, err := features.NewFrontend(cfg)
		if err != nil {
			return err
		}
		dim = fe.Dim()
		emit := func(row []float32) { data = append(data, row...) }
		fe.Accept(samples, emit)
		fe.Flush(emit)
	}
	out, err := os.Create(pos[1])
	if err != nil {
		return err
	}
	if err := features.WriteMatrix(out, data); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	fmt.Fprintf(cio.stderr, "wrote %d×%d float32 (little-endian, row-major) to %s\n", len(data)/dim, dim, pos[1])
	return nil
}

// runASRVAD prints a file's speech segments.
func runASRVAD(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("asr vad", cio.stderr)
	configPath := fs.String("config", "", "configuration file (asr.vad settings, model folders)")
	asJSON := fs.Bool("json", false, `print [{"start","end"}] in seconds`)
	rate := fs.Int("rate", 0, "the input is raw 16-bit little-endian PCM at this sample rate (default: WAV)")
	threshold := fs.Float64("threshold", 0, "speech probability threshold (default: asr.vad.threshold)")
	minSilence := fs.Duration("min-silence", 0, "pause that ends a segment (default: asr.vad.min_silence)")
	minSpeech := fs.Duration("min-speech", -1, "shortest segment kept (default: asr.vad.min_speech)")
	pad := fs.Duration("pad", -1, "padding each side (default: asr.vad.speech_pad)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("give one audio file")
	}
	lc, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	vc := lc.ASR.VAD.VAD()
	if *threshold != 0 {
		vc.Threshold = *threshold
	}
	if *minSilence != 0 {
		vc.MinSilence = *minSilence
	}
	if *minSpeech >= 0 {
		vc.MinSpeech = *minSpeech
	}
	if *pad >= 0 {
		vc.SpeechPad = *pad
	}
	if err := vc.Validate(); err != nil {
		return usagef("%v", err)
	}
	samples, err := readSpeech(pos[0], cio.stdin, *rate)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(cio.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg, closeASR, err := openASR(lc, log)
	if err != nil {
		return err
	}
	defer closeASR()
	h, err := reg.Handle(lc.ASR.VADModel)
	if err != nil {
		return fmt.Errorf("VAD model: %w (it ships with the package; in a source tree run scripts/fetch-deps.sh)", err)
	}
	segs, err := vad.Segments(ctx, h, samples, asr.SampleRate, vc)
	if err != nil {
		return err
	}
	type span struct {
		Start float64 `json:"start"`
		End   float64 `json:"end"`
	}
	out := make([]span, 0, len(segs))
	for _, s := range segs {
		out = append(out, span{Start: round3(float64(s.Start) / asr.SampleRate), End: round3(float64(s.End) / asr.SampleRate)})
	}
	if *asJSON {
		b, _ := json.Marshal(out)
		fmt.Fprintln(cio.stdout, string(b))
		return nil
	}
	for _, s := range out {
		fmt.Fprintf(cio.stdout, "%8.3f %8.3f\n", s.Start, s.End)
	}
	return nil
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
