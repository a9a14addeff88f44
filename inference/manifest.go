package inference

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ManifestFile is the name of the manifest in every model folder.
const ManifestFile = "model.yaml"

// ModelSpec is what a manifest and a catalog entry both say about a model:
// identity, origin, tensor contract, warm-up and run-time hints.
type ModelSpec struct {
	// Name is the model's name, also its folder's name (silero-vad).
	Name string `yaml:"name"`
	// Kind says what the model does (vad, asr, nlu, tts, punct, test); the
	// runtime does not interpret it.
	Kind string `yaml:"kind"`
	// Version identifies this build of the model (shown in reports and
	// metrics labels).
	Version     string `yaml:"version"`
	Description string `yaml:"description,omitempty"`
	// Source says where an online machine downloads the model.
	Source   *Source       `yaml:"source,omitempty"`
	Contract Contract      `yaml:"contract"`
	Warmup   []WarmupCase  `yaml:"warmup,omitempty"`
	Runtime  RuntimeHints  `yaml:"runtime,omitempty"`
	Shadow   ShadowCompare `yaml:"shadow,omitempty"`
	// Metadata is free-form information for the model's users (the asr
	// package reads its front-end settings here).
	Metadata map[string]string `yaml:"metadata,omitempty"`
}

// Manifest is a model folder's model.yaml: what the model is, its files
// with their sha256, its tensor contract and how to warm it up.
type Manifest struct {
	ModelSpec `yaml:",inline"`
	// Graph is the ONNX file to run, one of Files.
	Graph string `yaml:"graph"`
	// Files lists every file of the model with its sha256; they are
	// verified before the model loads.
	Files []FileSum `yaml:"files"`

	// Dir is the folder the manifest was read from (not in the file).
	Dir string `yaml:"-"`
}

// FileSum is one file of a model folder.
type FileSum struct {
	// Path is relative to the model folder, with forward slashes.
	Path   string `yaml:"path"`
	SHA256 string `yaml:"sha256"`
	// Size in bytes; 0 means not recorded.
	Size int64 `yaml:"size,omitempty"`
}

// Source is where an online machine can get a model.
type Source struct {
	URL   string `yaml:"url,omitempty"`
	NPM   string `yaml:"npm,omitempty"`
	Notes string `yaml:"notes,omitempty"`
}

// Contract is a model's tensor interface. Inputs and outputs are bound by
// position; a graph tensor may be called Name or any of Aliases (sherpa-onnx
// and FunASR export the same model with different names).
type Contract struct {
	// BatchDim is the symbol of the batch dimension ("N"); empty when the
	// model has none. Tensors holding that symbol are split and merged
	// along it when requests are batched.
	BatchDim string `yaml:"batch_dim,omitempty"`
	// Stateful models carry state between calls in their inputs and
	// outputs (Silero VAD); they are never batched.
	Stateful bool         `yaml:"stateful,omitempty"`
	Inputs   []TensorSpec `yaml:"inputs"`
	Outputs  []TensorSpec `yaml:"outputs"`
}

// TensorSpec is one input or output of a contract.
type TensorSpec struct {
	Name    string   `yaml:"name"`
	Aliases []string `yaml:"aliases,omitempty,flow"`
	DType   DType    `yaml:"dtype"`
	// AltDTypes are other element types the graph may use for this tensor
	// (exporters differ); the model then runs with the graph's type.
	AltDTypes []DType `yaml:"alt_dtypes,omitempty,flow"`
	// Shape is the tensor's dimensions: a number is a fixed size; a symbol
	// (N, T) is a dynamic size that must be equal wherever the symbol
	// appears in one request; "T+4" is T plus a constant.
	Shape []Dim `yaml:"shape,flow"`
	// Pad is the value used to pad this input's dynamic dimensions when
	// requests of different lengths are batched.
	Pad float64 `yaml:"pad,omitempty"`
}

// Dim is one dimension in a contract.
type Dim struct {
	// Size is the fixed size; -1 when the dimension is symbolic.
	Size int64
	// Sym is the symbol ("N", "T") of a dynamic dimension.
	Sym string
	// Offset is added to the symbol's value ("T+4").
	Offset int64
}

