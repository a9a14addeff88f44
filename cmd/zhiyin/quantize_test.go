package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zhiyin/zhiyin/inference/onnxpb"
	"github.com/zhiyin/zhiyin/inference/testmodels"
)

// evalJSONL is an evaluation file for the generated intent model: eleven
// examples it gets right and one with an intent it has no label for.
const evalJSONL = `{"text": "你好", "intent": "other"}
{"text": "今天天气不错", "intent": "other", "source": "extra fields are ignored"}
{"text": "我想查一下余额", "intent": "query_balance"}

{"text": "check my balance please", "intent": "query_balance"}
{"text": "帮我充值一百块", "intent": "recharge"}
{"text": "话费充值", "intent": "recharge"}
{"text": "我要投诉你们的服务", "intent": "complaint"}
{"text": "投诉", "intent": "complaint"}
{"text": "转人工", "intent": "human_agent"}
{"text": "我要人工客服", "intent": "human_agent"}
{"text": "余额还有多少", "intent": "query_balance"}
{"text": "谢谢", "intent": "thanks"}
`

// bertFolder writes the generated intent (or entity) model folder and an
// eval file; it returns the folder.
func bertFolder(t *testing.T, opts testmodels.BERTOptions) string {
	t.Helper()
	f := testmodels.BERT(opts)
	dir := filepath.Join(t.TempDir(), f.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, file := range f.Files {
		writeFile(t, filepath.Join(dir, file.Name), string(file.Data))
	}
	writeFile(t, filepath.Join(dir, "eval.jsonl"), evalJSONL)
	return dir
}

// quantizeCLI runs `zhiyin models quantize ARGS` through the built binary.
func quantizeCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	code, out, errOut := runCLI(t, []string{"ZHIYIN_CONFIG=builtin"}, append([]string{"models", "quantize"}, args...)...)
	if strings.Contains(errOut, `unknown subcommand "quantize"`) {
		t.Skip("needs `zhiyin models quantize` wired into runModels (cmd/zhiyin/models.go): dispatch sub == \"quantize\" to runModelsQuantize")
	}
	return code, out, errOut
}

// quantizeInProcess runs runModelsQuantize in this process and maps its
// error to the exit code run would give.
func quantizeInProcess(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runModelsQuantize(context.Background(), cmdIO{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}, append(args, "--config", "builtin"))
	var ue usageError
	switch {
	case err == nil:
		return exitOK, out.String(), errOut.String()
	case errors.As(err, &ue):
		return exitUsage, out.String(), errOut.String() + err.Error()
	}
	return exitFailure, out.String(), errOut.String() + err.Error()
}

func TestQuantizeCommand(t *testing.T) {
	dir := bertFolder(t, testmodels.BERTOptions{})
	in := filepath.Join(dir, "model.onnx")
	outDir := t.TempDir()
	out := filepath.Join(outDir, "model.int8.onnx")
	code, stdout, stderr := quantizeCLI(t, in, out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"quantized 15 node(s)", "  + Gather_1\n", "left in float32 (6):", "Gemm_85: B (classifier.weight) has 640 elements", "x smaller", "wrote " + out} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	before, _ := os.ReadFile(in)
	after, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onnxpb.ReadInfo(after); err != nil || len(after)*3 > len(before) {
		t.Fatalf("output: %d bytes from %d, %v", len(after), len(before), err)
	}
	if entries, _ := os.ReadDir(outDir); len(entries) != 1 {
		t.Errorf("temporary files left in the output folder: %v", entries)
	}

	// --json, --per-channel, --force over the existing file.
	code, stdout, stderr = quantizeCLI(t, in, out, "--json", "--per-channel", "--force")
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, stderr)
	}
	var res quantizeResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	if len(res.Quantized) != 15 || res.Ratio < 3 || res.SizeBefore != int64(len(before)) || res.Eval != nil {
		t.Errorf("--json: %+v", res)
	}
	t.Logf("size %d -> %d bytes (%.2fx)", res.SizeBefore, res.SizeAfter, res.Ratio)
}

