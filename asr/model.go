package asr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zhiyin/zhiyin/asr/features"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/onnxpb"
)

// Kind is a recognizer family.
type Kind string

// The recognizer families zhiyin decodes.
const (
	// SenseVoice is SenseVoice-small: CTC over T+4 frames whose first four
	// tokens are the language, emotion, event and ITN tags.
	SenseVoice Kind = "sense-voice"
	// Paraformer is the offline (non-streaming) Paraformer: one output row
	// per token fired by the CIF predictor.
	Paraformer Kind = "paraformer"
)

// Language ids of SenseVoice's `language` input (FunASR model.py lid_dict,
// the sherpa-onnx metadata defaults).
var senseVoiceLangIDs = map[string]int32{"auto": 0, "zh": 3, "en": 4, "yue": 7, "ja": 11, "ko": 12, "nospeech": 13}

// Languages lists the language codes a request may ask for.
func Languages() []string { return []string{"auto", "zh", "en", "yue", "ja", "ko"} }

// ValidLanguage reports whether code is one of Languages (or empty).
func ValidLanguage(code string) bool {
	if code == "" {
		return true
	}
	_, ok := senseVoiceLangIDs[code]
	return ok && code != "nospeech"
}

// modelInfo is what running and decoding one installed model version
// needs besides the ONNX session: immutable once built.
type modelInfo struct {
	kind    Kind
	name    string
	version string
	dir     string
	tokens  []string
	front   features.FrontendConfig
	blank   int
	eos     int // </s>, -1 when the list has none

	// SenseVoice
	langIDs            map[string]int32
	withITN, withoutIT int32
	outLens            int // index of encoder_out_lens, -1 when absent

	// Paraformer
	predictorBias int
	peaks         int // index of us_cif_peak, -1 when absent
}

// describe reads a model folder's companion files: tokens, CMVN and the
// front-end settings (from the manifest's metadata, the ONNX metadata that
// sherpa-onnx writes, or FunASR's am.mvn).
func describe(man *inference.Manifest) (*modelInfo, error) {
	c := man.Contract
	info := &modelInfo{name: man.Name, version: man.Version, dir: man.Dir, outLens: -1, peaks: -1, eos: -1}
	switch {
	case len(c.Inputs) == 4:
		info.kind = SenseVoice
	case len(c.Inputs) == 2:
		info.kind = Paraformer
	default:
		return nil, fmt.Errorf("%w: model %s has %d inputs; a SenseVoice model has 4 (speech, lengths, language, textnorm) and a Paraformer model 2 (speech, lengths)",
			ErrModelFiles, man.Name, len(c.Inputs))
	}
	for i, o := range c.Outputs {
		switch o.Name {
		case "encoder_out_lens":
			info.outLens = i
		case "us_cif_peak":
			info.peaks = i
		}
	}
	md := map[string]string{}
	for k, v := range man.Metadata {
		md[k] = v
	}
	// sherpa-onnx keeps the front-end and ids in the ONNX metadata; read
	// them (without the weights: only the model's top-level fields).
	if gi, err := onnxpb.ReadInfoFile(man.GraphPath()); err == nil {
		for k, v := range gi.Metadata {
			if _, set := md[k]; !set {
				md[k] = v
			}
		}
	} else {
		return nil, fmt.Errorf("%w: read %s: %v", ErrModelFiles, man.GraphPath(), err)
	}

	tokFile := md["tokens"]
	if tokFile == "" {
		for _, n := range []string{"tokens.txt", "tokens.json"} {
			if _, err := os.Stat(filepath.Join(man.Dir, n)); err == nil {
				tokFile = n
				break
			}
		}
	}
	if tokFile == "" {
		return nil, fmt.Errorf("%w: model %s has no tokens.txt or tokens.json in %s", ErrModelFiles, man.Name, man.Dir)
	}
	toks, err := ReadTokens(man.Path(tokFile))
	if err != nil {
		return nil, err
	}
	info.tokens = toks
	if n, ok := atoi(md["vocab_size"]); ok && n != len(toks) {
		return nil, fmt.Errorf("%w: %s lists %d tokens but the model's vocab_size is %d", ErrModelFiles, tokFile, len(toks), n)
	}
	for i, t := range toks {
		if t == "</s>" {
			info.eos = i
		}
	}
	if n, ok := atoi(md["blank_id"]); ok {
		if n < 0 || n >= len(toks) {
			return nil, fmt.Errorf("%w: blank_id %d is not a token id", ErrModelFiles, n)
		}
		info.blank = n
	}

	// Front-end.
	fo := features.DefaultFbankOptions()
	if md["normalize_samples"] == "1" && info.kind == SenseVoice {
		fo.ScaleInt16 = false
	}
	if sr, ok := atoi(md["sample_rate"]); ok && sr != 16000 {
		return nil, fmt.Errorf("%w: model %s expects %d Hz; zhiyin feeds 16000 Hz", ErrModelFiles, man.Name, sr)
	}
	if d, ok := atoi(md["feature_dim"]); ok && d != fo.NumMel {
		return nil, fmt.Errorf("%w: model %s expects %d mel bins, not %d", ErrModelFiles, man.Name, d, fo.NumMel)
	}
	m, n := 7, 6
	for _, k := range []string{"lfr_window_size", "lfr_m"} {
		if v, ok := atoi(md[k]); ok {
			m = v
		}
	}
	for _, k := range []string{"lfr_window_shift", "lfr_n"} {
		if v, ok := atoi(md[k]); ok {
			n = v
		}
	}
	if m < 1 || n < 1 || m > 32 || n > 32 {
		return nil, fmt.Errorf("%w: model %s: LFR window %d shift %d out of range", ErrModelFiles, man.Name, m, n)
	}
	info.front = features.FrontendConfig{Fbank: fo, LFRM: m, LFRN: n}
	if dim := int(c.Inputs[0].Shape[len(c.Inputs[0].Shape)-1].Size); dim > 0 && dim != fo.NumMel*m {
		return nil, fmt.Errorf("%w: model %s takes %d features per frame, but %d mel bins × LFR %d give %d", ErrModelFiles, man.Name, dim, fo.NumMel, m, fo.NumMel*m)
	}
	cmvn, err := loadCMVN(man, md)
	if err != nil {
		return nil, err
	}
	if cmvn.Dim() != fo.NumMel*m {
		return nil, fmt.Errorf("%w: model %s: CMVN has %d dimensions, the features %d", ErrModelFiles, man.Name, cmvn.Dim(), fo.NumMel*m)
	}
	info.front.CMVN = cmvn

	switch info.kind {
	case SenseVoice:
		info.langIDs = map[string]int32{}
		for code, id := range senseVoiceLangIDs {
			info.langIDs[code] = id
			if v, ok := atoi(md["lang_"+code]); ok {
				info.langIDs[code] = int32(v)
			}
		}
		info.withITN, info.withoutIT = 14, 15
		if v, ok := atoi(md["with_itn"]); ok {
			info.withITN = int32(v)
		}
		if v, ok := atoi(md["without_itn"]); ok {
			info.withoutIT = int32(v)
		}
	case Paraformer:
		info.predictorBias = 1
		if v, ok := atoi(md["predictor_bias"]); ok && v >= 0 && v < 16 {
			info.predictorBias = v
		}
	}
	return info, nil
}

