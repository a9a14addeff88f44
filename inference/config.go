package inference

import (
	"path/filepath"
	"regexp"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

// Config is the `inference:` section.
type Config struct {
	// ORTLibrary is the path of libonnxruntime.so. Empty means: the
	// environment variable ZHIYIN_ORT_LIB, else /usr/lib/zhiyin, else the
	// project's fetched copy in third_party/onnxruntime (third_party/
	// onnxruntime-cuda first when the provider is not cpu).
	ORTLibrary string `yaml:"ort_library"`
	// Provider is cpu, cuda or auto (CUDA when it is usable, else CPU).
	// With cuda or auto, a model falls back to the CPU when CUDA is not
	// usable; with cuda that also makes `zhiyin doctor` fail.
	Provider string `yaml:"provider"`
	// ORTLogLevel is what ONNX Runtime itself writes to stderr: verbose,
	// info, warning, error or fatal (the default: its errors reach zhiyin's
	// log anyway, through the errors it returns; raise it when debugging).
	ORTLogLevel string     `yaml:"ort_log_level"`
	CPU         CPUConfig  `yaml:"cpu"`
	CUDA        CUDAConfig `yaml:"cuda"`
	// ModelDirs are searched for model folders (DIR/NAME/model.yaml) before
	// the default ones: <data_dir>/models, /usr/share/zhiyin/models and, in
	// a source tree, third_party/models.
	ModelDirs []string `yaml:"model_dirs"`
	// Preload lists the models loaded and warmed at start; readiness waits
	// for them. A preloaded model that is not installed does not stop the
	// daemon unless it is also Required: its readiness entry is ready and
	// says how to install it, and `zhiyin doctor` shows ✗.
	Preload []string `yaml:"preload"`
	// Required lists models whose absence or failure to load makes start
	// fail. Required models are preloaded.
	Required []string `yaml:"required"`
	// Concurrency is how many runs of one model may execute at once
	// (requests beyond wait). 0 means one per CPU for unbatched models and
	// 1 for batched ones: ONNX Runtime already spreads one run over the
	// cores, and the next batch forms while it runs.
	Concurrency int `yaml:"concurrency"`
	// IdleUnload unloads a model not used for this long, releasing its
	// memory; it is loaded again (with warm-up) by the next request. 0
	// keeps models loaded.
	IdleUnload time.Duration `yaml:"idle_unload"`
	// Batching is the micro-batching default for models whose contract
	// declares a batch dimension.
	Batching BatchConfig `yaml:"batching"`
	// Shadow configures shadow evaluation of candidate model versions.
	Shadow ShadowConfig `yaml:"shadow"`
	// Models holds per-model settings, by model name.
	Models map[string]ModelConfig `yaml:"models"`
}

// CPUConfig configures the CPU execution provider.
type CPUConfig struct {
	// IntraOpThreads is the threads one run may use; 0 lets ONNX Runtime
	// choose (one per physical core).
	IntraOpThreads int `yaml:"intra_op_threads"`
	// InterOpThreads is the threads running independent graph nodes in
	// parallel; 0 lets ONNX Runtime choose.
	InterOpThreads int `yaml:"inter_op_threads"`
	// Arena keeps freed CPU memory in ONNX Runtime's arena for reuse
	// (faster, but memory is returned to the system only on unload).
	Arena bool `yaml:"arena"`
	// Spinning lets idle ONNX Runtime threads spin waiting for work: lower
	// latency, but they burn CPU that other models and requests could use.
	Spinning bool `yaml:"spinning"`
}

// CUDAConfig configures the CUDA execution provider.
type CUDAConfig struct {
	// DeviceID is the GPU to run on (as numbered by CUDA).
	DeviceID int `yaml:"device_id"`
	// MemoryLimit caps the CUDA memory arena of each session; 0 means no
	// limit.
	MemoryLimit config.ByteSize `yaml:"memory_limit"`
	// ArenaExtendStrategy is next_power_of_two (fewer, larger allocations)
	// or same_as_requested (less waste with varying shapes; the default).
	ArenaExtendStrategy string `yaml:"arena_extend_strategy"`
	// CuDNNConvAlgoSearch is exhaustive (best kernels, slow first run per
	// shape), heuristic (the default) or default.
	CuDNNConvAlgoSearch string `yaml:"cudnn_conv_algo_search"`
	// CopyInDefaultStream copies between host and device on the default
	// CUDA stream (ONNX Runtime's default, true).
	CopyInDefaultStream bool `yaml:"copy_in_default_stream"`
}

// BatchConfig configures dynamic micro-batching.
type BatchConfig struct {
	// Mode is auto (batch models whose contract has a batch dimension and
	// that are not stateful), on (required; a model that cannot be batched
	// fails to load) or off.
	Mode string `yaml:"mode"`
	// MaxBatch is the most requests merged into one run.
	MaxBatch int `yaml:"max_batch"`
	// MaxWait is how long the first request of a batch waits for others
	// when a run slot is free; 0 batches only what is already queued.
	MaxWait time.Duration `yaml:"max_wait"`
	// QueueSize bounds the requests waiting for a batch; when it is full,
	// Run fails at once with ErrOverloaded.
	QueueSize int `yaml:"queue_size"`
	// LengthRatio buckets requests by length: requests share a batch only
	// when, for every dynamic dimension other than the batch one (the
	// frames of an utterance), the longest is at most this many times the
	// shortest, so that a 2 s utterance is not padded to 20 s. 0 batches
	// any lengths together.
	LengthRatio float64 `yaml:"length_ratio"`
}

// ShadowConfig configures shadow evaluation.
type ShadowConfig struct {
	// Fraction of live requests mirrored to the candidate, in (0, 1].
	Fraction float64 `yaml:"fraction"`
	// Window is how long mirroring lasts once started; 0 means until the
	// candidate is promoted or the shadow stopped.
	Window time.Duration `yaml:"window"`
	// MaxInflight bounds the mirrored runs executing at once; a request
	// sampled while that many run is not mirrored (counted as skipped).
	MaxInflight int `yaml:"max_inflight"`
	// AutoStart begins shadowing at start for every model that has a
	// candidate version installed.
	AutoStart bool `yaml:"auto_start"`
}

// ModelConfig is one model's settings; zero fields inherit the section's.
type ModelConfig struct {
	// Dir is the model folder, overriding the search in the model dirs.
	Dir string `yaml:"dir"`
	// Provider overrides inference.provider for this model.
	Provider string `yaml:"provider"`
	// Concurrency overrides inference.concurrency.
	Concurrency int `yaml:"concurrency"`
	// IdleUnload overrides inference.idle_unload (0 inherits).
	IdleUnload time.Duration `yaml:"idle_unload"`
	// KeepLoaded never unloads the model when idle.
	KeepLoaded bool `yaml:"keep_loaded"`
	// Batching overrides inference.batching field by field (empty mode,
	// zero max_batch and queue_size inherit; max_wait inherits when absent).
	Batching ModelBatchConfig `yaml:"batching"`
}

// ModelBatchConfig is a per-model override of BatchConfig.
type ModelBatchConfig struct {
	Mode        string         `yaml:"mode"`
	MaxBatch    int            `yaml:"max_batch"`
	MaxWait     *time.Duration `yaml:"max_wait"`
	QueueSize   int            `yaml:"queue_size"`
	LengthRatio float64        `yaml:"length_ratio"`
}

// VADModel is the name of the Silero VAD model folder, preloaded by the
// built-in defaults.
const VADModel = "silero-vad"

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	return Config{
		Provider:    "auto",
		ORTLogLevel: "fatal",
		CPU:         CPUConfig{Arena: true},
		CUDA: CUDAConfig{
			ArenaExtendStrategy: "same_as_requested",
			CuDNNConvAlgoSearch: "heuristic",
			CopyInDefaultStream: true,
		},
		Preload:  []string{VADModel},
		Batching: BatchConfig{Mode: "auto", MaxBatch: 32, MaxWait: 2 * time.Millisecond, QueueSize: 256, LengthRatio: 1.5},
		Shadow:   ShadowConfig{Fraction: 0.1, Window: time.Hour, MaxInflight: 2},
	}
}

