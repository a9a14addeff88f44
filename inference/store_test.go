package inference

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zhiyin/zhiyin/models"
)

// tarOf builds a tar archive of the files under dir, prefixed with prefix.
func tarOf(t *testing.T, dir, prefix string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, _ := os.ReadFile(p)
		if err := tw.WriteHeader(&tar.Header{Name: prefix + rel, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// storeEntries lists what is in a store folder (links and .store).
func storeEntries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sub, _ := os.ReadDir(filepath.Join(dir, storeSubdir))
	for _, e := range sub {
		out = append(out, storeSubdir+"/"+e.Name())
	}
	return out
}

func TestInstallSources(t *testing.T) {
	src := filepath.Join(testdataDir, "classifier")
	tarball := filepath.Join(t.TempDir(), "classifier.tar.gz")
	os.WriteFile(tarball, gz(tarOf(t, src, "classifier/")), 0o644)
	plainTar := filepath.Join(t.TempDir(), "classifier.tar")
	os.WriteFile(plainTar, tarOf(t, src, ""), 0o644)
	sources := map[string]string{"folder": src, "tar.gz": tarball, "tar": plainTar}
	if bz, err := exec.LookPath("bzip2"); err == nil {
		p := filepath.Join(t.TempDir(), "classifier.tar")
		os.WriteFile(p, tarOf(t, src, "./classifier/"), 0o644)
		if out, err := exec.Command(bz, "-k", p).CombinedOutput(); err != nil {
			t.Fatalf("bzip2: %v %s", err, out)
		}
		sources["tar.bz2"] = p + ".bz2"
	} else {
		t.Log("bzip2 not installed: .tar.bz2 not tested")
	}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := NewStore(dir, nil)
			got, err := s.Install(context.Background(), src, InstallOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Slot != SlotServing || got.Manifest.Name != "classifier" || got.Generated {
				t.Errorf("installed %+v", got)
			}
			if _, err := CheckModel(filepath.Join(dir, "classifier")); err != nil {
				t.Fatal(err)
			}
			// Installing again is refused without --replace or --candidate.
			if _, err := s.Install(context.Background(), src, InstallOptions{}); !errors.Is(err, ErrInstall) || !strings.Contains(err.Error(), "--candidate") {
				t.Fatalf("second install: %v", err)
			}
			for _, e := range storeEntries(t, dir) {
				if strings.Contains(e, ".tmp") {
					t.Errorf("temporary %s left behind", e)
				}
			}
		})
	}
}

