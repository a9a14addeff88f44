package quantize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/zhiyin/zhiyin/inference/onnxpb"
	"github.com/zhiyin/zhiyin/inference/testmodels"
)

// seq returns n deterministic values in [-scale, scale].
func seq(n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = scale * float32(math.Sin(float64(i)*0.731+0.3))
	}
	return v
}

func vi(name string, t pb.ElemType, dims ...any) pb.ValueInfo { return pb.Value(name, t, dims...) }

func model(nodes []pb.Node, inits []pb.Tensor, in, out []pb.ValueInfo) *pb.Model {
	return &pb.Model{
		IRVersion: 8, Opsets: []pb.Opset{{Version: 17}}, ProducerName: "quantize-test", DocString: "test model",
		Graph:    pb.Graph{Name: "g", Nodes: nodes, Initializers: inits, Inputs: in, Outputs: out},
		Metadata: []pb.KV{{Key: "keep", Value: "me"}},
	}
}

func mm(name, a, b, y string) pb.Node {
	return pb.Node{Name: name, OpType: "MatMul", Inputs: []string{a, b}, Outputs: []string{y}}
}

// matmulModel is y = x·W with W [k,n].
func matmulModel(k, n int) *pb.Model {
	return model([]pb.Node{mm("mm", "x", "W", "y")},
		[]pb.Tensor{pb.FloatTensor("W", []int64{int64(k), int64(n)}, seq(k*n, 0.5))},
		[]pb.ValueInfo{vi("x", pb.Float, "N", k)}, []pb.ValueInfo{vi("y", pb.Float, "N", n)})
}

// parsed is a decoded output model, for assertions.
type parsed struct {
	top   []field
	nodes []*node
	raw   [][]byte // each node's bytes
	inits map[string]*tensor
	order []string // initializer names in order
	in    []string
	ops   []string
}

func parse(t *testing.T, b []byte) parsed {
	t.Helper()
	if _, err := pb.ReadInfo(b); err != nil {
		t.Fatalf("output is not a model: %v", err)
	}
	top, err := parseFields(b, "ModelProto")
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{top: top, inits: map[string]*tensor{}}
	for _, f := range top {
		if f.num != modelGraph {
			continue
		}
		gfs, err := parseFields(f.val, "GraphProto")
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gfs {
			switch g.num {
			case graphNode:
				n, err := parseNode(g.val)
				if err != nil {
					t.Fatal(err)
				}
				p.nodes = append(p.nodes, n)
				p.raw = append(p.raw, g.val)
				p.ops = append(p.ops, n.op)
			case graphInitializer:
				tt, err := parseTensor(g.val)
				if err != nil {
					t.Fatal(err)
				}
				p.inits[tt.name] = tt
				p.order = append(p.order, tt.name)
			case graphInput:
				name, _ := valueInfoName(g.val)
				p.in = append(p.in, name)
			}
		}
	}
	return p
}

func (p parsed) opset(domain string) int64 {
	for _, f := range p.top {
		if f.num != modelOpsetImport {
			continue
		}
		fs, _ := parseFields(f.val, "")
		d, v := "", int64(0)
		for _, x := range fs {
			if x.num == opsetDomain {
				d = string(x.val)
			}
			if x.num == opsetVersion {
				v = int64(x.u)
			}
		}
		if d == domain {
			return v
		}
	}
	return -1
}

func (p parsed) node(op string) *node {
	for _, n := range p.nodes {
		if n.op == op {
			return n
		}
	}
	return nil
}

func int8s(t *tensor) []int8 {
	out := make([]int8, len(t.raw))
	for i, b := range t.raw {
		out[i] = int8(b)
	}
	return out
}

func floatsOf(t *testing.T, tt *tensor) []float32 {
	t.Helper()
	v, why := tt.floats()
	if why != "" {
		t.Fatal(why)
	}
	return v
}

