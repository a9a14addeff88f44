package telegram

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// checkMarkdownV2 reads s by Telegram's MarkdownV2 rules and says why
// Telegram would refuse it. It is stricter than Telegram (no blockquotes,
// no empty entities, a backslash in code must escape ` or \), so that what
// passes here surely passes there.
func checkMarkdownV2(s string) error {
	type open struct {
		kind string
		at   int // where its content starts
	}
	var stack []open
	has := func(kind string) bool {
		for _, o := range stack {
			if o.kind == kind {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return errors.New("backslash at the end")
			}
			if s[i+1] == 0 || s[i+1] > 126 {
				return fmt.Errorf("backslash before byte %#x at %d", s[i+1], i)
			}
			i += 2
		case c == '`':
			if len(stack) > 0 {
				return fmt.Errorf("code or pre inside %s at %d", stack[len(stack)-1].kind, i)
			}
			closer := "`"
			if strings.HasPrefix(s[i:], "```") {
				closer = "```"
			}
			j := i + len(closer)
			start := j
			for {
				if j >= len(s) {
					return fmt.Errorf("unclosed %s at %d", closer, i)
				}
				if s[j] == '\\' {
					if j+1 >= len(s) || (s[j+1] != '`' && s[j+1] != '\\') {
						return fmt.Errorf("backslash in code must escape ` or \\ (at %d)", j)
					}
					j += 2
					continue
				}
				if s[j] == '`' {
					if !strings.HasPrefix(s[j:], closer) {
						return fmt.Errorf("unescaped ` inside code at %d", j)
					}
					break
				}
				j++
			}
			if j == start {
				return fmt.Errorf("empty code at %d", i)
			}
			i = j + len(closer)
		case c == '*' || c == '_' || c == '~' || c == '|':
			kind := string(c)
			if c == '_' && strings.HasPrefix(s[i:], "__") {
				kind = "__"
			}
			if c == '|' {
				if !strings.HasPrefix(s[i:], "||") {
					return fmt.Errorf("unescaped '|' at %d", i)
				}
				kind = "||"
			}
			switch {
			case len(stack) > 0 && stack[len(stack)-1].kind == kind:
				if stack[len(stack)-1].at == i {
					return fmt.Errorf("empty %s entity at %d", kind, i)
				}
				stack = stack[:len(stack)-1]
			case has(kind):
				return fmt.Errorf("%s entities overlap at %d", kind, i)
			default:
				stack = append(stack, open{kind, i + len(kind)})
			}
			i += len(kind)
		case c == '[':
			if has("[") {
				return fmt.Errorf("link inside link at %d", i)
			}
			stack = append(stack, open{"[", i + 1})
			i++
		case c == ']':
			if len(stack) == 0 || stack[len(stack)-1].kind != "[" {
				return fmt.Errorf("unescaped or misnested ']' at %d", i)
			}
			if stack[len(stack)-1].at == i {
				return fmt.Errorf("empty link text at %d", i)
			}
			stack = stack[:len(stack)-1]
			if i+1 >= len(s) || s[i+1] != '(' {
				return fmt.Errorf("link without (url) at %d", i)
			}
			j := i + 2
			for ; j < len(s) && s[j] != ')'; j++ {
				if s[j] == '\\' {
					j++
				}
			}
			if j >= len(s) || j == i+2 {
				return fmt.Errorf("unclosed or empty link url at %d", i)
			}
			i = j + 1
		case strings.IndexByte("()>#+-=.!{}", c) >= 0:
			return fmt.Errorf("character %q is reserved and must be escaped (at %d)", c, i)
		default:
			i++
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("unclosed %s entity", stack[len(stack)-1].kind)
	}
	return nil
}

// plainMarkdownV2 is what Telegram shows for a valid MarkdownV2 text
// (markers and link urls dropped, escapes resolved); approximate, for the
// fake's length check.
func plainMarkdownV2(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case strings.IndexByte("*_~|[`", c) >= 0:
		case c == ']':
			if j := strings.IndexByte(s[i:], ')'); j > 0 {
				i += j
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescapeMarkdownV2 undoes escapeMarkdownV2.
func unescapeMarkdownV2(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unescapedSpecial returns the index of the first special character of
// MarkdownV2 not escaped in s, or -1.
func unescapedSpecial(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			if i+1 == len(s) {
				return i
			}
			i++
			continue
		}
		if strings.IndexByte(mdv2Special, s[i]) >= 0 {
			return i
		}
	}
	return -1
}

func TestEscapeMarkdownV2(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "",
		"plain text 你好":                 "plain text 你好",
		"Order #42 costs 3.50!":         `Order \#42 costs 3\.50\!`,
		`_*[]()~` + "`" + `>#+-=|{}.!\`: `\_\*\[\]\(\)\~\` + "`" + `\>\#\+\-\=\|\{\}\.\!\\`,
	} {
		got := escapeMarkdownV2(in)
		if got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
		if err := checkMarkdownV2(got); err != nil {
			t.Errorf("escape(%q) = %q: %v", in, got, err)
		}
		if back := unescapeMarkdownV2(got); back != in {
			t.Errorf("unescape(escape(%q)) = %q", in, back)
		}
	}
}

func TestToMarkdownV2(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"hello", "hello"},
		{"Order #42 costs 3.50!", `Order \#42 costs 3\.50\!`},
		{"**bold** text", "*bold* text"},
		{"__bold__ text", "*bold* text"},
		{"*it* and _it_", "_it_ and _it_"},
		{"~~gone~~", "~gone~"},
		{"**bold _and italic_**", "*bold _and italic_*"},
		{"`a_b.c`", "`a_b.c`"},
		{"`` a`b ``", "`a\\`b`"},
		{"```go\nx := `y`\n```", "```go\nx := \\`y\\`\n```"},
		{"```\nC:\\dir\n```", "```\nC:\\\\dir\n```"},
		{"see [our site](https://example.com/a_b?x=1) now.", `see [our site](https://example.com/a_b?x=1) now\.`},
		{"[x](javascript:alert)", `\[x\]\(javascript:alert\)`},
		{"snake_case_name", `snake\_case\_name`},
		{"2 * 3 * 4", `2 \* 3 \* 4`},
		{"**unclosed", `\*\*unclosed`},
		{"**bold `code`**", "\\*\\*bold `code`\\*\\*"},
		{"*a*_b_", `_a_\_b\_`},
		{"_a_ _b_", "_a_ _b_"},
		{`\*not italic\*`, `\*not italic\*`},
		{"***x***", `\*\*\*x\*\*\*`},
		{"a > b - c", `a \> b \- c`},
		{"**", `\*\*`},
		{"* a*", `\* a\*`},
		{"*_x_*", `_\_x_\*`},
	} {
		got := toMarkdownV2(tc.in)
		if got != tc.want {
			t.Errorf("toMarkdownV2(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if err := checkMarkdownV2(got); err != nil {
			t.Errorf("toMarkdownV2(%q) = %q: Telegram would refuse it: %v", tc.in, got, err)
		}
	}
}

