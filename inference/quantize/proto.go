package quantize

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of onnx.proto3 used here.
const (
	modelIRVersion   = 1
	modelGraph       = 7
	modelOpsetImport = 8

	opsetDomain  = 1
	opsetVersion = 2

	graphNode        = 1
	graphInitializer = 5
	graphInput       = 11
	graphOutput      = 12
	graphValueInfo   = 13
	graphSparseInit  = 15

	nodeInput  = 1
	nodeOutput = 2
	nodeName   = 3
	nodeOpType = 4
	nodeAttr   = 5
	nodeDomain = 7

	attrName   = 1
	attrF      = 2
	attrI      = 3
	attrG      = 6
	attrGraphs = 11
	attrType   = 20

	attrTypeFloat = 1
	attrTypeInt   = 2

	tensorDims      = 1
	tensorDataType  = 2
	tensorSegment   = 3
	tensorFloatData = 4
	tensorInt32Data = 5
	tensorStrData   = 6
	tensorInt64Data = 7
	tensorName      = 8
	tensorRawData   = 9
	tensorDouble    = 10
	tensorUint64    = 11
	tensorExtData   = 13
	tensorDataLoc   = 14

	sparseValues = 1

	valueInfoNameField = 1

	// TensorProto.DataType values.
	typeFloat = 1
	typeUint8 = 2
	typeInt8  = 3
	typeInt32 = 6
)

// field is one protobuf field as it sits in the message.
type field struct {
	num protowire.Number
	typ protowire.Type
	raw []byte // the whole field, tag included, for copying unchanged
	val []byte // the payload of a length-delimited field
	u   uint64 // the value of a varint or fixed field
}

// parseFields splits a message into its fields without interpreting them.
func parseFields(b []byte, msg string) ([]field, error) {
	var out []field
	off := 0
	for off < len(b) {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return nil, fmt.Errorf("%s at byte %d: %w", msg, off, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[off+n:])
		if m < 0 {
			return nil, fmt.Errorf("%s at byte %d, field %d: %w", msg, off, num, protowire.ParseError(m))
		}
		f := field{num: num, typ: typ, raw: b[off : off+n+m]}
		v := b[off+n : off+n+m]
		switch typ {
		case protowire.BytesType:
			f.val, _ = protowire.ConsumeBytes(v)
		case protowire.VarintType:
			f.u, _ = protowire.ConsumeVarint(v)
		case protowire.Fixed32Type:
			x, _ := protowire.ConsumeFixed32(v)
			f.u = uint64(x)
		case protowire.Fixed64Type:
			f.u, _ = protowire.ConsumeFixed64(v)
		}
		out = append(out, f)
		off += n + m
	}
	return out, nil
}

// node is the part of a NodeProto the quantizer reads.
type node struct {
	name, op, domain string
	inputs, outputs  []string
	fAttr            map[string]float32
	iAttr            map[string]int64
	subgraphs        [][]byte // GraphProto bytes of graph attributes
}

func parseNode(b []byte) (*node, error) {
	fs, err := parseFields(b, "NodeProto")
	if err != nil {
		return nil, err
	}
	n := &node{}
	for _, f := range fs {
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case nodeInput:
			n.inputs = append(n.inputs, string(f.val))
		case nodeOutput:
			n.outputs = append(n.outputs, string(f.val))
		case nodeName:
			n.name = string(f.val)
		case nodeOpType:
			n.op = string(f.val)
		case nodeDomain:
			n.domain = string(f.val)
		case nodeAttr:
			if err := n.parseAttr(f.val); err != nil {
				return nil, err
			}
		}
	}
	return n, nil
}

func (n *node) parseAttr(b []byte) error {
	fs, err := parseFields(b, "AttributeProto")
	if err != nil {
		return err
	}
	var name string
	var typ uint64
	var fv float32
	var iv int64
	hasF, hasI := false, false
	for _, f := range fs {
		switch {
		case f.num == attrName && f.typ == protowire.BytesType:
			name = string(f.val)
		case f.num == attrType && f.typ == protowire.VarintType:
			typ = f.u
		case f.num == attrF && f.typ == protowire.Fixed32Type:
			fv, hasF = math.Float32frombits(uint32(f.u)), true
		case f.num == attrI && f.typ == protowire.VarintType:
			iv, hasI = int64(f.u), true
		case (f.num == attrG || f.num == attrGraphs) && f.typ == protowire.BytesType:
			n.subgraphs = append(n.subgraphs, f.val)
		}
	}
	// The type field is authoritative when present; old exporters omit it.
	if hasF && (typ == 0 || typ == attrTypeFloat) {
		if n.fAttr == nil {
			n.fAttr = map[string]float32{}
		}
		n.fAttr[name] = fv
	}
	if hasI && (typ == 0 || typ == attrTypeInt) {
		if n.iAttr == nil {
			n.iAttr = map[string]int64{}
		}
		n.iAttr[name] = iv
	}
	return nil
}

func (n *node) float(name string, def float32) float32 {
	if v, ok := n.fAttr[name]; ok {
		return v
	}
	return def
}

func (n *node) int(name string, def int64) int64 {
	if v, ok := n.iAttr[name]; ok {
		return v
	}
	return def
}

