package testmodels

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strings"

	pb "github.com/zhiyin/zhiyin/inference/onnxpb"
)

// BERT task names (the manifest's metadata task).
const (
	TaskSequence = "sequence"
	TaskToken    = "token"
)

// BERTOptions shape a generated BERT model. Zero fields take the defaults
// in brackets.
type BERTOptions struct {
	// Name is the folder's and the manifest's name [bert-intent for the
	// sequence task, bert-ner for the token task].
	Name string
	// Task is TaskSequence (logits [N,C]) or TaskToken (logits [N,T,C])
	// [TaskSequence].
	Task string
	// Seed drives the random weights [1].
	Seed         uint64
	Hidden       int // [128]
	Heads        int // [4]
	Intermediate int // [4×Hidden]
	Layers       int // [2]
	MaxPosition  int // rows of the position table [128]
	// MaxLen is the manifest's max_len, the longest encoding the model is
	// given [64]; at most MaxPosition.
	MaxLen int
	// NoTokenTypes leaves out the token_type_ids input (a 2-input model).
	NoTokenTypes bool
	// Int32Inputs declares the inputs int32 (some exporters do) instead
	// of int64.
	Int32Inputs bool
}

func (o BERTOptions) withDefaults() BERTOptions {
	if o.Task == "" {
		o.Task = TaskSequence
	}
	if o.Name == "" {
		o.Name = map[string]string{TaskSequence: "bert-intent", TaskToken: "bert-ner"}[o.Task]
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Hidden == 0 {
		o.Hidden = 128
	}
	if o.Heads == 0 {
		o.Heads = 4
	}
	if o.Intermediate == 0 {
		o.Intermediate = 4 * o.Hidden
	}
	if o.Layers == 0 {
		o.Layers = 2
	}
	if o.MaxPosition == 0 {
		o.MaxPosition = 128
	}
	if o.MaxLen == 0 {
		o.MaxLen = min(64, o.MaxPosition)
	}
	return o
}

// BERTLabels returns the labels of a task's generated model, in logit
// order (what labels.txt holds).
func BERTLabels(task string) []string {
	if task == TaskToken {
		return []string{"O", "B-carrier", "I-carrier", "B-city", "I-city"}
	}
	return []string{"other", "query_balance", "recharge", "complaint", "human_agent"}
}

// BERTKeywords returns the vocabulary tokens the generated model of a task
// maps to a label: for the sequence task, a sentence containing one of them
// is classified as its label (and as "other" without any); for the token
// task, each such token is tagged with its label and every other token O.
func BERTKeywords(task string) map[string]string {
	if task == TaskToken {
		return map[string]string{
			"移": "B-carrier", "联": "B-carrier", "电": "B-carrier",
			"动": "I-carrier", "通": "I-carrier", "信": "I-carrier",
			"北": "B-city", "上": "B-city", "广": "B-city", "深": "B-city",
			"京": "I-city", "海": "I-city", "州": "I-city", "圳": "I-city",
		}
	}
	return map[string]string{
		"余": "query_balance", "额": "query_balance", "balance": "query_balance",
		"充": "recharge", "值": "recharge", "recharge": "recharge",
		"投": "complaint", "诉": "complaint", "complaint": "complaint",
		"人": "human_agent", "工": "human_agent", "human": "human_agent", "agent": "human_agent",
	}
}

// bertCommonHanzi are frequent Chinese characters listed first in the
// generated vocabulary (the rest is filled from U+4E00 upwards).
const bertCommonHanzi = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持音送酒值充余额投诉查询套餐移宽账户费话单流量号码卡办理帮助谢您吗吧啊哦嗯广州圳市网络信号服务客"

// bertCJKCount is how many Chinese characters the vocabulary holds.
const bertCJKCount = 3000

// BERTVocab returns the generated vocabulary, one token per id: the special
// tokens [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0–4), ASCII punctuation,
// digits and letters, Chinese punctuation, some English words and ##
// continuations, then 3000 Chinese characters (frequent ones first, then
// U+4E00 upwards).
func BERTVocab() []string {
	v := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			v = append(v, s)
		}
	}
	for c := '!'; c <= '~'; c++ {
		if c >= 'A' && c <= 'Z' {
			continue // the model is uncased
		}
		add(string(c))
	}
	for _, c := range "，。！？、；：“”‘’（）《》【】…—～·" {
		add(string(c))
	}
	for _, w := range strings.Fields("the a an to of and is it my i you hello hi thanks please yes no ok help phone bill data plan card sim wifi app vip account balance recharge complaint human agent refund mobile unicom telecom china want check top up call") {
		add(w)
	}
	for _, w := range strings.Fields("##s ##es ##ed ##ing ##er ##ly ##al ##ion") {
		add(w)
	}
	for c := '0'; c <= '9'; c++ {
		add("##" + string(c))
	}
	for c := 'a'; c <= 'z'; c++ {
		add("##" + string(c))
	}
	n := 0
	for _, c := range bertCommonHanzi {
		if !seen[string(c)] {
			add(string(c))
			n++
		}
	}
	for c := rune(0x4E00); n < bertCJKCount; c++ {
		if !seen[string(c)] {
			add(string(c))
			n++
		}
	}
	return v
}

