package asrtest

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"

	pb "github.com/zhiyin/zhiyin/inference/onnxpb"
)

// The release folder names, as `zhiyin models install` expects them
// (models/catalog.yaml release_names).
const (
	SenseVoiceSherpaName     = "sherpa-onnx-sense-voice-zh-en-ja-ko-yue-2024-07-17"
	SenseVoiceFunASRName     = "SenseVoiceSmall"
	ParaformerSherpaName     = "sherpa-onnx-paraformer-zh-2024-03-09"
	ParaformerTimestampsName = "sherpa-onnx-paraformer-zh-2023-09-14"
	ParaformerFunASRName     = "speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-onnx"
)

// Maintainer is the metadata maintainer of every generated sherpa-onnx
// model: a real release says k2-fsa.
const Maintainer = "zhiyin-contract-model"

// FeatureDim is the models' input feature size: 80 mel bins × LFR 7.
const FeatureDim = 560

// File is one generated file of a release folder.
type File struct {
	Name string
	Data []byte
}

// Folder is one generated release folder, named as the real release.
type Folder struct {
	Name  string
	Files []File
}

// File returns the data of the named file, or nil.
func (f Folder) File(name string) []byte {
	for _, x := range f.Files {
		if x.Name == name {
			return x.Data
		}
	}
	return nil
}

// All returns every contract model folder, in a stable order. It computes
// them (tens of milliseconds); the result is the caller's.
func All() []Folder {
	return []Folder{SenseVoiceSherpa(), SenseVoiceFunASR(), ParaformerSherpa(), ParaformerTimestamps(), ParaformerFunASR()}
}

// Write writes f's files into dir/f.Name (created as needed), each through
// a temporary file renamed into place, and returns that folder's path.
func Write(dir string, f Folder) (string, error) {
	out := filepath.Join(dir, f.Name)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("write %s: %w", f.Name, err)
	}
	for _, file := range f.Files {
		p := filepath.Join(out, file.Name)
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, file.Data, 0o644); err != nil {
			return "", fmt.Errorf("write %s: %w", f.Name, err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return "", fmt.Errorf("write %s: %w", f.Name, err)
		}
	}
	return out, nil
}

// rng is splitmix64 (as in inference/testmodels): tiny and stable across Go
// releases and architectures.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a value in [0, n).
func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

// uniform returns a value uniform in [-scale, scale), on a grid of 2^-12
// so that the bytes do not depend on floating-point details.
func (r *rng) uniform(scale float64) float32 {
	u := float64(r.next()>>11) / (1 << 53)
	return float32(math.Round(float64((u*2-1)*scale)*4096) / 4096)
}

// builder accumulates an ONNX graph.
type builder struct {
	nodes []pb.Node
	inits []pb.Tensor
}

func (b *builder) op(op string, in []string, out string, attrs ...pb.Attr) string {
	b.nodes = append(b.nodes, pb.Node{Name: fmt.Sprintf("%s_%d", op, len(b.nodes)), OpType: op, Inputs: in, Outputs: []string{out}, Attrs: attrs})
	return out
}

func (b *builder) init(t pb.Tensor) string {
	b.inits = append(b.inits, t)
	return t.Name
}

func (b *builder) floats(name string, dims []int64, v []float32) string {
	return b.init(pb.FloatTensor(name, dims, v))
}

func (b *builder) i64(name string, dims []int64, v ...int64) string {
	return b.init(pb.Int64Tensor(name, dims, v))
}

func (b *builder) i32(name string, dims []int64, v ...int32) string {
	return b.init(int32Tensor(name, dims, v))
}

func int32Tensor(name string, dims []int64, v []int32) pb.Tensor {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
	}
	return pb.Tensor{Name: name, Type: pb.Int32, Dims: dims, Raw: raw}
}

func attrInt(name string, v int64) pb.Attr { return pb.Attr{Name: name, Type: pb.AttrInt, I: v} }

