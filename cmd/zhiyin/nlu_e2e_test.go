package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestNLUEndToEnd trains the test shop model with the CLI, evaluates it,
// serves it and parses over HTTP, including the bad-input answers.
func TestNLUEndToEnd(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	data := "../../dialogue/nlu/testdata/shop"
	code, out, errOut := runCLI(t, nil, "train", "--data", data, "--out", model, "--seed", "3")
	if code != 0 {
		t.Fatalf("train exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "epoch") || !strings.Contains(out, "intent.onnx") {
		t.Errorf("train output lacks progress or files:\n%s\n%s", out, errOut)
	}
	code, out, errOut = runCLI(t, nil, "nlu", "eval", "--config", "builtin", "--model", model, "--data", data+"/nlu.yml", "--json")
	if code != 0 {
		t.Fatalf("eval exit %d\n%s\n%s", code, out, errOut)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, out)
	}
	for _, k := range []string{"intent_accuracy", "intent_macro_f1", "entity_f1", "n", "latency_p99_ms"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("eval --json lacks %s: %s", k, out)
		}
	}
	if acc, _ := rep["intent_accuracy"].(float64); acc < 0.95 {
		t.Errorf("training-set intent accuracy %.3f", acc)
	}

	// bad training data: error with file:line, exit 1
	bad := filepath.Join(dir, "bad.yml")
	writeFile(t, bad, "nlu:\n  - intent: a\n    examples: |\n      - [x](\n")
	code, _, errOut = runCLI(t, nil, "train", "--data", bad, "--out", filepath.Join(dir, "m2"))
	if code != 1 || !strings.Contains(errOut, "bad.yml:4") {
		t.Errorf("bad data: exit %d, stderr %s", code, errOut)
	}

	addr := freeAddr(t)
	cfg := filepath.Join(dir, "zhiyin.yaml")
	writeFile(t, cfg, "data_dir: "+filepath.Join(dir, "var")+"\nserver:\n  listen: "+addr+"\nauth:\n  allow_loopback: true\nnlu:\n  model: "+model+"\n  max_chars: 20\n  data: "+data+"\n")
	d := startDaemon(t, addr, nil, "serve", "--config", cfg)
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := get(t, d.url+"/readyz", "")
		if code == 200 {
			if !strings.Contains(body, "nlu") {
				t.Errorf("readyz does not report nlu: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body := post(t, d.url+"/v1/nlu/parse", `{"text":"我的快递SF1234567890到哪了"}`)
	if code != 200 || !strings.Contains(body, `"query_logistics"`) || !strings.Contains(body, `"tracking_no"`) {
		t.Errorf("parse: %d %s", code, body)
	}
	code, body = post(t, d.url+"/model/parse", `{"text":"我要投诉","message_id":"m1"}`)
	if code != 200 || !strings.Contains(body, `"intent_ranking"`) || !strings.Contains(body, `"complain"`) {
		t.Errorf("rasa parse: %d %s", code, body)
	}
	for _, c := range []struct {
		body string
		code int
	}{
		{`{"text":""}`, 400},
		{`{"text":"   "}`, 400},
		{"{\"text\":\"\xff\xfe\"}", 400},
		{`{"text":"` + strings.Repeat("投", 21) + `"}`, 413},
		{`{"txt":"投诉"}`, 400},
		{`not json`, 400},
	} {
		if code, body := post(t, d.url+"/v1/nlu/parse", c.body); code != c.code {
			t.Errorf("%q: %d %s, want %d", c.body, code, body, c.code)
		}
	}
	d.signal(t, syscall.SIGTERM)
	d.wait(t)

	// a tampered model is refused at start, with the reason
	b, _ := os.ReadFile(filepath.Join(model, "intent.onnx"))
	b[len(b)/3] ^= 0x40
	writeFile(t, filepath.Join(model, "intent.onnx"), string(b))
	code, out, errOut = runCLI(t, nil, "nlu", "parse", "--config", "builtin", "--model", model, "你好")
	if code != 1 || !strings.Contains(errOut, "sha256") {
		t.Errorf("tampered model: exit %d\n%s\n%s", code, out, errOut)
	}
}
