package bert

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The special tokens every BERT vocabulary has.
const (
	TokenCLS = "[CLS]"
	TokenSEP = "[SEP]"
	TokenPAD = "[PAD]"
	TokenUNK = "[UNK]"
)

// DefaultMaxCharsPerWord is the longest word WordPiece splits; longer ones
// become the unknown token (BERT's max_input_chars_per_word).
const DefaultMaxCharsPerWord = 100

// maxVocab bounds a vocabulary file (the largest BERT vocabularies hold
// about 250k tokens).
const maxVocab = 4 << 20

// Option changes how a WordPiece tokenizer normalizes and splits text.
type Option func(*options)

type options struct {
	lower    bool
	maxChars int
	unknown  string
}

// LowerCase says whether text is lower-cased and stripped of accents before
// lookup (true, the default, for uncased models such as bert-base-chinese;
// false for cased ones).
func LowerCase(on bool) Option { return func(o *options) { o.lower = on } }

// MaxCharsPerWord sets the longest word that is split into pieces; longer
// words become the unknown token. n ≤ 0 keeps DefaultMaxCharsPerWord.
func MaxCharsPerWord(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxChars = n
		}
	}
}

// UnknownToken sets the token for words that cannot be split (default
// [UNK]); it must be in the vocabulary.
func UnknownToken(tok string) Option { return func(o *options) { o.unknown = tok } }

// WordPiece is a BERT tokenizer: basic tokenization (cleaning, whitespace
// and punctuation splitting, one token per CJK character, optional
// lower-casing and accent stripping) followed by greedy longest-match-first
// WordPiece with ## continuations. It is immutable after construction and
// safe for concurrent use.
type WordPiece struct {
	ids      map[string]int64
	tokens   []string
	lower    bool
	maxChars int
	unk      int64
	unkTok   string
	cls, sep int64
	pad      int64
}

// LoadVocab reads a vocab.txt (one token per line, the line number is the
// id) and returns its tokenizer. Errors name the file and say what is
// missing.
func LoadVocab(path string, opts ...Option) (*WordPiece, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load vocabulary: %w", err)
	}
	defer f.Close()
	w, err := ParseVocab(f, opts...)
	if err != nil {
		return nil, fmt.Errorf("load vocabulary %s: %w", path, err)
	}
	return w, nil
}