// A failing install leaves nothing behind.
func TestInstallNeverHalfInstalls(t *testing.T) {
	cases := map[string]func(t *testing.T) string{
		"corrupt file": func(t *testing.T) string {
			d := copyModel(t, "classifier")
			os.WriteFile(filepath.Join(d, "model.onnx"), []byte("xx"), 0o644)
			return d
		},
		"missing file": func(t *testing.T) string {
			d := copyModel(t, "classifier")
			os.Remove(filepath.Join(d, "model.onnx"))
			return d
		},
		"contract mismatch": func(t *testing.T) string {
			d := copyModel(t, "classifier")
			b, _ := os.ReadFile(filepath.Join(d, ManifestFile))
			os.WriteFile(filepath.Join(d, ManifestFile), []byte(strings.Replace(string(b), "[N, 32]", "[N, 33]", 1)), 0o644)
			return d
		},
		"truncated archive": func(t *testing.T) string {
			b := gz(tarOf(t, filepath.Join(testdataDir, "classifier"), "classifier/"))
			p := filepath.Join(t.TempDir(), "c.tar.gz")
			os.WriteFile(p, b[:len(b)/2], 0o644)
			return p
		},
		"escaping archive": func(t *testing.T) string {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			tw.WriteHeader(&tar.Header{Name: "../evil", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
			tw.Write([]byte("x"))
			tw.Close()
			p := filepath.Join(t.TempDir(), "evil.tar")
			os.WriteFile(p, b.Bytes(), 0o644)
			return p
		},
		"no manifest, no catalog match": func(t *testing.T) string {
			d := copyModel(t, "classifier")
			os.Remove(filepath.Join(d, ManifestFile))
			return d
		},
	}
	cat, err := ParseCatalog(models.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := NewStore(dir, cat).Install(context.Background(), mk(t), InstallOptions{})
			if err == nil {
				t.Fatal("installed")
			}
			t.Log(err)
			if left := storeEntries(t, dir); len(left) > 1 || len(left) == 1 && left[0] != storeSubdir {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

const testCatalog = `models:
  - name: classifier
    kind: nlu
    version: "2024"
    layout: sherpa-onnx
    release_names: [sherpa-onnx-classifier-*]
    graphs: [model.int8.onnx, model.onnx]
    files:
      - {path: model.int8.onnx, optional: true}
      - {path: model.onnx, optional: true}
      - {path: tokens.txt}
    contract:
      batch_dim: N
      inputs:
        - {name: input, aliases: [x], dtype: float32, shape: [N, 32]}
      outputs:
        - {name: logits, dtype: float32, shape: [N, 8]}
        - {name: label, dtype: int64, shape: [N]}
  - name: classifier
    kind: nlu
    version: "2024"
    layout: funasr
    graphs: [model_quant.onnx, model.onnx]
    files:
      - {path: model_quant.onnx, optional: true}
      - {path: model.onnx, optional: true}
      - {path: tokens.json}
      - {path: am.mvn}
    contract:
      batch_dim: N
      inputs:
        - {name: x, dtype: float32, shape: [N, 32]}
      outputs:
        - {name: logits, dtype: float32, shape: [N, 8]}
        - {name: label, dtype: int64, shape: [N]}
`

// A release folder without model.yaml gets one from the catalog.
func TestInstallReleaseFolderFromCatalog(t *testing.T) {
	cat, err := ParseCatalog([]byte(testCatalog))
	if err != nil {
		t.Fatal(err)
	}
	onnx, _ := os.ReadFile(filepath.Join(testdataDir, "classifier", "model.onnx"))
	for _, layout := range []string{"sherpa-onnx", "funasr"} {
		t.Run(layout, func(t *testing.T) {
			rel := filepath.Join(t.TempDir(), "sherpa-onnx-classifier-2024")
			os.MkdirAll(filepath.Join(rel, "test_wavs"), 0o755)
			if layout == "sherpa-onnx" {
				os.WriteFile(filepath.Join(rel, "model.int8.onnx"), onnx, 0o644)
				os.WriteFile(filepath.Join(rel, "tokens.txt"), []byte("<blk> 0\n"), 0o644)
			} else {
				os.WriteFile(filepath.Join(rel, "model_quant.onnx"), onnx, 0o644)
				os.WriteFile(filepath.Join(rel, "tokens.json"), []byte("[]"), 0o644)
				os.WriteFile(filepath.Join(rel, "am.mvn"), []byte("<Nnet>"), 0o644)
			}
			os.WriteFile(filepath.Join(rel, "test_wavs", "0.wav"), []byte("RIFF"), 0o644)
			dir := t.TempDir()
			got, err := NewStore(dir, cat).Install(context.Background(), rel, InstallOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !got.Generated || got.Manifest.Version != "2024" {
				t.Errorf("installed %+v", got)
			}
			want := map[string]string{"sherpa-onnx": "model.int8.onnx", "funasr": "model_quant.onnx"}[layout]
			if got.Manifest.Graph != want {
				t.Errorf("graph %s, want %s", got.Manifest.Graph, want)
			}
			if _, err := CheckModel(got.Link); err != nil {
				t.Fatal(err)
			}
			if rt := needRT(t); rt != nil {
				m, err := rt.Load(context.Background(), got.Manifest, LoadOptions{Provider: "cpu", Concurrency: 1})
				if err != nil {
					t.Fatal(err)
				}
				m.Close()
			}
		})
	}
}

// The real catalog tells sherpa-onnx and FunASR SenseVoice folders apart.
func TestCatalogIdentifiesLayouts(t *testing.T) {
	cat, err := ParseCatalog(models.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(files ...string) string {
		d := t.TempDir()
		for _, f := range files {
			os.WriteFile(filepath.Join(d, f), []byte("x"), 0o644)
		}
		return d
	}
	cases := []struct {
		dir, base, name, layout string
	}{
		{mk("model.int8.onnx", "tokens.txt"), "sherpa-onnx-sense-voice-zh-en-ja-ko-yue-int8-2024-07-17", "sense-voice-small", "sherpa-onnx"},
		{mk("model_quant.onnx", "tokens.json", "am.mvn", "config.yaml"), "SenseVoiceSmall", "sense-voice-small", "funasr"},
		{mk("model.onnx", "tokens.txt"), "sherpa-onnx-paraformer-zh-2023-09-14", "paraformer-zh", "sherpa-onnx-timestamps"},
		{mk("model.onnx", "tokens.txt"), "sherpa-onnx-paraformer-zh-2024-03-09", "paraformer-zh", "sherpa-onnx"},
		{mk("silero_vad.onnx"), "x", "silero-vad", "zhiyin"},
	}
	for _, tc := range cases {
		cm, err := cat.identify(tc.dir, tc.base, "")
		if err != nil {
			t.Errorf("%s: %v", tc.base, err)
			continue
		}
		if cm.Name != tc.name || cm.Layout != tc.layout {
			t.Errorf("%s: identified as %s (%s), want %s (%s)", tc.base, cm.Name, cm.Layout, tc.name, tc.layout)
		}
	}
	if _, err := cat.identify(mk("model.onnx", "tokens.txt"), "mystery", ""); !errors.Is(err, ErrInstall) || !strings.Contains(err.Error(), "--name") {
		t.Errorf("ambiguous folder: %v", err)
	}
}

func TestStorePromoteRollbackRemove(t *testing.T) {
	dir := installVersions(t)
	s := NewStore(dir, nil)
	version := func(slot string) string {
		d, err := FindModel([]string{dir}, "classifier", slot)
		if err != nil {
			return ""
		}
		m, _ := ReadManifest(d)
		return m.Version
	}
	if version(SlotServing) != "1" || version(SlotCandidate) != "2" || version(SlotPrevious) != "" {
		t.Fatal("setup")
	}
	if err := s.Promote("classifier"); err != nil {
		t.Fatal(err)
	}
	if version(SlotServing) != "2" || version(SlotPrevious) != "1" || version(SlotCandidate) != "" {
		t.Fatalf("after promote: %s %s %s", version(SlotServing), version(SlotPrevious), version(SlotCandidate))
	}
	if err := s.Promote("classifier"); !errors.Is(err, ErrNoCandidate) {
		t.Fatalf("promote twice: %v", err)
	}
	if err := s.Rollback("classifier", nil); err != nil {
		t.Fatal(err)
	}
	if version(SlotServing) != "1" || version(SlotCandidate) != "2" || version(SlotPrevious) != "" {
		t.Fatal("after rollback")
	}
	if err := s.Rollback("classifier", nil); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("rollback twice: %v", err)
	}
	// With the package's copy in a lower dir, the store's version can be
	// rolled back to it.
	if err := s.Rollback("classifier", []string{testdataDir}); err != nil {
		t.Fatal(err)
	}
	if version(SlotServing) != "" {
		t.Error("store still serves after rolling back to the lower dir")
	}
	if err := s.Remove("classifier", SlotCandidate); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("classifier", SlotCandidate); !errors.Is(err, ErrModelNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
	for _, e := range storeEntries(t, dir) {
		if strings.HasPrefix(e, storeSubdir+"/classifier@") {
			t.Errorf("unreferenced %s left", e)
		}
	}
}

// A plain folder (copied in by hand) is adopted when replaced.
func TestInstallReplaceAdoptsPlainFolder(t *testing.T) {
	dir := t.TempDir()
	if err := copyTree(context.Background(), filepath.Join(testdataDir, "classifier"), filepath.Join(dir, "classifier")); err != nil {
		t.Fatal(err)
	}
	v2 := writeFolder(t, t.TempDir(), testmodelsClassifier(t, "2"))
	got, err := NewStore(dir, nil).Install(context.Background(), v2, InstallOptions{Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Manifest.Version != "2" {
		t.Fatal(got.Manifest.Version)
	}
	prev, err := FindModel([]string{dir}, "classifier", SlotPrevious)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := ReadManifest(prev); m.Version != "1" {
		t.Errorf("previous is %s", m.Version)
	}
}

func TestListInstalled(t *testing.T) {
	dir := installVersions(t)
	list := ListInstalled([]string{dir, testdataDir})
	var slots []string
	for _, im := range list {
		if im.Name == "classifier" {
			slots = append(slots, im.Slot+":"+im.Manifest.Version+":"+map[bool]string{true: "hidden", false: "used"}[im.Hidden])
		}
		if im.Err != nil {
			t.Errorf("%s: %v", im.Dir, im.Err)
		}
	}
	want := "[:1:used :1:hidden candidate:2:used]"
	if got := strings.Join([]string{"[" + strings.Join(slots, " ") + "]"}, ""); got != want {
		t.Errorf("classifier entries %s, want %s", got, want)
	}
}

func FuzzExtractTar(f *testing.F) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "m/model.yaml", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("a: b"[:3]))
	tw.WriteHeader(&tar.Header{Name: "m/sub/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.Close()
	f.Add(b.Bytes())
	f.Add(gz(b.Bytes()))
	f.Add([]byte("BZh91AY&SY"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dst := t.TempDir()
		err := extractTar(context.Background(), bytes.NewReader(data), dst, 1<<20)
		if err != nil && !errors.Is(err, ErrInstall) {
			t.Fatalf("error not wrapping ErrInstall: %v", err)
		}
		// Nothing may land outside dst.
		filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
			if err == nil && !strings.HasPrefix(p, dst) {
				t.Fatalf("%s outside %s", p, dst)
			}
			if err == nil && d.Type()&os.ModeSymlink != 0 {
				t.Fatalf("symlink %s created", p)
			}
			return nil
		})
	})
}

func FuzzParseManifest(f *testing.F) {
	for _, n := range []string{"classifier", "dynlen", "multio"} {
		b, _ := os.ReadFile(filepath.Join(testdataDir, n, ManifestFile))
		f.Add(b)
	}
	if b, err := os.ReadFile("../models/silero-vad/model.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("name: x\nversion: 1\ncontract: {inputs: [{name: a, dtype: float32, shape: [N, T+4]}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if !errors.Is(err, ErrManifest) {
				t.Fatalf("error not wrapping ErrManifest: %v", err)
			}
			return
		}
		// A valid manifest compiles and survives a round trip.
		compileContract(&m.Contract)
		out, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(out); err != nil {
			t.Fatalf("re-parse of a valid manifest: %v\n%s", err, out)
		}
	})
}
