package quantize

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/zhiyin/zhiyin/inference/onnxpb"
)

// DefaultMinElements is the smallest weight quantized when
// Options.MinElements is 0: below it the extra nodes cost more than the
// int8 arithmetic saves.
const DefaultMinElements = 1024

// Options say what Dynamic quantizes and how.
type Options struct {
	// PerChannel gives every output column of a MatMul/Gemm weight its own
	// scale (better accuracy, a few more bytes); otherwise one scale per
	// weight. Gather tables always use one scale.
	PerChannel bool
	// MinElements is the smallest weight (in elements) that is quantized;
	// 0 means DefaultMinElements.
	MinElements int
	// ReduceRange quantizes weights to 7 bits ([-63, 63]) instead of 8
	// ([-127, 127]): it avoids the saturation of ONNX Runtime's uint8×int8
	// kernels on x86 CPUs without VNNI, at some accuracy cost.
	ReduceRange bool
	// KeepGather leaves Gather tables (embeddings) in float32; by default
	// they are stored as int8 and the gathered rows dequantized, as
	// onnxruntime's quantize_dynamic does.
	KeepGather bool
}

// Report says what Dynamic did.
type Report struct {
	// Quantized lists the rewritten nodes by name (a node without a name is
	// called "OpType:first output"), in graph order.
	Quantized []string `json:"quantized"`
	// Skipped gives, for every MatMul and Gemm left as it was and every
	// Gather of a float32 initializer left as it was, the reason.
	Skipped map[string]string `json:"skipped"`
	// SizeBefore and SizeAfter are the serialized model's sizes in bytes.
	SizeBefore int64 `json:"size_before"`
	SizeAfter  int64 `json:"size_after"`
	// Notes are other changes worth knowing (opset raised, a float weight
	// kept because something else still reads it).
	Notes []string `json:"notes,omitempty"`
}

// Dynamic rewrites a serialized ONNX ModelProto for dynamic quantization
// (see the package documentation) and returns the new model and what was
// done. When nothing qualifies the model comes back unchanged (a copy). The
// input is not modified. Errors wrap ErrNotONNX, ErrExternalData or
// ErrUnsupported. Safe for concurrent use.
func Dynamic(model []byte, opts Options) ([]byte, Report, error) {
	rep := Report{Skipped: map[string]string{}, SizeBefore: int64(len(model))}
	info, err := onnxpb.ReadInfo(model)
	if err != nil {
		return nil, rep, fmt.Errorf("quantize: %w: %w", ErrNotONNX, err)
	}
	if info.ExternalData {
		return nil, rep, fmt.Errorf("quantize: %w: load the model and save it with all tensors in one file (onnx.save_model(m, path, save_as_external_data=False)), then quantize that", ErrExternalData)
	}
	top, err := parseFields(model, "ModelProto")
	if err != nil {
		return nil, rep, fmt.Errorf("quantize: %w: %w", ErrNotONNX, err)
	}
	gi := -1
	for i, f := range top {
		if f.num == modelGraph {
			if gi >= 0 {
				return nil, rep, fmt.Errorf("quantize: %w: the model has more than one graph field", ErrUnsupported)
			}
			gi = i
		}
	}
	if gi < 0 || top[gi].typ != protowire.BytesType {
		return nil, rep, fmt.Errorf("quantize: %w: no graph", ErrNotONNX)
	}
	q := &quantizer{opts: opts, ir: info.IRVersion, rep: &rep, minElems: int64(opts.MinElements), qmax: 127}
	if q.minElems <= 0 {
		q.minElems = DefaultMinElements
	}
	if opts.ReduceRange {
		q.qmax = 63
	}
	graph, err := q.rewriteGraph(top[gi].val)
	if err != nil {
		if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrExternalData) {
			err = fmt.Errorf("%w: %w", ErrNotONNX, err)
		}
		return nil, rep, fmt.Errorf("quantize: %w", err)
	}
	if graph == nil {
		rep.SizeAfter = rep.SizeBefore
		return bytes.Clone(model), rep, nil
	}
	minOpset := int64(10) // DequantizeLinear
	if q.usedDQL {
		minOpset = 11 // DynamicQuantizeLinear
	}
	out := make([]byte, 0, len(model))
	lastOpset := -1
	for i, f := range top {
		if f.num == modelOpsetImport {
			lastOpset = i
		}
	}
	haveDefault := false
	for i, f := range top {
		switch {
		case i == gi:
			out = appendBytesField(out, modelGraph, graph)
		case f.num == modelOpsetImport && f.typ == protowire.BytesType:
			entry, isDefault, err := raiseOpset(f.val, minOpset, &rep)
			if err != nil {
				return nil, rep, fmt.Errorf("quantize: %w: %w", ErrNotONNX, err)
			}
			haveDefault = haveDefault || isDefault
			if entry == nil {
				out = append(out, f.raw...)
			} else {
				out = appendBytesField(out, modelOpsetImport, entry)
			}
		default:
			out = append(out, f.raw...)
		}
		if i == lastOpset && !haveDefault {
			out = appendBytesField(out, modelOpsetImport, appendVarintField(nil, opsetVersion, uint64(minOpset)))
			rep.Notes = append(rep.Notes, fmt.Sprintf("the model imported no default-domain opset: opset %d added", minOpset))
			haveDefault = true
		}
	}
	if !haveDefault {
		out = appendBytesField(out, modelOpsetImport, appendVarintField(nil, opsetVersion, uint64(minOpset)))
		rep.Notes = append(rep.Notes, fmt.Sprintf("the model imported no default-domain opset: opset %d added", minOpset))
	}
	rep.SizeAfter = int64(len(out))
	return out, rep, nil
}

