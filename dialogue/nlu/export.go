package nlu

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zhiyin/zhiyin/dialogue/nlu/rules"
	pb "github.com/zhiyin/zhiyin/inference/onnxpb"
)

// A model folder holds:
//
//	nlu.json        the manifest: labels, feature parameters, files with sha256, metrics, data hash
//	intent.onnx     intent classifier: ids i64[N,K], weights f32[N,K] -> logits f32[N,C]
//	entities.onnx   entity tagger: ids i64[T,F] -> emissions f32[T,L], transitions f32[L+1,L]
//	intent.vocab    intent features: per row a uint64 hash and a float32 idf (little-endian)
//	entities.vocab  tagger features: per row a uint64 hash
//	lexicon.tsv     entity values the tagger matches: type<TAB>value per line
//
// Weights are int8 with one float scale per output column (symmetric,
// zero point 0), looked up with Gather and dequantized in the graph.

// Format is the manifest's format name; Load refuses other formats.
const Format = "zhiyin-nlu/1"

// File names inside a model folder.
const (
	ManifestName   = "nlu.json"
	intentGraph    = "intent.onnx"
	entitiesGraph  = "entities.onnx"
	intentVocab    = "intent.vocab"
	entitiesVocab  = "entities.vocab"
	lexiconFile    = "lexicon.tsv"
	featureVersion = "char-ngram-1..3+entity-delex/v1; tagger-window-5+bi+tri+class+intent+lexicon/v1"
)

// Manifest is nlu.json.
type Manifest struct {
	Format      string              `json:"format"`
	Intents     []string            `json:"intents"`
	EntityTypes []string            `json:"entity_types"`
	Labels      []string            `json:"labels,omitempty"`
	Features    FeatureParams       `json:"features"`
	Temperature float64             `json:"temperature"`
	Files       []ManifestFile      `json:"files"`
	DataHash    string              `json:"data_hash"`
	Seed        uint64              `json:"seed"`
	Metrics     TrainMetrics        `json:"metrics"`
	Synonyms    map[string]string   `json:"synonyms,omitempty"`
	Lookups     map[string][]string `json:"lookups,omitempty"`
	Regexes     []rules.NamedRegex  `json:"regexes,omitempty"`
}

// FeatureParams describe how features are made and hashed.
type FeatureParams struct {
	Hash       string `json:"hash"`
	Templates  string `json:"templates"`
	MaxNgram   int    `json:"max_ngram"`
	Weighting  string `json:"weighting"`
	Quantized  string `json:"quantized"`
	Normalizer string `json:"normalizer"`
}

// ManifestFile is one file of the folder with its sha256.
type ManifestFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// quantize returns per-column symmetric int8 weights of w ([rows x cols])
// and their scales.
func quantize(w []float32, rows, cols int) ([]int8, []float32) {
	scales := make([]float32, cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			scales[c] = max(scales[c], float32(math.Abs(float64(w[r*cols+c]))))
		}
	}
	for c := range scales {
		scales[c] /= 127
		if scales[c] == 0 {
			scales[c] = 1
		}
	}
	q := make([]int8, len(w))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			v := math.Round(float64(w[r*cols+c] / scales[c]))
			q[r*cols+c] = int8(max(-127, min(127, v)))
		}
	}
	return q, scales
}

// dequantize is quantize's inverse (for checking its effect).
func dequantize(q []int8, scales []float32, cols int) []float32 {
	w := make([]float32, len(q))
	for i, v := range q {
		w[i] = float32(v) * scales[i%cols]
	}
	return w
}

func vi(name string, t pb.ElemType, dims ...any) pb.ValueInfo { return pb.Value(name, t, dims...) }

func onnxModel(name string, nodes []pb.Node, inits []pb.Tensor, in, out []pb.ValueInfo) []byte {
	m := &pb.Model{
		IRVersion:    8,
		Opsets:       []pb.Opset{{Version: 17}},
		ProducerName: "zhiyin-train",
		DocString:    "zhiyin NLU " + name,
		Graph:        pb.Graph{Name: name, Nodes: nodes, Initializers: inits, Inputs: in, Outputs: out},
	}
	return m.Marshal()
}

func n(op string, in, out []string, attrs ...pb.Attr) pb.Node {
	return pb.Node{Name: op + "_" + out[0], OpType: op, Inputs: in, Outputs: out, Attrs: attrs}
}

func attrInt(name string, v int64) pb.Attr { return pb.Attr{Name: name, Type: pb.AttrInt, I: v} }

