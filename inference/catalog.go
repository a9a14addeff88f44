package inference

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Catalog is models/catalog.yaml: the models zhiyin knows, with their
// files, where an online machine downloads them and their tensor contract.
// It is what `zhiyin models install` uses to write the model.yaml of a
// release folder that has none (sherpa-onnx and FunASR releases).
type Catalog struct {
	Models []CatalogModel `yaml:"models"`
}

// CatalogModel is one known model in one release layout.
type CatalogModel struct {
	ModelSpec `yaml:",inline"`
	// Layout names the release format: zhiyin, sherpa-onnx or funasr.
	Layout string `yaml:"layout"`
	// ReleaseNames are the folder names (path.Match patterns) of the
	// releases in this layout.
	ReleaseNames []string `yaml:"release_names,omitempty"`
	// Graphs are candidate ONNX files in order of preference; the first
	// one present is run.
	Graphs []string `yaml:"graphs"`
	// Files are the release's files; Optional ones may be absent. An empty
	// SHA256 means the catalog does not pin it (install records the sum it
	// finds).
	Files []CatalogFile `yaml:"files"`
}

// CatalogFile is one file of a catalog model.
type CatalogFile struct {
	Path     string `yaml:"path"`
	SHA256   string `yaml:"sha256,omitempty"`
	Size     int64  `yaml:"size,omitempty"`
	Optional bool   `yaml:"optional,omitempty"`
}

// ParseCatalog decodes and checks a catalog. The error wraps ErrManifest.
func ParseCatalog(data []byte) (*Catalog, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Catalog
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: catalog: %s", ErrManifest, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	for i := range c.Models {
		cm := &c.Models[i]
		// Check the entry as the manifest it would produce with every file.
		if _, err := cm.manifest(nil); err != nil {
			return nil, fmt.Errorf("catalog entry %d (%s, %s): %w", i, cm.Name, cm.Layout, err)
		}
	}
	return &c, nil
}

// Find returns the entries for name.
func (c *Catalog) Find(name string) []CatalogModel {
	var out []CatalogModel
	for _, m := range c.Models {
		if m.Name == name {
			out = append(out, m)
		}
	}
	return out
}

// manifest builds the manifest of this entry for a folder holding the
// files in sums (path → sha256, size); nil sums use placeholder sums to
// validate the entry itself.
func (cm *CatalogModel) manifest(sums map[string]FileSum) (*Manifest, error) {
	m := &Manifest{ModelSpec: cm.ModelSpec}
	for _, f := range cm.Files {
		fs := FileSum{Path: f.Path, SHA256: f.SHA256, Size: f.Size}
		if sums != nil {
			got, ok := sums[f.Path]
			if !ok {
				if f.Optional {
					continue
				}
				return nil, fmt.Errorf("%w: %s is missing (the %s release of %s has it)", ErrInstall, f.Path, cm.Layout, cm.Name)
			}
			if f.SHA256 != "" && got.SHA256 != f.SHA256 {
				return nil, fmt.Errorf("%w: %s has sha256 %s, the catalog expects %s (corrupt download or another version)", ErrChecksum, f.Path, got.SHA256, f.SHA256)
			}
			fs = got
		} else if fs.SHA256 == "" {
			fs.SHA256 = strings.Repeat("0", 64)
		}
		m.Files = append(m.Files, fs)
	}
	for _, g := range cm.Graphs {
		for _, f := range m.Files {
			if f.Path == g {
				m.Graph = g
				break
			}
		}
		if m.Graph != "" {
			break
		}
	}
	if m.Graph == "" && sums != nil {
		return nil, fmt.Errorf("%w: none of %s is present", ErrInstall, strings.Join(cm.Graphs, ", "))
	}
	if m.Graph == "" && len(cm.Graphs) > 0 {
		m.Graph = cm.Graphs[0]
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// identify finds the catalog entry describing the release folder dir,
// originally called base: name (if given) narrows the choice; then the
// entries whose required files are all present; then base against
// ReleaseNames.
func (c *Catalog) identify(dir, base, name string) (*CatalogModel, error) {
	var cands []*CatalogModel
	for i := range c.Models {
		cm := &c.Models[i]
		if name != "" && cm.Name != name {
			continue
		}
		if !cm.filesPresent(dir) {
			continue
		}
		// An entry whose files are all optional (just "model.onnx") would
		// match any folder: it needs its release name, or --name.
		if name == "" && !cm.hasRequiredFile() && !cm.releaseMatch(base, false) && !cm.releaseMatch(base, true) {
			continue
		}
		cands = append(cands, cm)
	}
	if len(cands) == 0 {
		known := make([]string, 0, len(c.Models))
		for _, m := range c.Models {
			known = append(known, m.Name+" ("+m.Layout+")")
		}
		if name != "" {
			return nil, fmt.Errorf("%w: %s has no model.yaml and does not hold the files of catalog model %s; known: %s", ErrInstall, base, name, strings.Join(known, ", "))
		}
		return nil, fmt.Errorf("%w: %s has no model.yaml and matches no catalog model (known: %s); add a model.yaml or pass --name", ErrInstall, base, strings.Join(known, ", "))
	}
	for _, glob := range []bool{false, true} {
		for _, cm := range cands {
			if cm.releaseMatch(base, glob) {
				return cm, nil
			}
		}
	}
	if len(cands) == 1 {
		return cands[0], nil
	}
	names := make([]string, len(cands))
	for i, cm := range cands {
		names[i] = cm.Name + " (" + cm.Layout + ")"
	}
	return nil, fmt.Errorf("%w: %s could be %s; pass --name", ErrInstall, base, strings.Join(names, " or "))
}

func (cm *CatalogModel) filesPresent(dir string) bool {
	graph := false
	for _, f := range cm.Files {
		_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil && !f.Optional {
			return false
		}
		if err == nil {
			for _, g := range cm.Graphs {
				graph = graph || g == f.Path
			}
		}
	}
	return graph
}

func (cm *CatalogModel) hasRequiredFile() bool {
	for _, f := range cm.Files {
		if !f.Optional {
			return true
		}
	}
	return false
}

// releaseMatch matches base against the release names: the exact ones, or
// (glob) the patterns.
func (cm *CatalogModel) releaseMatch(base string, glob bool) bool {
	for _, pat := range cm.ReleaseNames {
		isGlob := strings.ContainsAny(pat, "*?[")
		if isGlob != glob {
			continue
		}
		if ok, _ := path.Match(pat, base); ok {
			return true
		}
	}
	return false
}
