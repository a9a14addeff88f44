package tts

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultMaxSentence is the longest piece, in runes, SplitSentences makes
// when asked for 0 or less (tts.max_sentence's default).
const DefaultMaxSentence = 40

// sentenceEnd ends a sentence; the mark stays with it.
func sentenceEnd(r rune) bool {
	switch r {
	case '。', '！', '？', '；', '!', '?', ';', '\n':
		return true
	}
	return false
}

// clauseEnd ends a clause: where a sentence longer than the limit is cut.
func clauseEnd(r rune) bool {
	switch r {
	case '，', '、', ',', '：', ':':
		return true
	}
	return false
}

// SplitSentences cuts text into pieces to synthesise one at a time: at
// sentence punctuation (。！？；!?; and newlines, the mark staying with its
// sentence), then, for a sentence longer than maxRunes (0 or less means
// DefaultMaxSentence), at commas (，、,：:), and as a last resort every
// maxRunes runes. The first piece is kept short so that the first audio
// leaves early: when it is longer than half the limit, it ends at its first
// comma. Pieces are trimmed; a piece with nothing to say (only punctuation
// or spaces) joins the previous one, and none is empty. It does no I/O.
func SplitSentences(text string, maxRunes int) []string {
	if maxRunes <= 0 {
		maxRunes = DefaultMaxSentence
	}
	sentences := splitAfter(text, sentenceEnd)

	var out []string
	add := func(p string) {
		p = strings.TrimSpace(p)
		if p == "" {
			return
		}
		if !speakable(p) {
			if len(out) > 0 {
				out[len(out)-1] += p
			}
			return
		}
		out = append(out, p)
	}
	for _, s := range sentences {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if len(out) == 0 && speakable(s) {
			// The first piece: short, so the first audio leaves early.
			if first, rest, ok := cutFirstClause(s, maxRunes); ok {
				add(first)
				s = strings.TrimSpace(rest)
			}
		}
		for _, p := range splitLong(s, maxRunes) {
			add(p)
		}
	}
	return out
}

// cutFirstClause cuts s after its first comma when s is longer than half
// the limit and the clause before the comma says something.
func cutFirstClause(s string, maxRunes int) (string, string, bool) {
	if utf8.RuneCountInString(s) <= maxRunes/2 {
		return "", "", false
	}
	for i, r := range s {
		if clauseEnd(r) {
			end := i + utf8.RuneLen(r)
			if speakable(s[:end]) && speakable(s[end:]) && utf8.RuneCountInString(s[:end]) <= maxRunes {
				return s[:end], s[end:], true
			}
			return "", "", false
		}
	}
	return "", "", false
}

// splitAfter cuts s after every rune that ends a piece; the last piece
// (maybe empty) is what follows the last such rune.
func splitAfter(s string, ends func(rune) bool) []string {
	var out []string
	start := 0
	for i, r := range s {
		if ends(r) {
			out = append(out, s[start:i+utf8.RuneLen(r)])
			start = i + utf8.RuneLen(r)
		}
	}
	return append(out, s[start:])
}

// splitLong cuts a sentence longer than maxRunes at clause marks, packing
// clauses greedily, and cuts a clause still too long every maxRunes runes.
func splitLong(s string, maxRunes int) []string {
	if utf8.RuneCountInString(s) <= maxRunes {
		return []string{s}
	}
	clauses := splitAfter(s, clauseEnd)
	var out []string
	cur, n := "", 0
	for _, c := range clauses {
		cn := utf8.RuneCountInString(c)
		if n > 0 && n+cn > maxRunes {
			out = append(out, cur)
			cur, n = "", 0
		}
		for cn > maxRunes {
			// A clause too long on its own: cut it every maxRunes runes.
			cut := byteIndexOfRune(c, maxRunes-n)
			out = append(out, cur+c[:cut])
			cur, n = "", 0
			c = c[cut:]
			cn = utf8.RuneCountInString(c)
		}
		cur += c
		n += cn
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

// byteIndexOfRune returns the byte offset of rune number k of s.
func byteIndexOfRune(s string, k int) int {
	i := 0
	for j := range s {
		if i == k {
			return j
		}
		i++
	}
	return len(s)
}

// speakable reports whether s has a letter or digit to say.
func speakable(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return true
		}
	}
	return false
}

var (
	urlRe      = regexp.MustCompile(`(?i)\b(?:https?://|ftp://|www\.)[^\s，。！？；、（）()<>"'“”]*`)
	mdLinkRe   = regexp.MustCompile(`!?\[([^\]\n]*)\]\([^)\n]*\)`)
	mdLineRe   = regexp.MustCompile(`(?m)^[ \t]*(?:#{1,6}[ \t]+|>[ \t]*|[-*+][ \t]+|\d+\.[ \t]+)`)
	mdMarkRe   = regexp.MustCompile("\\*\\*|__|~~|`+|(?m:^[ \t]*(?:-{3,}|\\*{3,}|_{3,})[ \t]*$)")
	phoneRe    = regexp.MustCompile(`\d+(?:[- ]\d+)+`)
	spaceRe    = regexp.MustCompile(`[ \t\r\f\v]+`)
	thousandRe = regexp.MustCompile(`\d{1,3}(?:,\d{3})+(?:\.\d+)?`)
	numberRe   = regexp.MustCompile(`([¥￥$]\s*)?(\d+(?:\.\d+)?)(\s*[%％])?(\s*年)?`)
)