// raiseOpset returns a rewritten OperatorSetIdProto when it is the default
// domain's and older than min (nil when it stays as it is), and whether it
// is the default domain's.
func raiseOpset(b []byte, min int64, rep *Report) ([]byte, bool, error) {
	fs, err := parseFields(b, "OperatorSetIdProto")
	if err != nil {
		return nil, false, err
	}
	domain, version := "", int64(0)
	for _, f := range fs {
		switch {
		case f.num == opsetDomain && f.typ == protowire.BytesType:
			domain = string(f.val)
		case f.num == opsetVersion && f.typ == protowire.VarintType:
			version = int64(f.u)
		}
	}
	if domain != "" && domain != "ai.onnx" {
		return nil, false, nil
	}
	if version >= min {
		return nil, true, nil
	}
	var out []byte
	for _, f := range fs {
		if f.num != opsetVersion {
			out = append(out, f.raw...)
		}
	}
	out = appendVarintField(out, opsetVersion, uint64(min))
	rep.Notes = append(rep.Notes, fmt.Sprintf("default-domain opset raised from %d to %d for the quantization operators; operators whose definition changed in between (Clip, Pad, Resize, Upsample…) may need the model re-exported at opset %d", version, min, min))
	return out, true, nil
}

// quantizer holds the state of one Dynamic call.
type quantizer struct {
	opts     Options
	ir       int64
	rep      *Report
	minElems int64
	qmax     float64

	names    map[string]bool     // every name used anywhere in the graph
	inits    map[string]*initRef // float and other initializers by name
	inputs   map[string]bool     // graph inputs
	outputs  map[string]bool     // graph outputs
	dql      map[string][3]string
	weights  map[weightKey]qWeight
	newInits [][]byte // serialized TensorProtos to add
	usedDQL  bool
	// replaced float weights: name → true once a quantized node reads the
	// int8 copy instead.
	replaced map[string]bool
}

type initRef struct {
	t     *tensor
	field int
}

type weightKey struct {
	name    string
	trans   bool
	alpha   uint32
	gather  bool
	channel bool
}

type qWeight struct {
	q, scale, zp string
}

// graphNames collects every name a graph (and its subgraphs) uses, and the
// names its subgraphs read, so that new names are unique and weights still
// read from inside a subgraph are kept.
func graphNames(b []byte, names, subReads map[string]bool, depth int) error {
	if depth > 32 {
		return fmt.Errorf("%w: subgraphs nested more than 32 deep", ErrUnsupported)
	}
	fs, err := parseFields(b, "GraphProto")
	if err != nil {
		return err
	}
	for _, f := range fs {
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case graphNode:
			n, err := parseNode(f.val)
			if err != nil {
				return err
			}
			names[n.name] = true
			for _, s := range n.outputs {
				names[s] = true
			}
			for _, s := range n.inputs {
				names[s] = true
				if depth > 0 {
					subReads[s] = true
				}
			}
			for _, g := range n.subgraphs {
				if err := graphNames(g, names, subReads, depth+1); err != nil {
					return err
				}
			}
		case graphInitializer:
			t, err := parseTensor(f.val)
			if err != nil {
				return err
			}
			names[t.name] = true
		case graphInput, graphOutput, graphValueInfo:
			if name, err := valueInfoName(f.val); err == nil {
				names[name] = true
			} else {
				return err
			}
		case graphSparseInit:
			sfs, err := parseFields(f.val, "SparseTensorProto")
			if err != nil {
				return err
			}
			for _, sf := range sfs {
				if sf.num == sparseValues && sf.typ == protowire.BytesType {
					t, err := parseTensor(sf.val)
					if err != nil {
						return err
					}
					names[t.name] = true
				}
			}
		}
	}
	return nil
}