var dimRe = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*(?:([+-])\s*([0-9]{1,9}))?$`)

// ParseDim parses "560", "N", "T+4".
func ParseDim(s string) (Dim, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return Dim{}, fmt.Errorf("dimension %d is negative; write a symbol such as N for a dynamic one", n)
		}
		return Dim{Size: n}, nil
	}
	m := dimRe.FindStringSubmatch(s)
	if m == nil {
		return Dim{}, fmt.Errorf("dimension %q is neither a number nor a symbol such as N or T+4", s)
	}
	d := Dim{Size: -1, Sym: m[1]}
	if m[3] != "" {
		off, _ := strconv.ParseInt(m[3], 10, 64)
		if m[2] == "-" {
			off = -off
		}
		d.Offset = off
	}
	return d, nil
}

// Fixed reports whether the dimension has a fixed size.
func (d Dim) Fixed() bool { return d.Sym == "" }

// String writes the dimension as in a manifest.
func (d Dim) String() string {
	switch {
	case d.Fixed():
		return strconv.FormatInt(d.Size, 10)
	case d.Offset > 0:
		return fmt.Sprintf("%s+%d", d.Sym, d.Offset)
	case d.Offset < 0:
		return fmt.Sprintf("%s%d", d.Sym, d.Offset)
	}
	return d.Sym
}

// UnmarshalYAML reads a number or a symbol.
func (d *Dim) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a dimension must be a number or a symbol", n.Line)
	}
	v, err := ParseDim(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes a number or a symbol.
func (d Dim) MarshalYAML() (any, error) {
	if d.Fixed() {
		return d.Size, nil
	}
	return d.String(), nil
}

// WarmupCase is one shape bucket run at load before the model counts as
// ready. List the most common shape first: it also runs last.
type WarmupCase struct {
	// Shapes gives every input's shape by contract name.
	Shapes map[string][]int64 `yaml:"shapes"`
	// Fill sets an input's elements to a value (default: its Pad, which
	// defaults to 0), e.g. a length input to the length or sr to 16000.
	Fill map[string]float64 `yaml:"fill,omitempty"`
}

// RuntimeHints are the manifest's defaults for how to run the model; the
// configuration overrides them.
type RuntimeHints struct {
	// Batching is auto, on or off (empty: the configuration decides).
	Batching string `yaml:"batching,omitempty"`
	// MaxBatch caps batches for this model (0: the configuration decides).
	MaxBatch int `yaml:"max_batch,omitempty"`
}

// ShadowCompare says how a candidate's results are compared with the
// serving version's during shadow evaluation.
type ShadowCompare struct {
	// Compare is argmax (same top label along the last axis; the default
	// for float outputs), exact (equal values, e.g. the same token ids:
	// the default for integer outputs) or close (every value within
	// Tolerance).
	Compare string `yaml:"compare,omitempty"`
	// Output names the output compared (default: the first).
	Output    string  `yaml:"output,omitempty"`
	Tolerance float64 `yaml:"tolerance,omitempty"`
}

const maxManifestSize = 1 << 20

// ReadManifest reads and validates DIR/model.yaml. Errors wrap
// ErrModelNotFound when the file does not exist and ErrManifest when it is
// invalid.
func ReadManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, ManifestFile)
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist", ErrModelNotFound, p)
		}
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", p, err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	m.Dir = dir
	return m, nil
}

// ParseManifest decodes and validates a manifest. Unknown keys are errors.
// The error wraps ErrManifest.
func ParseManifest(data []byte) (*Manifest, error) {
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrManifest, maxManifestSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is empty", ErrManifest)
		}
		return nil, fmt.Errorf("%w: %s", ErrManifest, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

var sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate checks the manifest's own consistency (not the files). The error
// wraps ErrManifest and lists every problem.
func (m *Manifest) Validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !modelNameRe.MatchString(m.Name) {
		bad("name: %q is not a model name (lowercase letters, digits, - and _)", m.Name)
	}
	if m.Version == "" {
		bad("version: required")
	}
	seen := map[string]bool{}
	for i, f := range m.Files {
		if err := validRelPath(f.Path); err != nil {
			bad("files[%d].path: %v", i, err)
		}
		if !sha256Re.MatchString(f.SHA256) {
			bad("files[%d].sha256: want 64 lowercase hex digits, got %q", i, f.SHA256)
		}
		if f.Size < 0 {
			bad("files[%d].size: negative", i)
		}
		if seen[f.Path] {
			bad("files[%d].path: %q is listed twice", i, f.Path)
		}
		seen[f.Path] = true
	}
	if m.Graph == "" {
		bad("graph: required (the .onnx file to run)")
	} else if !seen[m.Graph] {
		bad("graph: %q is not one of files (every file needs its sha256)", m.Graph)
	}
	errs = append(errs, m.Contract.problems()...)
	inputs := map[string]TensorSpec{}
	for _, in := range m.Contract.Inputs {
		inputs[in.Name] = in
	}
	for i, w := range m.Warmup {
		for name, shape := range w.Shapes {
			spec, ok := inputs[name]
			if !ok {
				bad("warmup[%d].shapes: %q is not an input of the contract", i, name)
				continue
			}
			if len(shape) != len(spec.Shape) {
				bad("warmup[%d].shapes.%s: rank %d, the contract says %d (%s)", i, name, len(shape), len(spec.Shape), shapeString(spec.Shape))
			}
			for j, d := range shape {
				if d < 0 {
					bad("warmup[%d].shapes.%s: dimension %d is negative", i, name, j)
				}
			}
		}
		for _, in := range m.Contract.Inputs {
			if _, ok := w.Shapes[in.Name]; !ok {
				bad("warmup[%d].shapes: input %q is missing", i, in.Name)
			}
		}
		for name := range w.Fill {
			if _, ok := inputs[name]; !ok {
				bad("warmup[%d].fill: %q is not an input of the contract", i, name)
			}
		}
	}
	switch m.Runtime.Batching {
	case "", "auto", "on", "off":
	default:
		bad("runtime.batching: must be auto, on or off, got %q", m.Runtime.Batching)
	}
	if m.Runtime.Batching == "on" && m.Contract.BatchDim == "" {
		bad("runtime.batching: on needs contract.batch_dim")
	}
	if m.Runtime.MaxBatch < 0 || m.Runtime.MaxBatch > maxBatchLimit {
		bad("runtime.max_batch: must be 0 to %d", maxBatchLimit)
	}
	switch m.Shadow.Compare {
	case "", "argmax", "exact", "close":
	default:
		bad("shadow.compare: must be argmax, exact or close, got %q", m.Shadow.Compare)
	}
	if m.Shadow.Output != "" {
		found := false
		for _, o := range m.Contract.Outputs {
			found = found || o.Name == m.Shadow.Output
		}
		if !found {
			bad("shadow.output: %q is not an output of the contract", m.Shadow.Output)
		}
	}
	if m.Shadow.Tolerance < 0 {
		bad("shadow.tolerance: negative")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrManifest, strings.Join(errs, "; "))
	}
	return nil
}

func validRelPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty")
	case strings.HasPrefix(p, "/") || filepath.IsAbs(p):
		return fmt.Errorf("%q must be relative to the model folder", p)
	case path2Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == "..":
		return fmt.Errorf("%q must be a clean path inside the model folder", p)
	case p == ManifestFile:
		return fmt.Errorf("%q is the manifest itself", p)
	}
	return nil
}

func path2Clean(p string) string { return filepath.ToSlash(filepath.Clean(filepath.FromSlash(p))) }

func shapeString(dims []Dim) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// problems lists what is wrong with the contract itself.
func (c *Contract) problems() []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if len(c.Inputs) == 0 {
		bad("contract.inputs: at least one input is required")
	}
	if len(c.Outputs) == 0 {
		bad("contract.outputs: at least one output is required")
	}
	if c.BatchDim != "" && !dimRe.MatchString(c.BatchDim) || strings.ContainsAny(c.BatchDim, "+- ") {
		bad("contract.batch_dim: %q is not a symbol such as N", c.BatchDim)
	}
	batchInInputs := false
	for _, list := range []struct {
		what  string
		specs []TensorSpec
	}{{"inputs", c.Inputs}, {"outputs", c.Outputs}} {
		names := map[string]bool{}
		for i, t := range list.specs {
			where := fmt.Sprintf("contract.%s[%d]", list.what, i)
			if t.Name == "" {
				bad("%s.name: required", where)
			}
			for _, n := range append([]string{t.Name}, t.Aliases...) {
				if names[n] {
					bad("%s.name: %q is used twice", where, n)
				}
				names[n] = true
			}
			if !t.DType.supported() {
				bad("%s.dtype: required (float32, int64, …)", where)
			}
			nb := 0
			for j, d := range t.Shape {
				if d.Fixed() && d.Size < 0 {
					bad("%s.shape[%d]: negative", where, j)
				}
				if !d.Fixed() && d.Sym == c.BatchDim {
					nb++
					if d.Offset != 0 {
						bad("%s.shape[%d]: the batch dimension cannot have an offset", where, j)
					}
				}
			}
			if nb > 1 {
				bad("%s.shape: the batch dimension %s appears %d times", where, c.BatchDim, nb)
			}
			if list.what == "inputs" && nb == 1 {
				batchInInputs = true
			}
		}
	}
	if c.BatchDim != "" && !batchInInputs && len(c.Inputs) > 0 {
		bad("contract.batch_dim: %s is not a dimension of any input", c.BatchDim)
	}
	return errs
}

// Path returns the absolute path of a file of the model.
func (m *Manifest) Path(rel string) string { return filepath.Join(m.Dir, filepath.FromSlash(rel)) }

// GraphPath returns the path of the ONNX file to run.
func (m *Manifest) GraphPath() string { return m.Path(m.Graph) }

// Verify checks that every file exists, has the recorded size and sha256.
// It reads every file. Errors wrap ErrMissingFile or ErrChecksum and name
// the file, the expected sha256 and what to do.
func (m *Manifest) Verify() error {
	for _, f := range m.Files {
		if err := verifyFile(m.Path(f.Path), f, m.Name); err != nil {
			return err
		}
	}
	return nil
}

func verifyFile(p string, f FileSum, model string) error {
	fix := fmt.Sprintf("copy the %s model folder again (or run `zhiyin models install`), then `zhiyin models verify %s`", model, model)
	fh, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s (expected sha256 %s): %s", ErrMissingFile, p, f.SHA256, fix)
		}
		return fmt.Errorf("%w: %s (expected sha256 %s): %v", ErrMissingFile, p, f.SHA256, err)
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return fmt.Errorf("%w: read %s (expected sha256 %s): %v", ErrChecksum, p, f.SHA256, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != f.SHA256 {
		sz := ""
		if f.Size > 0 && n != f.Size {
			sz = fmt.Sprintf(", %d bytes instead of %d", n, f.Size)
		}
		return fmt.Errorf("%w: %s has sha256 %s%s, expected sha256 %s: the file is corrupt or another version; %s", ErrChecksum, p, got, sz, f.SHA256, fix)
	}
	return nil
}

// FileSHA256 returns a file's hex sha256 and its size.
func FileSHA256(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Marshal writes the manifest as YAML.
func (m *Manifest) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return b.Bytes(), nil
}

// compareMode resolves the shadow comparison and the output it applies to.
func (m *Manifest) compareMode() (mode string, output int, tol float64) {
	output = 0
	for i, o := range m.Contract.Outputs {
		if o.Name == m.Shadow.Output {
			output = i
		}
	}
	mode = m.Shadow.Compare
	if mode == "" {
		switch m.Contract.Outputs[output].DType {
		case Float32, Float64:
			mode = "argmax"
		default:
			mode = "exact"
		}
	}
	tol = m.Shadow.Tolerance
	if mode == "close" && tol == 0 {
		tol = 1e-4
	}
	return mode, output, tol
}

// durationOr returns d, or def when d is zero.
func durationOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