func TestQuantizeEval(t *testing.T) {
	dir := bertFolder(t, testmodels.BERTOptions{})
	in, out := filepath.Join(dir, "model.onnx"), filepath.Join(t.TempDir(), "q.onnx")
	code, stdout, stderr := quantizeCLI(t, in, out, "--eval", filepath.Join(dir, "eval.jsonl"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"evaluation on 12 example(s)", "accuracy  float32 91.67%  int8 91.67%  change +0.00 points", "agreement 100.00%", "latency   p50 float32", "no label for (always counted wrong): thanks"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = quantizeCLI(t, in, out, "--eval", filepath.Join(dir, "eval.jsonl"), "--json", "--force", "--reduce-range")
	var res quantizeResult
	if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil || res.Eval == nil {
		t.Fatalf("exit %d, %v:\n%s", code, err, stdout)
	}
	if e := res.Eval; e.Examples != 12 || e.Provider != "cpu" || e.AccuracyFloat < 0.9 || e.Agreement < 0.9 || e.MaxProbDelta <= 0 || e.MaxProbDelta > 0.1 {
		t.Errorf("eval %+v", e)
	}
	t.Logf("eval: %+v", *res.Eval)
}

// quantizeErrorCases are command lines that fail, with the exit code and
// what the message must say.
func quantizeErrorCases(t *testing.T) []struct {
	name string
	args []string
	code int
	msg  string
} {
	dir := bertFolder(t, testmodels.BERTOptions{})
	in := filepath.Join(dir, "model.onnx")
	lone := filepath.Join(t.TempDir(), "model.onnx")
	b, _ := os.ReadFile(in)
	writeFile(t, lone, string(b))
	token := bertFolder(t, testmodels.BERTOptions{Task: testmodels.TaskToken})
	exists := filepath.Join(t.TempDir(), "exists.onnx")
	writeFile(t, exists, "x")
	badEval := filepath.Join(t.TempDir(), "bad.jsonl")
	writeFile(t, badEval, "{\"text\": \"a\", \"intent\": \"b\"}\n{\"text\": \"no intent\"}\n")
	notJSON := filepath.Join(t.TempDir(), "bad.jsonl")
	writeFile(t, notJSON, "text,intent\n")
	out := filepath.Join(t.TempDir(), "out.onnx")
	return []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no arguments", nil, exitUsage, "name the model to quantize and the file to write"},
		{"one argument", []string{in}, exitUsage, "name the model to quantize"},
		{"min elements", []string{in, out, "--min-elements", "0"}, exitUsage, "--min-elements must be at least 1"},
		{"unknown flag", []string{in, out, "--fast"}, exitUsage, "flag provided but not defined: -fast"},
		{"missing input", []string{filepath.Join(dir, "nope.onnx"), out}, exitFailure, "nope.onnx does not exist: name the .onnx file to quantize"},
		{"folder input", []string{dir, out}, exitFailure, "is a folder: name the .onnx file inside it"},
		{"not onnx", []string{filepath.Join(dir, "vocab.txt"), out}, exitFailure, "vocab.txt: quantize: not an ONNX model"},
		{"out is in", []string{in, in}, exitFailure, "OUT is IN"},
		{"out is in, forced", []string{in, filepath.Join(dir, ".", "model.onnx"), "--force"}, exitFailure, "OUT is IN"},
		{"out exists", []string{in, exists}, exitFailure, "exists: choose another OUT or add --force"},
		{"out is a folder", []string{in, dir}, exitFailure, "is a folder: name the file to write"},
		{"eval outside a folder", []string{lone, out, "--eval", filepath.Join(dir, "eval.jsonl")}, exitFailure, "--eval needs IN inside its model folder (model.yaml, vocab.txt, labels.txt next to it)"},
		{"eval of a token model", []string{filepath.Join(token, "model.onnx"), out, "--eval", filepath.Join(dir, "eval.jsonl")}, exitFailure, `task "token"`},
		{"eval file missing", []string{in, out, "--eval", filepath.Join(dir, "none.jsonl")}, exitFailure, "none.jsonl does not exist"},
		{"eval line", []string{in, out, "--eval", badEval}, exitFailure, `line 2: "text" and "intent" are required`},
		{"eval not json", []string{in, out, "--eval", notJSON}, exitFailure, "line 1: invalid character"},
	}
}

func TestQuantizeErrors(t *testing.T) {
	for _, c := range quantizeErrorCases(t) {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := quantizeCLI(t, c.args...)
			if code != c.code || !strings.Contains(stderr, c.msg) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and …%s…", code, stderr, c.code, c.msg)
			}
			if stdout != "" {
				t.Errorf("stdout on failure: %s", stdout)
			}
			if c.code == exitUsage && !strings.Contains(stderr, "usage: zhiyin models") {
				t.Errorf("no usage line:\n%s", stderr)
			}
		})
	}
}

// TestQuantizeInProcess runs the same checks without the binary, so that
// the command's logic is covered however it is wired.
func TestQuantizeInProcess(t *testing.T) {
	for _, c := range quantizeErrorCases(t) {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := quantizeInProcess(t, c.args...)
			if code != c.code || !strings.Contains(stderr, c.msg) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and …%s…", code, stderr, c.code, c.msg)
			}
		})
	}
	dir := bertFolder(t, testmodels.BERTOptions{NoTokenTypes: true})
	out := filepath.Join(t.TempDir(), "q.onnx")
	code, stdout, stderr := quantizeInProcess(t, filepath.Join(dir, "model.onnx"), out, "--eval", filepath.Join(dir, "eval.jsonl"), "--keep-gather", "--min-elements", "100000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// With a minimum above every weight nothing is quantized: the output
	// is the input and the evaluation identical.
	for _, want := range []string{"quantized 0 node(s)", "1.00x smaller", "accuracy  float32 91.67%  int8 91.67%  change +0.00 points", "largest probability change 0.0000"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestParseEvalJSONL(t *testing.T) {
	exs, err := parseEvalJSONL(strings.NewReader("\n{\"text\":\"a\",\"intent\":\"x\",\"entities\":[]}\r\n\n{\"intent\":\"y\",\"text\":\"b\"}"))
	if err != nil || len(exs) != 2 || exs[0] != (evalExample{"a", "x"}) || exs[1] != (evalExample{"b", "y"}) {
		t.Fatalf("%+v %v", exs, err)
	}
	for in, want := range map[string]string{
		"":                                 "no examples",
		"[1,2]\n":                          "line 1",
		"{\"text\": 1, \"intent\": \"x\"}": "line 1",
		"{\"text\": \"a\"}":                "line 1: \"text\" and \"intent\" are required",
		strings.Repeat("x", maxEvalLine+1): "longer than",
	} {
		if _, err := parseEvalJSONL(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.20q: err = %v, want …%s…", in, err, want)
		}
	}
}

func FuzzParseEvalJSONL(f *testing.F) {
	f.Add([]byte(evalJSONL))
	f.Add([]byte("{\"text\":\"a\",\"intent\":\"b\"}\n{"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		exs, err := parseEvalJSONL(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, ex := range exs {
			if ex.Text == "" || ex.Intent == "" {
				t.Fatalf("empty field accepted: %+v", ex)
			}
		}
	})
}
