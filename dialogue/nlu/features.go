package nlu

import (
	"unicode"
)

// Features are hashed: every feature is a template byte and up to a few
// runes, hashed with 64-bit FNV-1a. A model's vocabulary is the sorted list
// of the hashes it kept, so the runtime needs no feature strings and two
// features collide only with probability ~2^-64.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// Rune values standing for the text's boundaries and character classes in
// feature templates (private-use code points no normalized text contains).
const (
	bos = '\uE000'
	eos = '\uE001'
)

type hasher uint64

func newHash(template byte) hasher {
	h := hasher(fnvOffset)
	return h.byte(template)
}

func (h hasher) byte(b byte) hasher { return (h ^ hasher(b)) * fnvPrime }

func (h hasher) rune(r rune) hasher {
	u := uint32(r)
	h = h.byte(byte(u))
	h = h.byte(byte(u >> 8))
	h = h.byte(byte(u >> 16))
	return h.byte(byte(u >> 24))
}

// Intent feature templates.
const (
	tplNgram  = 'n' // followed by n runes
	tplEntity = 'e' // an entity type found in the text
	tplShape  = 's' // the word-shape sequence
)

// runeAt returns the rune at i with the boundary runes outside the text.
func runeAt(rs []rune, i int) rune {
	if i < 0 {
		return bos
	}
	if i >= len(rs) {
		return eos
	}
	return rs[i]
}

// intentKeys appends the hashed intent features of normalized text rs:
// character n-grams of length 1..maxN over the text with boundary marks.
// Repeated n-grams are appended as often as they occur (term frequency).
func intentKeys(dst []uint64, rs []rune, maxN int) []uint64 {
	for n := 1; n <= maxN; n++ {
		// with boundaries: positions -1 .. len(rs)-n+1
		for i := -1; i+n <= len(rs)+1; i++ {
			if n == 1 && (i < 0 || i >= len(rs)) {
				continue
			}
			h := newHash(tplNgram).byte(byte(n))
			for j := 0; j < n; j++ {
				h = h.rune(runeAt(rs, i+j))
			}
			dst = append(dst, uint64(h))
		}
	}
	return dst
}

// class is a character class used by tagger features.
func class(r rune) byte {
	switch {
	case r == bos:
		return 'b'
	case r == eos:
		return 'e'
	case r >= '0' && r <= '9':
		return 'd'
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		return 'l'
	case unicode.Is(unicode.Han, r):
		return 'h'
	case unicode.IsSpace(r):
		return 'w'
	case unicode.IsPunct(r) || unicode.IsSymbol(r):
		return 'p'
	default:
		return 'o'
	}
}

// Tagger feature templates: a template byte then the relative offsets it
// looks at.
const (
	tplBias = 'B'
	tplChar = 'C' // one rune at an offset
	tplBi   = 'D' // two runes starting at an offset
	tplTri  = 'T' // three runes starting at an offset
	tplCls  = 'K' // class window
	tplGaz  = 'G' // lexicon match: position in match (B/I/E/S) and type
)

// taggerKeys appends position i's hashed features to dst.
func taggerKeys(dst []uint64, rs []rune, i int) []uint64 {
	dst = append(dst, uint64(newHash(tplBias)))
	for off := -2; off <= 2; off++ {
		dst = append(dst, uint64(newHash(tplChar).byte(byte(off+8)).rune(runeAt(rs, i+off))))
	}
	for off := -2; off <= 1; off++ {
		dst = append(dst, uint64(newHash(tplBi).byte(byte(off+8)).rune(runeAt(rs, i+off)).rune(runeAt(rs, i+off+1))))
	}
	for off := -2; off <= 0; off++ {
		dst = append(dst, uint64(newHash(tplTri).byte(byte(off+8)).rune(runeAt(rs, i+off)).rune(runeAt(rs, i+off+1)).rune(runeAt(rs, i+off+2))))
	}
	h := newHash(tplCls)
	for off := -1; off <= 1; off++ {
		h = h.byte(class(runeAt(rs, i+off)))
	}
	dst = append(dst, uint64(h))
	return dst
}