// bertBuilder accumulates a graph.
type bertBuilder struct {
	r     *rng
	nodes []pb.Node
	inits []pb.Tensor
	n     int
}

func (b *bertBuilder) op(op string, in []string, out string, attrs ...pb.Attr) string {
	b.n++
	b.nodes = append(b.nodes, pb.Node{Name: fmt.Sprintf("%s_%d", op, b.n), OpType: op, Inputs: in, Outputs: []string{out}, Attrs: attrs})
	return out
}

func (b *bertBuilder) init(t pb.Tensor) string {
	b.inits = append(b.inits, t)
	return t.Name
}

func (b *bertBuilder) scalar(name string, v float32) string {
	return b.init(pb.FloatTensor(name, nil, []float32{v}))
}

// matrix returns rows×cols values uniform in ±scale, with the rows and
// columns in zeroRows/zeroCols set to 0.
func (b *bertBuilder) matrix(rows, cols int, scale float64, zeroRows, zeroCols int) []float32 {
	m := b.r.floats(rows*cols, scale)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if i < zeroRows || j < zeroCols {
				m[i*cols+j] = 0
			}
		}
	}
	return m
}

// vector returns n values uniform in ±scale with the first zero set to 0,
// plus offset.
func (b *bertBuilder) vector(n int, scale float64, zero int, offset float32) []float32 {
	v := b.r.floats(n, scale)
	for i := range v {
		if i < zero {
			v[i] = 0
		}
		v[i] += offset
	}
	return v
}

func ints64(name string, v ...int64) pb.Tensor {
	return pb.Int64Tensor(name, []int64{int64(len(v))}, v)
}

func intsAttr(name string, v ...int64) pb.Attr {
	return pb.Attr{Name: name, Type: pb.AttrInts, Ints: v}
}

func floatAttr(name string, v float32) pb.Attr { return pb.Attr{Name: name, Type: pb.AttrFloat, F: v} }

// The generated model's label pathway. The first hidden dimensions are
// reserved: one per non-default label, a reference dimension and (sequence
// task) a salience dimension. Keyword embeddings write their label's
// dimension (and salience); no random weight reads or writes a reserved
// dimension, so the difference between a label's dimension and the
// reference survives every layer norm. For the sequence task head 0
// attends to salient tokens and copies the label dimensions into every
// position (so into [CLS]); for the token task attention leaves them alone
// and each token keeps its own.
const (
	bertKeyword  = 4.0  // keyword embedding on its label's dimension
	bertSalience = 4.0  // keyword embedding on the salience dimension
	bertFocus    = 3.0  // query bias that turns salience into attention
	bertPool     = 1.0  // pooler gain on reserved dimensions
	bertLogit    = 6.0  // sequence classifier gain on label − reference
	bertTagLogit = 0.6  // token classifier gain (its difference is larger)
	bertDefault  = 2.0  // bias of the default label (other / O)
	bertNoise    = 0.05 // classifier weights on the random dimensions
)

