package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/zhiyin/zhiyin/dialogue/nlu/bert"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/quantize"
	"github.com/zhiyin/zhiyin/internal/httpserver"
)

// mountModelAdmin adds the routes `zhiyin models` calls on a running daemon
// (inference.AdminModelsPath; the contract is documented there) to an admin
// group mounted at that path.
func mountModelAdmin(g fiber.Router, reg *inference.Registry) {
	g.Get("/", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"models": reg.List()})
	})
	g.Get("/:name", func(c *fiber.Ctx) error {
		rep, err := reg.Report(c.Params("name"))
		if err != nil {
			return modelError(err)
		}
		return c.JSON(rep)
	})
	g.Post("/:name/shadow", func(c *fiber.Ctx) error {
		var opts inference.ShadowOptions
		if len(c.Body()) > 0 {
			if err := httpserver.DecodeJSON(c, &opts); err != nil {
				return err
			}
		}
		rep, err := reg.StartShadow(c.UserContext(), c.Params("name"), opts)
		if err != nil {
			return modelError(err)
		}
		return c.JSON(rep)
	})
	g.Delete("/:name/shadow", func(c *fiber.Ctx) error {
		rep, err := reg.StopShadow(c.UserContext(), c.Params("name"))
		if err != nil {
			return modelError(err)
		}
		return c.JSON(rep)
	})
	g.Post("/:name/promote", func(c *fiber.Ctx) error {
		ev, err := reg.Promote(c.UserContext(), c.Params("name"))
		if err != nil {
			return modelError(err)
		}
		return c.JSON(ev)
	})
	g.Post("/:name/rollback", func(c *fiber.Ctx) error {
		ev, err := reg.Rollback(c.UserContext(), c.Params("name"))
		if err != nil {
			return modelError(err)
		}
		return c.JSON(ev)
	})
}

// modelError turns a registry error into an answer: its own message for
// the caller's mistakes (unknown model, no candidate, bad manifest), a
// logged 500 otherwise.
func modelError(err error) error {
	status := inference.HTTPStatus(err)
	code := map[int]string{
		404: httpserver.CodeNotFound, 409: httpserver.CodeConflict,
		422: httpserver.CodeBadRequest, 503: httpserver.CodeUnavailable,
	}[status]
	if code == "" {
		return err // 500, details in the log only
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		status, code = 400, httpserver.CodeBadRequest
	}
	return &httpserver.Error{Status: status, Code: code, Message: err.Error(), Err: err}
}

// quantizeArgs is the synopsis of `zhiyin models quantize`.
const quantizeArgs = "IN.onnx OUT.onnx [--per-channel] [--min-elements N] [--reduce-range] [--keep-gather] [--eval FILE.jsonl] [--force] [--json]"

// maxEvalLine bounds one line of an --eval file.
const maxEvalLine = 1 << 20

