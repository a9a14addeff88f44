package nlu

import (
	"os"
	"testing"

	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/inferencetest"
)

// The process's one ONNX Runtime, shared by the tests.
var (
	testRT    *inference.Runtime
	testRTErr error
)

func TestMain(m *testing.M) {
	testRT, testRTErr = inferencetest.Start("../..")
	os.Exit(inferencetest.Run(m, testRT))
}

// needRT returns the shared runtime or skips the test.
func needRT(tb testing.TB) *inference.Runtime {
	tb.Helper()
	return inferencetest.Need(tb, testRT, testRTErr)
}
