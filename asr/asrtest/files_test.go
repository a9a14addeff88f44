package asrtest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/zhiyin/zhiyin/asr/asrtest"
	"github.com/zhiyin/zhiyin/inference"
	pb "github.com/zhiyin/zhiyin/inference/onnxpb"
	"github.com/zhiyin/zhiyin/models"
)

// The committed folders are what the generator writes today, and nothing
// else.
func TestCommittedFilesMatchGenerator(t *testing.T) {
	for _, f := range generated() {
		t.Run(f.Name, func(t *testing.T) {
			dir := filepath.Join(committedDir, f.Name)
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatalf("%v (run: go run ./scripts/gen-test-models)", err)
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			var want []string
			for _, file := range f.Files {
				want = append(want, file.Name)
				got, err := os.ReadFile(filepath.Join(dir, file.Name))
				if err != nil {
					t.Fatalf("%v (run: go run ./scripts/gen-test-models)", err)
				}
				if !bytes.Equal(got, file.Data) {
					t.Errorf("%s/%s differs from the generator's output: run go run ./scripts/gen-test-models and commit", dir, file.Name)
				}
				if len(got) >= 5<<20 {
					t.Errorf("%s/%s is %d bytes; generated files must stay under 5 MB", dir, file.Name, len(got))
				}
			}
			slices.Sort(names)
			slices.Sort(want)
			if !slices.Equal(names, want) {
				t.Errorf("%s holds %v, the generator writes %v", dir, names, want)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	again := asrtest.All()
	for i, f := range generated() {
		for j, file := range f.Files {
			if !bytes.Equal(file.Data, again[i].Files[j].Data) {
				t.Errorf("%s/%s differs between two runs", f.Name, file.Name)
			}
		}
	}
}

// parseTokensTxt reads tokens.txt as sherpa-onnx's SymbolTable does: "piece
// id" per line, a line with only an id is a space token.
func parseTokensTxt(t *testing.T, data []byte) (pieces []string, spaceLines int) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 0; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		piece := ""
		switch len(fields) {
		case 1:
			piece = " "
			spaceLines++
		case 2:
			piece = fields[0]
		default:
			t.Fatalf("line %d: %q has %d fields", n+1, sc.Text(), len(fields))
		}
		id, err := strconv.Atoi(fields[len(fields)-1])
		if err != nil || id != n {
			t.Fatalf("line %d: id %q, want %d", n+1, fields[len(fields)-1], n)
		}
		pieces = append(pieces, piece)
	}
	return pieces, spaceLines
}

func isHan(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n == len(s) && unicode.Is(unicode.Han, r)
}

func TestTokens(t *testing.T) {
	cases := []struct {
		folder, file string
		tokens       []string
		text         []int32
		pad          int32
		space        int // lines with only an id
		fixed        map[int]string
		contains     []string
	}{
		{asrtest.SenseVoiceSherpaName, "tokens.txt", asrtest.SenseVoiceTokens(), asrtest.SenseVoiceTextIDs(), asrtest.SenseVoicePadID(), 1,
			map[int]string{0: "<unk>", 1: "<s>", 2: "</s>", 24884: "<|zh|>", 24885: "<|en|>", 24888: "<|yue|>", 24892: "<|ja|>", 24896: "<|ko|>",
				24992: "<|nospeech|>", 25001: "<|HAPPY|>", 25002: "<|SAD|>", 25003: "<|ANGRY|>", 25004: "<|NEUTRAL|>", 25005: "<|FEARFUL|>",
				25006: "<|DISGUSTED|>", 25007: "<|SURPRISED|>", 25009: "<|EMO_UNKNOWN|>", 24993: "<|Speech|>", 24995: "<|BGM|>",
				24997: "<|Laughter|>", 24999: "<|Applause|>", 25010: "<|Cry|>", 25011: "<|Sneeze|>", 25012: "<|Breath|>", 25013: "<|Cough|>",
				25016: "<|withitn|>", 25017: "<|woitn|>"},
			[]string{"▁hello", "ing"}},
		{asrtest.SenseVoiceFunASRName, "tokens.json", asrtest.SenseVoiceTokens(), asrtest.SenseVoiceTextIDs(), asrtest.SenseVoicePadID(), 0, nil, nil},
		{asrtest.ParaformerSherpaName, "tokens.txt", asrtest.ParaformerTokens(), asrtest.ParaformerTextIDs(), asrtest.ParaformerPadID(), 0,
			map[int]string{0: "<blank>", 1: "<s>", 2: "</s>", 8403: "<unk>"}, []string{"hel@@", "lo"}},
		{asrtest.ParaformerTimestampsName, "tokens.txt", asrtest.ParaformerTokens(), asrtest.ParaformerTextIDs(), asrtest.ParaformerPadID(), 0, nil, nil},
		{asrtest.ParaformerFunASRName, "tokens.json", asrtest.ParaformerTokens(), asrtest.ParaformerTextIDs(), asrtest.ParaformerPadID(), 0, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.folder, func(t *testing.T) {
			data := folder(t, c.folder).File(c.file)
			var pieces []string
			spaces := 0
			if strings.HasSuffix(c.file, ".json") {
				if err := json.Unmarshal(data, &pieces); err != nil {
					t.Fatal(err)
				}
			} else {
				pieces, spaces = parseTokensTxt(t, data)
			}
			if !slices.Equal(pieces, c.tokens) {
				t.Fatalf("%s does not hold the vocabulary's %d pieces (%d read)", c.file, len(c.tokens), len(pieces))
			}
			if spaces != c.space {
				t.Errorf("%d lines hold only an id, want %d", spaces, c.space)
			}
			seen := map[string]int{}
			for id, p := range pieces {
				if prev, ok := seen[p]; ok {
					t.Errorf("piece %q at ids %d and %d", p, prev, id)
				}
				seen[p] = id
				if p != " " && (p == "" || strings.ContainsAny(p, " \t\r\n")) {
					t.Errorf("id %d: piece %q", id, p)
				}
			}
			for id, p := range c.fixed {
				if pieces[id] != p {
					t.Errorf("id %d is %q, want %q", id, pieces[id], p)
				}
			}
			for _, p := range c.contains {
				if _, ok := seen[p]; !ok {
					t.Errorf("no piece %q", p)
				}
			}
			if len(c.text) != 300 {
				t.Errorf("%d text ids", len(c.text))
			}
			for _, id := range append(slices.Clone(c.text), c.pad) {
				if !isHan(pieces[id]) {
					t.Errorf("text id %d is %q, not one CJK character", id, pieces[id])
				}
			}
			if pieces[c.pad] != asrtest.PadMarker || slices.Contains(c.text, c.pad) {
				t.Errorf("pad id %d is %q", c.pad, pieces[c.pad])
			}
		})
	}
	if id := asrtest.SenseVoiceSpaceID(); asrtest.SenseVoiceTokens()[id] != " " || slices.Contains(asrtest.SenseVoiceTextIDs(), id) {
		t.Errorf("space id %d", id)
	}
}

// loadCMVN reads am.mvn as FunASR's frontend.py and sherpa-onnx's
// export-onnx.py do: the bracketed numbers of the <LearnRateCoef> lines,
// first the neg_mean, then the inv_stddev.
func loadCMVN(t *testing.T, data []byte) (negMean, invStddev []string) {
	t.Helper()
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "<LearnRateCoef>") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || f[2] != "[" || f[len(f)-1] != "]" {
			t.Fatalf("bad line %.40q", line)
		}
		if negMean == nil {
			negMean = f[3 : len(f)-1]
		} else {
			invStddev = f[3 : len(f)-1]
		}
	}
	return negMean, invStddev
}