func TestMatMulRewrite(t *testing.T) {
	for _, pc := range []bool{false, true} {
		name := map[bool]string{false: "per-tensor", true: "per-channel"}[pc]
		t.Run(name, func(t *testing.T) {
			in := matmulModel(64, 32).Marshal()
			out, rep, err := Dynamic(in, Options{PerChannel: pc})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rep.Quantized, []string{"mm"}) || len(rep.Skipped) != 0 {
				t.Fatalf("report: %+v", rep)
			}
			if rep.SizeBefore != int64(len(in)) || rep.SizeAfter != int64(len(out)) || rep.SizeAfter*3 > rep.SizeBefore {
				t.Errorf("sizes: %d -> %d (file %d)", rep.SizeBefore, rep.SizeAfter, len(out))
			}
			p := parse(t, out)
			if want := []string{"DynamicQuantizeLinear", "MatMulInteger", "Cast", "Mul", "Mul"}; !slices.Equal(p.ops, want) {
				t.Fatalf("ops %v, want %v", p.ops, want)
			}
			if _, ok := p.inits["W"]; ok {
				t.Error("the float weight is still there")
			}
			wq, scale, zp := p.inits["W_quantized"], p.inits["W_scale"], p.inits["W_zero_point"]
			if wq == nil || scale == nil || zp == nil {
				t.Fatalf("initializers %v", p.order)
			}
			if wq.dtype != typeInt8 || !slices.Equal(wq.dims, []int64{64, 32}) || len(wq.raw) != 64*32 {
				t.Errorf("W_quantized: %+v", wq)
			}
			wantDims := []int64(nil)
			if pc {
				wantDims = []int64{32}
			}
			if !slices.Equal(scale.dims, wantDims) || !slices.Equal(zp.dims, wantDims) || zp.dtype != typeInt8 {
				t.Errorf("scale dims %v, zero point %v %d", scale.dims, zp.dims, zp.dtype)
			}
			// Dequantized weights are within half a step of the originals,
			// and the largest magnitude maps to ±127.
			w := seq(64*32, 0.5)
			s := floatsOf(t, scale)
			q := int8s(wq)
			peak := int8(0)
			for i, x := range w {
				sc := s[0]
				if pc {
					sc = s[i%32]
				}
				if d := math.Abs(float64(q[i])*float64(sc) - float64(x)); d > float64(sc)/2+1e-7 {
					t.Fatalf("weight %d: %v dequantizes to %v (scale %v)", i, x, float32(q[i])*sc, sc)
				}
				peak = max(peak, q[i], -q[i])
			}
			if peak != 127 {
				t.Errorf("largest |q| = %d, want 127", peak)
			}
			mi := p.node("MatMulInteger")
			dq := p.node("DynamicQuantizeLinear")
			if !slices.Equal(mi.inputs, []string{dq.outputs[0], "W_quantized", dq.outputs[2], "W_zero_point"}) {
				t.Errorf("MatMulInteger inputs %v", mi.inputs)
			}
			if cast := p.node("Cast"); cast.int("to", 0) != typeFloat {
				t.Errorf("Cast to %d", cast.int("to", 0))
			}
			if last := p.nodes[len(p.nodes)-1]; !slices.Equal(last.outputs, []string{"y"}) {
				t.Errorf("the last node writes %v, want y", last.outputs)
			}
			if p.opset("") != 17 {
				t.Errorf("opset %d", p.opset(""))
			}
		})
	}
}

func TestReduceRange(t *testing.T) {
	out, _, err := Dynamic(matmulModel(64, 32).Marshal(), Options{ReduceRange: true})
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, out)
	peak := int8(0)
	for _, q := range int8s(p.inits["W_quantized"]) {
		peak = max(peak, q, -q)
	}
	if peak != 63 {
		t.Errorf("largest |q| = %d, want 63", peak)
	}
}

