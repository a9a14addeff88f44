package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/testmodels"
)

// modelsCLI runs `zhiyin models ARGS` in-process with a configuration whose
// data dir is dataDir and whose daemon address is closed.
func modelsCLI(t *testing.T, dataDir string, args ...string) (int, string, string) {
	t.Helper()
	cfg := filepath.Join(dataDir, "zhiyin.yaml")
	if _, err := os.Stat(cfg); err != nil {
		os.WriteFile(cfg, []byte("data_dir: "+dataDir+"\nserver:\n  listen: 127.0.0.1:1\n"), 0o644)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), append(append([]string{"models"}, args...), "--config", cfg), cmdIO{stdin: strings.NewReader(""), stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

func writeModel(t *testing.T, f testmodels.Folder) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), f.Name)
	os.MkdirAll(dir, 0o755)
	for _, file := range f.Files {
		os.WriteFile(filepath.Join(dir, file.Name), file.Data, 0o644)
	}
	return dir
}

func TestModelsInstallPromoteRollbackOffline(t *testing.T) {
	data := t.TempDir()
	v1 := writeModel(t, testmodels.Build("classifier"))
	v2 := writeModel(t, testmodels.ClassifierVersion(5, "2"))
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"install", v1}, 0, "installed classifier 1 as the serving version"},
		{[]string{"install", v2}, 1, "--candidate"},
		{[]string{"install", v2, "--candidate"}, 0, "installed classifier 2 as the candidate"},
		{[]string{"promote", "classifier"}, 0, "promoted on disk: version 2 serves"},
		{[]string{"rollback", "classifier"}, 0, "rolled back on disk: version 1 serves"},
		{[]string{"verify"}, 0, "✓ classifier.candidate 2"},
		{[]string{"list"}, 0, "candidate  2"},
		{[]string{"shadow", "classifier"}, 1, "runs in the daemon"},
		{[]string{"remove", "classifier", "--candidate"}, 0, "removed classifier.candidate"},
		{[]string{"promote", "classifier"}, 1, "no candidate version"},
		{[]string{"install"}, 2, "name one model"},
		{[]string{"frobnicate"}, 2, "unknown subcommand"},
	}
	for _, s := range steps {
		code, out, errOut := modelsCLI(t, data, s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.want) {
			t.Fatalf("models %v: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", s.args, code, s.code, out, errOut, s.want)
		}
	}
	// A corrupt file fails verify, naming the file and its sha256.
	p := filepath.Join(data, "models", "classifier", "model.onnx")
	os.WriteFile(p, []byte("corrupt"), 0o644)
	code, out, _ := modelsCLI(t, data, "verify", "classifier")
	m, _ := inference.ReadManifest(filepath.Join(data, "models", "classifier"))
	if code != 1 || !strings.Contains(out, "✗ classifier") || !strings.Contains(out, m.Files[0].SHA256) {
		t.Fatalf("verify of a corrupt model: exit %d\n%s", code, out)
	}
}

// With a daemon, list, shadow, promote and rollback go through its admin API.
func TestModelsTalksToDaemon(t *testing.T) {
	var calls []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls = append(calls, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "GET /v1/admin/models":
			json.NewEncoder(w).Encode(map[string]any{"models": []inference.ModelStatus{{Name: "silero-vad", Version: "5", State: "ready", EP: "cpu", Provider: "auto", Fallback: "no_provider_library", HostMemory: 12 << 20}}})
		case "GET /v1/admin/models/silero-vad":
			json.NewEncoder(w).Encode(inference.ModelReport{Shadow: &inference.ShadowReport{Serving: "5", Candidate: "6", CandidateEP: "cpu", Active: true, Fraction: 0.1, Compare: "close", Mirrored: 10, Agree: 9, Disagree: 1, Agreement: 0.9, Started: time.Now()}})
		case "POST /v1/admin/models/silero-vad/shadow":
			var o inference.ShadowOptions
			if err := json.NewDecoder(r.Body).Decode(&o); err != nil || o.Window != 30*time.Minute || o.Fraction != 0.5 {
				w.WriteHeader(400)
				json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"message": "bad options"}})
				return
			}
			json.NewEncoder(w).Encode(inference.ShadowReport{Serving: "5", Candidate: "6", Active: true, Fraction: 0.5})
		case "POST /v1/admin/models/silero-vad/promote":
			json.NewEncoder(w).Encode(inference.SwapEvent{Action: "promote", From: "5", To: "6"})
		case "POST /v1/admin/models/silero-vad/rollback":
			w.WriteHeader(409)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"message": "rollback silero-vad: no previous version"}})
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	t.Setenv(envAPIKey, "zy_test")
	data := t.TempDir()
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"list", "--addr", srv.URL}, 0, "cpu (no_provider_library)"},
		{[]string{"shadow", "silero-vad", "--addr", srv.URL}, 0, "agreement 90.00%"},
		{[]string{"shadow", "silero-vad", "--start", "--fraction", "0.5", "--window", "30m", "--addr", srv.URL}, 0, "fraction 50%"},
		{[]string{"promote", "silero-vad", "--addr", srv.URL}, 0, "promote 5 → 6 in the running daemon"},
		{[]string{"rollback", "silero-vad", "--addr", srv.URL}, 1, "no previous version"},
	}
	for _, s := range steps {
		code, out, errOut := modelsCLI(t, data, s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.want) {
			t.Fatalf("models %v: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", s.args, code, s.code, out, errOut, s.want)
		}
	}
	for _, c := range calls {
		if !strings.HasSuffix(c, "Bearer zy_test") {
			t.Errorf("call without the API key: %s", c)
		}
	}
}
