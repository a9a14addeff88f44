package dialogue

import (
	"os"
	"testing"

	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/inferencetest"
)

// The ONNX Runtime the tests with the real built-in model share.
var (
	testRT    *inference.Runtime
	testRTErr error
)

func TestMain(m *testing.M) {
	testRT, testRTErr = inferencetest.Start("..")
	os.Exit(inferencetest.Run(m, testRT))
}
