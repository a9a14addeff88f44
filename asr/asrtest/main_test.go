package asrtest_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/zhiyin/zhiyin/asr/asrtest"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/inferencetest"
	"github.com/zhiyin/zhiyin/models"
)

// The process's one ONNX Runtime.
var (
	testRT    *inference.Runtime
	testRTErr error
)

func TestMain(m *testing.M) {
	testRT, testRTErr = inferencetest.Start("../..")
	os.Exit(inferencetest.Run(m, testRT))
}

// committedDir is where scripts/gen-test-models writes the folders.
const committedDir = "../../models/testdata/asr"

// sharedData is the project's shared test data (speech clips, reference
// features).
const sharedData = "../../../shared/data"

// generated computes All() once for the whole test binary.
var generated = sync.OnceValue(asrtest.All)

func folder(tb testing.TB, name string) asrtest.Folder {
	tb.Helper()
	for _, f := range generated() {
		if f.Name == name {
			return f
		}
	}
	tb.Fatalf("no folder %s", name)
	return asrtest.Folder{}
}

// catalog returns models/catalog.yaml parsed.
func catalog(tb testing.TB) *inference.Catalog {
	tb.Helper()
	cat, err := inference.ParseCatalog(models.Catalog())
	if err != nil {
		tb.Fatal(err)
	}
	return cat
}

// install writes f into a temporary folder and installs it into a
// temporary store with the real catalog.
func install(tb testing.TB, f asrtest.Folder) *inference.Installed {
	tb.Helper()
	tmp := tb.TempDir()
	src, err := asrtest.Write(filepath.Join(tmp, "src"), f)
	if err != nil {
		tb.Fatal(err)
	}
	inst, err := inference.NewStore(filepath.Join(tmp, "store"), catalog(tb)).Install(context.Background(), src, inference.InstallOptions{})
	if err != nil {
		tb.Fatalf("install %s: %v", f.Name, err)
	}
	return inst
}

// load installs f and loads it on the CPU (warmed up), closing it with the
// test; it skips without ONNX Runtime.
func load(tb testing.TB, f asrtest.Folder) *inference.Model {
	tb.Helper()
	rt := needRT(tb)
	inst := install(tb, f)
	m, err := rt.Load(context.Background(), inst.Manifest, inference.LoadOptions{Provider: "cpu", Concurrency: 1})
	if err != nil {
		tb.Fatalf("load %s: %v", f.Name, err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Error(err)
		}
	})
	return m
}

// needRT returns the runtime, or skips the test without ONNX Runtime.
func needRT(tb testing.TB) *inference.Runtime {
	tb.Helper()
	return inferencetest.Need(tb, testRT, testRTErr)
}
