package bert

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/zhiyin/zhiyin/inference/testmodels"
)

// smallVocabTokens is a vocabulary whose ids the tests can count on.
var smallVocabTokens = []string{
	"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", // 0-4
	"你", "好", "世", "界", "，", "!", "-", "。", // 5-12
	"hello", "card", "##s", "top", "up", "un", "##aff", "##able", // 13-20
	"1", "##0", "元", "cafe", "naive", "Hello", "?", // 21-27
}

func smallVocab(t testing.TB, opts ...Option) *WordPiece {
	t.Helper()
	w, err := NewWordPiece(smallVocabTokens, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestEncode(t *testing.T) {
	cases := []struct {
		name    string
		text    string
		maxLen  int
		opts    []Option
		tokens  []string
		offsets [][2]int // without [CLS] and [SEP]
		words   []int    // without [CLS] and [SEP]
		trunc   bool
	}{
		{name: "chinese", text: "你好，世界", tokens: []string{"你", "好", "，", "世", "界"},
			offsets: [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}}, words: []int{0, 1, 2, 3, 4}},
		{name: "wordpiece", text: "Hello cards", tokens: []string{"hello", "card", "##s"},
			offsets: [][2]int{{0, 5}, {6, 10}, {10, 11}}, words: []int{0, 1, 1}},
		{name: "greedy longest match", text: "unaffable", tokens: []string{"un", "##aff", "##able"},
			offsets: [][2]int{{0, 2}, {2, 5}, {5, 9}}, words: []int{0, 0, 0}},
		{name: "punctuation splits", text: "top-up!", tokens: []string{"top", "-", "up", "!"},
			offsets: [][2]int{{0, 3}, {3, 4}, {4, 6}, {6, 7}}, words: []int{0, 1, 2, 3}},
		{name: "digits", text: "100元", tokens: []string{"1", "##0", "##0", "元"},
			offsets: [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}}, words: []int{0, 0, 0, 1}},
		{name: "accents stripped", text: "Café NAÏVE", tokens: []string{"cafe", "naive"},
			offsets: [][2]int{{0, 4}, {5, 10}}, words: []int{0, 1}},
		{name: "combining mark dropped", text: "cafe\u0301", tokens: []string{"cafe"}, offsets: [][2]int{{0, 4}}, words: []int{0}},
		{name: "unknown word", text: "你 Привет 好", tokens: []string{"你", "[UNK]", "好"},
			offsets: [][2]int{{0, 1}, {2, 8}, {9, 10}}, words: []int{0, 1, 2}},
		{name: "unknown continuation makes the word unknown", text: "cardx", tokens: []string{"[UNK]"}, offsets: [][2]int{{0, 5}}, words: []int{0}},
		{name: "too long", text: strings.Repeat("a", 101) + " hello", tokens: []string{"[UNK]", "hello"},
			offsets: [][2]int{{0, 101}, {102, 107}}, words: []int{0, 1}},
		{name: "whitespace and control", text: "\t你\u3000好\u200b\x00\n世\r界 ", tokens: []string{"你", "好", "世", "界"},
			offsets: [][2]int{{1, 2}, {3, 4}, {7, 8}, {9, 10}}, words: []int{0, 1, 2, 3}},
		{name: "invalid utf-8 dropped", text: "你\xff好", tokens: []string{"你", "好"}, offsets: [][2]int{{0, 1}, {2, 3}}, words: []int{0, 1}},
		{name: "empty", text: "", tokens: nil},
		{name: "spaces only", text: "  \n ", tokens: nil},
		{name: "cased", text: "Hello hello", opts: []Option{LowerCase(false)}, tokens: []string{"Hello", "hello"},
			offsets: [][2]int{{0, 5}, {6, 11}}, words: []int{0, 1}},
		{name: "cased keeps accents", text: "Café", opts: []Option{LowerCase(false)}, tokens: []string{"[UNK]"}, offsets: [][2]int{{0, 4}}, words: []int{0}},
		{name: "truncated", text: "你好世界", maxLen: 4, tokens: []string{"你", "好"},
			offsets: [][2]int{{0, 1}, {1, 2}}, words: []int{0, 1}, trunc: true},
		{name: "exact fit", text: "你好 ", maxLen: 4, tokens: []string{"你", "好"},
			offsets: [][2]int{{0, 1}, {1, 2}}, words: []int{0, 1}},
		{name: "truncated inside a word", text: "cards", maxLen: 3, tokens: []string{"card"}, offsets: [][2]int{{0, 4}}, words: []int{0}, trunc: true},
		{name: "max len below 2", text: "你好", maxLen: 1, tokens: nil, trunc: true},
		{name: "unknown words respect the limit", text: "0\"", maxLen: 3, opts: []Option{LowerCase(false)}, tokens: []string{"[UNK]"},
			offsets: [][2]int{{0, 1}}, words: []int{0}, trunc: true},
		{name: "unknown token option", text: "Привет", opts: []Option{UnknownToken("[MASK]")}, tokens: []string{"[MASK]"}, offsets: [][2]int{{0, 6}}, words: []int{0}},
		{name: "max chars option", text: "hello", opts: []Option{MaxCharsPerWord(4)}, tokens: []string{"[UNK]"}, offsets: [][2]int{{0, 5}}, words: []int{0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := smallVocab(t, c.opts...)
			e := w.Encode(c.text, c.maxLen)
			wantTokens := append(append([]string{"[CLS]"}, c.tokens...), "[SEP]")
			if !slices.Equal(e.Tokens, wantTokens) {
				t.Fatalf("tokens %q, want %q", e.Tokens, wantTokens)
			}
			wantOff := append(append([][2]int{{0, 0}}, c.offsets...), [2]int{0, 0})
			if !slices.Equal(e.Offsets, wantOff) {
				t.Errorf("offsets %v, want %v", e.Offsets, wantOff)
			}
			wantWords := append(append([]int{-1}, c.words...), -1)
			if !slices.Equal(e.Words, wantWords) {
				t.Errorf("words %v, want %v", e.Words, wantWords)
			}
			if e.Truncated != c.trunc {
				t.Errorf("truncated %v, want %v", e.Truncated, c.trunc)
			}
			for i, tok := range e.Tokens {
				if id, _ := w.ID(tok); e.IDs[i] != id || w.Token(e.IDs[i]) != tok {
					t.Errorf("token %d %q has id %d", i, tok, e.IDs[i])
				}
				if e.Mask[i] != 1 || e.TypeIDs[i] != 0 {
					t.Errorf("token %d: mask %d type %d", i, e.Mask[i], e.TypeIDs[i])
				}
			}
		})
	}
}