// BERT generates a small BERT-shaped model folder (model.onnx, model.yaml,
// vocab.txt, labels.txt) of kind nlu-bert, reproducible from opts: inputs
// input_ids, attention_mask and (unless NoTokenTypes) token_type_ids, all
// int64 [N,T]; word, position and type embeddings with layer norm; Layers
// encoder layers (multi-head self-attention with the mask applied,
// erf-GELU feed-forward, residuals and layer norms); then for the sequence
// task [CLS] → Gemm pooler (tanh) → Gemm → logits [N,C], for the token task
// MatMul → logits [N,T,C]. The weights are random except a keyword pathway
// that makes BERTKeywords predict their labels. It panics on options that
// cannot build a model (a programming error in a test).
func BERT(opts BERTOptions) Folder {
	o := opts.withDefaults()
	if o.Task != TaskSequence && o.Task != TaskToken {
		panic("testmodels: unknown BERT task " + o.Task)
	}
	if o.Hidden%o.Heads != 0 || o.MaxLen > o.MaxPosition {
		panic("testmodels: hidden must be a multiple of heads and max_len at most max_position")
	}
	vocab := BERTVocab()
	labels := BERTLabels(o.Task)
	m := bertModel(o, vocab, labels)
	onnx := m.Marshal()
	vocabTxt := []byte(strings.Join(vocab, "\n") + "\n")
	labelsTxt := []byte(strings.Join(labels, "\n") + "\n")
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	dtype := "int64"
	if o.Int32Inputs {
		dtype = "int32"
	}
	inputs := fmt.Sprintf("    - {name: input_ids, dtype: %s, shape: [N, T]}\n    - {name: attention_mask, dtype: %[1]s, shape: [N, T]}\n", dtype)
	shapes := "input_ids: [1, 16], attention_mask: [1, 16]"
	if !o.NoTokenTypes {
		inputs += fmt.Sprintf("    - {name: token_type_ids, dtype: %s, shape: [N, T]}\n", dtype)
		shapes += ", token_type_ids: [1, 16]"
	}
	out := fmt.Sprintf("    - {name: logits, dtype: float32, shape: [N, %d]}\n", len(labels))
	if o.Task == TaskToken {
		out = fmt.Sprintf("    - {name: logits, dtype: float32, shape: [N, T, %d]}\n", len(labels))
	}
	yaml := "# Generated by inference/testmodels (BERT); do not edit.\n" +
		fmt.Sprintf("name: %s\nkind: nlu-bert\nversion: \"1\"\ngraph: model.onnx\nfiles:\n", o.Name) +
		fmt.Sprintf("  - path: model.onnx\n    sha256: %s\n    size: %d\n", sum(onnx), len(onnx)) +
		fmt.Sprintf("  - path: vocab.txt\n    sha256: %s\n    size: %d\n", sum(vocabTxt), len(vocabTxt)) +
		fmt.Sprintf("  - path: labels.txt\n    sha256: %s\n    size: %d\n", sum(labelsTxt), len(labelsTxt)) +
		fmt.Sprintf("description: generated BERT-shaped %s classifier (hidden %d, %d layers, %d heads), random weights with a keyword pathway\n", o.Task, o.Hidden, o.Layers, o.Heads) +
		"contract:\n  batch_dim: N\n  inputs:\n" + inputs + "  outputs:\n" + out +
		"warmup:\n  - shapes: {" + shapes + "}\n    fill: {attention_mask: 1}\n" +
		fmt.Sprintf("metadata:\n  task: %s\n  labels: labels.txt\n  vocab: vocab.txt\n  max_len: \"%d\"\n  lower_case: \"true\"\n", o.Task, o.MaxLen)
	return Folder{Name: o.Name, Files: []File{
		{"model.onnx", onnx}, {"model.yaml", []byte(yaml)}, {"vocab.txt", vocabTxt}, {"labels.txt", labelsTxt},
	}}
}

