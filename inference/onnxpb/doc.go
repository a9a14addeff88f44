// Package onnxpb reads and writes the few parts of the ONNX model format
// (a protocol buffer, onnx.proto3) that zhiyin needs without a protobuf
// dependency:
//
//   - ReadInfo reads a model's graph inputs and outputs (names, element types,
//     shapes with symbolic dimensions) and its metadata_props, skipping the
//     weights, so that a model's tensor contract can be checked before an ONNX
//     Runtime session is created and so that a corrupt file is reported with
//     a clear message;
//   - Model/Graph/Node and Marshal build small graphs deterministically, which
//     is how the project generates its own test models.
//
// It is not an ONNX implementation: it does not validate graphs, run shape
// inference or know operators. It does no I/O except ReadInfoFile.
package onnxpb
