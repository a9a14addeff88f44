// Package inference runs ONNX models for zhiyin through ONNX Runtime
// (github.com/yalue/onnxruntime_go) on CUDA or CPU. It knows nothing of
// speech or dialogue: callers pass tensors bound by position to a model's
// contract and get tensors back.
//
// The pieces, from the bottom:
//
//   - Runtime: the process's one ONNX Runtime environment (the library
//     resolved from the configuration, $ZHIYIN_ORT_LIB, /usr/lib/zhiyin or
//     the fetched copy; API version checked). Create it in main, Start it,
//     pass it down, Close it last.
//   - Manifest (model.yaml) and Contract: a model folder's files with their
//     sha256, its tensors (names with aliases, dtypes, shapes with symbolic
//     dimensions such as N, T, T+4), warm-up shapes and runtime hints. The
//     ONNX graph is checked against the contract before a session exists
//     (package onnxpb reads the graph's inputs and outputs without ORT).
//   - Model (Runtime.Load): one loaded version on one execution provider —
//     CUDA when asked for and usable, else the CPU with one warning, a
//     metric and the reason — warmed up before it is returned; Run honours
//     cancellation (the ORT run is terminated), limits concurrent runs and,
//     for models with a batch dimension, merges concurrent requests into
//     padded batches and splits the results back. Close releases sessions,
//     run options and tensors.
//   - Store: the writable models folder: install (folder or archive, sha256
//     and contract checked, never half-installed), remove, promote and roll
//     back versions by atomic renames of links.
//   - Registry: what the daemon runs: preloads and warms the configured
//     models (reporting readiness), loads others on first use, unloads idle
//     ones, mirrors a share of traffic to a candidate version (shadow
//     evaluation), and promotes or rolls back without failing a request.
//   - DoctorChecks, Metrics (zhiyin_inference_*), the admin API's routes
//     (AdminModelsPath) and HTTPStatus for the server.
//
// It must not: keep package-level state (onnxruntime_go does, hence one
// Runtime per process); log customer data (tensors are never logged); call
// the network; or write outside the models folder it is given.
package inference
