package onnxpb

import (
	"errors"
	"fmt"
	"math"
	"os"
	"syscall"
)

// ErrMalformed is returned by ReadInfo when the bytes are not a well-formed
// ONNX model (truncated, not a protobuf, or missing its graph).
var ErrMalformed = errors.New("not a valid ONNX model")

// ElemType is an ONNX TensorProto.DataType.
type ElemType int32

// The element types zhiyin can meet; the numbers are ONNX's.
const (
	Undefined ElemType = 0
	Float     ElemType = 1
	Uint8     ElemType = 2
	Int8      ElemType = 3
	Uint16    ElemType = 4
	Int16     ElemType = 5
	Int32     ElemType = 6
	Int64     ElemType = 7
	String    ElemType = 8
	Bool      ElemType = 9
	Float16   ElemType = 10
	Double    ElemType = 11
	Uint32    ElemType = 12
	Uint64    ElemType = 13
	BFloat16  ElemType = 16
)

var elemNames = map[ElemType]string{
	Undefined: "undefined", Float: "float32", Uint8: "uint8", Int8: "int8", Uint16: "uint16",
	Int16: "int16", Int32: "int32", Int64: "int64", String: "string", Bool: "bool",
	Float16: "float16", Double: "float64", Uint32: "uint32", Uint64: "uint64", BFloat16: "bfloat16",
}

// String returns the Go-style name of the type ("float32", "int64"), or
// "type N" for a type zhiyin does not name.
func (t ElemType) String() string {
	if s, ok := elemNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type %d", int32(t))
}

// Kind is what a graph input or output holds.
type Kind int

// The kinds of values (ONNX TypeProto's oneof).
const (
	KindUnknown Kind = iota
	KindTensor
	KindSequence
	KindMap
	KindOptional
	KindSparseTensor
)

// String names the kind.
func (k Kind) String() string {
	return [...]string{"unknown", "tensor", "sequence", "map", "optional", "sparse tensor"}[k]
}

// Dim is one dimension of a shape: a fixed size (Param empty, Value ≥ 0),
// a named dynamic size (Param set, Value -1) or an unnamed dynamic size
// (Param empty, Value -1).
type Dim struct {
	Value int64
	Param string
}

// Dynamic reports whether the dimension's size is not fixed by the graph.
func (d Dim) Dynamic() bool { return d.Value < 0 }

// String returns the size or the symbolic name ("?" when unnamed).
func (d Dim) String() string {
	switch {
	case !d.Dynamic():
		return fmt.Sprint(d.Value)
	case d.Param != "":
		return d.Param
	}
	return "?"
}

// ValueInfo describes one graph input or output.
type ValueInfo struct {
	Name     string
	Kind     Kind
	ElemType ElemType
	// Shape is nil when HasShape is false (the graph does not declare the
	// rank).
	Shape    []Dim
	HasShape bool
}

// Info is what ReadInfo extracts from a model.
type Info struct {
	IRVersion       int64
	Opsets          map[string]int64 // domain ("" is ai.onnx) → opset version
	ProducerName    string
	ProducerVersion string
	GraphName       string
	// Inputs are the graph inputs that are not initializers, in order (what
	// ONNX Runtime reports as the session's inputs).
	Inputs  []ValueInfo
	Outputs []ValueInfo
	// Metadata is the model's metadata_props (sherpa-onnx keeps its
	// configuration there).
	Metadata map[string]string
	// ExternalData is true when an initializer keeps its bytes in another
	// file next to the model.
	ExternalData bool
}

// ModelProto, GraphProto, … field numbers (onnx.proto3).
const (
	modelIRVersion       = 1
	modelProducerName    = 2
	modelProducerVersion = 3
	modelDomain          = 4
	modelModelVersion    = 5
	modelDocString       = 6
	modelGraph           = 7
	modelOpsetImport     = 8
	modelMetadataProps   = 14

	opsetDomain  = 1
	opsetVersion = 2

	kvKey   = 1
	kvValue = 2

	graphNode        = 1
	graphName        = 2
	graphInitializer = 5
	graphDocString   = 10
	graphInput       = 11
	graphOutput      = 12
	graphSparseInit  = 15

	valueInfoName = 1
	valueInfoType = 2

	typeTensor       = 1
	typeSequence     = 4
	typeMap          = 5
	typeSparseTensor = 8
	typeOptional     = 9

	tensorTypeElem  = 1
	tensorTypeShape = 2

	shapeDim      = 1
	dimValue      = 1
	dimParam      = 2
	sparseValues  = 1
	tensorDims    = 1
	tensorType    = 2
	tensorName    = 8
	tensorRawData = 9
	tensorExtData = 13
	tensorDataLoc = 14

	nodeInput   = 1
	nodeOutput  = 2
	nodeName    = 3
	nodeOpType  = 4
	nodeAttr    = 5
	nodeDomain  = 7
	attrName    = 1
	attrF       = 2
	attrI       = 3
	attrS       = 4
	attrT       = 5
	attrFloats  = 7
	attrInts    = 8
	attrType    = 20
	tensorFloat = 4
)

// Wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// field is one decoded protobuf field; for wireBytes, b holds its bytes.
type field struct {
	num  int
	wire int
	v    uint64
	b    []byte
}

// reader walks the fields of one message.
type reader struct {
	buf []byte
	off int
	msg string // message name for errors
}

func (r *reader) errf(format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d: %s", ErrMalformed, r.msg, r.off, fmt.Sprintf(format, args...))
}

func (r *reader) varint() (uint64, error) {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if r.off >= len(r.buf) {
			return 0, r.errf("truncated varint")
		}
		c := r.buf[r.off]
		r.off++
		if shift == 63 && c > 1 {
			return 0, r.errf("varint overflows 64 bits")
		}
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x, nil
		}
	}
	return 0, r.errf("varint longer than 10 bytes")
}

// next returns the next field, or ok=false at the end of the message.
func (r *reader) next() (f field, ok bool, err error) {
	if r.off >= len(r.buf) {
		return field{}, false, nil
	}
	tag, err := r.varint()
	if err != nil {
		return field{}, false, err
	}
	f.num, f.wire = int(tag>>3), int(tag&7)
	if f.num <= 0 || tag>>3 > math.MaxInt32 {
		return field{}, false, r.errf("invalid field number %d", tag>>3)
	}
	switch f.wire {
	case wireVarint:
		f.v, err = r.varint()
	case wireFixed64:
		if len(r.buf)-r.off < 8 {
			return field{}, false, r.errf("truncated fixed64 field %d", f.num)
		}
		r.off += 8
	case wireFixed32:
		if len(r.buf)-r.off < 4 {
			return field{}, false, r.errf("truncated fixed32 field %d", f.num)
		}
		r.off += 4
	case wireBytes:
		var n uint64
		n, err = r.varint()
		if err == nil && n > uint64(len(r.buf)-r.off) {
			err = r.errf("field %d says %d bytes, only %d left", f.num, n, len(r.buf)-r.off)
		}
		if err == nil {
			f.b = r.buf[r.off : r.off+int(n)]
			r.off += int(n)
		}
	default:
		return field{}, false, r.errf("unsupported wire type %d for field %d", f.wire, f.num)
	}
	if err != nil {
		return field{}, false, err
	}
	return f, true, nil
}

// each calls fn for every field of msg.
func each(msg []byte, name string, fn func(f field) error) error {
	r := &reader{buf: msg, msg: name}
	for {
		f, ok, err := r.next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if err := fn(f); err != nil {
			return err
		}
	}
}

func expectWire(f field, want int, what string) error {
	if f.wire != want {
		return fmt.Errorf("%w: %s has wire type %d, want %d", ErrMalformed, what, f.wire, want)
	}
	return nil
}

