package inference

import (
	"fmt"
	"math"
	"slices"

	"github.com/zhiyin/zhiyin/inference/onnxpb"
)

// DType is a tensor element type. Its values are ONNX's
// TensorProto.DataType numbers.
type DType int32

// The element types a Tensor can hold.
const (
	Float32 = DType(onnxpb.Float)
	Float64 = DType(onnxpb.Double)
	Int8    = DType(onnxpb.Int8)
	Uint8   = DType(onnxpb.Uint8)
	Int16   = DType(onnxpb.Int16)
	Uint16  = DType(onnxpb.Uint16)
	Int32   = DType(onnxpb.Int32)
	Uint32  = DType(onnxpb.Uint32)
	Int64   = DType(onnxpb.Int64)
	Uint64  = DType(onnxpb.Uint64)
	Bool    = DType(onnxpb.Bool)
)

// String returns the name used in manifests ("float32", "int64", …).
func (d DType) String() string { return onnxpb.ElemType(d).String() }

// supported reports whether Tensor can hold d.
func (d DType) supported() bool {
	switch d {
	case Float32, Float64, Int8, Uint8, Int16, Uint16, Int32, Uint32, Int64, Uint64, Bool:
		return true
	}
	return false
}

// ParseDType parses a manifest dtype name: float32, float64, int8, uint8,
// int16, uint16, int32, uint32, int64, uint64, bool.
func ParseDType(s string) (DType, error) {
	for _, d := range []DType{Float32, Float64, Int8, Uint8, Int16, Uint16, Int32, Uint32, Int64, Uint64, Bool} {
		if d.String() == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown dtype %q: use float32, float64, int8, uint8, int16, uint16, int32, uint32, int64, uint64 or bool", s)
}

// MarshalText writes the manifest name.
func (d DType) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses the manifest name.
func (d *DType) UnmarshalText(b []byte) error {
	v, err := ParseDType(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Element is the Go type of a tensor element.
type Element interface {
	float32 | float64 | int8 | uint8 | int16 | uint16 | int32 | uint32 | int64 | uint64 | bool
}

// Tensor is a dense row-major tensor in Go memory: the input and output of
// Run. Data is a slice of one Element type ([]float32, []int64, …) with
// exactly the number of elements Shape implies; a rank-0 tensor (a scalar)
// has an empty Shape and one element. Run does not keep or modify the
// input tensors after it returns; output tensors belong to the caller.
type Tensor struct {
	Shape []int64
	Data  any
}

// NewTensor returns a tensor over data (not copied).
func NewTensor[T Element](shape []int64, data []T) Tensor {
	return Tensor{Shape: shape, Data: data}
}

// Values returns the tensor's elements as []T, or an error naming both types
// when the tensor holds another type.
func Values[T Element](t Tensor) ([]T, error) {
	v, ok := t.Data.([]T)
	if !ok {
		var zero T
		return nil, fmt.Errorf("tensor holds %s, not %T", t.DType(), zero)
	}
	return v, nil
}

// DType returns the element type, or 0 when Data is not a supported slice.
func (t Tensor) DType() DType {
	switch t.Data.(type) {
	case []float32:
		return Float32
	case []float64:
		return Float64
	case []int8:
		return Int8
	case []uint8:
		return Uint8
	case []int16:
		return Int16
	case []uint16:
		return Uint16
	case []int32:
		return Int32
	case []uint32:
		return Uint32
	case []int64:
		return Int64
	case []uint64:
		return Uint64
	case []bool:
		return Bool
	}
	return 0
}

// Len returns the number of elements in Data (not what Shape says).
func (t Tensor) Len() int {
	switch d := t.Data.(type) {
	case []float32:
		return len(d)
	case []float64:
		return len(d)
	case []int8:
		return len(d)
	case []uint8:
		return len(d)
	case []int16:
		return len(d)
	case []uint16:
		return len(d)
	case []int32:
		return len(d)
	case []uint32:
		return len(d)
	case []int64:
		return len(d)
	case []uint64:
		return len(d)
	case []bool:
		return len(d)
	}
	return 0
}

// shapeSize returns the element count of shape, or -1 when a dimension is
// negative or the product overflows.
func shapeSize(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		if d != 0 && n > math.MaxInt64/d {
			return -1
		}
		n *= d
	}
	return n
}

// check reports whether Data is a supported slice whose length matches
// Shape.
func (t Tensor) check() error {
	if t.DType() == 0 {
		return fmt.Errorf("data is %T, not a slice of a supported element type", t.Data)
	}
	n := shapeSize(t.Shape)
	if n < 0 {
		return fmt.Errorf("invalid shape %v", t.Shape)
	}
	if int64(t.Len()) != n {
		return fmt.Errorf("shape %v needs %d elements, data has %d", t.Shape, n, t.Len())
	}
	return nil
}

// Filled returns a tensor of the given type and shape with every element set
// to v (converted; for bool, v != 0).
func Filled(dt DType, shape []int64, v float64) (Tensor, error) {
	n := shapeSize(shape)
	if n < 0 {
		return Tensor{}, fmt.Errorf("invalid shape %v", shape)
	}
	if n > 1<<31 {
		return Tensor{}, fmt.Errorf("shape %v is too large", shape)
	}
	shape = append([]int64(nil), shape...)
	switch dt {
	case Float32:
		return NewTensor(shape, fill(int(n), float32(v))), nil
	case Float64:
		return NewTensor(shape, fill(int(n), v)), nil
	case Int8:
		return NewTensor(shape, fill(int(n), int8(v))), nil
	case Uint8:
		return NewTensor(shape, fill(int(n), uint8(v))), nil
	case Int16:
		return NewTensor(shape, fill(int(n), int16(v))), nil
	case Uint16:
		return NewTensor(shape, fill(int(n), uint16(v))), nil
	case Int32:
		return NewTensor(shape, fill(int(n), int32(v))), nil
	case Uint32:
		return NewTensor(shape, fill(int(n), uint32(v))), nil
	case Int64:
		return NewTensor(shape, fill(int(n), int64(v))), nil
	case Uint64:
		return NewTensor(shape, fill(int(n), uint64(v))), nil
	case Bool:
		return NewTensor(shape, fill(int(n), v != 0)), nil
	}
	return Tensor{}, fmt.Errorf("unsupported dtype %s", dt)
}

func fill[T Element](n int, v T) []T {
	s := make([]T, n)
	var zero T
	if v != zero {
		for i := range s {
			s[i] = v
		}
	}
	return s
}

// Clone returns a deep copy of t.
func (t Tensor) Clone() Tensor {
	out := Tensor{Shape: append([]int64(nil), t.Shape...)}
	switch d := t.Data.(type) {
	case []float32:
		out.Data = append([]float32(nil), d...)
	case []float64:
		out.Data = append([]float64(nil), d...)
	case []int8:
		out.Data = append([]int8(nil), d...)
	case []uint8:
		out.Data = append([]uint8(nil), d...)
	case []int16:
		out.Data = append([]int16(nil), d...)
	case []uint16:
		out.Data = append([]uint16(nil), d...)
	case []int32:
		out.Data = append([]int32(nil), d...)
	case []uint32:
		out.Data = append([]uint32(nil), d...)
	case []int64:
		out.Data = append([]int64(nil), d...)
	case []uint64:
		out.Data = append([]uint64(nil), d...)
	case []bool:
		out.Data = append([]bool(nil), d...)
	default:
		out.Data = t.Data
	}
	return out
}

// float64At returns element i converted to float64 (bool: 0 or 1).
func (t Tensor) float64At(i int) float64 {
	switch d := t.Data.(type) {
	case []float32:
		return float64(d[i])
	case []float64:
		return d[i]
	case []int8:
		return float64(d[i])
	case []uint8:
		return float64(d[i])
	case []int16:
		return float64(d[i])
	case []uint16:
		return float64(d[i])
	case []int32:
		return float64(d[i])
	case []uint32:
		return float64(d[i])
	case []int64:
		return float64(d[i])
	case []uint64:
		return float64(d[i])
	case []bool:
		if d[i] {
			return 1
		}
	}
	return 0
}

// copyData copies src into dst, slices of the same element type and length.
func copyData(dst, src any) {
	switch d := dst.(type) {
	case []float32:
		copy(d, src.([]float32))
	case []float64:
		copy(d, src.([]float64))
	case []int8:
		copy(d, src.([]int8))
	case []uint8:
		copy(d, src.([]uint8))
	case []int16:
		copy(d, src.([]int16))
	case []uint16:
		copy(d, src.([]uint16))
	case []int32:
		copy(d, src.([]int32))
	case []uint32:
		copy(d, src.([]uint32))
	case []int64:
		copy(d, src.([]int64))
	case []uint64:
		copy(d, src.([]uint64))
	case []bool:
		copy(d, src.([]bool))
	}
}

// cloneData returns a copy of a data slice.
func cloneData(src any) any {
	return Tensor{Data: src}.Clone().Data
}

// copyAt copies src into dst starting at element at and returns the number
// of elements copied.
func copyAt(dst any, at int, src any) int {
	switch d := dst.(type) {
	case []float32:
		return copy(d[at:], src.([]float32))
	case []float64:
		return copy(d[at:], src.([]float64))
	case []int8:
		return copy(d[at:], src.([]int8))
	case []uint8:
		return copy(d[at:], src.([]uint8))
	case []int16:
		return copy(d[at:], src.([]int16))
	case []uint16:
		return copy(d[at:], src.([]uint16))
	case []int32:
		return copy(d[at:], src.([]int32))
	case []uint32:
		return copy(d[at:], src.([]uint32))
	case []int64:
		return copy(d[at:], src.([]int64))
	case []uint64:
		return copy(d[at:], src.([]uint64))
	case []bool:
		return copy(d[at:], src.([]bool))
	}
	return 0
}

// sliceClone returns a copy of src[from:to].
func sliceClone(src any, from, to int) any {
	switch d := src.(type) {
	case []float32:
		return slices.Clone(d[from:to])
	case []float64:
		return slices.Clone(d[from:to])
	case []int8:
		return slices.Clone(d[from:to])
	case []uint8:
		return slices.Clone(d[from:to])
	case []int16:
		return slices.Clone(d[from:to])
	case []uint16:
		return slices.Clone(d[from:to])
	case []int32:
		return slices.Clone(d[from:to])
	case []uint32:
		return slices.Clone(d[from:to])
	case []int64:
		return slices.Clone(d[from:to])
	case []uint64:
		return slices.Clone(d[from:to])
	case []bool:
		return slices.Clone(d[from:to])
	}
	return nil
}
