package testmodels_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/zhiyin/zhiyin/inference"
	pb "github.com/zhiyin/zhiyin/inference/onnxpb"
	"github.com/zhiyin/zhiyin/inference/testmodels"
)

func TestBERTFolder(t *testing.T) {
	for _, c := range []struct {
		opts     testmodels.BERTOptions
		name     string
		inputs   []string
		dtype    pb.ElemType
		outShape string
	}{
		{testmodels.BERTOptions{}, "bert-intent", []string{"input_ids", "attention_mask", "token_type_ids"}, pb.Int64, "[N 5]"},
		{testmodels.BERTOptions{Task: testmodels.TaskToken}, "bert-ner", []string{"input_ids", "attention_mask", "token_type_ids"}, pb.Int64, "[N T 5]"},
		{testmodels.BERTOptions{Name: "two", NoTokenTypes: true, Int32Inputs: true, Hidden: 64, Heads: 2, Layers: 1}, "two", []string{"input_ids", "attention_mask"}, pb.Int32, "[N 5]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := testmodels.BERT(c.opts)
			if f.Name != c.name {
				t.Errorf("name %s", f.Name)
			}
			dir := filepath.Join(t.TempDir(), f.Name)
			os.MkdirAll(dir, 0o755)
			var names []string
			for _, file := range f.Files {
				names = append(names, file.Name)
				if err := os.WriteFile(filepath.Join(dir, file.Name), file.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(names, []string{"model.onnx", "model.yaml", "vocab.txt", "labels.txt"}) {
				t.Fatalf("files %v", names)
			}
			man, err := inference.ReadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := man.Verify(); err != nil {
				t.Fatal(err)
			}
			task := c.opts.Task
			if task == "" {
				task = testmodels.TaskSequence
			}
			if man.Kind != "nlu-bert" || man.Metadata["task"] != task || man.Metadata["labels"] != "labels.txt" || man.Metadata["vocab"] != "vocab.txt" || man.Metadata["max_len"] != "64" {
				t.Errorf("manifest %+v", man.ModelSpec)
			}
			if _, err := inference.CheckModel(dir); err != nil {
				t.Fatalf("graph does not match its contract: %v", err)
			}
			info, err := pb.ReadInfo(f.Files[0].Data)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, in := range info.Inputs {
				got = append(got, in.Name)
				if in.ElemType != c.dtype || len(in.Shape) != 2 {
					t.Errorf("input %s: %s %v", in.Name, in.ElemType, in.Shape)
				}
			}
			if !slices.Equal(got, c.inputs) {
				t.Errorf("inputs %v", got)
			}
			if len(info.Outputs) != 1 || info.Outputs[0].Name != "logits" || dims(info.Outputs[0].Shape) != c.outShape {
				t.Errorf("outputs %+v", info.Outputs)
			}
			if info.Opsets[""] != 17 {
				t.Errorf("opsets %v", info.Opsets)
			}
			labels := strings.Fields(string(f.Files[3].Data))
			if !slices.Equal(labels, testmodels.BERTLabels(task)) {
				t.Errorf("labels.txt %q", labels)
			}
		})
	}
}

func dims(ds []pb.Dim) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.String())
	}
	return "[" + strings.Join(s, " ") + "]"
}

func TestBERTDeterministic(t *testing.T) {
	a, b := testmodels.BERT(testmodels.BERTOptions{}), testmodels.BERT(testmodels.BERTOptions{})
	for i := range a.Files {
		if !bytes.Equal(a.Files[i].Data, b.Files[i].Data) {
			t.Errorf("%s differs between two runs", a.Files[i].Name)
		}
	}
	c := testmodels.BERT(testmodels.BERTOptions{Seed: 2})
	if bytes.Equal(a.Files[0].Data, c.Files[0].Data) {
		t.Error("another seed gives the same weights")
	}
	if !bytes.Equal(a.Files[2].Data, c.Files[2].Data) {
		t.Error("the vocabulary depends on the seed")
	}
}

func TestBERTVocab(t *testing.T) {
	v := testmodels.BERTVocab()
	if !slices.Equal(v[:5], []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
		t.Errorf("specials %q", v[:5])
	}
	seen := map[string]bool{}
	cjk, sub := 0, 0
	for _, tok := range v {
		if seen[tok] {
			t.Errorf("%q twice", tok)
		}
		seen[tok] = true
		if tok == "" || strings.ContainsAny(tok, " \n\r\t") {
			t.Errorf("bad token %q", tok)
		}
		if r := []rune(tok); len(r) == 1 && unicode.Is(unicode.Han, r[0]) {
			cjk++
		}
		if strings.HasPrefix(tok, "##") {
			sub++
		}
		if strings.ToLower(tok) != tok && !strings.HasPrefix(tok, "[") {
			t.Errorf("upper-case token %q in an uncased vocabulary", tok)
		}
	}
	if cjk != 3000 || sub < 36 {
		t.Errorf("%d Chinese characters, %d ## pieces", cjk, sub)
	}
	for _, task := range []string{testmodels.TaskSequence, testmodels.TaskToken} {
		labels := testmodels.BERTLabels(task)
		for tok, label := range testmodels.BERTKeywords(task) {
			if !seen[tok] || !slices.Contains(labels[1:], label) {
				t.Errorf("%s keyword %q → %q: not in the vocabulary or labels", task, tok, label)
			}
		}
	}
}

func TestBERTBadOptions(t *testing.T) {
	for name, o := range map[string]testmodels.BERTOptions{
		"task":    {Task: "ner"},
		"heads":   {Hidden: 100, Heads: 3},
		"max_len": {MaxPosition: 16, MaxLen: 32},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			testmodels.BERT(o)
		})
	}
}
