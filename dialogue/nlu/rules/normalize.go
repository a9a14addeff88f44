package rules

import (
	"unicode"
	"unicode/utf8"
)

// Normalized is text after normalization with a map back to the original.
type Normalized struct {
	Text  string // normalized text
	Runes []rune // normalized runes
	// Orig[i] is the rune offset in the original text of normalized rune i.
	// len(Orig) == len(Runes)+1; the last element is the end (exclusive) of
	// the last mapped original rune, 0 when nothing is left.
	Orig []int
}

// Normalize folds s for matching: full-width ASCII (U+FF01..U+FF5E) becomes
// half-width, Latin letters are lower-cased (Chinese is untouched), control
// (Cc) and format (Cf, such as zero-width spaces) characters are removed,
// every run of whitespace (ideographic space U+3000 included) becomes one
// ASCII space, and leading and trailing whitespace is trimmed.
//
// Every normalized rune comes from exactly one original rune, so offsets
// map back through Orig and Span. Invalid UTF-8 never panics: each bad byte
// is one U+FFFD rune, as in []rune(s). It allocates the result only and is
// safe for concurrent use.
func Normalize(s string) Normalized {
	n := utf8.RuneCountInString(s)
	runes := make([]rune, 0, n)
	orig := make([]int, 0, n+1)
	space := -1 // original offset of the first rune of a pending whitespace run
	i := -1
	for _, r := range s {
		i++
		switch {
		case r > 0x3000 && r < 0xA000:
			// CJK punctuation, kana and ideographs: no spaces, format
			// characters or Latin letters here, so skip the table lookups.
		case r == 0x3000 || unicode.IsSpace(r):
			if space < 0 {
				space = i
			}
			continue
		case r >= 0xFF01 && r <= 0xFF5E:
			r -= 0xFEE0 // never a space: the range maps to '!'..'~'
		case r < utf8.RuneSelf:
			if r < 0x20 || r == 0x7F {
				continue
			}
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			continue
		}
		if r < utf8.RuneSelf {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
		} else if unicode.Is(unicode.Latin, r) {
			r = unicode.ToLower(r)
		}
		if space >= 0 {
			if len(runes) > 0 {
				runes = append(runes, ' ')
				orig = append(orig, space)
			}
			space = -1
		}
		runes = append(runes, r)
		orig = append(orig, i)
	}
	end := 0
	if len(orig) > 0 {
		end = orig[len(orig)-1] + 1
	}
	orig = append(orig, end)
	return Normalized{Text: string(runes), Runes: runes, Orig: orig}
}

// Span maps the rune range [start,end) of the normalized text to the rune
// range of the original text that produced it, end exclusive. Out-of-range
// arguments are clamped; an empty range maps to an empty range.
func (n Normalized) Span(start, end int) (int, int) {
	if len(n.Orig) == 0 {
		return 0, 0
	}
	last := len(n.Orig) - 1
	start = min(max(start, 0), last)
	end = min(max(end, start), last)
	if start == end {
		return n.Orig[start], n.Orig[start]
	}
	return n.Orig[start], n.Orig[end-1] + 1
}