// ReadInfo parses a serialized ModelProto and returns its graph's inputs,
// outputs and metadata. It does not copy or decode the weights. The error
// wraps ErrMalformed when data is not a well-formed model.
func ReadInfo(data []byte) (*Info, error) {
	info := &Info{Opsets: map[string]int64{}, Metadata: map[string]string{}}
	var graph []byte
	haveGraph := false
	err := each(data, "ModelProto", func(f field) error {
		switch f.num {
		case modelIRVersion:
			if err := expectWire(f, wireVarint, "ir_version"); err != nil {
				return err
			}
			info.IRVersion = int64(f.v)
		case modelProducerName:
			if err := expectWire(f, wireBytes, "producer_name"); err != nil {
				return err
			}
			info.ProducerName = string(f.b)
		case modelProducerVersion:
			if err := expectWire(f, wireBytes, "producer_version"); err != nil {
				return err
			}
			info.ProducerVersion = string(f.b)
		case modelGraph:
			if err := expectWire(f, wireBytes, "graph"); err != nil {
				return err
			}
			graph, haveGraph = f.b, true
		case modelOpsetImport:
			if err := expectWire(f, wireBytes, "opset_import"); err != nil {
				return err
			}
			var dom string
			var ver int64
			if err := each(f.b, "OperatorSetIdProto", func(g field) error {
				switch {
				case g.num == opsetDomain && g.wire == wireBytes:
					dom = string(g.b)
				case g.num == opsetVersion && g.wire == wireVarint:
					ver = int64(g.v)
				}
				return nil
			}); err != nil {
				return err
			}
			info.Opsets[dom] = ver
		case modelMetadataProps:
			if err := expectWire(f, wireBytes, "metadata_props"); err != nil {
				return err
			}
			k, v, err := readKV(f.b)
			if err != nil {
				return err
			}
			info.Metadata[k] = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !haveGraph {
		return nil, fmt.Errorf("%w: the model has no graph", ErrMalformed)
	}
	if info.IRVersion <= 0 {
		return nil, fmt.Errorf("%w: ir_version is missing", ErrMalformed)
	}
	if err := readGraph(graph, info); err != nil {
		return nil, err
	}
	return info, nil
}

func readKV(b []byte) (k, v string, err error) {
	err = each(b, "StringStringEntryProto", func(f field) error {
		switch {
		case f.num == kvKey && f.wire == wireBytes:
			k = string(f.b)
		case f.num == kvValue && f.wire == wireBytes:
			v = string(f.b)
		}
		return nil
	})
	return k, v, err
}

func readGraph(g []byte, info *Info) error {
	inits := map[string]bool{}
	var inputs []ValueInfo
	err := each(g, "GraphProto", func(f field) error {
		switch f.num {
		case graphName:
			if f.wire == wireBytes {
				info.GraphName = string(f.b)
			}
		case graphInitializer:
			if err := expectWire(f, wireBytes, "initializer"); err != nil {
				return err
			}
			name, ext, err := readTensorHeader(f.b)
			if err != nil {
				return err
			}
			inits[name] = true
			info.ExternalData = info.ExternalData || ext
		case graphSparseInit:
			if err := expectWire(f, wireBytes, "sparse_initializer"); err != nil {
				return err
			}
			// SparseTensorProto.values is a TensorProto carrying the name.
			return each(f.b, "SparseTensorProto", func(s field) error {
				if s.num == sparseValues && s.wire == wireBytes {
					name, _, err := readTensorHeader(s.b)
					if err != nil {
						return err
					}
					inits[name] = true
				}
				return nil
			})
		case graphInput, graphOutput:
			if err := expectWire(f, wireBytes, "graph input/output"); err != nil {
				return err
			}
			vi, err := readValueInfo(f.b)
			if err != nil {
				return err
			}
			if f.num == graphInput {
				inputs = append(inputs, vi)
			} else {
				info.Outputs = append(info.Outputs, vi)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, in := range inputs {
		if !inits[in.Name] {
			info.Inputs = append(info.Inputs, in)
		}
	}
	return nil
}

// readTensorHeader returns a TensorProto's name and whether its data lives
// in an external file, skipping the data itself.
func readTensorHeader(b []byte) (name string, external bool, err error) {
	err = each(b, "TensorProto", func(f field) error {
		switch {
		case f.num == tensorName && f.wire == wireBytes:
			name = string(f.b)
		case f.num == tensorDataLoc && f.wire == wireVarint:
			external = f.v == 1
		}
		return nil
	})
	return name, external, err
}

func readValueInfo(b []byte) (ValueInfo, error) {
	var vi ValueInfo
	err := each(b, "ValueInfoProto", func(f field) error {
		switch {
		case f.num == valueInfoName && f.wire == wireBytes:
			vi.Name = string(f.b)
		case f.num == valueInfoType && f.wire == wireBytes:
			return readType(f.b, &vi)
		}
		return nil
	})
	if err != nil {
		return ValueInfo{}, err
	}
	if vi.Name == "" {
		return ValueInfo{}, fmt.Errorf("%w: a graph input or output has no name", ErrMalformed)
	}
	return vi, nil
}

func readType(b []byte, vi *ValueInfo) error {
	return each(b, "TypeProto", func(f field) error {
		if f.wire != wireBytes {
			return nil
		}
		switch f.num {
		case typeTensor, typeSparseTensor:
			vi.Kind = KindTensor
			if f.num == typeSparseTensor {
				vi.Kind = KindSparseTensor
			}
			return each(f.b, "TypeProto.Tensor", func(t field) error {
				switch {
				case t.num == tensorTypeElem && t.wire == wireVarint:
					vi.ElemType = ElemType(int32(t.v))
				case t.num == tensorTypeShape && t.wire == wireBytes:
					vi.HasShape = true
					vi.Shape = []Dim{}
					return each(t.b, "TensorShapeProto", func(d field) error {
						if d.num != shapeDim || d.wire != wireBytes {
							return nil
						}
						dim := Dim{Value: -1}
						if err := each(d.b, "Dimension", func(x field) error {
							switch {
							case x.num == dimValue && x.wire == wireVarint:
								dim.Value = int64(x.v)
								if dim.Value < 0 {
									dim.Value = -1
								}
							case x.num == dimParam && x.wire == wireBytes:
								dim.Param = string(x.b)
							}
							return nil
						}); err != nil {
							return err
						}
						if dim.Param != "" {
							dim.Value = -1
						}
						vi.Shape = append(vi.Shape, dim)
						return nil
					})
				}
				return nil
			})
		case typeSequence:
			vi.Kind = KindSequence
		case typeMap:
			vi.Kind = KindMap
		case typeOptional:
			vi.Kind = KindOptional
		}
		return nil
	})
}

// ReadInfoFile maps the model file read-only and reads its Info; only the
// pages holding field headers are touched, so this is cheap even for a model
// of hundreds of megabytes.
func ReadInfoFile(path string) (*Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() == 0 {
		return nil, fmt.Errorf("%s: %w: the file is empty", path, ErrMalformed)
	}
	if st.Size() > math.MaxInt32*4 {
		return nil, fmt.Errorf("%s: %w: %d bytes is larger than a protobuf model can be", path, ErrMalformed, st.Size())
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	defer func() { _ = syscall.Munmap(data) }()
	info, err := ReadInfo(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}
