package rules

import (
	"slices"
	"testing"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, text string
		orig           []int
	}{
		{"empty", "", "", []int{0}},
		{"only spaces", " \t\u3000 ", "", []int{0}},
		{"ascii upper", "SF123", "sf123", []int{0, 1, 2, 3, 4, 5}},
		{"full-width digits", "１３８", "138", []int{0, 1, 2, 3}},
		{"full-width letters and punctuation", "ＡＢ，（）", "ab,()", []int{0, 1, 2, 3, 4, 5}},
		{"ideographic space collapses", "你\u3000\u3000好", "你 好", []int{0, 1, 3, 4}},
		{"trim", "  你好  ", "你好", []int{2, 3, 4}},
		{"whitespace run keeps first offset", "a \t\n b", "a b", []int{0, 1, 5, 6}},
		{"control removed", "1\x002\x7f3", "123", []int{0, 2, 4, 5}},
		{"zero-width space removed", "138\u200b1234", "1381234", []int{0, 1, 2, 4, 5, 6, 7, 8}},
		{"BOM removed", "\ufeff你", "你", []int{1, 2}},
		{"Latin lower-cased, Chinese untouched", "ÀÉ中文Ü", "àé中文ü", []int{0, 1, 2, 3, 4, 5}},
		{"Greek untouched", "ΑΒ", "ΑΒ", []int{0, 1, 2}},
		{"invalid UTF-8 is one U+FFFD per byte", "a\xff\xfeb", "a\ufffd\ufffdb", []int{0, 1, 2, 3, 4}},
		{"no-break space collapses", "1\u00a02", "1 2", []int{0, 1, 2, 3}},
		{"control inside whitespace run", "a \x00 b", "a b", []int{0, 1, 4, 5}},
		{"trailing control", "ab\x01", "ab", []int{0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := Normalize(tt.in)
			if n.Text != tt.text {
				t.Errorf("Text = %q, want %q", n.Text, tt.text)
			}
			if string(n.Runes) != n.Text {
				t.Errorf("Runes %q disagree with Text %q", string(n.Runes), n.Text)
			}
			if !slices.Equal(n.Orig, tt.orig) {
				t.Errorf("Orig = %v, want %v", n.Orig, tt.orig)
			}
		})
	}
}

func TestSpan(t *testing.T) {
	n := Normalize("我的手机号是１３８１２３４５６７８ 谢谢")
	tests := []struct {
		s, e, ws, we int
	}{
		{6, 17, 6, 17},
		{0, 2, 0, 2},
		{3, 3, 3, 3},
		{-5, 1, 0, 1},
		{17, 100, 17, 20},
		{5, 2, 5, 5}, // end before start: empty
	}
	for _, tt := range tests {
		s, e := n.Span(tt.s, tt.e)
		if s != tt.ws || e != tt.we {
			t.Errorf("Span(%d,%d) = %d,%d want %d,%d", tt.s, tt.e, s, e, tt.ws, tt.we)
		}
	}
	// A span over removed characters covers them in the original.
	n = Normalize("13\u200b8")
	if s, e := n.Span(0, 3); s != 0 || e != 4 {
		t.Errorf("Span over a removed rune = %d,%d, want 0,4", s, e)
	}
	// The zero value does not panic.
	if s, e := (Normalized{}).Span(0, 1); s != 0 || e != 0 {
		t.Errorf("zero Normalized Span = %d,%d", s, e)
	}
}

// checkNormalized asserts the invariants every Normalized must hold.
func checkNormalized(t *testing.T, in string, n Normalized) {
	t.Helper()
	origLen := utf8.RuneCountInString(in)
	if len(n.Orig) != len(n.Runes)+1 {
		t.Fatalf("len(Orig)=%d, len(Runes)=%d", len(n.Orig), len(n.Runes))
	}
	if string(n.Runes) != n.Text {
		t.Fatalf("Runes and Text differ: %q vs %q", string(n.Runes), n.Text)
	}
	for i := 1; i < len(n.Orig); i++ {
		if n.Orig[i] <= n.Orig[i-1] {
			t.Fatalf("Orig not strictly increasing at %d: %v", i, n.Orig)
		}
	}
	if n.Orig[0] < 0 || n.Orig[len(n.Orig)-1] > origLen {
		t.Fatalf("Orig out of bounds (original has %d runes): %v", origLen, n.Orig)
	}
	if len(n.Runes) > 0 && (n.Runes[0] == ' ' || n.Runes[len(n.Runes)-1] == ' ') {
		t.Fatalf("not trimmed: %q", n.Text)
	}
	for i := 1; i < len(n.Runes); i++ {
		if n.Runes[i] == ' ' && n.Runes[i-1] == ' ' {
			t.Fatalf("whitespace not collapsed: %q", n.Text)
		}
	}
	orig := []rune(in)
	for i, r := range n.Runes {
		o := orig[n.Orig[i]]
		if r != ' ' && o != r && !(o >= 0xFF01 && o <= 0xFF5E) && Normalize(string(o)).Text != string(r) {
			t.Fatalf("normalized rune %q at %d does not come from original %q", r, i, o)
		}
	}
	if again := Normalize(n.Text); again.Text != n.Text {
		t.Fatalf("not idempotent: %q -> %q", n.Text, again.Text)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"", " ", "我的手机号是１３８１２３４５６７８", "ＳＦ１２３４５６７８９０１２３", "\u3000a\u3000\u3000b\u3000",
		"a\xff\xfe", "\x00\x01\t\n", "ÀÉ中文Ü", "138\u200b1234\ufeff", "İıſK", "\u0085\u2028x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkNormalized(t, s, Normalize(s))
	})
}