func TestSkipReasons(t *testing.T) {
	w := func(name string, dims ...int64) pb.Tensor {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		return pb.FloatTensor(name, dims, seq(int(n), 1))
	}
	cases := []struct {
		name   string
		nodes  []pb.Node
		inits  []pb.Tensor
		opts   Options
		node   string
		reason string
	}{
		{"small", []pb.Node{mm("m", "x", "W", "y")}, []pb.Tensor{w("W", 8, 4)}, Options{}, "m", "fewer than the minimum 1024"},
		{"computed B", []pb.Node{mm("m", "x", "x2", "y")}, nil, Options{}, "m", "is not an initializer"},
		{"rank 3", []pb.Node{mm("m", "x", "W", "y")}, []pb.Tensor{w("W", 4, 32, 32)}, Options{}, "m", "rank 3"},
		{"int64", []pb.Node{mm("m", "x", "W", "y")}, []pb.Tensor{pb.Int64Tensor("W", []int64{64, 32}, make([]int64, 2048))}, Options{}, "m", "int64, not float32"},
		{"transA", []pb.Node{{Name: "g", OpType: "Gemm", Inputs: []string{"x", "W"}, Outputs: []string{"y"}, Attrs: []pb.Attr{{Name: "transA", Type: pb.AttrInt, I: 1}}}}, []pb.Tensor{w("W", 64, 32)}, Options{}, "g", "transA"},
		{"beta computed C", []pb.Node{{Name: "g", OpType: "Gemm", Inputs: []string{"x", "W", "x2"}, Outputs: []string{"y"}, Attrs: []pb.Attr{{Name: "beta", Type: pb.AttrFloat, F: 2}}}}, []pb.Tensor{w("W", 64, 32)}, Options{}, "g", "beta=2"},
		{"gather computed", []pb.Node{{Name: "ga", OpType: "Gather", Inputs: []string{"x", "ids"}, Outputs: []string{"y"}}}, nil, Options{}, "", ""},
		{"gather int64", []pb.Node{{Name: "ga", OpType: "Gather", Inputs: []string{"S", "ids"}, Outputs: []string{"y"}}}, []pb.Tensor{pb.Int64Tensor("S", []int64{64, 32}, make([]int64, 2048))}, Options{}, "", ""},
		{"gather small", []pb.Node{{Name: "ga", OpType: "Gather", Inputs: []string{"W", "ids"}, Outputs: []string{"y"}}}, []pb.Tensor{w("W", 2, 32)}, Options{}, "ga", "64 elements"},
		{"unnamed", []pb.Node{{OpType: "MatMul", Inputs: []string{"x", "W"}, Outputs: []string{"y"}}}, []pb.Tensor{w("W", 2, 2)}, Options{}, "MatMul:y", "fewer"},
		{"raw size", []pb.Node{mm("m", "x", "W", "y")}, []pb.Tensor{{Name: "W", Type: pb.Float, Dims: []int64{64, 32}, Raw: make([]byte, 100)}}, Options{}, "m", "raw_data holds 100 bytes"},
		{"nan", []pb.Node{mm("m", "x", "W", "y")}, []pb.Tensor{pb.FloatTensor("W", []int64{32, 32}, append(seq(1023, 1), float32(math.NaN())))}, Options{}, "m", "NaN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := model(c.nodes, c.inits, []pb.ValueInfo{vi("x", pb.Float, "N", 64)}, []pb.ValueInfo{vi("y", pb.Float, "N", 32)}).Marshal()
			out, rep, err := Dynamic(in, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Quantized) != 0 {
				t.Errorf("quantized %v", rep.Quantized)
			}
			if c.node == "" && len(rep.Skipped) != 0 || c.node != "" && !strings.Contains(rep.Skipped[c.node], c.reason) {
				t.Errorf("skipped %v, want %q: …%s…", rep.Skipped, c.node, c.reason)
			}
			if !bytes.Equal(out, in) || rep.SizeAfter != rep.SizeBefore {
				t.Error("a model with nothing to quantize changed")
			}
		})
	}
}

func TestMinElements(t *testing.T) {
	in := matmulModel(8, 4).Marshal()
	_, rep, err := Dynamic(in, Options{MinElements: 32})
	if err != nil || len(rep.Quantized) != 1 {
		t.Fatalf("MinElements 32 on 32 elements: %v %+v", err, rep)
	}
	_, rep, _ = Dynamic(in, Options{MinElements: 33})
	if len(rep.Quantized) != 0 {
		t.Fatalf("MinElements 33 on 32 elements: %+v", rep)
	}
}