// ParseVocab reads a vocabulary in vocab.txt format from r.
func ParseVocab(r io.Reader, opts ...Option) (*WordPiece, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var tokens []string
	for sc.Scan() {
		if len(tokens) >= maxVocab {
			return nil, fmt.Errorf("more than %d tokens: this is not a vocab.txt", maxVocab)
		}
		tokens = append(tokens, strings.TrimSuffix(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read vocabulary: %w", err)
	}
	return NewWordPiece(tokens, opts...)
}

// NewWordPiece returns the tokenizer for a vocabulary given as its tokens
// in id order. When a token appears twice the later id wins (as in
// Hugging Face's loader). The vocabulary must hold [CLS], [SEP] and the
// unknown token.
func NewWordPiece(tokens []string, opts ...Option) (*WordPiece, error) {
	o := options{lower: true, maxChars: DefaultMaxCharsPerWord, unknown: TokenUNK}
	for _, fn := range opts {
		fn(&o)
	}
	w := &WordPiece{ids: make(map[string]int64, len(tokens)), tokens: tokens, lower: o.lower, maxChars: o.maxChars, unkTok: o.unknown}
	for i, t := range tokens {
		w.ids[t] = int64(i)
	}
	var missing []string
	need := func(tok string) int64 {
		id, ok := w.ids[tok]
		if !ok {
			missing = append(missing, tok)
		}
		return id
	}
	w.cls, w.sep, w.unk = need(TokenCLS), need(TokenSEP), need(o.unknown)
	w.pad = w.ids[TokenPAD]
	if len(missing) > 0 {
		return nil, fmt.Errorf("the vocabulary (%d tokens) lacks %s: use the vocab.txt the model was trained with", len(tokens), strings.Join(missing, ", "))
	}
	return w, nil
}

// Size returns the number of ids.
func (w *WordPiece) Size() int { return len(w.tokens) }

// ID returns a token's id.
func (w *WordPiece) ID(tok string) (int64, bool) {
	id, ok := w.ids[tok]
	return id, ok
}

// Token returns the token of an id, or "" when out of range.
func (w *WordPiece) Token(id int64) string {
	if id < 0 || id >= int64(len(w.tokens)) {
		return ""
	}
	return w.tokens[id]
}

// PadID returns the id of [PAD] (0 when the vocabulary has none).
func (w *WordPiece) PadID() int64 { return w.pad }

// Encoding is one text's tokens ready for the model: [CLS] pieces… [SEP].
type Encoding struct {
	IDs     []int64
	Mask    []int64 // 1 for every token (no padding)
	TypeIDs []int64 // 0 for every token (one segment)
	// Offsets are each token's [start, end) in runes of the input text;
	// [0,0] for [CLS] and [SEP]. A continuation piece covers its own
	// runes; an unknown word covers the whole word.
	Offsets [][2]int
	Tokens  []string
	// Words gives each token's word index (a word is what basic
	// tokenization yields: a run of letters, one punctuation mark or one
	// CJK character); -1 for [CLS] and [SEP].
	Words []int
	// Truncated is true when pieces were dropped to fit maxLen.
	Truncated bool
}

// Len returns the number of tokens.
func (e *Encoding) Len() int { return len(e.IDs) }

// Encode tokenizes text into at most maxLen tokens, [CLS] and [SEP]
// included (maxLen ≤ 0: no limit; below 2 it counts as 2). Invalid UTF-8
// bytes count as one rune each, as when ranging over a string. It does not
// fail: what the vocabulary cannot spell becomes the unknown token.
func (w *WordPiece) Encode(text string, maxLen int) Encoding {
	limit := -1 // pieces allowed between [CLS] and [SEP]
	if maxLen > 0 {
		limit = max(maxLen, 2) - 2
	}
	// One allocation per slice: at most one token per rune, plus two.
	n := utf8.RuneCountInString(text) + 2
	if limit >= 0 {
		n = min(n, limit+2)
	}
	e := Encoding{IDs: make([]int64, 0, n), Mask: make([]int64, 0, n), TypeIDs: make([]int64, 0, n),
		Offsets: make([][2]int, 0, n), Tokens: make([]string, 0, n), Words: make([]int, 0, n)}
	e.add(w.cls, TokenCLS, [2]int{0, 0}, -1)
	var (
		word    []byte // normalized UTF-8 of the current word
		starts  []int  // byte offset in word of each normalized rune
		orig    []int  // input rune index of each normalized rune
		scratch []byte
		nWords  int
	)
	full := limit == 0
	flush := func() {
		if len(starts) > 0 {
			if w.pieces(&e, word, starts, orig, nWords, limit, &scratch) {
				e.Truncated = true
			}
			nWords++
			full = limit >= 0 && e.Len()-1 >= limit
		}
		word, starts, orig = word[:0], starts[:0], orig[:0]
	}
	single := func(r rune, i int) {
		flush()
		starts, orig = append(starts, 0), append(orig, i)
		word = utf8.AppendRune(word, r)
		flush()
	}
	i := -1
	for _, r := range text {
		i++
		switch classify(r) {
		case classSkip:
			continue
		case classSpace:
			flush()
			continue
		case classCJK:
			if !full {
				single(r, i)
				continue
			}
		}
		if full {
			e.Truncated = true // more text, no room
		}
		if e.Truncated {
			break
		}
		if w.lower {
			r = unicode.ToLower(r)
			if unicode.Is(unicode.Mn, r) {
				continue
			}
			r = stripAccent(r)
		}
		if isPunct(r) {
			single(r, i)
			continue
		}
		starts, orig = append(starts, len(word)), append(orig, i)
		word = utf8.AppendRune(word, r)
	}
	flush()
	e.add(w.sep, TokenSEP, [2]int{0, 0}, -1)
	return e
}

func (e *Encoding) add(id int64, tok string, off [2]int, word int) {
	e.IDs = append(e.IDs, id)
	e.Mask = append(e.Mask, 1)
	e.TypeIDs = append(e.TypeIDs, 0)
	e.Offsets = append(e.Offsets, off)
	e.Tokens = append(e.Tokens, tok)
	e.Words = append(e.Words, word)
}

// pieces appends one word's WordPiece tokens, or the unknown token when
// the word is too long or cannot be spelled. With limit ≥ 0 it stops when
// the encoding holds limit pieces and reports whether it dropped any.
func (w *WordPiece) pieces(e *Encoding, word []byte, starts, orig []int, wordIdx, limit int, scratch *[]byte) (cut bool) {
	type piece struct {
		id         int64
		tok        string
		from, upto int // rune range in the word
	}
	n := len(starts)
	var buf [16]piece
	end := func(k int) int { // byte offset where rune k starts (len at n)
		if k == n {
			return len(word)
		}
		return starts[k]
	}
	ps := buf[:0]
	for start := 0; start < n && n <= w.maxChars; {
		stop, id, ok := n, int64(0), false
		for ; stop > start; stop-- {
			b := word[starts[start]:end(stop)]
			if start > 0 {
				*scratch = append(append((*scratch)[:0], "##"...), b...)
				b = *scratch
			}
			if id, ok = w.ids[string(b)]; ok {
				break
			}
		}
		if !ok {
			ps = ps[:0] // a part cannot be spelled: the whole word is unknown
			break
		}
		ps = append(ps, piece{id, w.tokens[id], start, stop})
		start = stop
	}
	if len(ps) == 0 {
		ps = append(ps, piece{w.unk, w.unkTok, 0, n})
	}
	for k, p := range ps {
		if limit >= 0 && e.Len()-1 >= limit {
			return k < len(ps)
		}
		e.add(p.id, p.tok, [2]int{orig[p.from], orig[p.upto-1] + 1}, wordIdx)
	}
	return false
}

// Rune classes for basic tokenization.
const (
	classOther = iota
	classSkip  // removed: NUL, U+FFFD, control characters
	classSpace // splits words
	classCJK   // a word of its own
)

// classify sorts a rune for basic tokenization, ASCII and CJK first.
func classify(r rune) int {
	switch {
	case r < 0x80:
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			return classSpace
		case r < 0x20 || r == 0x7f:
			return classSkip
		}
		return classOther
	case isCJK(r):
		return classCJK
	case r == utf8.RuneError || isControl(r):
		return classSkip
	case isWhitespace(r):
		return classSpace
	}
	return classOther
}

// isWhitespace is BERT's _is_whitespace.
func isWhitespace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r':
		return true
	}
	return unicode.Is(unicode.Zs, r)
}

