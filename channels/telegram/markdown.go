package telegram

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Telegram's MarkdownV2 (https://core.telegram.org/bots/api#markdownv2-style):
// outside entities every one of _*[]()~`>#+-=|{}.! must be escaped with a
// backslash (and the backslash itself, or it escapes what follows); inside
// code and pre only ` and \; inside a link's (url) only ) and \. Entities
// nest, except that code and pre contain nothing and sit inside nothing but
// blockquotes, and "__" is always underline.

// asciiPunct is what a backslash escapes in (CommonMark) Markdown.
const asciiPunct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// mdv2Special is what must be escaped outside entities.
const mdv2Special = "_*[]()~`>#+-=|{}.!\\"

// escapeMarkdownV2 escapes s so that Telegram shows it verbatim.
func escapeMarkdownV2(s string) string { return escapeSet(s, mdv2Special) }

// escapeCode escapes the content of a code or pre entity.
func escapeCode(s string) string { return escapeSet(s, "`\\") }

// escapeURL escapes the url of an inline link.
func escapeURL(s string) string { return escapeSet(s, ")\\") }

func escapeSet(s, special string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(special, s[i]) >= 0 {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + n)
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(special, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Kinds of tokens of the Markdown converter.
const (
	tkText  = iota // literal text, escaped on output
	tkCode         // `code`
	tkPre          // ```lang\npre```
	tkLink         // [text](url)
	tkDelim        // an emphasis delimiter: a marker if matched, else literal
)

// Emphasis kinds and their MarkdownV2 markers.
const (
	emItalic = '_'
	emBold   = '*'
	emStrike = '~'
)

type mdToken struct {
	kind int
	text string // literal text, code content, link text, delimiter source
	url  string // link url; pre language
	em   byte   // delimiter: emItalic, emBold or emStrike
	// canOpen, canClose: the delimiter's flanking (CommonMark, simplified).
	canOpen, canClose bool
	match             int // index of the matched delimiter, or -1
}

var (
	preLangRe = regexp.MustCompile(`^[A-Za-z0-9_+-]*$`)
	linkURLRe = regexp.MustCompile(`^(?i:https?://|tg://|mailto:)[^\s()]+$`)
)

// toMarkdownV2 converts common Markdown (**bold**, *italic* or _italic_,
// ~~strike~~, `code`, ```pre```, [text](url), \-escapes) to MarkdownV2 and
// escapes everything else, so that Telegram never fails to parse it.
// Markup that would not survive (unbalanced markers, emphasis around code,
// nested emphasis of one kind) is shown as the literal characters.
func toMarkdownV2(s string) string {
	toks := tokenizeMarkdown(s)
	matchDelims(toks)
	var b strings.Builder
	b.Grow(len(s) + len(s)/8 + 8)
	for _, t := range toks {
		switch t.kind {
		case tkText:
			b.WriteString(escapeMarkdownV2(t.text))
		case tkCode:
			b.WriteString("`" + escapeCode(t.text) + "`")
		case tkPre:
			b.WriteString("```" + t.url + "\n" + escapeCode(t.text) + "```")
		case tkLink:
			b.WriteString("[" + escapeMarkdownV2(t.text) + "](" + escapeURL(t.url) + ")")
		case tkDelim:
			if t.match >= 0 {
				b.WriteByte(t.em)
			} else {
				b.WriteString(escapeMarkdownV2(t.text))
			}
		}
	}
	return b.String()
}

// tokenizeMarkdown splits s into text, code, pre, link and delimiter
// tokens. Linear: a search for a closing backtick run that fails is
// remembered, and link searches stop at the next '[' or line end.
func tokenizeMarkdown(s string) []mdToken {
	var toks []mdToken
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			toks = append(toks, mdToken{kind: tkText, text: text.String(), match: -1})
			text.Reset()
		}
	}
	noClose := map[int]int{} // backtick run length → position after which none closes
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) && strings.IndexByte(asciiPunct, s[i+1]) >= 0 {
				text.WriteByte(s[i+1])
				i += 2
				continue
			}
			text.WriteByte(c)
			i++
		case '`':
			n := runLen(s, i)
			if p, ok := noClose[n]; !ok || i < p {
				if j := findRun(s, i+n, '`', n); j >= 0 {
					if t, ok := codeToken(s[i+n:j], n); ok {
						flush()
						toks = append(toks, t)
						i = j + n
						continue
					}
				} else {
					noClose[n] = i
				}
			}
			text.WriteString(s[i : i+n])
			i += n
		case '[':
			if t, end, ok := linkAt(s, i); ok {
				flush()
				toks = append(toks, t)
				i = end
				continue
			}
			text.WriteByte(c)
			i++
		case '*', '_', '~':
			n := runLen(s, i)
			em := byte(0)
			switch {
			case c == '~' && n == 2:
				em = emStrike
			case c != '~' && n == 1:
				em = emItalic
			case c != '~' && n == 2:
				em = emBold
			}
			if em == 0 {
				text.WriteString(s[i : i+n])
				i += n
				continue
			}
			prev, _ := utf8.DecodeLastRuneInString(s[:i])
			next, _ := utf8.DecodeRuneInString(s[i+n:])
			t := mdToken{kind: tkDelim, text: s[i : i+n], em: em, match: -1,
				canOpen:  i+n < len(s) && !unicode.IsSpace(next),
				canClose: i > 0 && !unicode.IsSpace(prev),
			}
			if c == '_' { // snake_case stays as it is
				t.canOpen = t.canOpen && (i == 0 || !isAlnum(prev))
				t.canClose = t.canClose && (i+n == len(s) || !isAlnum(next))
			}
			flush()
			toks = append(toks, t)
			i += n
		default:
			text.WriteByte(c)
			i++
		}
	}
	flush()
	return toks
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// runLen counts the bytes equal to s[i] from i.
func runLen(s string, i int) int {
	n := 1
	for i+n < len(s) && s[i+n] == s[i] {
		n++
	}
	return n
}