func valueInfoName(b []byte) (string, error) {
	fs, err := parseFields(b, "ValueInfoProto")
	if err != nil {
		return "", err
	}
	for _, f := range fs {
		if f.num == valueInfoNameField && f.typ == protowire.BytesType {
			return string(f.val), nil
		}
	}
	return "", nil
}

// fresh returns base, or base_N, whichever is not used yet, and reserves it.
func (q *quantizer) fresh(base string) string {
	name := base
	for i := 1; q.names[name]; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	q.names[name] = true
	return name
}

// rewriteGraph returns the rewritten GraphProto, or nil when nothing was
// quantized.
func (q *quantizer) rewriteGraph(g []byte) ([]byte, error) {
	q.names = map[string]bool{"": true}
	subReads := map[string]bool{}
	if err := graphNames(g, q.names, subReads, 0); err != nil {
		return nil, err
	}
	fs, err := parseFields(g, "GraphProto")
	if err != nil {
		return nil, err
	}
	q.inits = map[string]*initRef{}
	q.inputs = map[string]bool{}
	q.outputs = map[string]bool{}
	q.dql = map[string][3]string{}
	q.weights = map[weightKey]qWeight{}
	q.replaced = map[string]bool{}
	inputField := map[string]int{}
	nodes := map[int]*node{}
	lastInit := -1
	for i, f := range fs {
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case graphInitializer:
			t, err := parseTensor(f.val)
			if err != nil {
				return nil, err
			}
			q.inits[t.name] = &initRef{t: t, field: i}
			lastInit = i
		case graphInput:
			name, err := valueInfoName(f.val)
			if err != nil {
				return nil, err
			}
			q.inputs[name] = true
			inputField[name] = i
		case graphOutput:
			name, err := valueInfoName(f.val)
			if err != nil {
				return nil, err
			}
			q.outputs[name] = true
		case graphNode:
			n, err := parseNode(f.val)
			if err != nil {
				return nil, err
			}
			nodes[i] = n
		}
	}
	for _, r := range q.inits {
		if r.t.external {
			return nil, fmt.Errorf("%w: initializer %s", ErrExternalData, r.t.name)
		}
	}

	// Rewrite the nodes in graph order.
	replacement := map[int][]newNode{}
	for i := range fs {
		n, ok := nodes[i]
		if !ok {
			continue
		}
		var repl []newNode
		var reason string
		switch {
		case n.domain != "" && n.domain != "ai.onnx":
			continue
		case n.op == "MatMul":
			repl, reason = q.matmul(n, false)
		case n.op == "Gemm":
			repl, reason = q.matmul(n, true)
		case n.op == "Gather":
			if q.opts.KeepGather {
				continue
			}
			repl, reason = q.gather(n)
		default:
			continue
		}
		key := nodeKey(n)
		if repl == nil {
			if reason != "" {
				q.rep.Skipped[key] = reason
			}
			continue
		}
		replacement[i] = repl
		q.rep.Quantized = append(q.rep.Quantized, key)
	}
	if len(replacement) == 0 {
		return nil, nil
	}

	// Which replaced float weights does anything still read?
	reads := map[string]bool{}
	for n := range subReads {
		reads[n] = true
	}
	for i, n := range nodes {
		if repl, ok := replacement[i]; ok {
			for _, nn := range repl {
				for _, s := range nn.inputs {
					reads[s] = true
				}
			}
			continue
		}
		for _, s := range n.inputs {
			reads[s] = true
		}
	}
	drop := map[int]bool{}
	names := make([]string, 0, len(q.replaced))
	for name := range q.replaced {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if reads[name] || q.outputs[name] {
			q.rep.Notes = append(q.rep.Notes, fmt.Sprintf("float weight %s kept: other nodes or graph outputs still use it", name))
			continue
		}
		drop[q.inits[name].field] = true
		if f, ok := inputField[name]; ok {
			drop[f] = true
		}
	}

	out := make([]byte, 0, len(g))
	emitInits := func() {
		for _, t := range q.newInits {
			out = appendBytesField(out, graphInitializer, t)
		}
	}
	for i, f := range fs {
		switch {
		case drop[i]:
		case replacement[i] != nil:
			for _, nn := range replacement[i] {
				out = appendBytesField(out, graphNode, nn.marshal())
			}
		default:
			out = append(out, f.raw...)
		}
		if i == lastInit {
			emitInits()
		}
	}
	if lastInit < 0 {
		emitInits()
	}
	return out, nil
}

