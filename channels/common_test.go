package channels

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		name string
		text string
		max  int
		unit LengthUnit
		want []string
	}{
		{"fits", "你好", 10, Runes, []string{"你好"}},
		{"no limit", "你好", 0, Runes, []string{"你好"}},
		{"empty", "  ", 10, Runes, nil},
		{"sentences", "第一句。第二句。第三句。", 8, Runes, []string{"第一句。第二句。", "第三句。"}},
		{"paragraph first", "aaaa\n\nbbbb cccc", 12, Runes, []string{"aaaa", "bbbb cccc"}},
		{"hard cut", "一二三四五六七八九十", 4, Runes, []string{"一二三四", "五六七八", "九十"}},
		{"bytes", "一二三四", 7, Bytes, []string{"一二", "三四"}},
		{"utf16 emoji", "😀😀😀", 4, UTF16, []string{"😀😀", "😀"}},
		{"tiny max", "一二", 1, Bytes, []string{"一", "二"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Split(c.text, c.max, c.unit)
			if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
				t.Fatalf("Split(%q, %d) = %q, want %q", c.text, c.max, got, c.want)
			}
		})
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("第一句。第二句！third? 四", 5, 0)
	f.Add("a\n\nb", 1, 1)
	f.Add("😀x😀", 3, 2)
	f.Fuzz(func(t *testing.T, text string, max, unit int) {
		if max < 1 || max > 1000 || !utf8.ValidString(text) {
			return
		}
		u := LengthUnit(((unit % 3) + 3) % 3)
		parts := Split(text, max, u)
		var total int
		for _, p := range parts {
			if p == "" {
				t.Fatal("empty part")
			}
			if l := length(p, u); l > max && utf8.RuneCountInString(p) > 1 {
				t.Fatalf("part %q is %d units > %d", p, l, max)
			}
			total += utf8.RuneCountInString(strings.Join(strings.Fields(p), ""))
		}
		if want := utf8.RuneCountInString(strings.Join(strings.Fields(strings.Map(func(r rune) rune {
			if isSpace(r) {
				return ' '
			}
			return r
		}, text)), "")); total != want {
			// Only whitespace may be lost at cuts.
			t.Fatalf("parts %q lost characters of %q (%d != %d)", parts, text, total, want)
		}
	})
}

func TestReplayGuard(t *testing.T) {
	g := NewReplayGuard(time.Minute, 3)
	now := time.Unix(1000, 0)
	g.now = func() time.Time { return now }
	if g.Seen("a") || !g.Seen("a") {
		t.Fatal("a second sighting within the window is a replay")
	}
	now = now.Add(2 * time.Minute)
	if g.Seen("a") {
		t.Fatal("after the window the key is forgotten")
	}
	for _, k := range []string{"b", "c", "d", "e"} {
		g.Seen(k)
	}
	if len(g.seen) > 3 {
		t.Fatalf("guard holds %d keys, max 3", len(g.seen))
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for n := 1; n < 20; n++ {
		d := b.Delay(n)
		if d < 50*time.Millisecond || d > time.Second {
			t.Fatalf("Delay(%d) = %s out of [50ms, 1s]", n, d)
		}
	}
}
