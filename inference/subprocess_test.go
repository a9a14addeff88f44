package inference

// Tests that need a runtime of their own (another ONNX Runtime library)
// re-run the test binary with subprocessEnv set; TestMain dispatches here.
const subprocessEnv = "ZHIYIN_INFERENCE_SUBPROCESS"

func runSubprocess(name string) int {
	switch name {
	case "cuda-build":
		return subCUDABuild()
	default:
		println("unknown subprocess", name)
		return 2
	}
}