func floatsOf(t *testing.T, s []string) []float32 {
	t.Helper()
	out := make([]float32, len(s))
	for i, x := range s {
		f, err := strconv.ParseFloat(x, 32)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = float32(f)
	}
	return out
}

func TestCMVN(t *testing.T) {
	svMean, svStd := asrtest.SenseVoiceCMVN()
	pfMean, pfStd := asrtest.ParaformerCMVN()
	for _, c := range []struct {
		folder          string
		negMean, invStd []float32
	}{
		{asrtest.SenseVoiceFunASRName, svMean, svStd},
		{asrtest.ParaformerFunASRName, pfMean, pfStd},
	} {
		t.Run(c.folder, func(t *testing.T) {
			data := folder(t, c.folder).File("am.mvn")
			ref, err := os.ReadFile(filepath.Join(sharedData, "frontend", "am.mvn"))
			if err == nil {
				// The same lines, brackets and spacing as a real am.mvn.
				shape := func(b []byte) []string {
					var out []string
					for _, l := range strings.Split(string(b), "\n") {
						if i := strings.Index(l, "["); i >= 0 && len(l) > 40 {
							l = l[:i+1]
						}
						out = append(out, l)
					}
					return out
				}
				if got, want := shape(data), shape(ref); !slices.Equal(got, want) {
					t.Errorf("am.mvn layout\n got %q\nwant %q", got, want)
				}
			}
			nm, is := loadCMVN(t, data)
			if !slices.Equal(floatsOf(t, nm), c.negMean) || !slices.Equal(floatsOf(t, is), c.invStd) {
				t.Error("am.mvn and the exported CMVN differ")
			}
			for i := range c.negMean {
				if c.negMean[i] > -8 || c.negMean[i] < -14 || c.invStd[i] < 0.2 || c.invStd[i] > 0.35 || c.negMean[i] != c.negMean[i%80] {
					t.Fatalf("dim %d: neg_mean %v inv_stddev %v", i, c.negMean[i], c.invStd[i])
				}
			}
		})
	}
	if slices.Equal(svMean, pfMean) {
		t.Error("SenseVoice and Paraformer share their CMVN; a recognizer using the wrong one would go unnoticed")
	}
}

