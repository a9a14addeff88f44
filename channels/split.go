package channels

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// length measures s in unit.
func length(s string, unit LengthUnit) int {
	switch unit {
	case Bytes:
		return len(s)
	case UTF16:
		n := 0
		for _, r := range s {
			w := utf16.RuneLen(r)
			if w < 0 {
				w = 1 // invalid: sent as U+FFFD, one unit
			}
			n += w
		}
		return n
	default:
		return utf8.RuneCountInString(s)
	}
}

// Split cuts text into parts of at most max units, preferring to cut after
// a paragraph, then a line, then a sentence (。！？!?；;), then a comma or
// space, and only then inside a word. Parts are trimmed of the whitespace
// they were cut at; empty parts are dropped. max ≤ 0 means no limit.
func Split(text string, max int, unit LengthUnit) []string {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	if max <= 0 || length(text, unit) <= max {
		return []string{text}
	}
	var parts []string
	for text != "" {
		if length(text, unit) <= max {
			parts = append(parts, text)
			break
		}
		// prefix is the longest prefix of at most max units.
		end, n := 0, 0
		for i, r := range text {
			w := 1
			switch unit {
			case Bytes:
				w = utf8.RuneLen(r)
				if w < 0 {
					w = 1
				}
			case UTF16:
				if w = utf16.RuneLen(r); w < 0 {
					w = 1
				}
			}
			if n+w > max {
				break
			}
			n += w
			_, size := utf8.DecodeRuneInString(text[i:])
			end = i + size
		}
		if end == 0 { // max smaller than one character: take one anyway
			_, end = utf8.DecodeRuneInString(text)
		}
		cut := bestCut(text[:end])
		if cut <= 0 {
			cut = end
		}
		if p := strings.TrimSpace(text[:cut]); p != "" {
			parts = append(parts, p)
		}
		text = strings.TrimLeftFunc(text[cut:], isSpace)
	}
	return parts
}

func isSpace(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '\r' || r == '\u3000' }

// bestCut returns the byte offset just after the best break in p, or 0. A
// break in the first third is not worth it (too short a part).
func bestCut(p string) int {
	floor := len(p) / 3
	for _, seps := range [][]string{{"\n\n"}, {"\n"}, {"。", "！", "？", "!", "?", "；", ";", "…"}, {"，", ",", "、", " ", "：", ":"}} {
		best := 0
		for _, sep := range seps {
			if i := strings.LastIndex(p, sep); i >= 0 && i+len(sep) > best {
				best = i + len(sep)
			}
		}
		if best > floor {
			return best
		}
	}
	return 0
}
