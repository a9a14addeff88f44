package tts

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLexiconWord is the longest word forward maximum matching tries
// (sherpa-onnx csrc/phrase-matcher.cc).
const maxLexiconWord = 10

// ParseTokens parses a sherpa-onnx TTS tokens.txt: one "token id" per line;
// a line holding only an id is the space token (" "). It returns token →
// id. Errors name the line.
func ParseTokens(data []byte) (map[string]int64, error) {
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		f := strings.Fields(text)
		var tok, id string
		switch len(f) {
		case 0:
			continue
		case 1:
			tok, id = " ", f[0]
		case 2:
			tok, id = f[0], f[1]
		default:
			return nil, fmt.Errorf("tokens.txt line %d: want \"token id\", got %d fields", line, len(f))
		}
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < 0 || n > 1<<24 {
			return nil, fmt.Errorf("tokens.txt line %d: id %q is not a token id", line, id)
		}
		if !utf8.ValidString(tok) {
			return nil, fmt.Errorf("tokens.txt line %d: token is not UTF-8", line)
		}
		if _, dup := out[tok]; dup {
			return nil, fmt.Errorf("tokens.txt line %d: token %q listed twice", line, tok)
		}
		out[tok] = n
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokens.txt: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tokens.txt: no tokens")
	}
	return out, nil
}

// lexicon maps words to token ids (and, for Melo, tones).
type lexicon struct {
	words   map[string][]int64
	tones   map[string][]int64 // Melo only
	maxWord int                // longest word in runes, at most maxLexiconWord
	skipped int                // lines naming unknown tokens
}

// parseLexicon parses lexicon.txt: "word tok1 … tokN" per line, or with
// tones (Melo) "word p1 … pk t1 … tk". Words are lowercased. A line naming
// a token not in tokens is skipped (counted); a malformed line is an
// error naming it. The first entry of a word wins.
func parseLexicon(data []byte, tokens map[string]int64, withTones bool) (*lexicon, error) {
	lx := &lexicon{words: map[string][]int64{}}
	if withTones {
		lx.tones = map[string][]int64{}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("lexicon.txt line %d: a word without tokens", line)
		}
		word := strings.ToLower(f[0])
		if !utf8.ValidString(word) {
			return nil, fmt.Errorf("lexicon.txt line %d: word is not UTF-8", line)
		}
		rest := f[1:]
		var tones []int64
		if withTones {
			if len(rest)%2 != 0 {
				return nil, fmt.Errorf("lexicon.txt line %d: want as many tones as phones, got %d fields after the word", line, len(rest))
			}
			k := len(rest) / 2
			for _, t := range rest[k:] {
				n, err := strconv.ParseInt(t, 10, 64)
				if err != nil || n < 0 || n > 1000 {
					return nil, fmt.Errorf("lexicon.txt line %d: tone %q is not a number", line, t)
				}
				tones = append(tones, n)
			}
			rest = rest[:k]
		}
		ids := make([]int64, 0, len(rest))
		ok := true
		for _, t := range rest {
			id, found := tokens[t]
			if !found {
				ok = false
				break
			}
			ids = append(ids, id)
		}
		if !ok {
			lx.skipped++
			continue
		}
		if _, dup := lx.words[word]; dup {
			continue
		}
		lx.words[word] = ids
		if withTones {
			lx.tones[word] = tones
		}
		if n := utf8.RuneCountInString(word); n > lx.maxWord {
			lx.maxWord = min(n, maxLexiconWord)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("lexicon.txt: %w", err)
	}
	if len(lx.words) == 0 {
		return nil, fmt.Errorf("lexicon.txt: no usable entries (%d lines name tokens missing from tokens.txt)", lx.skipped)
	}
	return lx, nil
}

// splitUtf8 cuts lowercased text as sherpa-onnx SplitUtf8 does: every
// non-ASCII character alone, runs of ASCII letters, digits and apostrophes
// as one word, ASCII punctuation alone, spaces dropped.
func splitUtf8(text string) []string {
	var out []string
	word := -1
	for i, r := range text {
		ascii := r < utf8.RuneSelf
		if ascii && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'') {
			if word < 0 {
				word = i
			}
			continue
		}
		if word >= 0 {
			out = append(out, text[word:i])
			word = -1
		}
		if unicode.IsSpace(r) || r == utf8.RuneError {
			continue
		}
		out = append(out, string(r))
	}
	if word >= 0 {
		out = append(out, text[word:])
	}
	return out
}