// modelNameRe is what a model (and its folder) may be called.
var modelNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

const maxThreads = 1024

// Validate implements config.Validatable.
func (c *Config) Validate(v *config.Validator) {
	validProvider(v, "provider", c.Provider, false)
	if _, ok := ortLogLevels[c.ORTLogLevel]; !ok {
		v.Errorf("ort_log_level", "must be verbose, info, warning, error or fatal, got %q", c.ORTLogLevel)
	}
	for i, d := range c.ModelDirs {
		if d == "" || !filepath.IsAbs(d) && filepath.Clean(d) != d {
			v.Errorf("model_dirs", "entry %d: use a non-empty clean path, got %q", i, d)
		}
	}
	for _, list := range []struct {
		field string
		names []string
	}{{"preload", c.Preload}, {"required", c.Required}} {
		seen := map[string]bool{}
		for _, n := range list.names {
			if !modelNameRe.MatchString(n) {
				v.Errorf(list.field, "%q is not a model name (lowercase letters, digits, - and _)", n)
			}
			if seen[n] {
				v.Errorf(list.field, "%q is listed twice", n)
			}
			seen[n] = true
		}
	}
	if c.Concurrency < 0 || c.Concurrency > maxThreads {
		v.Errorf("concurrency", "must be 0 (one per CPU) to %d, got %d", maxThreads, c.Concurrency)
	}
	if c.IdleUnload < 0 {
		v.Errorf("idle_unload", "must be 0 (never) or positive, got %s", c.IdleUnload)
	} else if c.IdleUnload > 0 && c.IdleUnload < time.Second {
		v.Errorf("idle_unload", "must be at least 1s, got %s", c.IdleUnload)
	}
	for name := range c.Models {
		if !modelNameRe.MatchString(name) {
			v.Errorf("models", "%q is not a model name (lowercase letters, digits, - and _)", name)
		}
	}
}

