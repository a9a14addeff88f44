package nludata

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseAnnotated(t *testing.T) {
	tests := []struct {
		name string
		in   string
		text string
		ents []Entity
	}{
		{"plain", "我的快递到哪了", "我的快递到哪了", nil},
		{"entity", "查一下[SF1234567890](tracking_no)的物流", "查一下SF1234567890的物流",
			[]Entity{{Start: 3, End: 15, Type: "tracking_no", Value: "SF1234567890", Text: "SF1234567890"}}},
		{"paren then json", `[顺丰](carrier){"value": "SF"}到了吗`, "顺丰到了吗",
			[]Entity{{Start: 0, End: 2, Type: "carrier", Value: "SF", Text: "顺丰"}}},
		{"paren then json with role", `从[北京](city){"role": "from", "group": "1"}出发`, "从北京出发",
			[]Entity{{Start: 1, End: 3, Type: "city", Value: "北京", Text: "北京", Role: "from", Group: "1"}}},
		{"dict", `寄[顺丰]{"entity": "carrier", "value": "SF"}`, "寄顺丰",
			[]Entity{{Start: 1, End: 3, Type: "carrier", Value: "SF", Text: "顺丰"}}},
		{"rasa1 value", "[顺丰](carrier:SF)的件", "顺丰的件",
			[]Entity{{Start: 0, End: 2, Type: "carrier", Value: "SF", Text: "顺丰"}}},
		{"list of dicts", `[上海][{"entity": "city"}, {"entity": "loc", "value": "SH"}]站`, "上海站",
			[]Entity{{Start: 0, End: 2, Type: "city", Value: "上海", Text: "上海"}, {Start: 0, End: 2, Type: "loc", Value: "SH", Text: "上海"}}},
		{"two entities", "[a](x) and [b c](y)", "a and b c",
			[]Entity{{Start: 0, End: 1, Type: "x", Value: "a", Text: "a"}, {Start: 6, End: 9, Type: "y", Value: "b c", Text: "b c"}}},
		{"escaped brackets", `价格\[含税\](tax)`, "价格[含税](tax)", nil},
		{"escaped inside span", `[a\]b](x)`, "a]b", []Entity{{Start: 0, End: 3, Type: "x", Value: "a]b", Text: "a]b"}}},
		{"lone bracket", "价格[便宜", "价格[便宜", nil},
		{"bracket not annotation", "[注意] 请回复", "[注意] 请回复", nil},
		{"bracket then space paren", "[a] (x)", "[a] (x)", nil},
		{"bracket then text bracket", "[a][b](x)", "[a]b", []Entity{{Start: 3, End: 4, Type: "x", Value: "b", Text: "b"}}},
		{"nested opens", "[a [b](x)", "[a b", []Entity{{Start: 3, End: 4, Type: "x", Value: "b", Text: "b"}}},
		{"empty brackets", "[]", "[]", nil},
		{"trailing bracket", "abc[", "abc[", nil},
		{"backslash kept", `a\b`, `a\b`, nil},
		{"value same as text", `[SF](carrier:SF)`, "SF", []Entity{{Start: 0, End: 2, Type: "carrier", Value: "SF", Text: "SF"}}},
		{"paren json same entity", `[顺丰](carrier){"entity": "carrier"}`, "顺丰", []Entity{{Start: 0, End: 2, Type: "carrier", Value: "顺丰", Text: "顺丰"}}},
		{"emoji offsets", "😀[北京](city)", "😀北京", []Entity{{Start: 1, End: 3, Type: "city", Value: "北京", Text: "北京"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text, ents, err := ParseAnnotated(tc.in)
			if err != nil {
				t.Fatalf("ParseAnnotated(%q): %v", tc.in, err)
			}
			if text != tc.text {
				t.Errorf("text = %q, want %q", text, tc.text)
			}
			if !reflect.DeepEqual(ents, tc.ents) {
				t.Errorf("entities = %+v, want %+v", ents, tc.ents)
			}
		})
	}
}

func TestParseAnnotatedErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // substring of the error
	}{
		{"unterminated", "[abc](", `unterminated annotation "[abc]("`},
		{"unterminated name", "[abc](carrier 到了", "unterminated annotation"},
		{"unterminated runs into next", "[a](b [c](d)", "unterminated annotation"},
		{"empty name", "[abc]()", "empty entity name"},
		{"empty name with value", "[abc](:SF)", "empty entity name"},
		{"space in name", "[abc](my carrier)", "contains a space"},
		{"empty value", "[abc](carrier:)", "empty value"},
		{"empty text", "[](carrier)", "has no text"},
		{"dict without entity", `[顺丰]{"value": "SF"}`, "empty entity name"},
		{"dict empty entity", `[顺丰]{"entity": ""}`, "empty entity name"},
		{"invalid json", `[顺丰]{value: SF}`, "not valid"},
		{"unterminated json", `[顺丰](carrier){"value": "SF"`, "not valid"},
		{"non-string value", `[顺丰](carrier){"value": 1}`, `"value" must be a string`},
		{"null value", `[顺丰]{"entity": null}`, `"entity" must be a string`},
		{"nested object value", `[顺丰]{"entity": {"a": "b"}}`, `"entity" must be a string`},
		{"unknown key", `[顺丰]{"entity": "carrier", "confidence": "1"}`, `unknown key "confidence"`},
		{"list not objects", `[顺丰][{"entity": "a"}, 1]`, "must be an object"},
		{"list item without entity", `[顺丰][{"value": "a"}]`, "empty entity name"},
		{"conflicting names", `[顺丰](carrier){"entity": "org"}`, "keep one"},
		{"conflicting values", `[顺丰](carrier:SF){"value": "ZTO"}`, "keep one"},
		{"invalid utf8", "[\xff](x)", "invalid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseAnnotated(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseAnnotated(%q) error = %v, want it to contain %q", tc.in, err, tc.want)
			}
		})
	}
}

// checkEntities asserts the invariants every parsed entity keeps.
func checkEntities(t *testing.T, text string, ents []Entity) {
	t.Helper()
	runes := []rune(text)
	for _, e := range ents {
		if e.Start < 0 || e.End > len(runes) || e.Start >= e.End {
			t.Fatalf("entity %+v out of range for %q (%d runes)", e, text, len(runes))
		}
		if got := string(runes[e.Start:e.End]); got != e.Text {
			t.Fatalf("entity %+v: span text is %q", e, got)
		}
		if e.Type == "" || e.Value == "" {
			t.Fatalf("entity %+v: empty type or value", e)
		}
	}
}

func FuzzParseAnnotated(f *testing.F) {
	for _, s := range []string{
		"我的快递到哪了",
		"查一下[SF1234567890](tracking_no)的物流",
		`[顺丰](carrier){"value": "SF"}到了吗`,
		`[顺丰]{"entity": "carrier", "value": "SF"}`,
		"[顺丰](carrier:SF)",
		`[上海][{"entity": "city"}, {"entity": "loc"}]`,
		`价格\[含税\]`, "[abc](", "[](x)", "[a [b](x)", `[a]{"entity": 1}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		text, ents, err := ParseAnnotated(s)
		if err != nil {
			if text != "" || ents != nil {
				t.Fatalf("error %v with results %q %v", err, text, ents)
			}
			return
		}
		if !utf8.ValidString(text) {
			t.Fatalf("invalid UTF-8 text %q", text)
		}
		checkEntities(t, text, ents)
		if !strings.ContainsAny(s, `[\`) && (text != s || ents != nil) {
			t.Fatalf("plain %q became %q %v", s, text, ents)
		}
	})
}
