package inference

import (
	"strings"
	"testing"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

type wrapper struct {
	Inference Config `yaml:"inference"`
}

func TestDefaultConfigValidates(t *testing.T) {
	w := wrapper{Inference: DefaultConfig()}
	if err := config.Validate(&w); err != nil {
		t.Fatal(err)
	}
	if len(w.Inference.Preload) != 1 || w.Inference.Preload[0] != VADModel {
		t.Errorf("the defaults should preload the VAD: %v", w.Inference.Preload)
	}
}

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		yaml, path, msg string
	}{
		{"provider: gpu", "inference.provider", "cpu, cuda or auto"},
		{"ort_log_level: loud", "inference.ort_log_level", "verbose, info"},
		{"cpu: {intra_op_threads: -1}", "inference.cpu.intra_op_threads", "must be 0"},
		{"cpu: {inter_op_threads: 5000}", "inference.cpu.inter_op_threads", "must be 0"},
		{"cuda: {device_id: -1}", "inference.cuda.device_id", "0 to 255"},
		{"cuda: {memory_limit: 1MiB}", "inference.cuda.memory_limit", "too small"},
		{"cuda: {arena_extend_strategy: grow}", "inference.cuda.arena_extend_strategy", "next_power_of_two"},
		{"cuda: {cudnn_conv_algo_search: fast}", "inference.cuda.cudnn_conv_algo_search", "exhaustive"},
		{"model_dirs: ['a/../b']", "inference.model_dirs", "clean path"},
		{"preload: [Bad Name]", "inference.preload", "not a model name"},
		{"preload: [a, a]", "inference.preload", "listed twice"},
		{"required: ['x y']", "inference.required", "not a model name"},
		{"concurrency: -2", "inference.concurrency", "must be 0"},
		{"idle_unload: 10ms", "inference.idle_unload", "at least 1s"},
		{"idle_unload: -1s", "inference.idle_unload", "never"},
		{"batching: {mode: maybe}", "inference.batching.mode", "auto, on or off"},
		{"batching: {max_batch: 0}", "inference.batching.max_batch", "1 to"},
		{"batching: {max_wait: 5s}", "inference.batching.max_wait", "0 to"},
		{"batching: {queue_size: 0}", "inference.batching.queue_size", "1 to"},
		{"shadow: {fraction: 0}", "inference.shadow.fraction", "more than 0"},
		{"shadow: {fraction: 1.5}", "inference.shadow.fraction", "at most 1"},
		{"shadow: {window: -1m}", "inference.shadow.window", "positive"},
		{"shadow: {max_inflight: 0}", "inference.shadow.max_inflight", "1 to"},
		{"models: {BAD: {}}", "inference.models", "not a model name"},
		{"models: {a: {provider: tpu}}", "inference.models.a.provider", "cpu, cuda or auto"},
		{"models: {a: {concurrency: -1}}", "inference.models.a.concurrency", "inherit"},
		{"models: {a: {idle_unload: 1m, keep_loaded: true}}", "inference.models.a.keep_loaded", "together"},
		{"models: {a: {batching: {mode: sometimes}}}", "inference.models.a.batching.mode", "auto, on or off"},
		{"models: {a: {batching: {max_wait: 2s}}}", "inference.models.a.batching.max_wait", "0 to"},
		{"models: {a: {dir: 'x/../y'}}", "inference.models.a.dir", "clean path"},
		{"unknown_key: 1", "inference.unknown_key", "unknown key"},
	}
	for _, tc := range cases {
		t.Run(tc.yaml, func(t *testing.T) {
			w := wrapper{Inference: DefaultConfig()}
			err := config.Decode("zhiyin.yaml", []byte("inference:\n  "+tc.yaml+"\n"), &w, config.DecodeOptions{})
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.path+": ") || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q, want %s: …%s…", err, tc.path, tc.msg)
			}
		})
	}
}

func TestModelSettingsInherit(t *testing.T) {
	w := wrapper{Inference: DefaultConfig()}
	y := `inference:
  concurrency: 3
  idle_unload: 10m
  batching: {max_batch: 8}
  models:
    a: {concurrency: 1, batching: {mode: "off", max_wait: 0s}}
    b: {keep_loaded: true, provider: cpu}
`
	if err := config.Decode("f", []byte(y), &w, config.DecodeOptions{}); err != nil {
		t.Fatal(err)
	}
	a := w.Inference.settingsFor("a", 4)
	if a.concurrency != 1 || a.batch.Mode != "off" || !a.batchModeSet || a.batch.MaxWait != 0 || a.batch.MaxBatch != 8 || a.idleUnload != 10*time.Minute {
		t.Errorf("a: %+v", a)
	}
	b := w.Inference.settingsFor("b", 4)
	if b.concurrency != 3 || b.idleUnload != 0 || b.provider != "cpu" || b.batch.MaxWait != 2*time.Millisecond {
		t.Errorf("b: %+v", b)
	}
	def := DefaultConfig()
	c := def.settingsFor("c", 6)
	if c.concurrency != 0 || c.provider != "auto" {
		t.Errorf("c: %+v", c)
	}
}

func TestParseDim(t *testing.T) {
	for in, want := range map[string]string{"560": "560", "N": "N", "T+4": "T+4", "T - 2": "T-2", " x_1 ": "x_1"} {
		d, err := ParseDim(in)
		if err != nil || d.String() != want {
			t.Errorf("ParseDim(%q) = %v, %v", in, d, err)
		}
	}
	for _, bad := range []string{"-1", "", "3T", "T*2", "T+", "N+99999999999"} {
		if _, err := ParseDim(bad); err == nil {
			t.Errorf("ParseDim(%q) accepted", bad)
		}
	}
}