// runModelsQuantize is `zhiyin models quantize`: dynamic int8 quantization
// of a model file (inference/quantize), and with --eval the accuracy of the
// float and the int8 model on labelled examples. It works offline, without
// the daemon.
func runModelsQuantize(ctx context.Context, cio cmdIO, args []string) error {
	fs := flag.NewFlagSet("zhiyin models quantize", flag.ContinueOnError)
	fs.SetOutput(cio.stderr)
	fs.Usage = func() {
		fmt.Fprintf(cio.stderr, "usage: zhiyin models quantize %s\n\n"+
			"Rewrite an ONNX model for dynamic int8 quantization: MatMul/Gemm weights and embedding\n"+
			"tables stored as int8, activations quantized at run time. The float model is kept.\n\nflags:\n", quantizeArgs)
		fs.PrintDefaults()
	}
	perChannel := fs.Bool("per-channel", false, "one scale per output column of each weight (better accuracy, slightly larger)")
	minElements := fs.Int("min-elements", quantize.DefaultMinElements, "smallest weight, in elements, that is quantized")
	reduceRange := fs.Bool("reduce-range", false, "7-bit weights: avoids overflow in ONNX Runtime's int8 kernels on x86 CPUs without VNNI")
	keepGather := fs.Bool("keep-gather", false, "keep embedding tables (Gather) in float32")
	eval := fs.String("eval", "", "JSONL file of {\"text\",\"intent\"} lines: compare the accuracy of the float and the int8 model\n(IN must sit in its model folder: model.yaml, vocab.txt, labels.txt)")
	force := fs.Bool("force", false, "replace OUT if it exists")
	asJSON := fs.Bool("json", false, "print one JSON object")
	configPath := fs.String("config", "", "configuration file, for --eval's ONNX Runtime library (default: $ZHIYIN_CONFIG, else "+defaultConfigPath+" if it exists, else built-in)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("name the model to quantize and the file to write: zhiyin models quantize %s", quantizeArgs)
	}
	if *minElements < 1 {
		return usagef("--min-elements must be at least 1, got %d", *minElements)
	}
	in, out := pos[0], pos[1]
	st, err := os.Stat(in)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s does not exist: name the .onnx file to quantize", in)
	case err != nil:
		return fmt.Errorf("read %s: %w", in, err)
	case st.IsDir():
		return fmt.Errorf("%s is a folder: name the .onnx file inside it (usually model.onnx)", in)
	}
	if ost, err := os.Stat(out); err == nil {
		if os.SameFile(st, ost) {
			return fmt.Errorf("OUT is IN (%s): write the int8 model to another file; the float model is what you go back to", in)
		}
		if ost.IsDir() {
			return fmt.Errorf("%s is a folder: name the file to write, e.g. %s", out, filepath.Join(out, "model.onnx"))
		}
		if !*force {
			return fmt.Errorf("%s exists: choose another OUT or add --force to replace it", out)
		}
	}
	var examples []evalExample
	var man *inference.Manifest
	if *eval != "" {
		// Check everything --eval needs before the work.
		if man, err = evalManifest(in); err != nil {
			return err
		}
		if examples, err = readEvalFile(*eval); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("read %s: %w", in, err)
	}
	q, rep, err := quantize.Dynamic(data, quantize.Options{PerChannel: *perChannel, MinElements: *minElements, ReduceRange: *reduceRange, KeepGather: *keepGather})
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := writeFileAtomic(out, q); err != nil {
		return err
	}
	res := quantizeResult{Input: in, Output: out, Report: rep, Ratio: float64(rep.SizeBefore) / float64(max(rep.SizeAfter, 1))}
	if *eval != "" {
		ev, err := evaluateQuantized(ctx, *configPath, man, data, q, examples)
		if err != nil {
			return fmt.Errorf("evaluate (%s was written): %w", out, err)
		}
		ev.File = *eval
		res.Eval = ev
	}
	if *asJSON {
		return writeJSON(cio.stdout, res)
	}
	printQuantize(cio.stdout, res)
	return nil
}

// quantizeResult is what `zhiyin models quantize --json` prints.
type quantizeResult struct {
	Input  string `json:"input"`
	Output string `json:"output"`
	quantize.Report
	// Ratio is SizeBefore / SizeAfter.
	Ratio float64     `json:"ratio"`
	Eval  *evalResult `json:"eval,omitempty"`
}

// evalResult compares the float and the int8 model on labelled examples.
type evalResult struct {
	File     string `json:"file"`
	Examples int    `json:"examples"`
	// Provider is where both models ran (always the CPU: dynamic
	// quantization is a CPU technique).
	Provider      string  `json:"provider"`
	AccuracyFloat float64 `json:"accuracy_float"`
	AccuracyInt8  float64 `json:"accuracy_int8"`
	// Change is AccuracyInt8 − AccuracyFloat, in percentage points.
	Change float64 `json:"change_points"`
	// Agreement is the share of examples whose top label is the same.
	Agreement float64 `json:"agreement"`
	// MaxProbDelta is the largest change of any label's probability.
	MaxProbDelta   float64  `json:"max_prob_delta"`
	LatencyFloatMs float64  `json:"latency_p50_float_ms"`
	LatencyInt8Ms  float64  `json:"latency_p50_int8_ms"`
	UnknownIntents []string `json:"unknown_intents,omitempty"`
}

