package inference

import (
	"fmt"
	"slices"
	"strings"

	"github.com/zhiyin/zhiyin/inference/onnxpb"
)

// compiled is a contract prepared for fast checks: symbols are numbered so
// that a request's symbol values fit in a small slice.
type compiled struct {
	c        *Contract
	syms     []string // symbol names by id
	batchSym int      // id of the batch symbol, -1 when none
	in, out  []cspec
}

type cspec struct {
	name      string
	dtype     DType
	dims      []cdim
	batchAxis int // -1 when the tensor has no batch dimension
	pad       float64
	// predictable: an output whose every dimension is fixed or a symbol
	// of the inputs, so its shape is known before the run.
	predictable bool
}

type cdim struct {
	size int64 // fixed size, or -1
	sym  int   // symbol id, -1 when fixed
	off  int64
}

func compileContract(c *Contract) *compiled {
	cc := &compiled{c: c, batchSym: -1}
	ids := map[string]int{}
	id := func(s string) int {
		if i, ok := ids[s]; ok {
			return i
		}
		ids[s] = len(cc.syms)
		cc.syms = append(cc.syms, s)
		return ids[s]
	}
	if c.BatchDim != "" {
		cc.batchSym = id(c.BatchDim)
	}
	conv := func(specs []TensorSpec) []cspec {
		out := make([]cspec, len(specs))
		for i, t := range specs {
			cs := cspec{name: t.Name, dtype: t.DType, batchAxis: -1, pad: t.Pad}
			for j, d := range t.Shape {
				cd := cdim{size: d.Size, sym: -1, off: d.Offset}
				if !d.Fixed() {
					cd.sym = id(d.Sym)
					if cd.sym == cc.batchSym {
						cs.batchAxis = j
					}
				}
				cs.dims = append(cs.dims, cd)
			}
			out[i] = cs
		}
		return out
	}
	cc.in = conv(c.Inputs)
	cc.out = conv(c.Outputs)
	bound := map[int]bool{}
	for _, in := range cc.in {
		for _, d := range in.dims {
			if d.sym >= 0 {
				bound[d.sym] = true
			}
		}
	}
	for i := range cc.out {
		o := &cc.out[i]
		o.predictable = len(o.dims) > 0
		for _, d := range o.dims {
			if d.sym >= 0 && !bound[d.sym] {
				o.predictable = false
			}
		}
	}
	return cc
}

func specNames(t TensorSpec) string {
	if len(t.Aliases) == 0 {
		return t.Name
	}
	return t.Name + " (or " + strings.Join(t.Aliases, ", ") + ")"
}

func graphNames(vis []onnxpb.ValueInfo) string {
	n := make([]string, len(vis))
	for i, v := range vis {
		n[i] = v.Name
	}
	return strings.Join(n, ", ")
}

// adoptGraphDTypes returns a copy of c in which every tensor whose graph
// type is one of its AltDTypes takes that type.
func adoptGraphDTypes(c Contract, info *onnxpb.Info) Contract {
	adopt := func(specs []TensorSpec, graph []onnxpb.ValueInfo) []TensorSpec {
		out := slices.Clone(specs)
		for i := range out {
			if i < len(graph) && slices.Contains(out[i].AltDTypes, DType(graph[i].ElemType)) {
				out[i].DType = DType(graph[i].ElemType)
			}
		}
		return out
	}
	c.Inputs = adopt(c.Inputs, info.Inputs)
	c.Outputs = adopt(c.Outputs, info.Outputs)
	return c
}

