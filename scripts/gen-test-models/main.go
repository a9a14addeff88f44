// Command gen-test-models writes the project's generated ONNX test models
// (inference/testmodels) into a folder, one sub-folder per model holding
// model.onnx and its model.yaml manifest, and the ASR contract models
// (asr/asrtest: release folders shaped like the real SenseVoice and
// Paraformer ones, without model.yaml) into its asr/ sub-folder, and the TTS
// contract models (asr/tts/ttstest: VITS, Matcha, vocos) into tts/:
//
//	go run ./scripts/gen-test-models            # writes models/testdata
//	go run ./scripts/gen-test-models -out DIR
//
// The output is reproducible byte for byte; inference's and asrtest's tests
// fail when the committed files differ from what this writes.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zhiyin/zhiyin/asr/asrtest"
	"github.com/zhiyin/zhiyin/asr/tts/ttstest"
	"github.com/zhiyin/zhiyin/inference/testmodels"
)

func main() {
	out := flag.String("out", filepath.Join("models", "testdata"), "folder to write the model folders into")
	flag.Parse()
	if err := write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen-test-models:", err)
		os.Exit(1)
	}
}

func write(out string) error {
	for _, f := range testmodels.Generate() {
		dir := filepath.Join(out, f.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, file := range f.Files {
			p := filepath.Join(dir, file.Name)
			tmp := p + ".tmp"
			if err := os.WriteFile(tmp, file.Data, 0o644); err != nil {
				return err
			}
			if err := os.Rename(tmp, p); err != nil {
				return err
			}
			fmt.Printf("%s (%d bytes)\n", p, len(file.Data))
		}
	}
	for _, f := range asrtest.All() {
		dir, err := asrtest.Write(filepath.Join(out, "asr"), f)
		if err != nil {
			return err
		}
		for _, file := range f.Files {
			fmt.Printf("%s (%d bytes)\n", filepath.Join(dir, file.Name), len(file.Data))
		}
	}
	for _, f := range ttstest.All() {
		dir, err := ttstest.Write(filepath.Join(out, "tts"), f)
		if err != nil {
			return err
		}
		fmt.Println(dir)
	}
	return nil
}