// TestEncodeGeneratedVocab runs the tokenizer on the generated model's
// vocabulary: every Chinese character of a sentence is one known token.
func TestEncodeGeneratedVocab(t *testing.T) {
	w, err := NewWordPiece(testmodels.BERTVocab())
	if err != nil {
		t.Fatal(err)
	}
	e := w.Encode("我想查一下余额，Check my balance please!", 64)
	want := []string{"[CLS]", "我", "想", "查", "一", "下", "余", "额", "，", "check", "my", "balance", "please", "!", "[SEP]"}
	if !slices.Equal(e.Tokens, want) {
		t.Errorf("tokens %q", e.Tokens)
	}
	if e.IDs[0] != 2 || e.IDs[len(e.IDs)-1] != 3 || w.PadID() != 0 || w.Size() != len(testmodels.BERTVocab()) {
		t.Errorf("special ids: %v, pad %d", e.IDs, w.PadID())
	}
}

func TestVocabErrors(t *testing.T) {
	for name, c := range map[string]struct {
		tokens []string
		opts   []Option
		want   string
	}{
		"no specials":     {[]string{"a", "b"}, nil, "lacks [CLS], [SEP], [UNK]"},
		"unknown missing": {[]string{"[CLS]", "[SEP]", "[UNK]"}, []Option{UnknownToken("<unk>")}, "lacks <unk>"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewWordPiece(c.tokens, c.opts...); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want …%s…", err, c.want)
			}
		})
	}
	if _, err := LoadVocab("/nonexistent/vocab.txt"); err == nil || !strings.Contains(err.Error(), "/nonexistent/vocab.txt") {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseVocab(t *testing.T) {
	w, err := ParseVocab(strings.NewReader("[PAD]\r\n[UNK]\n[CLS]\n[SEP]\nhello\nhello\n"))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := w.ID("hello"); id != 5 || w.Size() != 6 {
		t.Errorf("hello = %d (the later id wins), size %d", id, w.Size())
	}
	if id, ok := w.ID("[PAD]"); !ok || id != 0 {
		t.Error("CRLF not trimmed")
	}
}

func TestParseLabels(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		err  string
	}{
		{"O\nB-carrier\nI-carrier\n\n", []string{"O", "B-carrier", "I-carrier"}, ""},
		{" greet \r\nbye", []string{"greet", "bye"}, ""},
		{"only\n", nil, "fewer than 2"},
		{"a\n\nb\n", nil, "line 2 is blank"},
		{"a\nb\na\n", nil, `"a" is on lines 1 and 3`},
	} {
		got, err := ParseLabels(strings.NewReader(c.in))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err = %v, want …%s…", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, %v", c.in, got, err)
		}
	}
}