func printQuantize(w io.Writer, r quantizeResult) {
	fmt.Fprintf(w, "quantized %d node(s) of %s to int8:\n", len(r.Quantized), r.Input)
	for _, n := range r.Quantized {
		fmt.Fprintf(w, "  + %s\n", n)
	}
	if len(r.Skipped) > 0 {
		names := make([]string, 0, len(r.Skipped))
		for n := range r.Skipped {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(w, "left in float32 (%d):\n", len(names))
		for _, n := range names {
			fmt.Fprintf(w, "  - %s: %s\n", n, r.Skipped[n])
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "size: %d → %d bytes (%s → %s), %.2fx smaller\n", r.SizeBefore, r.SizeAfter,
		humanBytes(uint64(r.SizeBefore)), humanBytes(uint64(r.SizeAfter)), r.Ratio)
	fmt.Fprintf(w, "wrote %s\n", r.Output)
	if e := r.Eval; e != nil {
		fmt.Fprintf(w, "evaluation on %d example(s) of %s (%s):\n", e.Examples, e.File, e.Provider)
		fmt.Fprintf(w, "  accuracy  float32 %.2f%%  int8 %.2f%%  change %+.2f points\n", e.AccuracyFloat*100, e.AccuracyInt8*100, e.Change)
		fmt.Fprintf(w, "  agreement %.2f%% of top labels equal; largest probability change %.4f\n", e.Agreement*100, e.MaxProbDelta)
		fmt.Fprintf(w, "  latency   p50 float32 %.2f ms, int8 %.2f ms\n", e.LatencyFloatMs, e.LatencyInt8Ms)
		if len(e.UnknownIntents) > 0 {
			fmt.Fprintf(w, "  note: intents the model has no label for (always counted wrong): %s\n", strings.Join(e.UnknownIntents, ", "))
		}
	}
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place, so a failed write never leaves half a model.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// evalExample is one line of an --eval file.
type evalExample struct {
	Text   string `json:"text"`
	Intent string `json:"intent"`
}

// readEvalFile reads JSONL lines {"text": …, "intent": …} (other fields are
// ignored, blank lines skipped). Errors name the line.
func readEvalFile(path string) ([]evalExample, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("--eval %s does not exist: name a JSONL file with one {\"text\": …, \"intent\": …} object per line", path)
		}
		return nil, fmt.Errorf("--eval: %w", err)
	}
	defer f.Close()
	exs, err := parseEvalJSONL(f)
	if err != nil {
		return nil, fmt.Errorf("--eval %s: %w", path, err)
	}
	return exs, nil
}

func parseEvalJSONL(r io.Reader) ([]evalExample, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEvalLine)
	var exs []evalExample
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var ex evalExample
		if err := json.Unmarshal(b, &ex); err != nil {
			return nil, fmt.Errorf("line %d: %v: each line must be one JSON object such as {\"text\": \"我想查余额\", \"intent\": \"query_balance\"}", line, err)
		}
		if ex.Text == "" || ex.Intent == "" {
			return nil, fmt.Errorf("line %d: \"text\" and \"intent\" are required and must not be empty", line)
		}
		exs = append(exs, ex)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("a line is longer than %d bytes", maxEvalLine)
		}
		return nil, err
	}
	if len(exs) == 0 {
		return nil, errors.New("no examples: write one {\"text\": …, \"intent\": …} object per line")
	}
	return exs, nil
}