// intentONNX builds the intent graph from quantized weights.
func intentONNX(q []int8, scales, bias []float32, rows, classes int) []byte {
	inits := []pb.Tensor{
		pb.Int8Tensor("wq", []int64{int64(rows), int64(classes)}, q),
		pb.FloatTensor("w_scale", []int64{int64(classes)}, scales),
		pb.Int8Tensor("w_zero", []int64{int64(classes)}, make([]int8, classes)),
		pb.FloatTensor("bias", []int64{int64(classes)}, bias),
		pb.Int64Tensor("axis_k", []int64{1}, []int64{1}),
		pb.Int64Tensor("axis_last", []int64{1}, []int64{2}),
	}
	nodes := []pb.Node{
		n("Gather", []string{"wq", "ids"}, []string{"rows_q"}, attrInt("axis", 0)),
		n("DequantizeLinear", []string{"rows_q", "w_scale", "w_zero"}, []string{"rows"}, attrInt("axis", 2)),
		n("Unsqueeze", []string{"weights", "axis_last"}, []string{"weights3"}),
		n("Mul", []string{"rows", "weights3"}, []string{"weighted"}),
		n("ReduceSum", []string{"weighted", "axis_k"}, []string{"summed"}, attrInt("keepdims", 0)),
		n("Add", []string{"summed", "bias"}, []string{"logits"}),
	}
	return onnxModel("intent", nodes, inits,
		[]pb.ValueInfo{vi("ids", pb.Int64, "N", "K"), vi("weights", pb.Float, "N", "K")},
		[]pb.ValueInfo{vi("logits", pb.Float, "N", classes)})
}

// entitiesONNX builds the tagger graph; row `rows` of the table is the
// all-zero padding row.
func entitiesONNX(q []int8, scales []float32, trans []float32, rows, L int) []byte {
	padded := append(slices.Clone(q), make([]int8, L)...)
	inits := []pb.Tensor{
		pb.Int8Tensor("eq", []int64{int64(rows + 1), int64(L)}, padded),
		pb.FloatTensor("e_scale", []int64{int64(L)}, scales),
		pb.Int8Tensor("e_zero", []int64{int64(L)}, make([]int8, L)),
		pb.FloatTensor("trans", []int64{int64(L + 1), int64(L)}, trans),
		pb.Int64Tensor("axis_f", []int64{1}, []int64{1}),
	}
	nodes := []pb.Node{
		n("Gather", []string{"eq", "ids"}, []string{"rows_q"}, attrInt("axis", 0)),
		n("DequantizeLinear", []string{"rows_q", "e_scale", "e_zero"}, []string{"rows"}, attrInt("axis", 2)),
		n("ReduceSum", []string{"rows", "axis_f"}, []string{"emissions"}, attrInt("keepdims", 0)),
		n("Identity", []string{"trans"}, []string{"transitions"}),
	}
	return onnxModel("entities", nodes, inits,
		[]pb.ValueInfo{vi("ids", pb.Int64, "T", "F")},
		[]pb.ValueInfo{vi("emissions", pb.Float, "T", L), vi("transitions", pb.Float, L+1, L)})
}

// Save writes the model folder dir (created if needed; existing model files
// are replaced). The files depend only on the data and the seed.
func (t *Trained) Save(dir string) (*Manifest, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("save model: %w", err)
	}
	f := t.feat
	files := map[string][]byte{}

	iq, iscales := quantize(t.intent.W, t.intent.nf, t.intent.nc)
	files[intentGraph] = intentONNX(iq, iscales, t.intent.B, t.intent.nf, t.intent.nc)
	var iv bytes.Buffer
	for i, k := range f.intentVocab.keys {
		_ = binary.Write(&iv, binary.LittleEndian, k)
		_ = binary.Write(&iv, binary.LittleEndian, f.idf[i])
	}
	files[intentVocab] = iv.Bytes()
	if t.crf != nil {
		L := t.crf.L
		eq, escales := quantize(t.crf.E, t.crf.nf, L)
		trans := append(slices.Clone(t.crf.Start), t.crf.Trans...)
		files[entitiesGraph] = entitiesONNX(eq, escales, trans, t.crf.nf, L)
		var tv bytes.Buffer
		for _, k := range f.tagVocab.keys {
			_ = binary.Write(&tv, binary.LittleEndian, k)
		}
		files[entitiesVocab] = tv.Bytes()
		var lines []string
		for v, ts := range f.gaz.types {
			for _, ti := range ts {
				lines = append(lines, f.types[ti]+"\t"+v)
			}
		}
		slices.Sort(lines)
		files[lexiconFile] = []byte(strings.Join(lines, "\n") + "\n")
	}
	man := &Manifest{
		Format: Format, Intents: f.intents, EntityTypes: f.types, Temperature: t.temp,
		DataHash: t.DataHash, Seed: t.Seed, Metrics: t.Metrics, Synonyms: t.synonyms,
		Lookups: t.lookups, Regexes: t.regexes,
		Features: FeatureParams{Hash: "fnv1a-64", Templates: featureVersion, MaxNgram: f.maxN,
			Weighting: "sublinear tf-idf, l2-normalized", Quantized: "int8 symmetric per output column",
			Normalizer: "nlu/rules.Normalize"},
	}
	if t.crf != nil {
		man.Labels = f.labels
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		data := files[name]
		sum := sha256.Sum256(data)
		man.Files = append(man.Files, ManifestFile{Path: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))})
		if err := writeFileAtomic(filepath.Join(dir, name), data); err != nil {
			return nil, err
		}
	}
	js, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("save model: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, ManifestName), append(js, '\n')); err != nil {
		return nil, err
	}
	return man, nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return nil
}