// checkGraph compares the graph's inputs and outputs with the contract, by
// position. The error wraps ErrContract and names the tensor and field.
func (cc *compiled) checkGraph(info *onnxpb.Info) error {
	var errs []string
	// A symbol that no input binds (an output's vocabulary, say) is only
	// a name: the graph may fix its size.
	bound := map[string]bool{}
	for _, in := range cc.c.Inputs {
		for _, d := range in.Shape {
			if !d.Fixed() {
				bound[d.Sym] = true
			}
		}
	}
	for _, side := range []struct {
		what  string
		specs []TensorSpec
		graph []onnxpb.ValueInfo
	}{{"input", cc.c.Inputs, info.Inputs}, {"output", cc.c.Outputs, info.Outputs}} {
		if len(side.specs) != len(side.graph) {
			errs = append(errs, fmt.Sprintf("%ss: the contract lists %d, the graph has %d (%s)", side.what, len(side.specs), len(side.graph), graphNames(side.graph)))
			continue
		}
		for i, spec := range side.specs {
			g := side.graph[i]
			where := fmt.Sprintf("%s %d (%s)", side.what, i, g.Name)
			ok := g.Name == spec.Name
			for _, a := range spec.Aliases {
				ok = ok || g.Name == a
			}
			if !ok {
				errs = append(errs, fmt.Sprintf("%s %d: name: the contract says %s, the graph has %s", side.what, i, specNames(spec), g.Name))
				continue
			}
			if g.Kind != onnxpb.KindTensor {
				errs = append(errs, fmt.Sprintf("%s: kind: the graph has a %s, only dense tensors are supported", where, g.Kind))
				continue
			}
			if DType(g.ElemType) != spec.DType && !slices.Contains(spec.AltDTypes, DType(g.ElemType)) {
				errs = append(errs, fmt.Sprintf("%s: dtype: the contract says %s, the graph has %s", where, spec.DType, g.ElemType))
			}
			if !g.HasShape {
				continue // the graph does not declare the rank; checked at run time
			}
			if len(g.Shape) != len(spec.Shape) {
				errs = append(errs, fmt.Sprintf("%s: rank: the contract says %d %s, the graph has %d %s", where, len(spec.Shape), shapeString(spec.Shape), len(g.Shape), dimsString(g.Shape)))
				continue
			}
			for j, d := range spec.Shape {
				gd := g.Shape[j]
				switch {
				case d.Fixed() && !gd.Dynamic() && gd.Value != d.Size:
					errs = append(errs, fmt.Sprintf("%s: dim %d: the contract says %d, the graph fixes it to %d", where, j, d.Size, gd.Value))
				case !d.Fixed() && !gd.Dynamic() && (side.what == "input" || bound[d.Sym]):
					errs = append(errs, fmt.Sprintf("%s: dim %d: the contract says dynamic %s, the graph fixes it to %d", where, j, d, gd.Value))
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrContract, strings.Join(errs, "; "))
	}
	return nil
}

func dimsString(ds []onnxpb.Dim) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// bindInputs checks inputs against the contract and records each symbol's
// value in vals (len(cc.syms), preset to -1). The error wraps ErrBadInput.
func (cc *compiled) bindInputs(inputs []Tensor, vals []int64) error {
	if len(inputs) != len(cc.in) {
		return fmt.Errorf("%w: got %d inputs, the model takes %d (%s)", ErrBadInput, len(inputs), len(cc.in), cc.inputNames())
	}
	for i := range inputs {
		if err := cc.bind(&cc.in[i], "input", i, inputs[i], vals, ErrBadInput); err != nil {
			return err
		}
	}
	return nil
}

func (cc *compiled) inputNames() string {
	n := make([]string, len(cc.in))
	for i, s := range cc.in {
		n[i] = s.name
	}
	return strings.Join(n, ", ")
}

// bind checks one tensor against its spec, binding symbols in vals.
func (cc *compiled) bind(s *cspec, what string, i int, t Tensor, vals []int64, sentinel error) error {
	if dt := t.DType(); dt != s.dtype {
		if dt == 0 {
			return fmt.Errorf("%w: %s %d (%s): data: %T is not a slice of a supported element type", sentinel, what, i, s.name, t.Data)
		}
		return fmt.Errorf("%w: %s %d (%s): dtype: got %s, the contract says %s", sentinel, what, i, s.name, dt, s.dtype)
	}
	if len(t.Shape) != len(s.dims) {
		return fmt.Errorf("%w: %s %d (%s): rank: got shape %v, the contract says %s", sentinel, what, i, s.name, t.Shape, shapeString(cc.specOf(what, i).Shape))
	}
	n := int64(1)
	for j, d := range s.dims {
		v := t.Shape[j]
		if v < 0 {
			return fmt.Errorf("%w: %s %d (%s): dim %d: negative size %d", sentinel, what, i, s.name, j, v)
		}
		if d.sym < 0 {
			if v != d.size {
				return fmt.Errorf("%w: %s %d (%s): dim %d: got %d, the contract says %d", sentinel, what, i, s.name, j, v, d.size)
			}
		} else {
			sv := v - d.off
			if sv < 0 {
				return fmt.Errorf("%w: %s %d (%s): dim %d: got %d, too small for %s", sentinel, what, i, s.name, j, v, cc.dimName(d))
			}
			switch vals[d.sym] {
			case -1:
				vals[d.sym] = sv
			case sv:
			default:
				return fmt.Errorf("%w: %s %d (%s): dim %d (%s): got %d, but another tensor set %s to %d", sentinel, what, i, s.name, j, cc.dimName(d), v, cc.syms[d.sym], vals[d.sym])
			}
		}
		if v != 0 && n > (1<<62)/v {
			return fmt.Errorf("%w: %s %d (%s): shape %v is too large", sentinel, what, i, s.name, t.Shape)
		}
		n *= v
	}
	if int64(t.Len()) != n {
		return fmt.Errorf("%w: %s %d (%s): data: shape %v needs %d elements, got %d", sentinel, what, i, s.name, t.Shape, n, t.Len())
	}
	return nil
}

func (cc *compiled) specOf(what string, i int) TensorSpec {
	if what == "input" {
		return cc.c.Inputs[i]
	}
	return cc.c.Outputs[i]
}

func (cc *compiled) dimName(d cdim) string {
	return Dim{Size: -1, Sym: cc.syms[d.sym], Offset: d.off}.String()
}

// checkOutputs checks a run's outputs against the contract, continuing the
// symbol bindings of the inputs. The error wraps ErrContract.
func (cc *compiled) checkOutputs(outs []Tensor, vals []int64) error {
	if len(outs) != len(cc.out) {
		return fmt.Errorf("%w: the model returned %d outputs, the contract lists %d", ErrContract, len(outs), len(cc.out))
	}
	for i := range outs {
		if err := cc.bind(&cc.out[i], "output", i, outs[i], vals, ErrContract); err != nil {
			return err
		}
	}
	return nil
}

// batchable reports why the contract cannot be batched ("" when it can).
func (cc *compiled) batchable() string {
	switch {
	case cc.batchSym < 0:
		return "the contract declares no batch_dim"
	case cc.c.Stateful:
		return "the model is stateful"
	}
	for _, o := range cc.out {
		if o.batchAxis < 0 {
			return fmt.Sprintf("output %s has no %s dimension to split results along", o.name, cc.syms[cc.batchSym])
		}
	}
	return ""
}