// aishell3 sentence-breaking and pausing marks (csrc/lexicon.cc).
func isBreak(w string) bool {
	switch w {
	case ".", ";", "!", "?", "-", ":", "。", "；", "！", "？", "：", "”":
		return true
	}
	return false
}

func isPause(w string) bool {
	switch w {
	case ",", "“", "，", "、":
		return true
	}
	return false
}

// icefallIDs converts text to one id sequence per sentence with the rules
// of sherpa-onnx csrc/lexicon.cc (vits-icefall-zh-aishell3): each sentence
// is sil … sil eos when the tokens have sil and eos; a mark becomes its own
// token when listed in punct, else #0, else sil; the blank " " follows
// every word when tokens.txt has it; OOV words are skipped. Sentences with
// no word are dropped.
func icefallIDs(text string, tokens map[string]int64, lx *lexicon, punct map[string]bool) [][]int64 {
	sil, hasSil := tokens["sil"]
	eos, hasEOS := tokens["eos"]
	hasSil = hasSil && hasEOS
	pad, hasPad := tokens["#0"]
	blank, hasBlank := tokens[" "]
	var out [][]int64
	var cur []int64
	words := 0
	start := func() {
		cur, words = nil, 0
		if hasSil {
			cur = append(cur, sil)
		}
	}
	end := func(final bool) {
		if final && hasSil {
			cur = append(cur, sil)
		}
		if hasSil {
			cur = append(cur, eos)
		}
		if words > 0 {
			out = append(out, cur)
		}
		start()
	}
	start()
	for _, w := range splitUtf8(strings.ToLower(text)) {
		if isBreak(w) || isPause(w) {
			if id, ok := tokens[w]; ok && punct[w] {
				cur = append(cur, id)
			} else if hasPad {
				cur = append(cur, pad)
			} else if hasSil {
				cur = append(cur, sil)
			}
			if isBreak(w) {
				end(false)
			}
			continue
		}
		ids, ok := lx.words[w]
		if !ok {
			continue
		}
		cur = append(cur, ids...)
		if hasBlank {
			cur = append(cur, blank)
		}
		words++
	}
	end(true)
	return out
}

// matchIDs converts text with the rules of sherpa-onnx
// csrc/character-lexicon.cc and csrc/melo-tts-lexicon.cc (Matcha, Melo):
// ：、； become ，; words are found by forward maximum matching (up to 10
// characters) against the lexicon; a punctuation mark in tokens.txt is its
// own token (tone 0) and ends a chunk; other unknown characters are
// skipped. It returns one sequence (and its tones when the lexicon has
// them).
func matchIDs(text string, tokens map[string]int64, lx *lexicon) (ids, tones []int64) {
	text = strings.Map(func(r rune) rune {
		switch r {
		case '：', '、', '；':
			return '，'
		}
		return r
	}, strings.ToLower(text))
	words := splitUtf8(text)
	for i := 0; i < len(words); {
		matched := false
		for n := min(lx.maxWord, len(words)-i); n >= 1; n-- {
			w := strings.Join(words[i:i+n], "")
			if n > 1 && !allCJK(words[i:i+n]) {
				continue
			}
			if p, ok := lx.words[w]; ok {
				ids = append(ids, p...)
				if lx.tones != nil {
					tones = append(tones, lx.tones[w]...)
				}
				i += n
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		if id, ok := tokens[words[i]]; ok && !speakable(words[i]) {
			ids = append(ids, id)
			if lx.tones != nil {
				tones = append(tones, 0)
			}
		}
		i++
	}
	return ids, tones
}

func allCJK(ws []string) bool {
	for _, w := range ws {
		r, _ := utf8.DecodeRuneInString(w)
		if r < utf8.RuneSelf {
			return false
		}
	}
	return true
}

// intersperse returns 0/pad, t1, pad, t2, …, pad (add_blank).
func intersperse(ids []int64, pad int64) []int64 {
	out := make([]int64, 2*len(ids)+1)
	for i := range out {
		out[i] = pad
	}
	for i, id := range ids {
		out[2*i+1] = id
	}
	return out
}