// tensor is the part of a TensorProto the quantizer reads.
type tensor struct {
	name      string
	dtype     uint64
	dims      []int64
	raw       []byte
	hasRaw    bool
	floatData []float32
	external  bool
	segmented bool
	otherData bool // data in a typed field other than float_data
}

func parseTensor(b []byte) (*tensor, error) {
	fs, err := parseFields(b, "TensorProto")
	if err != nil {
		return nil, err
	}
	t := &tensor{}
	for _, f := range fs {
		switch f.num {
		case tensorName:
			if f.typ == protowire.BytesType {
				t.name = string(f.val)
			}
		case tensorDataType:
			if f.typ == protowire.VarintType {
				t.dtype = f.u
			}
		case tensorDims:
			vs, err := varints(f)
			if err != nil {
				return nil, fmt.Errorf("tensor dims: %w", err)
			}
			for _, v := range vs {
				t.dims = append(t.dims, int64(v))
			}
		case tensorRawData:
			if f.typ == protowire.BytesType {
				t.raw, t.hasRaw = f.val, true
			}
		case tensorFloatData:
			vs, err := fixed32s(f)
			if err != nil {
				return nil, fmt.Errorf("tensor float_data: %w", err)
			}
			for _, v := range vs {
				t.floatData = append(t.floatData, math.Float32frombits(v))
			}
		case tensorExtData:
			t.external = true
		case tensorDataLoc:
			t.external = t.external || f.typ == protowire.VarintType && f.u == 1
		case tensorSegment:
			t.segmented = true
		case tensorInt32Data, tensorStrData, tensorInt64Data, tensorDouble, tensorUint64:
			t.otherData = true
		}
	}
	return t, nil
}

// varints decodes a repeated varint field, packed or not.
func varints(f field) ([]uint64, error) {
	switch f.typ {
	case protowire.VarintType:
		return []uint64{f.u}, nil
	case protowire.BytesType:
		var out []uint64
		for b := f.val; len(b) > 0; {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			out = append(out, v)
			b = b[n:]
		}
		return out, nil
	}
	return nil, fmt.Errorf("wire type %d", f.typ)
}

// fixed32s decodes a repeated fixed32 field, packed or not.
func fixed32s(f field) ([]uint32, error) {
	switch f.typ {
	case protowire.Fixed32Type:
		return []uint32{uint32(f.u)}, nil
	case protowire.BytesType:
		if len(f.val)%4 != 0 {
			return nil, fmt.Errorf("packed length %d is not a multiple of 4", len(f.val))
		}
		out := make([]uint32, len(f.val)/4)
		for i := range out {
			out[i] = binary.LittleEndian.Uint32(f.val[4*i:])
		}
		return out, nil
	}
	return nil, fmt.Errorf("wire type %d", f.typ)
}

// elements returns the number of elements the dims imply, or -1 when a
// dimension is negative or the product overflows.
func (t *tensor) elements() int64 {
	n := int64(1)
	for _, d := range t.dims {
		if d < 0 || d > 0 && n > math.MaxInt64/d {
			return -1
		}
		n *= d
	}
	return n
}

// floats decodes a float32 tensor's data; the reason is why it cannot.
func (t *tensor) floats() ([]float32, string) {
	n := t.elements()
	switch {
	case n < 0:
		return nil, "its dims are invalid"
	case t.segmented:
		return nil, "it is split into segments"
	case t.otherData:
		return nil, "its data is in a field other than raw_data or float_data"
	case t.hasRaw && len(t.floatData) > 0:
		return nil, "it has both raw_data and float_data"
	case t.hasRaw:
		if int64(len(t.raw)) != 4*n {
			return nil, fmt.Sprintf("raw_data holds %d bytes, its dims need %d", len(t.raw), 4*n)
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.raw[4*i:]))
		}
		return out, ""
	}
	if int64(len(t.floatData)) != n {
		return nil, fmt.Sprintf("float_data holds %d values, its dims need %d", len(t.floatData), n)
	}
	return t.floatData, ""
}

// Writers.

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// newNode is a NodeProto to write.
type newNode struct {
	name, op        string
	inputs, outputs []string
	intAttrs        []intAttr
}

type intAttr struct {
	name string
	v    int64
}

func (n newNode) marshal() []byte {
	var b []byte
	for _, s := range n.inputs {
		b = appendStringField(b, nodeInput, s)
	}
	for _, s := range n.outputs {
		b = appendStringField(b, nodeOutput, s)
	}
	b = appendStringField(b, nodeName, n.name)
	b = appendStringField(b, nodeOpType, n.op)
	for _, a := range n.intAttrs {
		var ab []byte
		ab = appendStringField(ab, attrName, a.name)
		ab = appendVarintField(ab, attrI, uint64(a.v))
		ab = appendVarintField(ab, attrType, attrTypeInt)
		b = appendBytesField(b, nodeAttr, ab)
	}
	return b
}

// marshalTensor writes a TensorProto with raw_data.
func marshalTensor(name string, dtype uint64, dims []int64, raw []byte) []byte {
	var b []byte
	if len(dims) > 0 {
		var p []byte
		for _, d := range dims {
			p = protowire.AppendVarint(p, uint64(d))
		}
		b = appendBytesField(b, tensorDims, p)
	}
	b = appendVarintField(b, tensorDataType, dtype)
	b = appendStringField(b, tensorName, name)
	return appendBytesField(b, tensorRawData, raw)
}

func floatRaw(v []float32) []byte {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return raw
}