func nodeKey(n *node) string {
	if n.name != "" {
		return n.name
	}
	if len(n.outputs) > 0 {
		return n.op + ":" + n.outputs[0]
	}
	return n.op
}

// weight checks that name is a float32 rank-2 initializer worth quantizing
// and returns its values, or the reason it is not.
func (q *quantizer) weight(name, role string) (*tensor, []float32, string) {
	r, ok := q.inits[name]
	if !ok {
		return nil, nil, fmt.Sprintf("%s (%s) is not an initializer", role, name)
	}
	t := r.t
	if t.dtype != typeFloat {
		return nil, nil, fmt.Sprintf("%s (%s) is %s, not float32", role, name, onnxpb.ElemType(int32(t.dtype)))
	}
	if len(t.dims) != 2 {
		return nil, nil, fmt.Sprintf("%s (%s) has rank %d, not 2", role, name, len(t.dims))
	}
	if n := t.elements(); n < q.minElems {
		return nil, nil, fmt.Sprintf("%s (%s) has %d elements, fewer than the minimum %d", role, name, n, q.minElems)
	}
	if q.inputs[name] && q.ir < 4 {
		return nil, nil, fmt.Sprintf("%s (%s) is also a graph input (IR version %d); re-export the model with IR version 4 or later", role, name, q.ir)
	}
	v, why := t.floats()
	if why != "" {
		return nil, nil, fmt.Sprintf("%s (%s): %s", role, name, why)
	}
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, nil, fmt.Sprintf("%s (%s) holds NaN or Inf", role, name)
		}
	}
	return t, v, ""
}

// quantizeWeight adds the int8 copy of a [K,N] weight (transposed from
// [N,K] when trans) with its scale (times alpha) and zero point, once per
// weight and variant.
func (q *quantizer) quantizeWeight(name string, t *tensor, v []float32, trans bool, alpha float32, perChannel, gather bool) qWeight {
	key := weightKey{name: name, trans: trans, alpha: math.Float32bits(alpha), gather: gather, channel: perChannel}
	if w, ok := q.weights[key]; ok {
		return w
	}
	rows, cols := int(t.dims[0]), int(t.dims[1])
	at := func(k, n int) float32 { return v[k*cols+n] }
	if trans {
		rows, cols = cols, rows
		at = func(k, n int) float32 { return v[n*rows+k] }
	}
	nScales := 1
	if perChannel {
		nScales = cols
	}
	amax := make([]float64, nScales)
	for k := 0; k < rows; k++ {
		for n := 0; n < cols; n++ {
			s := 0
			if perChannel {
				s = n
			}
			amax[s] = math.Max(amax[s], math.Abs(float64(at(k, n))))
		}
	}
	scales := make([]float32, nScales)
	for i, a := range amax {
		scales[i] = float32(a / q.qmax)
		if scales[i] == 0 {
			scales[i] = 1 // an all-zero weight (or column): any scale is exact
		}
	}
	qraw := make([]byte, rows*cols)
	for k := 0; k < rows; k++ {
		for n := 0; n < cols; n++ {
			s := scales[0]
			if perChannel {
				s = scales[n]
			}
			x := math.RoundToEven(float64(at(k, n)) / float64(s))
			x = math.Max(-q.qmax, math.Min(q.qmax, x))
			qraw[k*cols+n] = byte(int8(x))
		}
	}
	for i := range scales {
		scales[i] *= alpha
	}
	w := qWeight{q: q.fresh(name + "_quantized"), scale: q.fresh(name + "_scale"), zp: q.fresh(name + "_zero_point")}
	var sdims []int64
	if perChannel {
		sdims = []int64{int64(cols)}
	}
	q.newInits = append(q.newInits,
		marshalTensor(w.q, typeInt8, []int64{int64(rows), int64(cols)}, qraw),
		marshalTensor(w.scale, typeFloat, sdims, floatRaw(scales)),
		marshalTensor(w.zp, typeInt8, sdims, make([]byte, nScales)))
	q.weights[key] = w
	q.replaced[name] = true
	return w
}