// findRun returns where the next run of exactly n bytes c starts at or
// after from, or -1.
func findRun(s string, from int, c byte, n int) int {
	for j := from; j < len(s); {
		k := strings.IndexByte(s[j:], c)
		if k < 0 {
			return -1
		}
		j += k
		m := runLen(s, j)
		if m == n {
			return j
		}
		j += m
	}
	return -1
}

// codeToken makes a code span (n < 3) or a pre block from the text between
// backtick runs of length n.
func codeToken(body string, n int) (mdToken, bool) {
	if n < 3 {
		// CommonMark strips one space each side of `` ` x ` ``.
		if len(body) >= 2 && body[0] == ' ' && body[len(body)-1] == ' ' && strings.TrimSpace(body) != "" {
			body = body[1 : len(body)-1]
		}
		return mdToken{kind: tkCode, text: body, match: -1}, strings.TrimSpace(body) != ""
	}
	lang := ""
	if first, rest, ok := strings.Cut(body, "\n"); ok && preLangRe.MatchString(first) {
		lang, body = first, rest
	}
	return mdToken{kind: tkPre, text: body, url: lang, match: -1}, strings.TrimSpace(body) != ""
}

// linkAt parses [text](url) at s[i] == '['.
func linkAt(s string, i int) (mdToken, int, bool) {
	j := i + 1
	for j < len(s) && s[j] != ']' && s[j] != '[' && s[j] != '\n' {
		j++
	}
	if j >= len(s) || s[j] != ']' || j == i+1 || j+1 >= len(s) || s[j+1] != '(' {
		return mdToken{}, 0, false
	}
	k := j + 2
	for k < len(s) && s[k] != ')' && s[k] != '(' && s[k] != '\n' && s[k] != ' ' {
		k++
	}
	if k >= len(s) || s[k] != ')' {
		return mdToken{}, 0, false
	}
	text, u := s[i+1:j], s[j+2:k]
	if strings.TrimSpace(text) == "" || !linkURLRe.MatchString(u) {
		return mdToken{}, 0, false
	}
	return mdToken{kind: tkLink, text: text, url: u, match: -1}, k + 1, true
}

// matchDelims pairs emphasis delimiters with a stack: a closer matches the
// nearest open delimiter of its kind (unmatched ones above it become
// literal); an opener of a kind already open stays literal (Telegram has
// no italic-in-italic, and "__" would read as underline). Then it unpairs
// emphasis around code or pre (not allowed to contain them) and an italic
// opening right where another closes ("_a__b_" is underline).
func matchDelims(toks []mdToken) {
	var stack []int
	open := map[byte]int{} // kind → open delimiters of it on the stack
	for i := range toks {
		t := &toks[i]
		if t.kind != tkDelim {
			continue
		}
		if t.canClose && open[t.em] > 0 {
			k := len(stack) - 1
			for toks[stack[k]].em != t.em {
				k--
			}
			if o := stack[k]; o+1 < i { // not empty
				for _, d := range stack[k:] {
					open[toks[d].em]--
				}
				stack = stack[:k]
				t.match, toks[o].match = o, i
				continue
			}
		}
		if t.canOpen && open[t.em] == 0 {
			stack = append(stack, i)
			open[t.em]++
		}
	}
	// Emphasis around code or pre: unpair.
	codes := make([]int, len(toks)+1) // codes[i]: code/pre tokens before i
	for i, t := range toks {
		codes[i+1] = codes[i]
		if t.kind == tkCode || t.kind == tkPre {
			codes[i+1]++
		}
	}
	for i := range toks {
		if c := toks[i].match; toks[i].kind == tkDelim && c > i && codes[c] > codes[i] {
			toks[i].match, toks[c].match = -1, -1
		}
	}
	// An italic opener just after an italic closer: unpair the opener.
	for i := 1; i < len(toks); i++ {
		p, t := toks[i-1], toks[i]
		if p.kind == tkDelim && p.em == emItalic && p.match >= 0 && p.match < i-1 &&
			t.kind == tkDelim && t.em == emItalic && t.match > i {
			toks[t.match].match, toks[i].match = -1, -1
		}
	}
}
