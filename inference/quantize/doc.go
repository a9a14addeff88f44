// Package quantize rewrites ONNX models for dynamic int8 quantization, in the
// style of onnxruntime's quantize_dynamic, without Python:
//
//   - every MatMul (and Gemm) whose weight B is a float32 rank-2 initializer
//     of at least Options.MinElements elements becomes
//     DynamicQuantizeLinear(A) → MatMulInteger(A_q, W_q, a_zp, w_zp) → Cast
//     → Mul(a_scale·w_scale) (→ Add bias for Gemm), with W quantized once,
//     offline, to int8 symmetric (per tensor or per output column);
//   - every Gather whose table is such an initializer (embeddings) keeps
//     the table as int8 and dequantizes the gathered rows
//     (Gather → DequantizeLinear), unless Options.KeepGather.
//
// It walks the protobuf with google.golang.org/protobuf/encoding/protowire
// and copies every field it does not change byte for byte (unknown fields,
// metadata_props, doc strings, other nodes and initializers), so a model
// it cannot improve comes back identical.
//
// It does no I/O and keeps no state; it does not run models (the tests check
// the numerics with ONNX Runtime) and it does not touch subgraphs (If, Loop,
// Scan bodies) or models whose weights live in external data files.
package quantize