func bertModel(o BERTOptions, vocab, labels []string) *pb.Model {
	b := &bertBuilder{r: &rng{o.Seed}}
	H, V, C := o.Hidden, len(vocab), len(labels)
	dh := H / o.Heads
	seq := o.Task == TaskSequence
	// Reserved dimensions: label l (1 ≤ l < C) at l-1, the reference at
	// C-1, salience at C.
	ref, sal := C-1, C
	reserved := C
	if seq {
		reserved = C + 1
	}
	if reserved > dh {
		panic("testmodels: too many labels for the head size")
	}
	labelDim := map[string]int{}
	for i, l := range labels[1:] {
		labelDim[l] = i
	}

	// Embeddings.
	word := b.matrix(V, H, 0.5, 0, reserved)
	ids := map[string]int{}
	for i, t := range vocab {
		ids[t] = i
	}
	for tok, label := range BERTKeywords(o.Task) {
		id, ok := ids[tok]
		if !ok {
			panic("testmodels: keyword " + tok + " is not in the vocabulary")
		}
		word[id*H+labelDim[label]] = bertKeyword
		if seq {
			word[id*H+sal] = bertSalience
		}
	}
	b.init(pb.FloatTensor("embeddings.word", []int64{int64(V), int64(H)}, word))
	b.init(pb.FloatTensor("embeddings.position", []int64{int64(o.MaxPosition), int64(H)}, b.matrix(o.MaxPosition, H, 0.1, 0, reserved)))
	b.init(pb.Int64Tensor("const.i1", nil, []int64{1}))
	b.init(pb.Int64Tensor("const.i0", nil, []int64{0}))
	b.init(ints64("const.mask_axes", 1, 2))
	b.init(ints64("const.heads_shape", 0, 0, int64(o.Heads), int64(dh)))
	b.init(ints64("const.hidden_shape", 0, 0, int64(H)))
	b.scalar("const.one", 1)
	b.scalar("const.half", 0.5)
	b.scalar("const.sqrt2", float32(math.Sqrt2))
	b.scalar("const.mask_value", -10000)
	b.scalar("const.attn_scale", float32(1/math.Sqrt(float64(dh))))

	inIDs, inMask, inTypes := "input_ids", "attention_mask", "token_type_ids"
	inType := pb.Int64
	if o.Int32Inputs {
		inType = pb.Int32
		inIDs = b.op("Cast", []string{inIDs}, "input_ids.int64", attrInt("to", int64(pb.Int64)))
		inMask = b.op("Cast", []string{inMask}, "attention_mask.int64", attrInt("to", int64(pb.Int64)))
		if !o.NoTokenTypes {
			inTypes = b.op("Cast", []string{inTypes}, "token_type_ids.int64", attrInt("to", int64(pb.Int64)))
		}
	}
	x := b.op("Gather", []string{"embeddings.word", inIDs}, "emb.word", attrInt("axis", 0))
	shape := b.op("Shape", []string{inIDs}, "emb.shape")
	seqLen := b.op("Gather", []string{shape, "const.i1"}, "emb.seq_len", attrInt("axis", 0))
	posIDs := b.op("Range", []string{"const.i0", seqLen, "const.i1"}, "emb.position_ids")
	pos := b.op("Gather", []string{"embeddings.position", posIDs}, "emb.position", attrInt("axis", 0))
	x = b.op("Add", []string{x, pos}, "emb.word_position")
	if !o.NoTokenTypes {
		b.init(pb.FloatTensor("embeddings.token_type", []int64{2, int64(H)}, b.matrix(2, H, 0.1, 0, reserved)))
		typ := b.op("Gather", []string{"embeddings.token_type", inTypes}, "emb.token_type", attrInt("axis", 0))
		x = b.op("Add", []string{x, typ}, "emb.sum")
	}
	x = b.layerNorm("embeddings.norm", x, H, reserved)

	// Attention mask: 0 where attended, -10000 where padded, [N,1,1,T].
	mf := b.op("Cast", []string{inMask}, "mask.float", attrInt("to", int64(pb.Float)))
	inv := b.op("Sub", []string{"const.one", mf}, "mask.inverted")
	add := b.op("Mul", []string{inv, "const.mask_value"}, "mask.additive")
	mask := b.op("Unsqueeze", []string{add, "const.mask_axes"}, "mask.broadcast")

	for l := 0; l < o.Layers; l++ {
		p := fmt.Sprintf("layer%d.", l)
		dense := func(name, in string, k, n int, w, bias []float32) string {
			b.init(pb.FloatTensor(p+name+".weight", []int64{int64(k), int64(n)}, w))
			b.init(pb.FloatTensor(p+name+".bias", []int64{int64(n)}, bias))
			mm := b.op("MatMul", []string{in, p + name + ".weight"}, p+name+".matmul")
			return b.op("Add", []string{mm, p + name + ".bias"}, p+name)
		}
		s := 1 / math.Sqrt(float64(H))
		wq := b.matrix(H, H, s, reserved, 0)
		wk := b.matrix(H, H, s, reserved, 0)
		wv := b.matrix(H, H, s, reserved, 0)
		wo := b.matrix(H, H, s, reserved, reserved)
		bq := b.vector(H, 0.05, 0, 0)
		bk := b.vector(H, 0.05, 0, 0)
		bv := b.vector(H, 0.05, reserved, 0)
		bo := b.vector(H, 0.05, reserved, 0)
		if seq {
			for i := 0; i < H; i++ {
				wq[i*H+0], wk[i*H+0] = 0, 0
				for r := 0; r < reserved; r++ {
					wv[i*H+r] = 0
				}
			}
			bq[0], bk[0] = bertFocus, 0
			wk[sal*H+0] = 1
			for r := 0; r <= ref; r++ {
				wv[r*H+r] = 1
				wo[r*H+r] = 1
			}
		}
		q := dense("query", x, H, H, wq, bq)
		k := dense("key", x, H, H, wk, bk)
		v := dense("value", x, H, H, wv, bv)
		heads := func(t, name string, perm ...int64) string {
			r := b.op("Reshape", []string{t, "const.heads_shape"}, p+name+".heads")
			return b.op("Transpose", []string{r}, p+name+".transposed", intsAttr("perm", perm...))
		}
		qh := heads(q, "query", 0, 2, 1, 3)
		kh := heads(k, "key", 0, 2, 3, 1)
		vh := heads(v, "value", 0, 2, 1, 3)
		scores := b.op("MatMul", []string{qh, kh}, p+"attention.scores")
		scores = b.op("Mul", []string{scores, "const.attn_scale"}, p+"attention.scaled")
		scores = b.op("Add", []string{scores, mask}, p+"attention.masked")
		probs := b.op("Softmax", []string{scores}, p+"attention.probs", attrInt("axis", -1))
		ctx := b.op("MatMul", []string{probs, vh}, p+"attention.context")
		ctx = b.op("Transpose", []string{ctx}, p+"attention.context_t", intsAttr("perm", 0, 2, 1, 3))
		ctx = b.op("Reshape", []string{ctx, "const.hidden_shape"}, p+"attention.context_merged")
		attn := dense("attention.output", ctx, H, H, wo, bo)
		x = b.op("Add", []string{x, attn}, p+"attention.residual")
		x = b.layerNorm(p+"attention.norm", x, H, reserved)

		I := o.Intermediate
		h := dense("intermediate", x, H, I, b.matrix(H, I, s, reserved, 0), b.vector(I, 0.05, 0, 0))
		// GELU(h) = 0.5·h·(1 + erf(h/√2))
		e := b.op("Div", []string{h, "const.sqrt2"}, p+"gelu.scaled")
		e = b.op("Erf", []string{e}, p+"gelu.erf")
		e = b.op("Add", []string{e, "const.one"}, p+"gelu.plus_one")
		e = b.op("Mul", []string{h, e}, p+"gelu.product")
		e = b.op("Mul", []string{e, "const.half"}, p+"gelu")
		ff := dense("output", e, I, H, b.matrix(I, H, 1/math.Sqrt(float64(I)), 0, reserved), b.vector(H, 0.05, reserved, 0))
		x = b.op("Add", []string{x, ff}, p+"output.residual")
		x = b.layerNorm(p+"output.norm", x, H, reserved)
	}

	// Classifier weights: label − reference on the reserved dimensions,
	// small noise from the others, the default label's bias.
	cls := b.matrix(H, C, bertNoise, reserved, 0)
	gain := float32(bertLogit)
	if !seq {
		gain = bertTagLogit
	}
	for l := 1; l < C; l++ {
		cls[(l-1)*C+l] = gain
		cls[ref*C+l] = -gain
	}
	clsBias := make([]float32, C)
	clsBias[0] = bertDefault
	b.init(pb.FloatTensor("classifier.bias", []int64{int64(C)}, clsBias))
	var outShape []any
	if seq {
		first := b.op("Gather", []string{x, "const.i0"}, "pooler.cls", attrInt("axis", 1))
		// The pooler's weight is stored [out, in] and used with transB=1.
		wp := b.matrix(H, H, 1/math.Sqrt(float64(H)), reserved, reserved)
		for r := 0; r <= ref; r++ {
			wp[r*H+r] = bertPool
		}
		b.init(pb.FloatTensor("pooler.weight", []int64{int64(H), int64(H)}, wp))
		b.init(pb.FloatTensor("pooler.bias", []int64{int64(H)}, b.vector(H, 0.05, reserved, 0)))
		pooled := b.op("Gemm", []string{first, "pooler.weight", "pooler.bias"}, "pooler.dense", attrInt("transB", 1))
		pooled = b.op("Tanh", []string{pooled}, "pooler.output")
		b.init(pb.FloatTensor("classifier.weight", []int64{int64(H), int64(C)}, cls))
		b.op("Gemm", []string{pooled, "classifier.weight", "classifier.bias"}, "logits")
		outShape = []any{"N", C}
	} else {
		b.init(pb.FloatTensor("classifier.weight", []int64{int64(H), int64(C)}, cls))
		mm := b.op("MatMul", []string{x, "classifier.weight"}, "classifier.matmul")
		b.op("Add", []string{mm, "classifier.bias"}, "logits")
		outShape = []any{"N", "T", C}
	}
	in := []pb.ValueInfo{vi("input_ids", inType, "N", "T"), vi("attention_mask", inType, "N", "T")}
	if !o.NoTokenTypes {
		in = append(in, vi("token_type_ids", inType, "N", "T"))
	}
	m := newModel(o.Name, b.nodes, b.inits, in, []pb.ValueInfo{vi("logits", pb.Float, outShape...)})
	m.Metadata = append(m.Metadata, pb.KV{Key: "task", Value: o.Task})
	return m
}

// layerNorm appends a LayerNormalization over the last axis whose scale is
// 1 and bias 0 on the reserved dimensions.
func (b *bertBuilder) layerNorm(name, x string, h, reserved int) string {
	b.init(pb.FloatTensor(name+".weight", []int64{int64(h)}, b.vector(h, 0.1, reserved, 1)))
	b.init(pb.FloatTensor(name+".bias", []int64{int64(h)}, b.vector(h, 0.05, reserved, 0)))
	return b.op("LayerNormalization", []string{x, name + ".weight", name + ".bias"}, name, attrInt("axis", -1), floatAttr("epsilon", 1e-12))
}
