package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/internal/buildinfo"
)

type versionInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit"`
	BuildDate  string `json:"build_date"`
	GoVersion  string `json:"go_version"`
	ORTVersion string `json:"onnxruntime_version,omitempty"`
	ORTLibrary string `json:"onnxruntime_library,omitempty"`
	ORTError   string `json:"onnxruntime_error,omitempty"`
}

func runVersion(_ context.Context, cio cmdIO, args []string) error {
	fs := newFlagSet("version", cio.stderr)
	asJSON := fs.Bool("json", false, "print one JSON object")
	configPath := fs.String("config", "", "configuration file (for inference.ort_library)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	vi := versionInfo{Version: buildinfo.Version, Commit: buildinfo.Commit, BuildDate: buildinfo.Date, GoVersion: buildinfo.GoVersion()}
	icfg := inference.DefaultConfig()
	if lc, err := loadConfig(*configPath); err == nil {
		icfg = lc.Inference
	}
	rt := inference.NewRuntime(icfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := rt.Start(); err != nil {
		vi.ORTError = err.Error()
	} else {
		vi.ORTVersion, vi.ORTLibrary = rt.Version(), rt.LibraryPath()
		_ = rt.Close()
	}
	if *asJSON {
		enc := json.NewEncoder(cio.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(vi)
	}
	fmt.Fprintf(cio.stdout, "zhiyin %s (commit %s, built %s)\n", vi.Version, vi.Commit, vi.BuildDate)
	fmt.Fprintf(cio.stdout, "go %s\n", vi.GoVersion)
	if vi.ORTError != "" {
		fmt.Fprintf(cio.stdout, "onnxruntime: not loaded: %s\n", vi.ORTError)
	} else {
		fmt.Fprintf(cio.stdout, "onnxruntime %s (%s)\n", vi.ORTVersion, vi.ORTLibrary)
	}
	return nil
}
