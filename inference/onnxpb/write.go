package onnxpb

import (
	"encoding/binary"
	"math"
)

// Model is an ONNX model to serialize with Marshal. Only what the project's
// generated models need is representable.
type Model struct {
	IRVersion       int64
	Opsets          []Opset
	ProducerName    string
	ProducerVersion string
	DocString       string
	Graph           Graph
	Metadata        []KV
}

// Opset is one opset_import entry; Domain "" is the default ai.onnx domain.
type Opset struct {
	Domain  string
	Version int64
}

// KV is one metadata_props entry.
type KV struct{ Key, Value string }

// Graph is a GraphProto.
type Graph struct {
	Name         string
	Nodes        []Node
	Initializers []Tensor
	Inputs       []ValueInfo // Kind is taken as KindTensor
	Outputs      []ValueInfo
}

// Node is a NodeProto.
type Node struct {
	Name, OpType, Domain string
	Inputs, Outputs      []string
	Attrs                []Attr
}

// AttrType is an AttributeProto.AttributeType.
type AttrType int

// The attribute types Marshal writes.
const (
	AttrFloat  AttrType = 1
	AttrInt    AttrType = 2
	AttrString AttrType = 3
	AttrTensor AttrType = 4
	AttrFloats AttrType = 6
	AttrInts   AttrType = 7
)

// Attr is an AttributeProto; the field matching Type is written.
type Attr struct {
	Name   string
	Type   AttrType
	F      float32
	I      int64
	S      []byte
	T      *Tensor
	Floats []float32
	Ints   []int64
}

// Tensor is a TensorProto whose data is stored as little-endian raw_data.
type Tensor struct {
	Name string
	Type ElemType
	Dims []int64
	Raw  []byte
}

// FloatTensor returns a float32 tensor.
func FloatTensor(name string, dims []int64, v []float32) Tensor {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, Type: Float, Dims: dims, Raw: raw}
}

// Int64Tensor returns an int64 tensor.
func Int64Tensor(name string, dims []int64, v []int64) Tensor {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	return Tensor{Name: name, Type: Int64, Dims: dims, Raw: raw}
}

// Int8Tensor returns an int8 tensor.
func Int8Tensor(name string, dims []int64, v []int8) Tensor {
	raw := make([]byte, len(v))
	for i, x := range v {
		raw[i] = byte(x)
	}
	return Tensor{Name: name, Type: Int8, Dims: dims, Raw: raw}
}

// Marshal serializes the model. The output depends only on m, so generated
// files are reproducible byte for byte.
func (m *Model) Marshal() []byte {
	var b []byte
	b = appendVarintField(b, modelIRVersion, uint64(m.IRVersion))
	b = appendStringField(b, modelProducerName, m.ProducerName)
	b = appendStringField(b, modelProducerVersion, m.ProducerVersion)
	b = appendStringField(b, modelDocString, m.DocString)
	b = appendBytesField(b, modelGraph, m.Graph.marshal())
	for _, o := range m.Opsets {
		var ob []byte
		ob = appendStringField(ob, opsetDomain, o.Domain)
		ob = appendVarintField(ob, opsetVersion, uint64(o.Version))
		b = appendBytesField(b, modelOpsetImport, ob)
	}
	for _, kv := range m.Metadata {
		var kb []byte
		kb = appendStringField(kb, kvKey, kv.Key)
		kb = appendStringField(kb, kvValue, kv.Value)
		b = appendBytesField(b, modelMetadataProps, kb)
	}
	return b
}

func (g *Graph) marshal() []byte {
	var b []byte
	for _, n := range g.Nodes {
		b = appendBytesField(b, graphNode, n.marshal())
	}
	b = appendStringField(b, graphName, g.Name)
	for _, t := range g.Initializers {
		b = appendBytesField(b, graphInitializer, t.marshal())
	}
	for _, vi := range g.Inputs {
		b = appendBytesField(b, graphInput, vi.marshal())
	}
	for _, vi := range g.Outputs {
		b = appendBytesField(b, graphOutput, vi.marshal())
	}
	return b
}