func TestGemm(t *testing.T) {
	attrs := []pb.Attr{{Name: "transB", Type: pb.AttrInt, I: 1}, {Name: "alpha", Type: pb.AttrFloat, F: 0.5}, {Name: "beta", Type: pb.AttrFloat, F: 2}}
	m := model([]pb.Node{{Name: "g", OpType: "Gemm", Inputs: []string{"x", "W", "C"}, Outputs: []string{"y"}, Attrs: attrs}},
		[]pb.Tensor{pb.FloatTensor("W", []int64{32, 64}, seq(2048, 0.5)), pb.FloatTensor("C", []int64{32}, seq(32, 1))},
		[]pb.ValueInfo{vi("x", pb.Float, "N", 64)}, []pb.ValueInfo{vi("y", pb.Float, "N", 32)})
	out, rep, err := Dynamic(m.Marshal(), Options{})
	if err != nil || !slices.Equal(rep.Quantized, []string{"g"}) {
		t.Fatalf("%v %+v", err, rep)
	}
	p := parse(t, out)
	if want := []string{"DynamicQuantizeLinear", "MatMulInteger", "Cast", "Mul", "Mul", "Add"}; !slices.Equal(p.ops, want) {
		t.Fatalf("ops %v", p.ops)
	}
	wq := p.inits["W_quantized"]
	if !slices.Equal(wq.dims, []int64{64, 32}) {
		t.Errorf("transB weight stored as %v, want [64 32]", wq.dims)
	}
	// The scale carries alpha: q·scale ≈ alpha·Wᵀ.
	w, s, q := seq(2048, 0.5), floatsOf(t, p.inits["W_scale"])[0], int8s(wq)
	for k := 0; k < 64; k++ {
		for n := 0; n < 32; n++ {
			if d := math.Abs(float64(q[k*32+n])*float64(s) - 0.5*float64(w[n*64+k])); d > float64(s) {
				t.Fatalf("W[%d,%d]: %v vs %v", n, k, float32(q[k*32+n])*s, 0.5*w[n*64+k])
			}
		}
	}
	// C is scaled by beta into a new initializer; the old one is dropped.
	add := p.node("Add")
	c := p.inits[add.inputs[1]]
	if c == nil || add.inputs[1] == "C" || p.inits["C"] != nil {
		t.Fatalf("bias %v, initializers %v", add.inputs, p.order)
	}
	for i, x := range floatsOf(t, c) {
		if x != 2*seq(32, 1)[i] {
			t.Fatalf("C·beta[%d] = %v", i, x)
		}
	}
}

