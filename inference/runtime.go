package inference

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// MinAPIVersion is the oldest ONNX Runtime C API onnxruntime_go v1.27.0
// works with (ORT 1.24).
const MinAPIVersion = 24

// Log attribute keys.
const (
	logKeyModel    = "model"
	logKeyVersion  = "version"
	logKeyEP       = "ep"
	logKeyReason   = "reason"
	logKeyDetail   = "detail"
	logKeyDuration = "duration"
	logKeyErr      = "err"
	logKeyPath     = "path"
	logKeyProvider = "provider"
)

// Runtime is the process's one ONNX Runtime environment. Create it in main
// and pass it down; onnxruntime_go keeps the environment in package state, so
// a second Runtime cannot be started while one is open. Safe for concurrent
// use.
type Runtime struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	started bool
	path    string
	how     string
	version string
	cuda    *CUDAStatus // probed on first use
	nvml    *nvml       // opened on first use when present; nil otherwise
	nvmlErr error
	// probe replaces probeCUDA in tests.
	probe func(ortLib string, deviceID int) CUDAStatus
	// envMu serialises changes of ORT's environment-wide log level (raised
	// while the CUDA provider is tried, so that its failure is reported
	// once, by us).
	envMu sync.Mutex
}

// NewRuntime returns an unstarted runtime. It does no I/O.
func NewRuntime(cfg Config, log *slog.Logger) *Runtime {
	return &Runtime{cfg: cfg, log: log}
}

// Start loads the shared library, checks its API version and creates the
// ORT environment. The error names the library path and the version found.
// Calling Start on a started runtime does nothing.
func (r *Runtime) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return nil
	}
	path, how, err := ResolveLibrary(r.cfg)
	if err != nil {
		return err
	}
	if ort.IsInitialized() {
		return fmt.Errorf("start ONNX Runtime: another runtime is already open in this process")
	}
	ort.SetSharedLibraryPath(path)
	level, ok := ortLogLevels[r.cfg.ORTLogLevel]
	if !ok {
		level = ort.LoggingLevelFatal
	}
	if err := ort.InitializeEnvironment(ortLogOption(level)); err != nil {
		// onnxruntime_go fails to get the API struct when the library's API
		// is older than it needs; say which library and version that was.
		v := ort.GetVersion()
		if v != "" && !apiAtLeast(v, MinAPIVersion) {
			return fmt.Errorf("%w: %s (%s) is ONNX Runtime %s, API %d or newer (ONNX Runtime 1.%d+) is needed: %v", ErrAPIVersion, path, how, v, MinAPIVersion, MinAPIVersion, err)
		}
		return fmt.Errorf("load ONNX Runtime from %s (%s): %w", path, how, err)
	}
	_ = ort.DisableTelemetry()
	r.started, r.path, r.how, r.version = true, path, how, ort.GetVersion()
	r.log.Info("onnx runtime loaded", logKeyPath, path, "chosen_by", how, logKeyVersion, r.version)
	return nil
}

// ortLogLevels maps inference.ort_log_level to ORT's levels.
var ortLogLevels = map[string]ort.LoggingLevel{
	"verbose": ort.LoggingLevelVerbose, "info": ort.LoggingLevelInfo, "warning": ort.LoggingLevelWarning,
	"error": ort.LoggingLevelError, "fatal": ort.LoggingLevelFatal,
}

func ortLogOption(l ort.LoggingLevel) ort.EnvironmentOption {
	switch l {
	case ort.LoggingLevelVerbose:
		return ort.WithLogLevelVerbose()
	case ort.LoggingLevelInfo:
		return ort.WithLogLevelInfo()
	case ort.LoggingLevelWarning:
		return ort.WithLogLevelWarning()
	case ort.LoggingLevelError:
		return ort.WithLogLevelError()
	}
	return ort.WithLogLevelFatal()
}

func (r *Runtime) logLevel() ort.LoggingLevel {
	if l, ok := ortLogLevels[r.cfg.ORTLogLevel]; ok {
		return l
	}
	return ort.LoggingLevelFatal
}

// apiAtLeast reports whether an ORT version string "1.24.1" has API >= min
// (ORT 1.N implements API N).
func apiAtLeast(version string, min int) bool {
	parts := strings.Split(version, ".")
	if len(parts) < 2 {
		return false
	}
	minor, err := strconv.Atoi(parts[1])
	return err == nil && parts[0] == "1" && minor >= min
}

// LibraryPath returns the loaded library's path ("" before Start).
func (r *Runtime) LibraryPath() string { r.mu.Lock(); defer r.mu.Unlock(); return r.path }

