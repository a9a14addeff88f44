package asr

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zhiyin/zhiyin/inference"
)

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadTokens(t *testing.T) {
	for _, c := range []struct {
		name, file, data string
		want             []string
		err              string
	}{
		{"txt", "tokens.txt", "<blank> 0\n<s> 1\n</s> 2\n你 3\n", []string{"<blank>", "<s>", "</s>", "你"}, ""},
		{"txt any order, CRLF, space token", "tokens.txt", "b 1\r\n2\r\na 0\r\n", []string{"a", "b", " "}, ""},
		{"json", "tokens.json", `["<unk>","<s>","</s>","▁hi"]`, []string{"<unk>", "<s>", "</s>", "▁hi"}, ""},
		{"gap", "tokens.txt", "a 0\nb 2\n", nil, "without gaps"},
		{"duplicate", "tokens.txt", "a 0\nb 0\n", nil, "listed twice"},
		{"bad id", "tokens.txt", "a x\n", nil, "bad id"},
		{"negative id", "tokens.txt", "a -1\n", nil, "bad id"},
		{"three fields", "tokens.txt", "a b 0\n", nil, "want \"piece id\""},
		{"empty", "tokens.txt", "\n\n", nil, "no tokens"},
		{"json not array", "tokens.json", `{"a":1}`, nil, "not a JSON array"},
		{"json empty", "tokens.json", `[]`, nil, "no tokens"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadTokens(writeFile(t, c.file, c.data))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	if _, err := ReadTokens(filepath.Join(t.TempDir(), "missing.txt")); err == nil {
		t.Error("missing file: no error")
	}
}

func FuzzTokensTxt(f *testing.F) {
	f.Add("<blank> 0\n<s> 1\n</s> 2\n你 3\n")
	f.Add("2\n a 0\nb 1")
	f.Add("a 99999999999999999999\n")
	f.Fuzz(func(t *testing.T, data string) {
		toks, err := parseTokensTxt(strings.NewReader(data))
		if err == nil && len(toks) == 0 {
			t.Fatal("no error and no tokens")
		}
	})
}

func TestJoin(t *testing.T) {
	para := strings.Fields("yester@@ day was 星 期 一 to@@ day is tues@@ day 明 天 是 星 期 三 </s>")
	if got, want := joinParaformer(para), "yesterday was 星期一 today is tuesday 明天是星期三"; got != want {
		t.Errorf("paraformer: %q, want %q", got, want)
	}
	if got := joinParaformer([]string{"<s>", "hel@@"}); got != "hel" {
		t.Errorf("dangling @@: %q", got)
	}
	sp := []string{"▁hello", "▁wor", "ld", "，", "你", "好", "<|zh|>"}
	if got, want := joinSentencePiece(sp), "hello world，你好"; got != want {
		t.Errorf("sentencepiece: %q, want %q", got, want)
	}
	if got, want := JoinText([]string{"你好", " 再见", "hello", "world", "", "。ok"}), "你好再见hello world。ok"; got != want {
		t.Errorf("JoinText: %q, want %q", got, want)
	}
}

// logits builds a [1, rows, V] tensor whose row argmaxes are ids.
func logits(ids []int, vocab int) inference.Tensor {
	data := make([]float32, len(ids)*vocab)
	for t, id := range ids {
		for v := 0; v < vocab; v++ {
			data[t*vocab+v] = -float32(v%7) - 1
		}
		data[t*vocab+id] = 5
	}
	return inference.NewTensor([]int64{1, int64(len(ids)), int64(vocab)}, data)
}

func TestDecodeSenseVoice(t *testing.T) {
	toks := []string{"<unk>", "<s>", "</s>", "<|zh|>", "<|en|>", "<|HAPPY|>", "<|Speech|>", "<|withitn|>", "▁hello", "你", "好", "<|nospeech|>", "<|BGM|>"}
	info := &modelInfo{kind: SenseVoice, tokens: toks}
	// tags, then 你 你 _ 你 好 ▁hello (frames 4..9): repeats collapse, a
	// blank separates two 你.
	h, err := decodeSenseVoice(info, logits([]int{3, 5, 6, 7, 9, 9, 0, 9, 10, 8}, len(toks)), -1)
	if err != nil {
		t.Fatal(err)
	}
	if h.text != "你你好 hello" || h.lang != "zh" || h.emotion != "happy" || h.event != "speech" {
		t.Errorf("got %+v", h)
	}
	if len(h.tokens) != 4 || h.tokens[0].Start != 0 || h.tokens[1].Start < 0.17 || h.tokens[3].Text != "hello" {
		t.Errorf("tokens %+v", h.tokens)
	}
	// encoder_out_lens cuts the frames.
	h, _ = decodeSenseVoice(info, logits([]int{4, 5, 12, 7, 9, 10}, len(toks)), 5)
	if h.text != "你" || h.lang != "en" || h.event != "bgm" {
		t.Errorf("limited: %+v", h)
	}
	// No speech: no text.
	h, _ = decodeSenseVoice(info, logits([]int{11, 5, 6, 7, 9}, len(toks)), -1)
	if h.text != "" || h.lang != "nospeech" {
		t.Errorf("nospeech: %+v", h)
	}
	if _, err := decodeSenseVoice(info, logits([]int{1}, 5), -1); err == nil {
		t.Error("vocabulary mismatch: no error")
	}
}

func TestDecodeParaformer(t *testing.T) {
	toks := []string{"<blank>", "<s>", "</s>", "你", "好", "hel@@", "lo", "<unk>"}
	info := &modelInfo{kind: Paraformer, tokens: toks, eos: 2, predictorBias: 1}
	// token_num 5 − bias 1 = 4 rows: 你 好 hel@@ lo; the 5th is ignored.
	h, err := decodeParaformer(info, logits([]int{3, 4, 5, 6, 3}, len(toks)), 5, nil)
	if err != nil || h.text != "你好 hello" {
		t.Fatalf("got %q, %v", h.text, err)
	}
	// </s> stops early; blanks are dropped; repeats are kept (no CTC).
	h, _ = decodeParaformer(info, logits([]int{3, 0, 3, 2, 4}, len(toks)), 9, nil)
	if h.text != "你你" {
		t.Errorf("eos: %q", h.text)
	}
	// CIF peaks give timestamps when they match the tokens one to one
	// (the last peak is dropped).
	peaks := make([]float32, 30)
	for _, k := range []int{3, 10, 20} {
		peaks[k] = 1
	}
	h, _ = decodeParaformer(info, logits([]int{3, 4, 2}, len(toks)), 3, peaks)
	if len(h.tokens) != 2 || h.tokens[0].Start != 0.06 || h.tokens[1].Start != 0.2 || h.tokens[0].End != 0.2 {
		t.Errorf("timestamps %+v", h.tokens)
	}
	peaks[25] = 1 // one too many: no timestamps
	h, _ = decodeParaformer(info, logits([]int{3, 4, 2}, len(toks)), 3, peaks)
	if len(h.tokens) != 0 {
		t.Errorf("mismatched peaks gave timestamps %+v", h.tokens)
	}
}

func TestArgmax(t *testing.T) {
	naive := func(r []float32) int {
		bi := 0
		for i, v := range r {
			if v > r[bi] {
				bi = i
			}
		}
		return bi
	}
	for n := 1; n < 40; n++ {
		for seed := 0; seed < 50; seed++ {
			r := make([]float32, n)
			for i := range r {
				r[i] = float32((i*7919+seed*104729)%13) - 6 // many ties
			}
			if got, want := argmax(r), naive(r); got != want {
				t.Fatalf("n %d seed %d: argmax %d, want %d (%v)", n, seed, got, want, r)
			}
		}
	}
}