// isControl is BERT's _is_control (tab and newlines are whitespace).
func isControl(r rune) bool {
	switch r {
	case '\t', '\n', '\r':
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf)
}

// isPunct is BERT's _is_punctuation: ASCII symbols count as punctuation
// too.
func isPunct(r rune) bool {
	if r >= 33 && r <= 47 || r >= 58 && r <= 64 || r >= 91 && r <= 96 || r >= 123 && r <= 126 {
		return true
	}
	return unicode.IsPunct(r)
}

// isCJK is BERT's _is_chinese_char: the CJK Unified Ideographs blocks (not
// Japanese kana or Korean hangul, which are split like other letters).
func isCJK(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF ||
		r >= 0x3400 && r <= 0x4DBF ||
		r >= 0x20000 && r <= 0x2A6DF ||
		r >= 0x2A700 && r <= 0x2B73F ||
		r >= 0x2B740 && r <= 0x2B81F ||
		r >= 0x2B820 && r <= 0x2CEAF ||
		r >= 0xF900 && r <= 0xFAFF ||
		r >= 0x2F800 && r <= 0x2FA1F
}

// stripAccent maps a precomposed lower-case letter to its base letter:
// what NFD followed by dropping the combining marks gives, for Latin-1,
// Latin Extended-A and the pinyin tone marks (the standard library has no
// Unicode normalization).
func stripAccent(r rune) rune {
	if r < 0xC0 || r > 0x1FF {
		return r
	}
	for _, t := range [...]struct {
		base     rune
		accented string
	}{
		{'a', "àáâãäåāăąǎ"}, {'c', "çćĉċč"}, {'d', "ď"}, {'e', "èéêëēĕėęě"}, {'g', "ĝğġģ"},
		{'h', "ĥ"}, {'i', "ìíîïĩīĭįǐ"}, {'j', "ĵ"}, {'k', "ķ"}, {'l', "ĺļľ"}, {'n', "ñńņňǹ"},
		{'o', "òóôõöōŏőǒ"}, {'r', "ŕŗř"}, {'s', "śŝşš"}, {'t', "ţť"}, {'u', "ùúûüũūŭůűųǔǖǘǚǜ"},
		{'w', "ŵ"}, {'y', "ýÿŷ"}, {'z', "źżž"},
	} {
		if strings.ContainsRune(t.accented, r) {
			return t.base
		}
	}
	return r
}