// Version returns the loaded library's version ("" before Start).
func (r *Runtime) Version() string { r.mu.Lock(); defer r.mu.Unlock(); return r.version }

// Config returns the configuration the runtime was created with.
func (r *Runtime) Config() Config { return r.cfg }

// CUDA reports whether the CUDA provider is usable with the loaded library
// (probed once: provider library, driver, device). Before Start it reports
// not usable.
func (r *Runtime) CUDA() CUDAStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cudaLocked()
}

func (r *Runtime) cudaLocked() CUDAStatus {
	if !r.started {
		return CUDAStatus{Reason: FallbackNoProviderLibrary, Detail: "ONNX Runtime is not loaded"}
	}
	if r.cuda == nil {
		probe := probeCUDA
		if r.probe != nil {
			probe = r.probe
		}
		st := probe(r.path, r.cfg.CUDA.DeviceID)
		r.cuda = &st
	}
	return *r.cuda
}

// gpuUsed returns the memory used on the configured GPU, via NVML.
func (r *Runtime) gpuUsed() (uint64, bool) {
	r.mu.Lock()
	if r.nvml == nil && r.nvmlErr == nil {
		r.nvml, r.nvmlErr = openNVML()
	}
	n := r.nvml
	r.mu.Unlock()
	return n.usedMemory(r.cfg.CUDA.DeviceID)
}

// GPUs lists the GPUs NVML sees, or the reason none can be listed.
func (r *Runtime) GPUs() ([]GPU, error) {
	r.mu.Lock()
	if r.nvml == nil && r.nvmlErr == nil {
		r.nvml, r.nvmlErr = openNVML()
	}
	n, err := r.nvml, r.nvmlErr
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return n.gpus()
}

// Close destroys the ORT environment and unloads the library. Every model
// must be closed first. Nil-safe and idempotent.
func (r *Runtime) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nvml.close()
	r.nvml, r.nvmlErr = nil, nil
	if !r.started {
		return nil
	}
	r.started = false
	r.cuda = nil
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("close ONNX Runtime: %w", err)
	}
	return nil
}

// sessionOptions builds the options for one model. provider is cpu, cuda or
// auto; ep is what was configured ("cpu" or "cuda"); when CUDA was wanted but
// cannot be used, reason and detail say why.
func (r *Runtime) sessionOptions(provider string) (so *ort.SessionOptions, ep, reason, detail string, err error) {
	so, err = r.cpuOptions()
	if err != nil {
		return nil, "", "", "", err
	}
	if provider == "cpu" {
		return so, "cpu", "", "", nil
	}
	r.mu.Lock()
	st := r.cudaLocked()
	r.mu.Unlock()
	if !st.Usable {
		return so, "cpu", st.Reason, st.Detail, nil
	}
	co, err := ort.NewCUDAProviderOptions()
	if err == nil {
		r.envMu.Lock()
		_ = ort.SetEnvironmentLogLevel(ort.LoggingLevelFatal)
		if err = co.Update(cudaOptions(r.cfg.CUDA)); err == nil {
			err = so.AppendExecutionProviderCUDA(co)
		}
		_ = ort.SetEnvironmentLogLevel(r.logLevel())
		r.envMu.Unlock()
		_ = co.Destroy()
	}
	if err != nil {
		// The options may hold a half-appended provider: start again.
		_ = so.Destroy()
		so, cerr := r.cpuOptions()
		if cerr != nil {
			return nil, "", "", "", cerr
		}
		return so, "cpu", FallbackProviderError, err.Error(), nil
	}
	return so, "cuda", "", "", nil
}

func (r *Runtime) cpuOptions() (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	c := r.cfg.CPU
	spin := "0"
	if c.Spinning {
		spin = "1"
	}
	steps := []func() error{
		func() error { return so.SetCpuMemArena(c.Arena) },
		func() error { return so.AddSessionConfigEntry("session.intra_op.allow_spinning", spin) },
		func() error { return so.AddSessionConfigEntry("session.inter_op.allow_spinning", spin) },
	}
	if c.IntraOpThreads > 0 {
		steps = append(steps, func() error { return so.SetIntraOpNumThreads(c.IntraOpThreads) })
	}
	if c.InterOpThreads > 0 {
		steps = append(steps, func() error { return so.SetInterOpNumThreads(c.InterOpThreads) })
	}
	for _, s := range steps {
		if err := s(); err != nil {
			_ = so.Destroy()
			return nil, fmt.Errorf("session options: %w", err)
		}
	}
	return so, nil
}
