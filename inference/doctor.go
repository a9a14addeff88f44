package inference

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/zhiyin/zhiyin/internal/doctor"
)

// DoctorChecks checks what inference needs, for `zhiyin doctor`: the ONNX
// Runtime library (loads, its version and path), the CUDA provider and GPUs
// (optional unless inference.provider is cuda), and every preloaded or
// installed model (present, every file's sha256, graph against contract).
// It loads the library when no runtime is open in the process, and reads
// every model file; ctx stops it between models.
func DoctorChecks(ctx context.Context, cfg Config, dirs []string) []doctor.Check {
	var checks []doctor.Check
	libPath := ""
	rtCheck := doctor.Check{Name: "ONNX Runtime"}
	if ort.IsInitialized() {
		// A runtime is open in this process (the daemon checking itself).
		path, how, err := ResolveLibrary(cfg)
		rtCheck.OK, libPath = err == nil, path
		rtCheck.Detail = fmt.Sprintf("%s (%s, %s)", ort.GetVersion(), path, how)
	} else {
		rt := NewRuntime(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err := rt.Start(); err != nil {
			rtCheck.Detail = err.Error()
			rtCheck.Fix = "run scripts/fetch-deps.sh in a source tree, reinstall the zhiyin package (it ships " + SystemLibDir + "/" + libraryName + "), or set inference.ort_library"
			if errors.Is(err, ErrAPIVersion) {
				rtCheck.Fix = "use ONNX Runtime 1.24 or newer: remove inference.ort_library / $" + EnvORTLibrary + " to use the packaged library"
			}
		} else {
			libPath = rt.LibraryPath()
			rtCheck.OK = true
			rtCheck.Detail = fmt.Sprintf("%s (%s, %s)", rt.Version(), rt.LibraryPath(), rt.how)
			_ = rt.Close()
		}
	}
	checks = append(checks, rtCheck)
	checks = append(checks, cudaCheck(cfg, libPath))
	checks = append(checks, modelChecks(ctx, cfg, dirs)...)
	return checks
}

// wantsCUDA reports whether the configuration requires CUDA somewhere.
func wantsCUDA(cfg Config) bool {
	if cfg.Provider == "cuda" {
		return true
	}
	for _, m := range cfg.Models {
		if m.Provider == "cuda" {
			return true
		}
	}
	return false
}

func cudaCheck(cfg Config, libPath string) doctor.Check {
	c := doctor.Check{Name: "CUDA", Optional: !wantsCUDA(cfg)}
	if libPath == "" {
		c.Detail = "not checked: ONNX Runtime did not load"
		c.Fix = "fix the ONNX Runtime check first"
		return c
	}
	st := probeCUDA(libPath, cfg.CUDA.DeviceID)
	if !st.Usable {
		c.Detail = st.Reason + ": " + st.Detail
		if cfg.Provider == "auto" {
			c.Detail += " (models run on the CPU)"
		}
		c.Fix = cudaFix
		return c
	}
	var gpus []string
	for _, g := range st.GPUs {
		gpus = append(gpus, fmt.Sprintf("%d: %s, %.1f GiB (%.1f GiB used)", g.Index, g.Name, float64(g.MemoryTotal)/(1<<30), float64(g.MemoryUsed)/(1<<30)))
	}
	c.OK = true
	c.Detail = st.Detail
	if st.DriverVersion != "" {
		c.Detail += ", driver " + st.DriverVersion
	}
	if len(gpus) > 0 {
		c.Detail += "; " + strings.Join(gpus, "; ")
	}
	if cfg.Provider == "cpu" {
		c.Detail += " (inference.provider is cpu: not used)"
	}
	return c
}

// modelChecks checks every preloaded or required model and every other
// installed one.
func modelChecks(ctx context.Context, cfg Config, dirs []string) []doctor.Check {
	var checks []doctor.Check
	var wanted []string
	for _, n := range append(append([]string(nil), cfg.Required...), cfg.Preload...) {
		if !slices.Contains(wanted, n) {
			wanted = append(wanted, n)
		}
	}
	seen := map[string]bool{}
	for _, n := range wanted {
		if ctx.Err() != nil {
			return checks
		}
		required := slices.Contains(cfg.Required, n)
		dir := cfg.Models[n].Dir
		var err error
		if dir == "" {
			dir, err = FindModel(dirs, n, SlotServing)
		}
		seen[n] = true
		c := doctor.Check{Name: "model " + n, Optional: !required}
		if err != nil {
			c.Detail = "not installed: looked in " + strings.Join(dirs, ", ")
			c.Fix = "copy the " + n + " model folder (with its model.yaml) to " + firstOr(dirs, "/var/lib/zhiyin/models") + "/" + n + " or run `zhiyin models install SRC`"
			if n == VADModel {
				c.Fix += "; in a source tree run scripts/fetch-deps.sh"
			}
			if !required {
				c.Detail += " (optional: the daemon runs without it)"
			}
			checks = append(checks, c)
			continue
		}
		checks = append(checks, modelCheck(c, dir))
	}
	for _, im := range ListInstalled(dirs) {
		if ctx.Err() != nil {
			return checks
		}
		if im.Hidden || (im.Slot == SlotServing && seen[im.Name]) {
			continue
		}
		name := "model " + im.Name
		if im.Slot != SlotServing {
			name += " (" + im.Slot + ")"
		}
		checks = append(checks, modelCheck(doctor.Check{Name: name, Optional: true}, im.Dir))
	}
	return checks
}

func modelCheck(c doctor.Check, dir string) doctor.Check {
	m, err := CheckModel(dir)
	if err != nil {
		c.Detail = err.Error()
		switch {
		case errors.Is(err, ErrChecksum), errors.Is(err, ErrMissingFile):
			c.Fix = "copy the model folder again from its source (or `zhiyin models install SRC --replace`), then run `zhiyin models verify`"
		case errors.Is(err, ErrContract):
			c.Fix = "the ONNX file is not the model its model.yaml describes: install the matching release"
		default:
			c.Fix = "fix or replace " + dir + "/" + ManifestFile
		}
		return c
	}
	c.OK = true
	c.Detail = fmt.Sprintf("%s %s (%s): %d file(s) sha256 ok, contract ok", m.Name, m.Version, dir, len(m.Files))
	return c
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}