// checkEncoding asserts the invariants every encoding keeps.
func checkEncoding(t *testing.T, w *WordPiece, text string, maxLen int, e Encoding) {
	t.Helper()
	n := e.Len()
	if len(e.Mask) != n || len(e.TypeIDs) != n || len(e.Offsets) != n || len(e.Tokens) != n || len(e.Words) != n {
		t.Fatalf("lengths differ: %d ids, %d mask, %d types, %d offsets, %d tokens, %d words", n, len(e.Mask), len(e.TypeIDs), len(e.Offsets), len(e.Tokens), len(e.Words))
	}
	if n < 2 || e.Tokens[0] != TokenCLS || e.Tokens[n-1] != TokenSEP {
		t.Fatalf("not framed by [CLS] … [SEP]: %q", e.Tokens)
	}
	if maxLen > 0 && n > max(maxLen, 2) {
		t.Fatalf("%d tokens, max %d", n, maxLen)
	}
	runes := utf8.RuneCountInString(text)
	prevEnd, prevWord := 0, -1
	for i := 1; i < n-1; i++ {
		o := e.Offsets[i]
		if o[0] < 0 || o[0] >= o[1] || o[1] > runes {
			t.Fatalf("token %d %q: offsets %v out of [0,%d]", i, e.Tokens[i], o, runes)
		}
		if o[0] < prevEnd {
			t.Fatalf("token %d %q: offsets %v go back before %d", i, e.Tokens[i], o, prevEnd)
		}
		if e.Words[i] != prevWord && e.Words[i] != prevWord+1 {
			t.Fatalf("token %d: word %d after %d", i, e.Words[i], prevWord)
		}
		if e.IDs[i] < 0 || int(e.IDs[i]) >= w.Size() || w.Token(e.IDs[i]) != e.Tokens[i] {
			t.Fatalf("token %d: id %d for %q", i, e.IDs[i], e.Tokens[i])
		}
		prevEnd, prevWord = o[1], e.Words[i]
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range []string{"你好，世界", "Hello cards unaffable top-up!", "Café NAÏVE cafe\u0301", "\t你\u3000好\u200b\x00\n", "你\xff好", "100元", strings.Repeat("ab", 80), "ǚ ǜ İstanbul ＡＢＣ", ""} {
		f.Add(s, 0)
		f.Add(s, 5)
	}
	w, err := NewWordPiece(append(slices.Clone(smallVocabTokens), testmodels.BERTVocab()[5:]...))
	if err != nil {
		f.Fatal(err)
	}
	cased := smallVocab(f, LowerCase(false))
	f.Fuzz(func(t *testing.T, text string, maxLen int) {
		if maxLen > 1<<16 {
			maxLen = 1 << 16
		}
		checkEncoding(t, w, text, maxLen, w.Encode(text, maxLen))
		checkEncoding(t, cased, text, maxLen, cased.Encode(text, maxLen))
	})
}

func FuzzParseVocab(f *testing.F) {
	f.Add("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##s\n")
	f.Add("[CLS]\r\n[SEP]\r\n[UNK]")
	f.Add("")
	f.Fuzz(func(t *testing.T, data string) {
		w, err := ParseVocab(strings.NewReader(data))
		if err != nil {
			return
		}
		checkEncoding(t, w, data, 16, w.Encode(data, 16))
	})
}

func BenchmarkEncode(b *testing.B) {
	w, err := NewWordPiece(testmodels.BERTVocab())
	if err != nil {
		b.Fatal(err)
	}
	text := "您好，我想查一下这个月的话费余额，顺便问问怎么充值流量套餐 please check my balance"
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		w.Encode(text, 128)
	}
}