// model wraps a graph in a model with opset 17 and IR version 8.
func (b *builder) model(name, doc string, in, out []pb.ValueInfo, meta []pb.KV) []byte {
	m := &pb.Model{
		IRVersion:    8,
		Opsets:       []pb.Opset{{Version: 17}},
		ProducerName: "zhiyin-asrtest",
		DocString:    doc,
		Graph:        pb.Graph{Name: name, Nodes: b.nodes, Initializers: b.inits, Inputs: in, Outputs: out},
		Metadata:     meta,
	}
	return m.Marshal()
}

// projection is the shared text path of every model: a low-rank map of the
// features, Tanh(x·W1)·W2 + b2, into a small logit space of K columns that
// a Gather through idmap spreads over the vocabulary.
type projection struct {
	hidden int
	w1     []float32 // [FeatureDim, hidden]
	w2     []float32 // [hidden, K]
	b2     []float32 // [K]
	k      int
	idmap  []int32 // vocabulary id → column
}

// text appends MatMul–Tanh–MatMul–Add from input x and returns the [N,T,K]
// output's name.
func (p *projection) text(b *builder, x string) string {
	w1 := b.floats("proj_w1", []int64{FeatureDim, int64(p.hidden)}, p.w1)
	w2 := b.floats("proj_w2", []int64{int64(p.hidden), int64(p.k)}, p.w2)
	b2 := b.floats("proj_b2", []int64{int64(p.k)}, p.b2)
	h := b.op("MatMul", []string{x, w1}, "proj_h_pre")
	h = b.op("Tanh", []string{h}, "proj_h")
	s := b.op("MatMul", []string{h, w2}, "proj_mm")
	return b.op("Add", []string{s, b2}, "proj_logits")
}

// spread gathers the [N,T,K] logits into [N,T,V] through idmap. Gathering
// whole rows of the transposed [K,N,T] and transposing back is several
// times faster in ONNX Runtime than gathering single elements on axis 2.
func (p *projection) spread(b *builder, small, out string) string {
	idx := b.i32("vocab_columns", []int64{int64(len(p.idmap))}, p.idmap...)
	t := b.op("Transpose", []string{small}, small+"_kn", pb.Attr{Name: "perm", Type: pb.AttrInts, Ints: []int64{2, 0, 1}})
	g := b.op("Gather", []string{t, idx}, small+"_vn", attrInt("axis", 0))
	return b.op("Transpose", []string{g}, out, pb.Attr{Name: "perm", Type: pb.AttrInts, Ints: []int64{1, 2, 0}})
}

// hiddenWeights returns W1 [FeatureDim, hidden]: uniform, then made
// orthogonal to the all-ones vector and to silence, so that inputs whose
// features are all equal, or silence, give h = 0 (and the biases decide).
func hiddenWeights(r *rng, hidden int, scale float64, silence []float32) []float32 {
	// Orthonormal basis of span{1, silence}, by Gram–Schmidt. Explicit
	// float64 conversions keep the compiler from fusing multiply-adds, so
	// the result is the same on every architecture.
	u1 := make([]float64, FeatureDim)
	for i := range u1 {
		u1[i] = 1 / math.Sqrt(FeatureDim)
	}
	u2 := make([]float64, FeatureDim)
	for i := range u2 {
		u2[i] = float64(silence[i])
	}
	d := dot(u2, u1)
	for i := range u2 {
		u2[i] -= float64(d * u1[i])
	}
	n := math.Sqrt(dot(u2, u2))
	for i := range u2 {
		u2[i] /= n
	}
	w := make([]float32, FeatureDim*hidden)
	col := make([]float64, FeatureDim)
	for j := 0; j < hidden; j++ {
		for i := range col {
			col[i] = float64(r.uniform(scale))
		}
		for _, u := range [][]float64{u1, u2} {
			d := dot(col, u)
			for i := range col {
				col[i] -= float64(d * u[i])
			}
		}
		for i := range col {
			// A finer grid than uniform's: rounding breaks the
			// orthogonality by at most 2^-17 per weight.
			w[i*hidden+j] = float32(math.Round(float64(col[i]*65536)) / 65536)
		}
	}
	return w
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i] * b[i])
	}
	return s
}