// Normalize rewrites reply text for speaking in Mandarin: markdown marks
// (headings, emphasis, code ticks, list bullets, quotes; a link keeps its
// text), URLs and emoji are dropped; numbers are read out in Chinese:
// runs of five or more digits (order and phone numbers) and numbers with a
// leading zero digit by digit (一, not 幺), a four-digit year before 年 digit
// by digit, shorter numbers as cardinals (两百三十五), decimals with 点,
// percentages as 百分之…, ¥/$ amounts with 元/美元. It does no I/O.
func Normalize(text string) string {
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "")
	}
	text = mdLinkRe.ReplaceAllString(text, "$1")
	text = urlRe.ReplaceAllString(text, "")
	text = mdLineRe.ReplaceAllString(text, "")
	text = mdMarkRe.ReplaceAllString(text, "")
	text = strings.Map(func(r rune) rune {
		switch {
		case isEmoji(r):
			return -1
		case r == '*' || r == '#' || r == '_' || r == '|':
			return ' '
		case unicode.IsControl(r) && r != '\n':
			return ' '
		}
		return r
	}, text)
	text = phoneRe.ReplaceAllStringFunc(text, func(s string) string {
		// 138-1234-5678, 400 820 8820: a phone number, read digit by digit.
		if n := strings.Count(s, "-") + strings.Count(s, " "); len(s)-n >= 7 {
			return digits(s)
		}
		return s
	})
	text = thousandRe.ReplaceAllStringFunc(text, func(s string) string { return strings.ReplaceAll(s, ",", "") })
	text = numberRe.ReplaceAllStringFunc(text, readNumber)
	text = spaceRe.ReplaceAllString(text, " ")
	lines := strings.Split(text, "\n")
	out := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// isEmoji reports pictographs, dingbats, variation selectors and joiners.
func isEmoji(r rune) bool {
	switch {
	case r >= 0x1F000 && r <= 0x1FAFF, // mahjong … symbols and pictographs extended-A
		r >= 0x2600 && r <= 0x27BF, // misc symbols, dingbats
		r >= 0x2B00 && r <= 0x2BFF, // arrows and stars
		r >= 0xFE00 && r <= 0xFE0F, // variation selectors
		r == 0x200D, r == 0x20E3,   // joiner, keycap
		r >= 0xE0020 && r <= 0xE007F: // tags
		return true
	}
	return false
}

var digitNames = [10]string{"零", "一", "二", "三", "四", "五", "六", "七", "八", "九"}

// readNumber reads one numberRe match.
func readNumber(m string) string {
	sub := numberRe.FindStringSubmatch(m)
	cur, num, pct, year := sub[1], sub[2], sub[3], sub[4]
	intPart, frac, hasFrac := strings.Cut(num, ".")
	var b strings.Builder
	if pct != "" {
		b.WriteString("百分之")
	}
	switch {
	case year != "" && len(intPart) == 4 && !hasFrac && cur == "" && pct == "":
		b.WriteString(digits(intPart))
	case len(intPart) >= 5 || len(intPart) > 1 && intPart[0] == '0':
		b.WriteString(digits(intPart))
	default:
		b.WriteString(cardinal(intPart))
	}
	if hasFrac {
		b.WriteString("点")
		b.WriteString(digits(frac))
	}
	switch strings.TrimSpace(cur) {
	case "¥", "￥":
		b.WriteString("元")
	case "$":
		b.WriteString("美元")
	}
	if year != "" {
		b.WriteString("年")
	}
	return b.String()
}

// digits reads every digit of s.
func digits(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			b.WriteString(digitNames[c-'0'])
		}
	}
	return b.String()
}

// cardinal reads a number of at most four digits: 2 → 二, 12 → 十二,
// 200 → 两百, 1005 → 一千零五, 2200 → 两千两百.
func cardinal(s string) string {
	s = strings.TrimLeft(s, "0")
	if s == "" {
		return "零"
	}
	if len(s) > 4 {
		return digits(s)
	}
	units := [4]string{"", "十", "百", "千"}
	var b strings.Builder
	zero := false
	for i, c := range s {
		d := int(c - '0')
		pos := len(s) - 1 - i
		if d == 0 {
			zero = true
			continue
		}
		if zero {
			b.WriteString("零")
			zero = false
		}
		switch {
		case d == 2 && pos >= 2:
			b.WriteString("两")
		case d == 1 && pos == 1 && i == 0:
			// 十二, not 一十二, at the start.
		default:
			b.WriteString(digitNames[d])
		}
		b.WriteString(units[pos])
	}
	return b.String()
}