func TestCheckMarkdownV2Refuses(t *testing.T) {
	for _, s := range []string{"3.5", "*open", "a\\", "`x", "_a*b_*", "[a](b", "__", "*a _b* c_", "x|y", "**bold `code`**"} {
		if checkMarkdownV2(s) == nil {
			t.Errorf("checkMarkdownV2(%q) = nil, want an error", s)
		}
	}
}

// FuzzMarkdownV2: escaped text has no unescaped special character and
// unescapes to the input; converted Markdown always parses.
func FuzzMarkdownV2(f *testing.F) {
	for _, s := range []string{
		"", "hello", "3.50!", "**b** *i* _i_ ~~s~~", "`c` ```go\np```", "[t](https://x.y/z)",
		"snake_case", "*a*_b_", "\\*", "***", "a\\", "**bold `code`**", "[a](b)c](d)", "_*_*_",
		"~~~~", "``", "`` ` ``", "__a__b__", "*\n*", "[**x**](http://a)", "_a_\\_b_",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := escapeMarkdownV2(s)
		if i := unescapedSpecial(e); i >= 0 {
			t.Fatalf("escape(%q) = %q: unescaped %q at %d", s, e, e[i], i)
		}
		if back := unescapeMarkdownV2(e); back != s {
			t.Fatalf("unescape(escape(%q)) = %q", s, back)
		}
		m := toMarkdownV2(s)
		if err := checkMarkdownV2(m); err != nil {
			t.Fatalf("toMarkdownV2(%q) = %q: %v", s, m, err)
		}
		if !strings.ContainsAny(s, "*_~`[\\") && m != e {
			t.Fatalf("toMarkdownV2(%q) = %q, want the plain escape %q", s, m, e)
		}
	})
}
