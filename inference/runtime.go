package inference

import (
	"errors"
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

// ErrAPIVersion is returned by Runtime.Start when the library is too old.
var ErrAPIVersion = errors.New("ONNX Runtime library too old")

// Runtime is the process's one ONNX Runtime environment. Create it in main
// and pass it down; onnxruntime_go keeps the environment in package state, so
// a second Runtime cannot be started while one is open.
type Runtime struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	started bool
	path    string
	how     string
	version string
}

// NewRuntime returns an unstarted runtime. It does no I/O.
func NewRuntime(cfg Config, log *slog.Logger) *Runtime {
	return &Runtime{cfg: cfg, log: log}
}

// Start loads the shared library, checks its API version and creates the
// ORT environment. The error names the library path and the version found.
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
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		// onnxruntime_go fails to get the API struct when the library's API
		// is older than it needs; say which library and version that was.
		v := ort.GetVersion()
		if v != "" && !apiAtLeast(v, MinAPIVersion) {
			return fmt.Errorf("%w: %s (%s) is ONNX Runtime %s, API %d or newer (ONNX Runtime 1.%d+) is needed: %v", ErrAPIVersion, path, how, v, MinAPIVersion, MinAPIVersion, err)
		}
		return fmt.Errorf("load ONNX Runtime from %s (%s): %w", path, how, err)
	}
	r.started, r.path, r.how, r.version = true, path, how, ort.GetVersion()
	r.log.Info("onnx runtime loaded", "path", path, "chosen_by", how, "version", r.version)
	return nil
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

// Close destroys the ORT environment and unloads the library. Nil-safe and
// idempotent.
func (r *Runtime) Close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return nil
	}
	r.started = false
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("close ONNX Runtime: %w", err)
	}
	return nil
}
