package asr

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxTokensFile bounds what ReadTokens reads (the largest real list,
// SenseVoice's 25055 pieces, is well under 1 MiB).
const maxTokensFile = 16 << 20

// maxTokens bounds the vocabulary size.
const maxTokens = 1 << 20

// ReadTokens reads a token list: sherpa-onnx's tokens.txt ("piece id" per
// line; a line holding only an id is the space token) or FunASR's
// tokens.json (a JSON array whose index is the id), chosen by the file's
// extension. Every id from 0 to the largest must be present exactly once.
func ReadTokens(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModelFiles, err)
	}
	defer f.Close()
	var toks []string
	if strings.HasSuffix(strings.ToLower(path), ".json") {
		toks, err = parseTokensJSON(io.LimitReader(f, maxTokensFile+1))
	} else {
		toks, err = parseTokensTxt(io.LimitReader(f, maxTokensFile+1))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrModelFiles, path, err)
	}
	return toks, nil
}

func parseTokensJSON(r io.Reader) ([]string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(data) > maxTokensFile {
		return nil, fmt.Errorf("larger than %d bytes", maxTokensFile)
	}
	var toks []string
	if err := json.Unmarshal(data, &toks); err != nil {
		return nil, fmt.Errorf("not a JSON array of strings: %v", err)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("no tokens")
	}
	if len(toks) > maxTokens {
		return nil, fmt.Errorf("%d tokens, more than %d", len(toks), maxTokens)
	}
	return toks, nil
}

func parseTokensTxt(r io.Reader) ([]string, error) {
	byID := map[int]string{}
	maxID := -1
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	read := 0
	for line := 1; sc.Scan(); line++ {
		read += len(sc.Bytes()) + 1
		if read > maxTokensFile {
			return nil, fmt.Errorf("larger than %d bytes", maxTokensFile)
		}
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		fields := strings.Fields(text)
		var piece, idText string
		switch len(fields) {
		case 1: // the space token: its piece is blank
			piece, idText = " ", fields[0]
		case 2:
			piece, idText = fields[0], fields[1]
		default:
			return nil, fmt.Errorf("line %d: want \"piece id\", got %q", line, text)
		}
		id, err := strconv.Atoi(idText)
		if err != nil || id < 0 || id >= maxTokens {
			return nil, fmt.Errorf("line %d: bad id %q", line, idText)
		}
		if _, dup := byID[id]; dup {
			return nil, fmt.Errorf("line %d: id %d listed twice", line, id)
		}
		byID[id] = piece
		maxID = max(maxID, id)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if maxID < 0 {
		return nil, fmt.Errorf("no tokens")
	}
	if len(byID) != maxID+1 {
		return nil, fmt.Errorf("ids are not 0..%d without gaps (%d listed)", maxID, len(byID))
	}
	toks := make([]string, maxID+1)
	for id, p := range byID {
		toks[id] = p
	}
	return toks, nil
}

// isTag reports whether a piece is a SenseVoice special tag such as <|zh|>.
func isTag(p string) bool {
	return len(p) > 4 && strings.HasPrefix(p, "<|") && strings.HasSuffix(p, "|>")
}

// isSpecial reports whether a piece never appears in text.
func isSpecial(p string) bool {
	switch p {
	case "<s>", "</s>", "<unk>", "<blank>", "<blk>", "<eps>", "<pad>", "<sos/eos>":
		return true
	}
	return isTag(p)
}

// joinSentencePiece assembles SentencePiece pieces: a leading ▁ (U+2581)
// becomes a space, pieces are concatenated, and the leading space is
// trimmed (sherpa-onnx symbol-table.cc; FunASR sensevoice-small.cpp).
func joinSentencePiece(pieces []string) string {
	var b strings.Builder
	for _, p := range pieces {
		if isSpecial(p) {
			continue
		}
		b.WriteString(strings.ReplaceAll(p, "\u2581", " "))
	}
	return strings.TrimSpace(b.String())
}

// joinParaformer assembles Paraformer tokens: a piece ending in @@ joins
// the next one; ASCII words are separated by spaces from each other and
// from CJK text; CJK characters are concatenated directly (sherpa-onnx
// offline-recognizer-paraformer-impl.h Convert; FunASR postprocess_utils).
func joinParaformer(pieces []string) string {
	var b strings.Builder
	var word strings.Builder // a word being continued with @@
	prevASCII := false
	emit := func(w string) {
		if w == "" {
			return
		}
		ascii := isASCIIWord(w)
		if b.Len() > 0 && (ascii || prevASCII) {
			b.WriteByte(' ')
		}
		b.WriteString(w)
		prevASCII = ascii
	}
	for _, p := range pieces {
		if isSpecial(p) {
			continue
		}
		if strings.HasSuffix(p, "@@") {
			word.WriteString(strings.TrimSuffix(p, "@@"))
			continue
		}
		if word.Len() > 0 {
			word.WriteString(p)
			p = word.String()
			word.Reset()
		}
		emit(p)
	}
	emit(word.String())
	return b.String()
}

// isASCIIWord reports whether a token is a word of ASCII letters or digits
// (which takes spaces around it) rather than CJK text or punctuation.
func isASCIIWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= utf8.RuneSelf || !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'') {
			return false
		}
	}
	return true
}