// loadCMVN finds the model's CMVN: am.mvn (FunASR) or the neg_mean and
// inv_stddev metadata (sherpa-onnx).
func loadCMVN(man *inference.Manifest, md map[string]string) (*features.CMVN, error) {
	src := md["cmvn"]
	if src == "" || src == "onnx-metadata" {
		if md["neg_mean"] != "" {
			c, err := features.CMVNFromMetadata(md)
			if err != nil {
				return nil, fmt.Errorf("%w: model %s: CMVN metadata: %v", ErrModelFiles, man.Name, err)
			}
			return c, nil
		}
		if src == "onnx-metadata" {
			return nil, fmt.Errorf("%w: model %s: the ONNX file has no neg_mean/inv_stddev metadata (a sherpa-onnx export has them; a FunASR export ships am.mvn instead)", ErrModelFiles, man.Name)
		}
		src = "am.mvn"
	}
	f, err := os.Open(man.Path(src))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: model %s: %s is missing (FunASR model folders ship it next to model.onnx)", ErrModelFiles, man.Name, src)
		}
		return nil, fmt.Errorf("%w: %v", ErrModelFiles, err)
	}
	defer f.Close()
	c, err := features.ParseAMMVN(f)
	if err != nil {
		return nil, fmt.Errorf("%w: model %s: %s: %v", ErrModelFiles, man.Name, src, err)
	}
	return c, nil
}

func atoi(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	return v, err == nil
}

// ModelSummary is what Check found in a model folder.
type ModelSummary struct {
	Name, Version string
	Kind          Kind
	Tokens        int
	Features      int // per frame, after LFR
}

// Check reads a recognition model folder's companion files (tokens, CMVN,
// front-end metadata) as the engine will, without loading the graph into
// ONNX Runtime; `zhiyin doctor` reports its error.
func Check(man *inference.Manifest) (ModelSummary, error) {
	info, err := describe(man)
	if err != nil {
		return ModelSummary{}, err
	}
	return ModelSummary{Name: info.name, Version: info.version, Kind: info.kind, Tokens: len(info.tokens),
		Features: info.front.Fbank.NumMel * info.front.LFRM}, nil
}