func (n *Node) marshal() []byte {
	var b []byte
	for _, s := range n.Inputs {
		b = appendBytesField(b, nodeInput, []byte(s))
	}
	for _, s := range n.Outputs {
		b = appendBytesField(b, nodeOutput, []byte(s))
	}
	b = appendStringField(b, nodeName, n.Name)
	b = appendStringField(b, nodeOpType, n.OpType)
	for _, a := range n.Attrs {
		b = appendBytesField(b, nodeAttr, a.marshal())
	}
	b = appendStringField(b, nodeDomain, n.Domain)
	return b
}

func (a *Attr) marshal() []byte {
	var b []byte
	b = appendStringField(b, attrName, a.Name)
	switch a.Type {
	case AttrFloat:
		b = appendTag(b, attrF, wireFixed32)
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(a.F))
	case AttrInt:
		b = appendVarintField(b, attrI, uint64(a.I))
	case AttrString:
		b = appendBytesField(b, attrS, a.S)
	case AttrTensor:
		if a.T != nil {
			b = appendBytesField(b, attrT, a.T.marshal())
		}
	case AttrFloats:
		var p []byte
		for _, f := range a.Floats {
			p = binary.LittleEndian.AppendUint32(p, math.Float32bits(f))
		}
		b = appendBytesField(b, attrFloats, p)
	case AttrInts:
		var p []byte
		for _, i := range a.Ints {
			p = binary.AppendUvarint(p, uint64(i))
		}
		b = appendBytesField(b, attrInts, p)
	}
	b = appendVarintField(b, attrType, uint64(a.Type))
	return b
}

func (t *Tensor) marshal() []byte {
	var b []byte
	if len(t.Dims) > 0 {
		var p []byte
		for _, d := range t.Dims {
			p = binary.AppendUvarint(p, uint64(d))
		}
		b = appendBytesField(b, tensorDims, p)
	}
	b = appendVarintField(b, tensorType, uint64(t.Type))
	b = appendStringField(b, tensorName, t.Name)
	if len(t.Raw) > 0 {
		b = appendBytesField(b, tensorRawData, t.Raw)
	}
	return b
}

func (vi *ValueInfo) marshal() []byte {
	var tt []byte
	tt = appendVarintField(tt, tensorTypeElem, uint64(vi.ElemType))
	if vi.HasShape || vi.Shape != nil {
		var sb []byte
		for _, d := range vi.Shape {
			var db []byte
			if d.Param != "" {
				db = appendBytesField(db, dimParam, []byte(d.Param))
			} else if d.Value >= 0 {
				db = appendVarintField(db, dimValue, uint64(d.Value))
			}
			sb = appendBytesField(sb, shapeDim, db)
		}
		tt = appendBytesField(tt, tensorTypeShape, sb)
	}
	var tp []byte
	tp = appendBytesField(tp, typeTensor, tt)
	var b []byte
	b = appendStringField(b, valueInfoName, vi.Name)
	b = appendBytesField(b, valueInfoType, tp)
	return b
}

func appendTag(b []byte, num, wire int) []byte {
	return binary.AppendUvarint(b, uint64(num)<<3|uint64(wire))
}

func appendVarintField(b []byte, num int, v uint64) []byte {
	b = appendTag(b, num, wireVarint)
	return binary.AppendUvarint(b, v)
}

func appendBytesField(b []byte, num int, v []byte) []byte {
	b = appendTag(b, num, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendStringField writes a string field unless it is empty (proto3
// default), keeping the output minimal and stable.
func appendStringField(b []byte, num int, s string) []byte {
	if s == "" {
		return b
	}
	return appendBytesField(b, num, []byte(s))
}

// Value returns a tensor graph input or output; each dimension is an int
// (fixed size) or a string (a symbolic one, such as "N").
func Value(name string, t ElemType, dims ...any) ValueInfo {
	v := ValueInfo{Name: name, ElemType: t, HasShape: true, Shape: []Dim{}}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			v.Shape = append(v.Shape, Dim{Value: int64(d)})
		case string:
			v.Shape = append(v.Shape, Dim{Value: -1, Param: d})
		}
	}
	return v
}