func TestSharing(t *testing.T) {
	// q, k and v read the same activation (one DynamicQuantizeLinear); two
	// MatMuls share one weight (quantized once); W2 is also read by an Add
	// (kept in float).
	nodes := []pb.Node{
		mm("q", "x", "W1", "yq"), mm("k", "x", "W2", "yk"), mm("v", "x", "W1", "yv"),
		{Name: "add", OpType: "Add", Inputs: []string{"yk", "W2"}, Outputs: []string{"z"}},
	}
	inits := []pb.Tensor{pb.FloatTensor("W1", []int64{64, 64}, seq(4096, 1)), pb.FloatTensor("W2", []int64{64, 64}, seq(4096, 2))}
	out, rep, err := Dynamic(model(nodes, inits, []pb.ValueInfo{vi("x", pb.Float, "N", 64)}, []pb.ValueInfo{vi("z", pb.Float, "N", 64)}).Marshal(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, out)
	count := map[string]int{}
	for _, op := range p.ops {
		count[op]++
	}
	if count["DynamicQuantizeLinear"] != 1 || count["MatMulInteger"] != 3 {
		t.Errorf("ops %v", p.ops)
	}
	if p.ops[0] != "DynamicQuantizeLinear" {
		t.Error("the shared DynamicQuantizeLinear is not before its first use")
	}
	if _, ok := p.inits["W1_quantized_1"]; ok {
		t.Error("W1 quantized twice")
	}
	if p.inits["W1"] != nil || p.inits["W2"] == nil || p.inits["W2_quantized"] == nil {
		t.Errorf("initializers %v", p.order)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "W2 kept") {
		t.Errorf("notes %v", rep.Notes)
	}
}

func TestUniqueNames(t *testing.T) {
	// The names the quantizer would pick are taken.
	nodes := []pb.Node{
		{Name: "taken", OpType: "Identity", Inputs: []string{"x"}, Outputs: []string{"W_quantized"}},
		{Name: "taken2", OpType: "Identity", Inputs: []string{"W_quantized"}, Outputs: []string{"x_quantized"}},
		mm("mm", "x_quantized", "W", "y"),
	}
	m := model(nodes, []pb.Tensor{pb.FloatTensor("W", []int64{64, 32}, seq(2048, 1)), pb.FloatTensor("W_scale", []int64{1}, []float32{1})},
		[]pb.ValueInfo{vi("x", pb.Float, "N", 64)}, []pb.ValueInfo{vi("y", pb.Float, "N", 32)})
	out, _, err := Dynamic(m.Marshal(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := parse(t, out)
	seen := map[string]string{}
	for _, n := range p.nodes {
		for _, s := range append(slices.Clone(n.outputs), n.name) {
			if other, ok := seen[s]; ok {
				t.Errorf("%q produced twice (%s)", s, other)
			}
			seen[s] = n.op
		}
	}
	for _, name := range p.order {
		if _, ok := seen[name]; ok {
			t.Errorf("initializer %q is also a node output", name)
		}
	}
	if p.inits["W_quantized_1"] == nil || p.inits["W_scale_1"] == nil {
		t.Errorf("initializers %v", p.order)
	}
}

func TestGather(t *testing.T) {
	table := seq(100*32, 1)
	m := model([]pb.Node{{Name: "emb", OpType: "Gather", Inputs: []string{"E", "ids"}, Outputs: []string{"y"}, Attrs: []pb.Attr{{Name: "axis", Type: pb.AttrInt, I: 0}}}},
		[]pb.Tensor{pb.FloatTensor("E", []int64{100, 32}, table)},
		[]pb.ValueInfo{vi("ids", pb.Int64, "N", "T")}, []pb.ValueInfo{vi("y", pb.Float, "N", "T", 32)})
	out, rep, err := Dynamic(m.Marshal(), Options{})
	if err != nil || !slices.Equal(rep.Quantized, []string{"emb"}) {
		t.Fatalf("%v %+v", err, rep)
	}
	p := parse(t, out)
	if !slices.Equal(p.ops, []string{"Gather", "DequantizeLinear"}) || p.opset("") != 17 {
		t.Fatalf("ops %v opset %d", p.ops, p.opset(""))
	}
	if g := p.node("Gather"); g.inputs[0] != "E_quantized" || g.inputs[1] != "ids" {
		t.Errorf("gather inputs %v", g.inputs)
	}
	_, rep, _ = Dynamic(m.Marshal(), Options{KeepGather: true})
	if len(rep.Quantized) != 0 || len(rep.Skipped) != 0 {
		t.Errorf("KeepGather: %+v", rep)
	}
}

// TestPreserved: what the quantizer does not rewrite keeps its bytes:
// unknown fields in the model, a node and an initializer, metadata, doc
// strings, the producer, other opsets.
func TestPreserved(t *testing.T) {
	m := matmulModel(64, 32)
	m.Opsets = append(m.Opsets, pb.Opset{Domain: "com.example", Version: 3})
	m.Graph.Nodes = append(m.Graph.Nodes, pb.Node{Name: "relu", OpType: "Relu", Inputs: []string{"y"}, Outputs: []string{"z"}})
	m.Graph.Initializers = append(m.Graph.Initializers, pb.FloatTensor("unused", []int64{2}, []float32{1, 2}))
	m.Graph.Outputs = []pb.ValueInfo{vi("z", pb.Float, "N", 32)}
	in := m.Marshal()
	// Unknown fields: one at the end of the model, one in the graph.
	in = protowire.AppendTag(in, 999, protowire.VarintType)
	in = protowire.AppendVarint(in, 42)
	out, rep, err := Dynamic(in, Options{})
	if err != nil || len(rep.Quantized) != 1 {
		t.Fatalf("%v %+v", err, rep)
	}
	before, after := parse(t, in), parse(t, out)
	var kept, keptAfter [][]byte
	for _, f := range before.top {
		if f.num != modelGraph {
			kept = append(kept, f.raw)
		}
	}
	for _, f := range after.top {
		if f.num != modelGraph {
			keptAfter = append(keptAfter, f.raw)
		}
	}
	if !slices.EqualFunc(kept, keptAfter, bytes.Equal) {
		t.Error("model fields other than the graph changed")
	}
	if !bytes.Equal(before.raw[1], after.raw[len(after.raw)-1]) {
		t.Error("the untouched Relu node changed")
	}
	if after.inits["unused"] == nil {
		t.Error("an unrelated initializer was dropped")
	}
	info, _ := pb.ReadInfo(out)
	if info.Metadata["keep"] != "me" || info.Opsets["com.example"] != 3 || info.ProducerName != "quantize-test" {
		t.Errorf("info %+v", info)
	}
}

func TestOpset(t *testing.T) {
	for _, c := range []struct {
		name   string
		opsets []pb.Opset
		want   int64
		note   string
	}{
		{"raised", []pb.Opset{{Version: 9}}, 11, "raised from 9 to 11"},
		{"ai.onnx raised", []pb.Opset{{Domain: "ai.onnx", Version: 10}}, 11, "raised from 10 to 11"},
		{"missing", []pb.Opset{{Domain: "com.example", Version: 1}}, 11, "opset 11 added"},
		{"none", nil, 11, "opset 11 added"},
		{"kept", []pb.Opset{{Version: 13}}, 13, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := matmulModel(64, 32)
			m.Opsets = c.opsets
			out, rep, err := Dynamic(m.Marshal(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			p := parse(t, out)
			domain := ""
			if strings.HasPrefix(c.name, "ai.onnx") {
				domain = "ai.onnx"
			}
			if got := p.opset(domain); got != c.want {
				t.Errorf("opset %d, want %d", got, c.want)
			}
			if c.note == "" && len(rep.Notes) > 0 || c.note != "" && (len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], c.note)) {
				t.Errorf("notes %v, want …%s…", rep.Notes, c.note)
			}
		})
	}
}

func TestWeightAsGraphInput(t *testing.T) {
	m := matmulModel(64, 32)
	m.Graph.Inputs = append(m.Graph.Inputs, vi("W", pb.Float, 64, 32))
	out, rep, err := Dynamic(m.Marshal(), Options{})
	if err != nil || len(rep.Quantized) != 1 {
		t.Fatalf("IR 8: %v %+v", err, rep)
	}
	if p := parse(t, out); !slices.Equal(p.in, []string{"x"}) {
		t.Errorf("graph inputs %v, want [x]", p.in)
	}
	m.IRVersion = 3
	_, rep, _ = Dynamic(m.Marshal(), Options{})
	if !strings.Contains(rep.Skipped["mm"], "graph input (IR version 3)") {
		t.Errorf("IR 3: %+v", rep)
	}
}

// floatDataTensor writes a TensorProto with float_data instead of raw_data.
func floatDataTensor(name string, dims []int64, v []float32, packed bool) []byte {
	var b []byte
	var p []byte
	for _, d := range dims {
		p = protowire.AppendVarint(p, uint64(d))
	}
	b = appendBytesField(b, tensorDims, p)
	b = appendVarintField(b, tensorDataType, typeFloat)
	if packed {
		var fb []byte
		for _, x := range v {
			fb = binary.LittleEndian.AppendUint32(fb, math.Float32bits(x))
		}
		b = appendBytesField(b, tensorFloatData, fb)
	} else {
		for _, x := range v {
			b = protowire.AppendTag(b, tensorFloatData, protowire.Fixed32Type)
			b = protowire.AppendFixed32(b, math.Float32bits(x))
		}
	}
	return appendStringField(b, tensorName, name)
}

// withInitializer returns the model with its only initializer replaced by
// raw TensorProto bytes.
func withInitializer(t *testing.T, m *pb.Model, tensorBytes []byte) []byte {
	t.Helper()
	m.Graph.Initializers = nil
	b := m.Marshal()
	top, err := parseFields(b, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, f := range top {
		if f.num == modelGraph {
			out = appendBytesField(out, modelGraph, appendBytesField(slices.Clone(f.val), graphInitializer, tensorBytes))
			continue
		}
		out = append(out, f.raw...)
	}
	return out
}

func TestFloatData(t *testing.T) {
	ref, _, err := Dynamic(matmulModel(64, 32).Marshal(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := parse(t, ref).inits["W_quantized"].raw
	for _, packed := range []bool{true, false} {
		in := withInitializer(t, matmulModel(64, 32), floatDataTensor("W", []int64{64, 32}, seq(2048, 0.5), packed))
		out, rep, err := Dynamic(in, Options{})
		if err != nil || len(rep.Quantized) != 1 {
			t.Fatalf("packed=%v: %v %+v", packed, err, rep)
		}
		if got := parse(t, out).inits["W_quantized"].raw; !bytes.Equal(got, want) {
			t.Errorf("packed=%v: float_data quantizes differently from raw_data", packed)
		}
	}
}

func TestErrors(t *testing.T) {
	good := matmulModel(64, 32).Marshal()
	ext := func() []byte {
		var b []byte
		b = appendBytesField(b, tensorDims, []byte{64, 32})
		b = appendVarintField(b, tensorDataType, typeFloat)
		b = appendStringField(b, tensorName, "W")
		b = appendBytesField(b, tensorExtData, appendStringField(appendStringField(nil, 1, "location"), 2, "w.bin"))
		b = appendVarintField(b, tensorDataLoc, 1)
		return withInitializer(t, matmulModel(64, 32), b)
	}()
	twoGraphs := append(slices.Clone(good), appendBytesField(nil, modelGraph, nil)...)
	for _, c := range []struct {
		name string
		in   []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrNotONNX, "no graph"},
		{"text", []byte("hello, this is not a model"), ErrNotONNX, ""},
		{"truncated", good[:len(good)/2], ErrNotONNX, ""},
		{"external data", ext, ErrExternalData, "save_as_external_data=False"},
		{"two graphs", twoGraphs, ErrUnsupported, "more than one graph"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := Dynamic(c.in, Options{})
			if !errors.Is(err, c.want) || out != nil {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if c.want == ErrNotONNX && !errors.Is(err, pb.ErrMalformed) && c.name != "two graphs" {
				t.Errorf("%v does not wrap onnxpb.ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%v does not say %q", err, c.msg)
			}
		})
	}
}

// TestIdempotent: a quantized model has nothing left to quantize.
func TestIdempotent(t *testing.T) {
	f := testmodels.BERT(testmodels.BERTOptions{Hidden: 64, Heads: 2})
	once, rep, err := Dynamic(f.Files[0].Data, Options{})
	if err != nil || len(rep.Quantized) == 0 {
		t.Fatalf("%v %+v", err, rep)
	}
	twice, rep2, err := Dynamic(once, Options{})
	if err != nil || len(rep2.Quantized) != 0 || !bytes.Equal(once, twice) {
		t.Fatalf("second pass: %v, quantized %v", err, rep2.Quantized)
	}
}

func FuzzDynamic(f *testing.F) {
	f.Add(matmulModel(64, 32).Marshal(), false, uint16(0))
	f.Add(matmulModel(8, 4).Marshal(), true, uint16(1))
	gemm := model([]pb.Node{{Name: "g", OpType: "Gemm", Inputs: []string{"x", "W", "C"}, Outputs: []string{"y"}, Attrs: []pb.Attr{{Name: "transB", Type: pb.AttrInt, I: 1}}}},
		[]pb.Tensor{pb.FloatTensor("W", []int64{4, 8}, seq(32, 1)), pb.FloatTensor("C", []int64{4}, seq(4, 1))},
		[]pb.ValueInfo{vi("x", pb.Float, "N", 8)}, []pb.ValueInfo{vi("y", pb.Float, "N", 4)})
	f.Add(gemm.Marshal(), false, uint16(1))
	gather := model([]pb.Node{{Name: "e", OpType: "Gather", Inputs: []string{"E", "ids"}, Outputs: []string{"y"}}},
		[]pb.Tensor{pb.FloatTensor("E", []int64{4, 4}, seq(16, 1))}, []pb.ValueInfo{vi("ids", pb.Int64, "N")}, []pb.ValueInfo{vi("y", pb.Float, "N", 4)})
	f.Add(gather.Marshal(), true, uint16(1))
	f.Add([]byte("garbage"), false, uint16(0))
	f.Add([]byte{0x08, 0x08, 0x3a, 0x00}, false, uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, perChannel bool, minElems uint16) {
		orig := slices.Clone(in)
		out, rep, err := Dynamic(in, Options{PerChannel: perChannel, MinElements: int(minElems)})
		if !bytes.Equal(in, orig) {
			t.Fatal("the input was modified")
		}
		if err != nil {
			if !errors.Is(err, ErrNotONNX) && !errors.Is(err, ErrExternalData) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if rep.SizeAfter != int64(len(out)) {
			t.Fatalf("SizeAfter %d, output %d bytes", rep.SizeAfter, len(out))
		}
		if _, err := pb.ReadInfo(out); err != nil {
			t.Fatalf("the output is not a model: %v", err)
		}
		if len(rep.Quantized) == 0 && !bytes.Equal(out, in) {
			t.Fatal("nothing quantized but the model changed")
		}
	})
}
