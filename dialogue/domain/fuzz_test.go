package domain

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf8"
)

// FuzzLoad loads random bytes as the domain.yml of a folder (beside a valid
// base file, so the cross-file checks run too). It must never panic, every
// error must be an *Error with a position in the folder, and a domain that
// loads must render every response.
func FuzzLoad(f *testing.F) {
	err := fs.WalkDir(os.DirFS(shop), ".", func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, "ml") {
			b, err := fs.ReadFile(os.DirFS(shop), p)
			if err != nil {
				return err
			}
			f.Add(b)
		}
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"intents:\n  - greet: {reply: utter_a}\n  - bye\nslots:\n  a: {from_text: true}\nresponses:\n  utter_a:\n    - text: \"{a}{{}}\"\n      channels: [dingtalk]\n    - text: x\n",
		"", "---\n", "- a\n", "intents: [a, {b: {reply: x}}]\n", "responses:\n  utter_x:\n    - text: \"{{a}} {b\"\n",
		"x: &a [*a]\n", "slots: {a: &s {type: text}, b: *s}\n", "faq: [{id: 1, questions: [], answer: ~}]\n",
		"forms:\n  f:\n    slots:\n      - slot: order_no\n        prompt: utter_default\n        validate: {regex: '(', lookup: [a]}\n",
		"policy: {faq_threshold: .nan}\nhandoff: {max_fallbacks: 99999999999999999999}\n",
		"intents:\n  - a:\n      reply: utter_default\n      skill: s\n      handoff: true\n\t- b\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := LoadFS(fstest.MapFS{
			"base.yml":   {Data: []byte(minimal)},
			"domain.yml": {Data: data},
		}, "f")
		if err != nil {
			if d != nil {
				t.Fatal("a domain and an error")
			}
			for _, e := range flatten(err) {
				var de *Error
				if !errors.As(e, &de) {
					t.Fatalf("%T is not an *Error: %v", e, e)
				}
				if !strings.HasPrefix(de.Pos.File, "f") || de.Pos.Line < 0 || de.Msg == "" {
					t.Fatalf("bad position or message: %q", de.Error())
				}
			}
			return
		}
		if d.Policy.FallbackReply == "" || d.Responses[d.Policy.FallbackReply] == nil {
			t.Fatal("loaded without a fallback reply")
		}
		slots := map[string]string{}
		for name := range d.Slots {
			slots[name] = "值"
		}
		for _, r := range d.Responses {
			for _, ch := range []string{"", "dingtalk"} {
				text, _ := r.Render(ch, slots, func(n int) int { return n - 1 })
				if !utf8.ValidString(text) {
					t.Fatalf("%s rendered invalid UTF-8 %q", r.Name, text)
				}
			}
		}
		_ = d.CheckSkills(func(string) bool { return false })
	})
}

// FuzzTemplate compiles random response texts. When one compiles, rendering
// with no slot values must give the text with placeholders dropped and
// doubled braces halved, and rendering a hand-built copy must agree.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"", "您好", "{a}", "订单{ a }到{b}", "{{x}}", "x{{{a}}}y", "{", "}", "{}", "a}}b{{c", "{a{b}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		segs, holes, err := compile(text)
		if err != nil {
			if err.off < 0 || err.off >= len(text) || text[err.off] != '{' && text[err.off] != '}' {
				t.Fatalf("error at %d of %q: %s", err.off, text, err.msg)
			}
			return
		}
		for _, h := range holes {
			if h.name == "" || text[h.off] != '{' {
				t.Fatalf("hole %+v in %q", h, text)
			}
		}
		var want strings.Builder
		for _, s := range segs {
			if !s.slot {
				want.WriteString(s.text)
			}
		}
		compiled := &Response{Variants: []Variant{{Text: text, segs: segs}}}
		got, _ := compiled.Render("", nil, nil)
		if got != want.String() || len(got) > len(text) {
			t.Fatalf("render(%q) = %q, want %q", text, got, want.String())
		}
		hand := &Response{Variants: []Variant{{Text: text}}}
		if again, _ := hand.Render("", nil, nil); again != got {
			t.Fatalf("hand-built render(%q) = %q, compiled %q", text, again, got)
		}
		if !strings.ContainsAny(text, "{}") && got != text {
			t.Fatalf("plain text %q rendered %q", text, got)
		}
	})
}

func BenchmarkLoad(b *testing.B) {
	fsys := fstest.MapFS{}
	err := fs.WalkDir(os.DirFS(shop), ".", func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			data, err := fs.ReadFile(os.DirFS(shop), p)
			fsys[p] = &fstest.MapFile{Data: data}
			return err
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadFS(fsys, "shop"); err != nil {
			b.Fatal(err)
		}
	}
}
