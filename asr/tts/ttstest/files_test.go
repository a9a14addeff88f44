package ttstest_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/zhiyin/zhiyin/asr/tts/ttstest"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/models"
)

var update = flag.Bool("update", false, "rewrite the committed contract models in models/testdata/tts")

// committedDir holds the generated folders (go test ./asr/tts/ttstest
// -update writes them).
const committedDir = "../../../models/testdata/tts"

// The committed folders are what the generator writes, byte for byte, and
// small.
func TestCommittedModelsUpToDate(t *testing.T) {
	total := 0
	for _, f := range ttstest.All() {
		if *update {
			if _, err := ttstest.Write(committedDir, f); err != nil {
				t.Fatal(err)
			}
		}
		for _, file := range f.Files {
			got, err := os.ReadFile(filepath.Join(committedDir, f.Name, file.Name))
			if err != nil {
				t.Fatalf("%v (run go test ./asr/tts/ttstest -update)", err)
			}
			if !bytes.Equal(got, file.Data) {
				t.Errorf("%s/%s differs from the generator's output (run go test ./asr/tts/ttstest -update)", f.Name, file.Name)
			}
			if len(file.Data) > 5<<20 {
				t.Errorf("%s/%s is %d bytes (limit 5 MB)", f.Name, file.Name, len(file.Data))
			}
			total += len(file.Data)
		}
	}
	t.Logf("%d bytes in all", total)
	if total > 3<<20 {
		t.Errorf("the TTS contract models take %d bytes (aim: under 3 MB)", total)
	}
	if a, b := ttstest.All(), ttstest.All(); !equal(a, b) {
		t.Error("two generations differ")
	}
}

func equal(a, b []ttstest.Folder) bool {
	for i := range a {
		for j := range a[i].Files {
			if !bytes.Equal(a[i].Files[j].Data, b[i].Files[j].Data) {
				return false
			}
		}
	}
	return true
}

// `zhiyin models install` identifies every folder from the catalog and
// checks its graph against the contract (no ONNX Runtime needed).
func TestInstallFromCatalog(t *testing.T) {
	cat, err := inference.ParseCatalog(models.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ttstest.VITSAishell3Name: "vits-zh-aishell3", ttstest.MatchaBakerName: "matcha-zh-baker", ttstest.VocosName: "vocos-22khz"}
	tmp := t.TempDir()
	st := inference.NewStore(filepath.Join(tmp, "store"), cat)
	for _, f := range ttstest.All() {
		src, err := ttstest.Write(filepath.Join(tmp, "src"), f)
		if err != nil {
			t.Fatal(err)
		}
		inst, err := st.Install(context.Background(), src, inference.InstallOptions{})
		if err != nil {
			t.Fatalf("install %s: %v", f.Name, err)
		}
		if inst.Manifest.Name != want[f.Name] || !inst.Generated {
			t.Errorf("%s installed as %s (generated %v), want %s", f.Name, inst.Manifest.Name, inst.Generated, want[f.Name])
		}
		if _, err := inference.CheckModel(inst.Dir); err != nil {
			t.Errorf("check %s: %v", f.Name, err)
		}
	}
}