func validProvider(v *config.Validator, field, p string, allowEmpty bool) {
	switch p {
	case "cpu", "cuda", "auto":
	case "":
		if !allowEmpty {
			v.Errorf(field, "must be cpu, cuda or auto")
		}
	default:
		v.Errorf(field, "must be cpu, cuda or auto, got %q", p)
	}
}

// Validate implements config.Validatable.
func (c *CPUConfig) Validate(v *config.Validator) {
	if c.IntraOpThreads < 0 || c.IntraOpThreads > maxThreads {
		v.Errorf("intra_op_threads", "must be 0 (ONNX Runtime decides) to %d, got %d", maxThreads, c.IntraOpThreads)
	}
	if c.InterOpThreads < 0 || c.InterOpThreads > maxThreads {
		v.Errorf("inter_op_threads", "must be 0 (ONNX Runtime decides) to %d, got %d", maxThreads, c.InterOpThreads)
	}
}

// Validate implements config.Validatable.
func (c *CUDAConfig) Validate(v *config.Validator) {
	if c.DeviceID < 0 || c.DeviceID > 255 {
		v.Errorf("device_id", "must be 0 to 255, got %d", c.DeviceID)
	}
	if c.MemoryLimit < 0 {
		v.Errorf("memory_limit", "must be 0 (no limit) or a size such as 4GiB")
	} else if c.MemoryLimit > 0 && c.MemoryLimit < 16<<20 {
		v.Errorf("memory_limit", "%s is too small to run a model; use at least 16MiB or 0 for no limit", c.MemoryLimit)
	}
	switch c.ArenaExtendStrategy {
	case "next_power_of_two", "same_as_requested":
	default:
		v.Errorf("arena_extend_strategy", "must be next_power_of_two or same_as_requested, got %q", c.ArenaExtendStrategy)
	}
	switch c.CuDNNConvAlgoSearch {
	case "exhaustive", "heuristic", "default":
	default:
		v.Errorf("cudnn_conv_algo_search", "must be exhaustive, heuristic or default, got %q", c.CuDNNConvAlgoSearch)
	}
}

const (
	maxBatchLimit = 4096
	maxQueue      = 1 << 20
	maxWaitLimit  = time.Second
)

// Validate implements config.Validatable.
func (c *BatchConfig) Validate(v *config.Validator) {
	validBatchMode(v, c.Mode, false)
	if c.MaxBatch < 1 || c.MaxBatch > maxBatchLimit {
		v.Errorf("max_batch", "must be 1 to %d, got %d", maxBatchLimit, c.MaxBatch)
	}
	if c.MaxWait < 0 || c.MaxWait > maxWaitLimit {
		v.Errorf("max_wait", "must be 0 to %s, got %s", maxWaitLimit, c.MaxWait)
	}
	if c.QueueSize < 1 || c.QueueSize > maxQueue {
		v.Errorf("queue_size", "must be 1 to %d, got %d", maxQueue, c.QueueSize)
	}
	validLengthRatio(v, c.LengthRatio, "0 (no bucketing)")
}

func validLengthRatio(v *config.Validator, r float64, zero string) {
	if r != 0 && !(r >= 1 && r <= 1000) {
		v.Errorf("length_ratio", "must be %s or 1 to 1000, got %g", zero, r)
	}
}

