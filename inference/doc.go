// Package inference runs ONNX models for zhiyin through ONNX Runtime
// (github.com/yalue/onnxruntime_go) on CUDA or CPU: it loads the shared
// library, chooses execution providers, opens models from their manifests,
// warms them up, batches requests, releases memory explicitly and swaps model
// versions with shadow evaluation.
//
// It knows nothing of speech or dialogue.
package inference
