package asrtest_test

import (
	"testing"

	"github.com/zhiyin/zhiyin/asr/asrtest"
)

// BenchmarkGenerate measures computing every folder (what
// scripts/gen-test-models and the tests do).
func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		asrtest.All()
	}
}

// The contract models' cost per run of 6 s of audio (100 LFR frames), batch
// 1, on the CPU: the floor under a recognizer's own overhead in tests.
func BenchmarkSenseVoiceRun(b *testing.B) {
	m := load(b, folder(b, asrtest.SenseVoiceSherpaName))
	x := features(4, 1, 100)
	for b.Loop() {
		runSenseVoice(b, m, x, 100, []int32{100}, []int32{0}, []int32{15})
	}
}

func BenchmarkParaformerRun(b *testing.B) {
	m := load(b, folder(b, asrtest.ParaformerTimestampsName))
	x := features(5, 1, 100)
	for b.Loop() {
		runParaformer(b, m, x, 100, []int32{100})
	}
}
