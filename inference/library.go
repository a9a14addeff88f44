package inference

import (
	"fmt"
	"os"
	"path/filepath"
)

// EnvORTLibrary names the environment variable that overrides where the ONNX
// Runtime shared library is loaded from.
const EnvORTLibrary = "ZHIYIN_ORT_LIB"

// SystemLibDir is where the packages install the ONNX Runtime library.
const SystemLibDir = "/usr/lib/zhiyin"

// libraryName is the file name the library is installed under.
const libraryName = "libonnxruntime.so.1"

// CUDALibDir is where the optional zhiyin-cuda add-on installs the CUDA
// build of ONNX Runtime (core library plus CUDA provider libraries).
const CUDALibDir = SystemLibDir + "/cuda"

// ResolveLibrary returns the ONNX Runtime library path to load and how it was
// chosen: the configured path, else $ZHIYIN_ORT_LIB, else the installed
// library, else the project's fetched copy (third_party/ next to the
// binary's bin/ folder or in the working directory). Unless the provider is
// cpu, the CUDA build is preferred where it is installed
// (/usr/lib/zhiyin/cuda, third_party/onnxruntime-cuda): a model falls back
// to the CPU when the GPU is not usable. It checks only that the file exists.
func ResolveLibrary(cfg Config) (path, how string, err error) {
	if cfg.ORTLibrary != "" {
		return existing(cfg.ORTLibrary, "inference.ort_library")
	}
	if p := os.Getenv(EnvORTLibrary); p != "" {
		return existing(p, "$"+EnvORTLibrary)
	}
	type cand struct{ path, how string }
	var candidates []cand
	add := func(system, fetched, how string) {
		candidates = append(candidates, cand{filepath.Join(system, libraryName), system})
		for _, d := range fetchedDirs(fetched) {
			candidates = append(candidates, cand{filepath.Join(d, libraryName), how})
		}
	}
	if cfg.Provider != "cpu" {
		add(CUDALibDir, "onnxruntime-cuda", "fetched CUDA copy")
	}
	add(SystemLibDir, "onnxruntime", "fetched copy")
	var tried []string
	for _, c := range candidates {
		if st, err := os.Stat(c.path); err == nil && !st.IsDir() {
			abs, _ := filepath.Abs(c.path)
			return abs, c.how, nil
		}
		tried = append(tried, c.path)
	}
	return "", "", fmt.Errorf("%w: tried %v; install the zhiyin package (it ships %s), run scripts/fetch-deps.sh in a source tree, or set inference.ort_library", ErrNoLibrary, tried, filepath.Join(SystemLibDir, libraryName))
}

// fetchedDirs returns where scripts/fetch-deps.sh puts third_party/sub in a
// source tree: next to the binary's bin/ folder, then under the working
// directory. It does no I/O beyond looking up the executable's path.
func fetchedDirs(sub string) []string {
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			dirs = append(dirs, filepath.Join(filepath.Dir(exe), "..", "third_party", sub))
		}
	}
	return append(dirs, filepath.Join("third_party", sub))
}

func existing(p, how string) (string, string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", "", fmt.Errorf("%w: %s is %s, which cannot be used: %v", ErrNoLibrary, how, p, err)
	}
	if st.IsDir() {
		return "", "", fmt.Errorf("%w: %s is %s, a directory; name the file %s inside it", ErrNoLibrary, how, p, libraryName)
	}
	abs, _ := filepath.Abs(p)
	return abs, how, nil
}