// matmul returns the nodes replacing a MatMul or Gemm, or why it stays.
func (q *quantizer) matmul(n *node, gemm bool) ([]newNode, string) {
	if len(n.inputs) < 2 || len(n.outputs) != 1 || n.inputs[0] == "" || n.outputs[0] == "" {
		return nil, "unexpected inputs or outputs"
	}
	t, v, why := q.weight(n.inputs[1], "B")
	if why != "" {
		return nil, why
	}
	trans, alpha := false, float32(1)
	var bias string
	if gemm {
		if n.int("transA", 0) != 0 {
			return nil, "transA=1 is not supported (A would need a transpose)"
		}
		trans = n.int("transB", 0) != 0
		alpha = n.float("alpha", 1)
		beta := n.float("beta", 1)
		if len(n.inputs) > 2 && n.inputs[2] != "" {
			bias = n.inputs[2]
			if beta != 1 {
				c, ok := q.inits[bias]
				if !ok || c.t.dtype != typeFloat || q.inputs[bias] {
					return nil, fmt.Sprintf("beta=%g with a C that is not a float32 initializer", beta)
				}
				cv, why := c.t.floats()
				if why != "" {
					return nil, fmt.Sprintf("C (%s): %s", bias, why)
				}
				scaled := make([]float32, len(cv))
				for i, x := range cv {
					scaled[i] = x * beta
				}
				q.replaced[bias] = true // dropped when nothing else reads it
				bias = q.fresh(bias + "_times_beta")
				q.newInits = append(q.newInits, marshalTensor(bias, typeFloat, c.t.dims, floatRaw(scaled)))
			}
		}
	} else if len(n.inputs) != 2 {
		return nil, "unexpected inputs"
	}
	w := q.quantizeWeight(n.inputs[1], t, v, trans, alpha, q.opts.PerChannel, false)
	base := n.name
	if base == "" {
		base = n.outputs[0]
	}
	var out []newNode
	a := n.inputs[0]
	dq, ok := q.dql[a]
	if !ok {
		dq = [3]string{q.fresh(a + "_quantized"), q.fresh(a + "_scale"), q.fresh(a + "_zero_point")}
		q.dql[a] = dq
		q.usedDQL = true
		out = append(out, newNode{name: q.fresh(a + "_DynamicQuantizeLinear"), op: "DynamicQuantizeLinear", inputs: []string{a}, outputs: dq[:]})
	}
	mmOut := q.fresh(base + "_int32")
	castOut := q.fresh(base + "_int32_float")
	scale := q.fresh(base + "_scale")
	y := n.outputs[0]
	if bias != "" {
		y = q.fresh(base + "_no_bias")
	}
	out = append(out,
		newNode{name: q.fresh(base + "_MatMulInteger"), op: "MatMulInteger", inputs: []string{dq[0], w.q, dq[2], w.zp}, outputs: []string{mmOut}},
		newNode{name: q.fresh(base + "_Cast"), op: "Cast", inputs: []string{mmOut}, outputs: []string{castOut}, intAttrs: []intAttr{{"to", typeFloat}}},
		newNode{name: q.fresh(base + "_scale_Mul"), op: "Mul", inputs: []string{dq[1], w.scale}, outputs: []string{scale}},
		newNode{name: q.fresh(base + "_output_Mul"), op: "Mul", inputs: []string{castOut, scale}, outputs: []string{y}})
	if bias != "" {
		out = append(out, newNode{name: q.fresh(base + "_bias_Add"), op: "Add", inputs: []string{y, bias}, outputs: []string{n.outputs[0]}})
	}
	return out, ""
}

// gather returns the nodes replacing a Gather from a float table, or why it
// stays.
func (q *quantizer) gather(n *node) ([]newNode, string) {
	if len(n.inputs) != 2 || len(n.outputs) != 1 || n.outputs[0] == "" {
		return nil, "unexpected inputs or outputs"
	}
	if r, ok := q.inits[n.inputs[0]]; !ok || r.t.dtype != typeFloat {
		return nil, "" // a Gather of shapes or activations: nothing to report
	}
	t, v, why := q.weight(n.inputs[0], "data")
	if why != "" {
		return nil, why
	}
	w := q.quantizeWeight(n.inputs[0], t, v, false, 1, false, true)
	base := n.name
	if base == "" {
		base = n.outputs[0]
	}
	g := q.fresh(base + "_int8")
	return []newNode{
		{name: q.fresh(base + "_quantized"), op: "Gather", inputs: []string{w.q, n.inputs[1]}, outputs: []string{g}, intAttrs: []intAttr{{"axis", n.int("axis", 0)}}},
		{name: q.fresh(base + "_DequantizeLinear"), op: "DequantizeLinear", inputs: []string{g, w.scale, w.zp}, outputs: []string{n.outputs[0]}},
	}, ""
}