func readInfo(t *testing.T, f asrtest.Folder) *pb.Info {
	t.Helper()
	info, err := pb.ReadInfo(f.File("model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func sig(vis []pb.ValueInfo) string {
	var parts []string
	for _, v := range vis {
		var dims []string
		for _, d := range v.Shape {
			dims = append(dims, d.String())
		}
		parts = append(parts, v.Name+":"+v.ElemType.String()+"["+strings.Join(dims, ",")+"]")
	}
	return strings.Join(parts, " ")
}

// The graphs' signatures and metadata, read back with onnxpb.
func TestGraphInfo(t *testing.T) {
	svNeg, svStd := asrtest.SenseVoiceCMVN()
	pfNeg, pfStd := asrtest.ParaformerCMVN()
	svMeta := map[string]string{
		"lfr_window_size": "7", "lfr_window_shift": "6", "normalize_samples": "0", "vocab_size": "25055",
		"lang_auto": "0", "lang_zh": "3", "lang_en": "4", "lang_yue": "7", "lang_ja": "11", "lang_ko": "12", "lang_nospeech": "13",
		"with_itn": "14", "without_itn": "15", "comment": "iic/SenseVoiceSmall", "model_type": "sense_voice_ctc", "version": "2",
		"maintainer": "zhiyin-contract-model", "model_author": "zhiyin", "url": "https://huggingface.co/FunAudioLLM/SenseVoiceSmall",
	}
	pfMeta := map[string]string{"vocab_size": "8404", "lfr_window_size": "7", "lfr_window_shift": "6", "model_type": "paraformer", "maintainer": "zhiyin-contract-model"}
	pfIn := "speech:float32[batch_size,feats_length,560] speech_lengths:int32[batch_size]"
	pfOut := "logits:float32[batch_size,logits_length,8404] token_num:int32[batch_size]"
	for _, c := range []struct {
		folder, in, out string
		meta            map[string]string
		neg, std        []float32
	}{
		{asrtest.SenseVoiceSherpaName,
			"x:float32[N,T,560] x_length:int32[N] language:int32[N] text_norm:int32[N]",
			"logits:float32[N,T,25055]", svMeta, svNeg, svStd},
		{asrtest.SenseVoiceFunASRName,
			"speech:float32[batch_size,feats_length,560] speech_lengths:int32[batch_size] language:int32[batch_size] textnorm:int32[batch_size]",
			"ctc_logits:float32[batch_size,logits_length,25055] encoder_out_lens:int32[batch_size]", nil, nil, nil},
		{asrtest.ParaformerSherpaName, pfIn, pfOut, pfMeta, pfNeg, pfStd},
		{asrtest.ParaformerTimestampsName, pfIn,
			pfOut + " us_alphas:float32[batch_size,alphas_length] us_cif_peak:float32[batch_size,alphas_length]", pfMeta, pfNeg, pfStd},
		{asrtest.ParaformerFunASRName, pfIn, pfOut, nil, nil, nil},
	} {
		t.Run(c.folder, func(t *testing.T) {
			info := readInfo(t, folder(t, c.folder))
			if info.IRVersion != 8 || info.Opsets[""] != 17 || info.ExternalData {
				t.Errorf("ir %d opsets %v external %v", info.IRVersion, info.Opsets, info.ExternalData)
			}
			if got := sig(info.Inputs); got != c.in {
				t.Errorf("inputs\n got %s\nwant %s", got, c.in)
			}
			if got := sig(info.Outputs); got != c.out {
				t.Errorf("outputs\n got %s\nwant %s", got, c.out)
			}
			if c.meta == nil {
				if len(info.Metadata) != 0 {
					t.Errorf("a FunASR export has no metadata: %v", info.Metadata)
				}
				return
			}
			for k, v := range c.meta {
				if info.Metadata[k] != v {
					t.Errorf("metadata %s = %q, want %q", k, info.Metadata[k], v)
				}
			}
			if n := len(info.Metadata); n != len(c.meta)+2 {
				t.Errorf("%d metadata keys, want %d", n, len(c.meta)+2)
			}
			// Comma-separated, as sherpa-onnx reads float vectors.
			for key, want := range map[string][]float32{"neg_mean": c.neg, "inv_stddev": c.std} {
				if got := floatsOf(t, strings.Split(info.Metadata[key], ",")); !slices.Equal(got, want) {
					t.Errorf("%s: %d values, not the exported CMVN", key, len(got))
				}
			}
		})
	}
	// The FunASR am.mvn and the sherpa-onnx metadata hold the same strings,
	// as export-onnx.py copies them.
	for sherpa, funasr := range map[string]string{asrtest.SenseVoiceSherpaName: asrtest.SenseVoiceFunASRName, asrtest.ParaformerSherpaName: asrtest.ParaformerFunASRName} {
		info := readInfo(t, folder(t, sherpa))
		nm, is := loadCMVN(t, folder(t, funasr).File("am.mvn"))
		if strings.Join(nm, ",") != info.Metadata["neg_mean"] || strings.Join(is, ",") != info.Metadata["inv_stddev"] {
			t.Errorf("%s metadata and %s/am.mvn differ", sherpa, funasr)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	for _, c := range []struct {
		folder, model string
		bias          int
	}{{asrtest.SenseVoiceFunASRName, "SenseVoiceSmall", 0}, {asrtest.ParaformerFunASRName, "Paraformer", 1}} {
		var cfg struct {
			Model     string `yaml:"model"`
			Frontend  string `yaml:"frontend"`
			ModelConf struct {
				PredictorBias int `yaml:"predictor_bias"`
			} `yaml:"model_conf"`
			FrontendConf struct {
				FS          int    `yaml:"fs"`
				Window      string `yaml:"window"`
				NMels       int    `yaml:"n_mels"`
				FrameLength int    `yaml:"frame_length"`
				FrameShift  int    `yaml:"frame_shift"`
				LFRM        int    `yaml:"lfr_m"`
				LFRN        int    `yaml:"lfr_n"`
			} `yaml:"frontend_conf"`
		}
		dec := yaml.NewDecoder(bytes.NewReader(folder(t, c.folder).File("config.yaml")))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			t.Fatalf("%s: %v", c.folder, err)
		}
		fc := cfg.FrontendConf
		if cfg.Model != c.model || cfg.Frontend != "WavFrontend" || cfg.ModelConf.PredictorBias != c.bias ||
			fc.FS != 16000 || fc.Window != "hamming" || fc.NMels != 80 || fc.FrameLength != 25 || fc.FrameShift != 10 || fc.LFRM != 7 || fc.LFRN != 6 {
			t.Errorf("%s: %+v", c.folder, cfg)
		}
	}
}

// Every folder installs from the catalog, which recognises it by its files
// and release name, and passes the contract check.
func TestInstall(t *testing.T) {
	for _, c := range []struct {
		folder, name, version, layout, graph string
		files                                []string
	}{
		{asrtest.SenseVoiceSherpaName, "sense-voice-small", "2024-07-17", "sherpa-onnx", "model.onnx", []string{"model.onnx", "tokens.txt"}},
		{asrtest.SenseVoiceFunASRName, "sense-voice-small", "2024-07-17", "funasr", "model.onnx", []string{"model.onnx", "tokens.json", "am.mvn", "config.yaml"}},
		{asrtest.ParaformerSherpaName, "paraformer-zh", "2024-03-09", "sherpa-onnx", "model.onnx", []string{"model.onnx", "tokens.txt"}},
		{asrtest.ParaformerTimestampsName, "paraformer-zh", "2023-09-14", "sherpa-onnx", "model.onnx", []string{"model.onnx", "tokens.txt"}},
		{asrtest.ParaformerFunASRName, "paraformer-zh", "funasr", "funasr", "model.onnx", []string{"model.onnx", "tokens.json", "am.mvn", "config.yaml"}},
	} {
		t.Run(c.folder, func(t *testing.T) {
			inst := install(t, folder(t, c.folder))
			m := inst.Manifest
			if !inst.Generated || inst.Slot != inference.SlotServing || m.Name != c.name || m.Version != c.version || m.Metadata["layout"] != c.layout || m.Graph != c.graph {
				t.Errorf("installed %s %s (layout %s, graph %s, generated %v, slot %q)", m.Name, m.Version, m.Metadata["layout"], m.Graph, inst.Generated, inst.Slot)
			}
			var files []string
			for _, f := range m.Files {
				files = append(files, f.Path)
			}
			if !slices.Equal(files, c.files) {
				t.Errorf("manifest files %v, want %v", files, c.files)
			}
			if _, err := inference.CheckModel(inst.Link); err != nil {
				t.Error(err)
			}
		})
	}
}

// Every real Paraformer export fixes the vocabulary axis (8404); the
// catalog's symbolic V must accept it.
func TestCatalogParaformerVocabAxis(t *testing.T) {
	cat, err := inference.ParseCatalog(models.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	src, err := asrtest.Write(tmp, folder(t, asrtest.ParaformerSherpaName))
	if err != nil {
		t.Fatal(err)
	}
	_, err = inference.NewStore(filepath.Join(tmp, "store"), cat).Install(context.Background(), src, inference.InstallOptions{})
	if err != nil {
		t.Fatal(err)
	}
}