func validBatchMode(v *config.Validator, m string, allowEmpty bool) {
	switch m {
	case "auto", "on", "off":
	case "":
		if !allowEmpty {
			v.Errorf("mode", "must be auto, on or off")
		}
	default:
		v.Errorf("mode", "must be auto, on or off, got %q", m)
	}
}

// Validate implements config.Validatable.
func (c *ShadowConfig) Validate(v *config.Validator) {
	if !(c.Fraction > 0 && c.Fraction <= 1) {
		v.Errorf("fraction", "must be more than 0 and at most 1, got %v", c.Fraction)
	}
	if c.Window < 0 {
		v.Errorf("window", "must be 0 (until promoted or stopped) or positive, got %s", c.Window)
	}
	if c.MaxInflight < 1 || c.MaxInflight > maxThreads {
		v.Errorf("max_inflight", "must be 1 to %d, got %d", maxThreads, c.MaxInflight)
	}
}

// Validate implements config.Validatable.
func (c *ModelConfig) Validate(v *config.Validator) {
	if c.Dir != "" && !filepath.IsAbs(c.Dir) && filepath.Clean(c.Dir) != c.Dir {
		v.Errorf("dir", "use a clean path, got %q", c.Dir)
	}
	validProvider(v, "provider", c.Provider, true)
	if c.Concurrency < 0 || c.Concurrency > maxThreads {
		v.Errorf("concurrency", "must be 0 (inherit) to %d, got %d", maxThreads, c.Concurrency)
	}
	if c.IdleUnload < 0 {
		v.Errorf("idle_unload", "must be 0 (inherit) or positive, got %s", c.IdleUnload)
	} else if c.IdleUnload > 0 && c.IdleUnload < time.Second {
		v.Errorf("idle_unload", "must be at least 1s, got %s", c.IdleUnload)
	}
	if c.KeepLoaded && c.IdleUnload > 0 {
		v.Errorf("keep_loaded", "cannot be set together with idle_unload")
	}
}

// Validate implements config.Validatable.
func (c *ModelBatchConfig) Validate(v *config.Validator) {
	validBatchMode(v, c.Mode, true)
	if c.MaxBatch < 0 || c.MaxBatch > maxBatchLimit {
		v.Errorf("max_batch", "must be 0 (inherit) to %d, got %d", maxBatchLimit, c.MaxBatch)
	}
	if c.MaxWait != nil && (*c.MaxWait < 0 || *c.MaxWait > maxWaitLimit) {
		v.Errorf("max_wait", "must be 0 to %s, got %s", maxWaitLimit, *c.MaxWait)
	}
	if c.QueueSize < 0 || c.QueueSize > maxQueue {
		v.Errorf("queue_size", "must be 0 (inherit) to %d, got %d", maxQueue, c.QueueSize)
	}
	validLengthRatio(v, c.LengthRatio, "0 (inherit)")
}

// modelSettings is a model's effective settings after inheritance.
type modelSettings struct {
	provider    string
	concurrency int
	idleUnload  time.Duration // 0: never
	batch       BatchConfig
	// batchModeSet and maxBatchSet say the model's own config chose them,
	// so the manifest's hints do not apply.
	batchModeSet, maxBatchSet bool
	dir                       string
}

// settingsFor resolves the effective settings of model name.
func (c *Config) settingsFor(name string, numCPU int) modelSettings {
	mc := c.Models[name]
	s := modelSettings{provider: c.Provider, concurrency: c.Concurrency, idleUnload: c.IdleUnload, batch: c.Batching, dir: mc.Dir}
	if mc.Provider != "" {
		s.provider = mc.Provider
	}
	if mc.Concurrency > 0 {
		s.concurrency = mc.Concurrency
	}
	if mc.IdleUnload > 0 {
		s.idleUnload = mc.IdleUnload
	}
	if mc.KeepLoaded {
		s.idleUnload = 0
	}
	if mc.Batching.Mode != "" {
		s.batch.Mode, s.batchModeSet = mc.Batching.Mode, true
	}
	if mc.Batching.MaxBatch > 0 {
		s.batch.MaxBatch, s.maxBatchSet = mc.Batching.MaxBatch, true
	}
	if mc.Batching.MaxWait != nil {
		s.batch.MaxWait = *mc.Batching.MaxWait
	}
	if mc.Batching.QueueSize > 0 {
		s.batch.QueueSize = mc.Batching.QueueSize
	}
	if mc.Batching.LengthRatio > 0 {
		s.batch.LengthRatio = mc.Batching.LengthRatio
	}
	return s
}