// evalManifest checks that the model file sits in a BERT folder --eval can
// run: model.yaml of kind nlu-bert for the sequence task, its vocabulary
// and labels.
func evalManifest(in string) (*inference.Manifest, error) {
	dir := filepath.Dir(in)
	man, err := inference.ReadManifest(dir)
	if err != nil {
		if errors.Is(err, inference.ErrModelNotFound) {
			return nil, fmt.Errorf("--eval needs IN inside its model folder (model.yaml, vocab.txt, labels.txt next to it), but %s has no %s", dir, inference.ManifestFile)
		}
		return nil, fmt.Errorf("--eval: %w", err)
	}
	if man.Kind != bert.Kind || man.Metadata[bert.MetaTask] != bert.TaskSequence {
		return nil, fmt.Errorf("--eval runs intent classifiers: %s is kind %q, task %q; it needs kind %s with metadata task: %s", filepath.Join(dir, inference.ManifestFile), man.Kind, man.Metadata[bert.MetaTask], bert.Kind, bert.TaskSequence)
	}
	for _, f := range []string{orDefault(man.Metadata[bert.MetaVocab], "vocab.txt"), orDefault(man.Metadata[bert.MetaLabels], "labels.txt")} {
		if _, err := os.Stat(man.Path(f)); err != nil {
			return nil, fmt.Errorf("--eval needs %s next to the model: %w", f, err)
		}
	}
	return man, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// evaluateQuantized classifies every example with the float graph and the
// int8 graph, each loaded from a copy of the model folder, on the CPU.
func evaluateQuantized(ctx context.Context, configPath string, man *inference.Manifest, float, int8 []byte, exs []evalExample) (*evalResult, error) {
	lc, err := loadConfig(configPath)
	if err != nil {
		return nil, err
	}
	rt := inference.NewRuntime(lc.Inference, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := rt.Start(); err != nil {
		return nil, err
	}
	defer rt.Close()
	tmp, err := os.MkdirTemp("", "zhiyin-quantize-eval-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var models [2]*bert.Model
	defer func() {
		for _, m := range models {
			_ = m.Close()
		}
	}()
	for i, graph := range [][]byte{float, int8} {
		dir := filepath.Join(tmp, fmt.Sprint(i))
		if err := copyModelFolder(man, dir, graph); err != nil {
			return nil, err
		}
		if models[i], err = bert.Load(ctx, rt, dir, inference.LoadOptions{Provider: "cpu", Concurrency: 1}); err != nil {
			return nil, err
		}
	}
	labels := map[string]bool{}
	for _, l := range models[0].Labels() {
		labels[l] = true
	}
	unknown := map[string]bool{}
	res := &evalResult{Examples: len(exs), Provider: "cpu"}
	var right [2]int
	var lat [2][]time.Duration
	agree := 0
	for _, ex := range exs {
		var top [2]string
		var probs [2]map[string]float64
		for i, m := range models {
			t0 := time.Now()
			scores, err := m.Classify(ctx, ex.Text)
			if err != nil {
				return nil, err
			}
			lat[i] = append(lat[i], time.Since(t0))
			top[i] = scores[0].Label
			probs[i] = map[string]float64{}
			for _, s := range scores {
				probs[i][s.Label] = s.P
			}
			if top[i] == ex.Intent {
				right[i]++
			}
		}
		if top[0] == top[1] {
			agree++
		}
		for l, p := range probs[0] {
			res.MaxProbDelta = math.Max(res.MaxProbDelta, math.Abs(p-probs[1][l]))
		}
		if !labels[ex.Intent] {
			unknown[ex.Intent] = true
		}
	}
	n := float64(len(exs))
	res.AccuracyFloat, res.AccuracyInt8 = float64(right[0])/n, float64(right[1])/n
	res.Change = (res.AccuracyInt8 - res.AccuracyFloat) * 100
	res.Agreement = float64(agree) / n
	res.LatencyFloatMs, res.LatencyInt8Ms = p50ms(lat[0]), p50ms(lat[1])
	for l := range unknown {
		res.UnknownIntents = append(res.UnknownIntents, l)
	}
	sort.Strings(res.UnknownIntents)
	return res, nil
}

func p50ms(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}

// copyModelFolder writes a copy of a model folder to dir with graph as its
// ONNX file and a manifest listing the new graph's sha256.
func copyModelFolder(man *inference.Manifest, dir string, graph []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cp := *man
	cp.Files = slices.Clone(man.Files)
	for i, f := range cp.Files {
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if f.Path == man.Graph {
			sum := sha256.Sum256(graph)
			cp.Files[i].SHA256, cp.Files[i].Size = hex.EncodeToString(sum[:]), int64(len(graph))
			if err := os.WriteFile(dst, graph, 0o644); err != nil {
				return err
			}
			continue
		}
		b, err := os.ReadFile(man.Path(f.Path))
		if err != nil {
			return fmt.Errorf("copy the model folder: %w", err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	y, err := cp.Marshal()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, inference.ManifestFile), y, 0o644)
}
