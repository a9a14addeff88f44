package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/dialogue/nlu/nludata"
	"github.com/zhiyin/zhiyin/inference"
)

func runTrain(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("train", cio.stderr)
	data := fs.String("data", "", "training data: a Rasa-style nlu.yml, a JSON Lines file, or a folder of them")
	out := fs.String("out", "", "model folder to write (created; model files in it are replaced)")
	seed := fs.Uint64("seed", 1, "random seed: the same data and seed give the same model files")
	quiet := fs.Bool("quiet", false, "no progress display")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("train takes no arguments, got %q", strings.Join(pos, " "))
	}
	if *data == "" || *out == "" {
		return usagef("train needs --data FILE|DIR and --out DIR")
	}
	d, err := nludata.Load(*data)
	for _, w := range warnings(d) {
		fmt.Fprintf(cio.stderr, "warning: %s\n", w)
	}
	if err != nil {
		return fmt.Errorf("training data: %w", err)
	}
	fmt.Fprintf(cio.stderr, "training on %d examples, %d intents, %d entity types (data %s)\n",
		len(d.Examples), len(d.Intents()), len(d.EntityTypes()), d.Hash()[:12])
	bar := newProgressBar(cio.stderr)
	opts := nlu.TrainOptions{Seed: *seed}
	if !*quiet {
		opts.Progress = bar.update
	}
	m, err := nlu.Train(ctx, d, opts)
	bar.done()
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	man, err := m.Save(*out)
	if err != nil {
		return err
	}
	mt := man.Metrics
	fmt.Fprintf(cio.stdout, "model written to %s in %.1fs\n", *out, m.Metrics.TrainSeconds)
	fmt.Fprintf(cio.stdout, "  intents: %d, entity types: %d, examples: %d (held out %d)\n", len(man.Intents), len(man.EntityTypes), mt.Examples, mt.HeldOut)
	if mt.HeldOut > 0 {
		fmt.Fprintf(cio.stdout, "  held-out intent accuracy %.2f%%", 100*mt.IntentAccuracy)
		if len(man.EntityTypes) > 0 {
			fmt.Fprintf(cio.stdout, ", entity F1 %.2f%%", 100*mt.EntityF1)
		}
		fmt.Fprintf(cio.stdout, " (epochs: intent %d, entities %d)\n", mt.IntentEpochs, mt.TagEpochs)
	}
	if mt.QuantizedAgree > 0 {
		fmt.Fprintf(cio.stdout, "  int8 vs float intent agreement on the training data %.2f%%\n", 100*mt.QuantizedAgree)
	}
	var total int64
	for _, f := range man.Files {
		total += f.Size
		fmt.Fprintf(cio.stdout, "  %-16s %9s  sha256 %s\n", f.Path, formatBytes(f.Size), f.SHA256[:16])
	}
	fmt.Fprintf(cio.stdout, "  total %s\n", formatBytes(total))
	return nil
}

func warnings(d *nludata.Data) []string {
	if d == nil {
		return nil
	}
	return d.Warnings
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progressBar draws training progress: one redrawn line on a terminal, a
// line per epoch otherwise (logs, CI).
type progressBar struct {
	w     io.Writer
	tty   bool
	drawn bool
}

func newProgressBar(w io.Writer) *progressBar {
	return &progressBar{w: w, tty: isTerminal(w)}
}

// isTerminal reports whether w is a terminal (progress bars redraw there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (b *progressBar) update(p nlu.Progress) {
	const width = 20
	fill := width * p.Epoch / max(1, p.Epochs)
	bar := strings.Repeat("█", fill) + strings.Repeat("░", width-fill)
	held := ""
	if p.HeldOut >= 0 {
		name := "accuracy"
		if p.Model == "entities" {
			name = "F1"
		}
		held = fmt.Sprintf("  held-out %s %.2f%%", name, 100*p.HeldOut)
	}
	line := fmt.Sprintf("%-8s %-6s %s epoch %2d/%-2d loss %.4f%s", p.Model, p.Phase, bar, p.Epoch, p.Epochs, p.Loss, held)
	if b.tty {
		fmt.Fprintf(b.w, "\r\033[K%s", line)
		b.drawn = true
		return
	}
	fmt.Fprintln(b.w, line)
}

func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}

