package inference

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zhiyin/zhiyin/internal/doctor"
)

func findCheck(checks []doctor.Check, name string) (doctor.Check, bool) {
	for _, c := range checks {
		if c.Name == name {
			return c, true
		}
	}
	return doctor.Check{}, false
}

func TestDoctorChecks(t *testing.T) {
	rt := needRT(t)
	store := t.TempDir()
	// A corrupt optional model and a good one.
	bad := filepath.Join(store, "int8")
	copyTree(context.Background(), filepath.Join(testdataDir, "int8"), bad)
	os.WriteFile(filepath.Join(bad, "model.onnx"), []byte("corrupt"), 0o644)
	cfg := DefaultConfig()
	cfg.Preload = []string{VADModel, "classifier"}
	dirs := []string{store, testdataDir}
	checks := DoctorChecks(context.Background(), cfg, dirs)

	ortc, _ := findCheck(checks, "ONNX Runtime")
	if !ortc.OK || !strings.Contains(ortc.Detail, rt.Version()) || !strings.Contains(ortc.Detail, rt.LibraryPath()) {
		t.Errorf("ONNX Runtime check %+v", ortc)
	}
	cuda, _ := findCheck(checks, "CUDA")
	if !rt.CUDA().Usable && (cuda.OK || !cuda.Optional || !strings.Contains(cuda.Detail, FallbackNoProviderLibrary) || cuda.Fix == "") {
		t.Errorf("CUDA check %+v", cuda)
	}
	vad, _ := findCheck(checks, "model silero-vad")
	if vad.OK || !vad.Optional || !strings.Contains(vad.Fix, "fetch-deps") {
		t.Errorf("absent VAD check %+v", vad)
	}
	if c, _ := findCheck(checks, "model classifier"); !c.OK || !strings.Contains(c.Detail, "sha256 ok") {
		t.Errorf("classifier check %+v", c)
	}
	c, _ := findCheck(checks, "model int8")
	want := testManifest(t, "int8").Files[0].SHA256
	if c.OK || !strings.Contains(c.Detail, filepath.Join(bad, "model.onnx")) || !strings.Contains(c.Detail, want) || c.Fix == "" {
		t.Errorf("corrupt model check %+v", c)
	}
	if doctor.Print(&strings.Builder{}, checks) {
		t.Error("optional failures failed the doctor run")
	}

	cfg.Provider = "cuda"
	cfg.Required = []string{VADModel}
	checks = DoctorChecks(context.Background(), cfg, dirs)
	if c, _ := findCheck(checks, "CUDA"); !rt.CUDA().Usable && (c.OK || c.Optional) {
		t.Errorf("CUDA check with provider cuda %+v", c)
	}
	if c, _ := findCheck(checks, "model silero-vad"); c.Optional {
		t.Errorf("required VAD check %+v", c)
	}
	if !doctor.Print(&strings.Builder{}, checks) {
		t.Error("required failures did not fail the doctor run")
	}
}
