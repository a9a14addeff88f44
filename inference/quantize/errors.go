package quantize

import "errors"

// ErrNotONNX is returned by Dynamic when its input is not a well-formed ONNX
// model (the error also wraps onnxpb.ErrMalformed with the detail).
var ErrNotONNX = errors.New("not an ONNX model")

// ErrExternalData is returned by Dynamic for a model that keeps initializer
// bytes in files next to it, which Dynamic cannot read.
var ErrExternalData = errors.New("model keeps its weights in external data files")

// ErrUnsupported is returned by Dynamic for a well-formed model it cannot
// rewrite safely (several graph fields, a weight split into segments).
var ErrUnsupported = errors.New("model not supported by the quantizer")