func runNLU(ctx context.Context, cio cmdIO, args []string) error {
	if len(args) == 0 {
		return usagef("nlu needs a subcommand: eval or parse")
	}
	switch args[0] {
	case "eval":
		return runNLUEval(ctx, cio, args[1:])
	case "parse":
		return runNLUParse(ctx, cio, args[1:])
	}
	return usagef("unknown nlu subcommand %q: use eval or parse", args[0])
}

// openParser starts ONNX Runtime (from the configuration's inference
// section) and loads a model folder with the configuration's nlu options.
func openParser(ctx context.Context, configPath, dir string, log *slog.Logger) (*nlu.Parser, *inference.Runtime, error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, nil, err
	}
	rt := inference.NewRuntime(cfg.Inference, log)
	if err := rt.Start(); err != nil {
		return nil, nil, fmt.Errorf("start ONNX Runtime: %w", err)
	}
	opts := cfg.NLU.Options()
	opts.Load = inference.LoadOptions{Concurrency: 1}
	if dir == "" {
		dir = cfg.NLU.ModelDir(cfg.DataDir)
	}
	p, err := nlu.Load(ctx, rt, dir, opts)
	if err != nil {
		_ = rt.Close()
		return nil, nil, err
	}
	return p, rt, nil
}

func runNLUParse(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("nlu", cio.stderr)
	model := fs.String("model", "", "model folder (default: the configuration's nlu.model)")
	configPath := fs.String("config", "", "configuration file (inference and nlu sections)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("nlu parse needs the text to parse")
	}
	p, rt, err := openParser(ctx, *configPath, *model, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer rt.Close()
	defer p.Close()
	enc := json.NewEncoder(cio.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	for _, text := range pos {
		res, err := p.Parse(ctx, text)
		if err != nil {
			return fmt.Errorf("parse %q: %w", text, err)
		}
		if err := enc.Encode(res); err != nil {
			return err
		}
	}
	return nil
}

func runNLUEval(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("nlu", cio.stderr)
	model := fs.String("model", "", "model folder (default: the configuration's nlu.model)")
	dataPath := fs.String("data", "", "labelled data to evaluate on (JSON Lines or Rasa YAML)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	configPath := fs.String("config", "", "configuration file (inference and nlu sections)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *dataPath == "" {
		return usagef("nlu eval needs --data FILE (and --model DIR)")
	}
	data, err := nludata.Load(*dataPath)
	if err != nil {
		return fmt.Errorf("evaluation data: %w", err)
	}
	p, rt, err := openParser(ctx, *configPath, *model, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer rt.Close()
	defer p.Close()
	began := time.Now()
	rep, err := nlu.Evaluate(ctx, p, data)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(cio.stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	}
	w := cio.stdout
	fmt.Fprintf(w, "evaluated %d examples in %s\n", rep.N, time.Since(began).Round(time.Millisecond))
	fmt.Fprintf(w, "intent accuracy %.2f%%, macro-F1 %.2f%%; %d below the fallback threshold (accuracy counting them wrong: %.2f%%)\n",
		100*rep.IntentAccuracy, 100*rep.IntentMacroF1, rep.Fallbacks, 100*rep.AccuracyWithFallback)
	fmt.Fprintf(w, "entities: precision %.2f%%, recall %.2f%%, F1 %.2f%%\n", 100*rep.EntityP, 100*rep.EntityR, 100*rep.EntityF1)
	fmt.Fprintf(w, "parse latency p50 %.3f ms, p99 %.3f ms\n", rep.LatencyP50, rep.LatencyP99)
	fmt.Fprintf(w, "\n%-32s %9s %9s %9s %7s\n", "intent", "precision", "recall", "f1", "support")
	names := make([]string, 0, len(rep.PerIntent))
	for k := range rep.PerIntent {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := rep.PerIntent[k]
		fmt.Fprintf(w, "%-32s %8.2f%% %8.2f%% %8.2f%% %7d\n", k, 100*v.Precision, 100*v.Recall, 100*v.F1, v.Support)
	}
	if len(rep.Confused) > 0 {
		fmt.Fprintf(w, "\nmost confused (gold -> predicted):\n")
		for _, c := range rep.Confused {
			fmt.Fprintf(w, "  %s -> %s: %d\n", c.Gold, c.Predicted, c.Count)
		}
	}
	for k, n := range rep.Unknown {
		fmt.Fprintf(w, "warning: intent %q (%d examples) is not one the model knows\n", k, n)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	return nil
}
