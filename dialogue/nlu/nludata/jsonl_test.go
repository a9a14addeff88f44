package nludata

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseJSONL(t *testing.T) {
	src := "\xef\xbb\xbf" + `{"text": "我要听吴雨霏的歌", "intent": "PlayMusic", "entities": [{"start": 3, "end": 6, "type": "singer_name", "value": "吴雨霏"}]}

{"text": "导航到佛山大良汽车站", "intent": "map.ROUTE", "entities": [{"start": 3, "end": 10, "type": "endLoc_poi", "value": "佛山大良汽车站", "role": "to", "group": "g"}], "unaligned_slots": [{"type": "endLoc_city", "value": "佛山"}]}` + "\r\n" +
		`{"text": "b a", "intent": "x", "entities": [{"start": 2, "end": 3, "type": "t"}, {"start": 0, "end": 1, "type": "t", "value": "b"}]}
{"text": "打开熊猫看书", "intent": "app"}
{"text": "打开熊猫看书 ", "intent": "app", "entities": null}
{"\u0074ext": "\u542c", "intent": "app", "entities": [{"start": 0, "end": 1, "type": "t", "value": null, "role": null}]}
`
	d, err := Parse("train.jsonl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Example{
		{Text: "我要听吴雨霏的歌", Intent: "PlayMusic", Pos: Pos{"train.jsonl", 1},
			Entities: []Entity{{Start: 3, End: 6, Type: "singer_name", Value: "吴雨霏", Text: "吴雨霏"}}},
		{Text: "导航到佛山大良汽车站", Intent: "map.ROUTE", Pos: Pos{"train.jsonl", 3},
			Entities: []Entity{{Start: 3, End: 10, Type: "endLoc_poi", Value: "佛山大良汽车站", Text: "佛山大良汽车站", Role: "to", Group: "g"}}},
		{Text: "b a", Intent: "x", Pos: Pos{"train.jsonl", 4},
			Entities: []Entity{{Start: 0, End: 1, Type: "t", Value: "b", Text: "b"}, {Start: 2, End: 3, Type: "t", Value: "a", Text: "a"}}},
		{Text: "打开熊猫看书", Intent: "app", Pos: Pos{"train.jsonl", 5}},
		{Text: "听", Intent: "app", Pos: Pos{"train.jsonl", 7}, Entities: []Entity{{Start: 0, End: 1, Type: "t", Value: "听", Text: "听"}}},
	}
	if !reflect.DeepEqual(d.Examples, want) {
		t.Errorf("examples\n got %+v\nwant %+v", d.Examples, want)
	}
	if len(d.Synonyms) != 0 || len(d.Warnings) != 0 {
		t.Errorf("synonyms %v warnings %v", d.Synonyms, d.Warnings)
	}
}

func TestParseJSONLErrors(t *testing.T) {
	ok := `{"text": "ab", "intent": "i"}` + "\n"
	tests := []struct {
		name string
		line string // parsed as line 2, after a good line
		want string // substring after "f.jsonl:2: "
	}{
		{"invalid json", `{"text": "ab", "intent": }`, "invalid JSON"},
		{"truncated", `{"text": "ab"`, "invalid JSON"},
		{"not an object", `["ab", "i"]`, "must be one JSON object"},
		{"two values", `{"text": "ab", "intent": "i"} {}`, "more than one JSON value"},
		{"missing text", `{"intent": "i"}`, `missing "text"`},
		{"null text", `{"text": null, "intent": "i"}`, `missing "text"`},
		{"missing intent", `{"text": "ab"}`, `missing "intent"`},
		{"empty intent", `{"text": "ab", "intent": " "}`, `"intent" is empty`},
		{"empty text", `{"text": "", "intent": "i"}`, `"text" is empty`},
		{"text not string", `{"text": 1, "intent": "i"}`, `"text" must be a string`},
		{"unknown key", `{"text": "ab", "intent": "i", "slots": []}`, `unknown key "slots"`},
		{"key case", `{"Text": "ab", "intent": "i"}`, `unknown key "Text"`},
		{"entities not list", `{"text": "ab", "intent": "i", "entities": {}}`, `"entities" must be a list`},
		{"entity not object", `{"text": "ab", "intent": "i", "entities": [1]}`, "entity 0 must be an object"},
		{"entity unknown key", `{"text": "ab", "intent": "i", "entities": [{"start": 0, "end": 1, "type": "t", "label": "x"}]}`, `unknown key "label"`},
		{"entity missing type", `{"text": "ab", "intent": "i", "entities": [{"start": 0, "end": 1}]}`, `missing or empty "type"`},
		{"entity empty type", `{"text": "ab", "intent": "i", "entities": [{"start": 0, "end": 1, "type": ""}]}`, `missing or empty "type"`},
		{"entity null", `{"text": "ab", "intent": "i", "entities": [null]}`, "entity 0 must be an object"},
		{"entity start string", `{"text": "ab", "intent": "i", "entities": [{"start": "0", "end": 1, "type": "t"}]}`, `"start" must be an integer`},
		{"escaped key case", `{"\u0054ext": "ab", "intent": "i"}`, `unknown key "Text"`},
		{"long s key", "{\"text\": \"ab\", \"intent\": \"i\", \"entities\": [{\"\u017ftart\": 0, \"end\": 1, \"type\": \"t\"}]}", "unknown key \"\u017ftart\""},
		{"kelvin key", `{"text": "ab", "intent": "i", "entities": [{"start": 0, "end": 1, "type": "t", "\u212aey": "x"}]}`, "unknown key"},
		{"entity missing start", `{"text": "ab", "intent": "i", "entities": [{"end": 1, "type": "t"}]}`, `missing "start"`},
		{"entity float end", `{"text": "ab", "intent": "i", "entities": [{"start": 0, "end": 1.5, "type": "t"}]}`, `"end" must be an integer`},
		{"span past end", `{"text": "ab", "intent": "i", "entities": [{"start": 1, "end": 3, "type": "t"}]}`, "span 1:3 is out of range"},
		{"negative start", `{"text": "ab", "intent": "i", "entities": [{"start": -1, "end": 1, "type": "t"}]}`, "out of range"},
		{"start equals end", `{"text": "ab", "intent": "i", "entities": [{"start": 1, "end": 1, "type": "t"}]}`, "out of range or empty"},
		{"value mismatch", `{"text": "吴雨霏的歌", "intent": "i", "entities": [{"start": 0, "end": 2, "type": "singer", "value": "吴雨霏"}]}`, `span 0:2 is "吴雨" but value is "吴雨霏"`},
		{"byte offsets", `{"text": "听歌", "intent": "i", "entities": [{"start": 3, "end": 6, "type": "t", "value": "歌"}]}`, "out of range"},
		{"role not string", `{"text": "ab", "intent": "i", "entities": [{"start": 0, "end": 1, "type": "t", "role": 1}]}`, `"role" must be a string`},
		{"invalid utf8", "{\"text\": \"a\xffb\", \"intent\": \"i\"}", "invalid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.jsonl", []byte(ok+tc.line+"\n"+ok))
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "f.jsonl:2: ") || !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q\nwant f.jsonl:2: ...%s", msg, tc.want)
			}
			var de *Error
			if !errors.As(err, &de) || de.Pos != (Pos{"f.jsonl", 2}) {
				t.Errorf("error %v: not an *Error at f.jsonl:2", err)
			}
		})
	}
}

func TestParseRasaJSON(t *testing.T) {
	src := "{\n  \"rasa_nlu_data\": {\"common_examples\": []}\n}\n"
	_, err := Parse("nlu.json", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "rasa data convert") {
		t.Fatalf("error %v, want a hint to convert", err)
	}
}

// dataSets are the JSON Lines corpora in the shared data folder, with the
// line count, the examples kept after dropping repeats within an intent
// (smp2020 repeats 8), and the intents and entity types of the train split
// (the README counts all splits).
var dataSets = []struct {
	name            string
	lines, examples int
	intents, types  int
}{
	{"cais", 7995, 7995, 13, 24},
	{"smp2017_task1", 2299, 2299, 31, 0},
	{"smp2019_task1", 2053, 2053, 44, 55},
	{"smp2020_task1", 4011, 4003, 91, 80},
}

func sharedNLU(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join("..", "..", "..", "..", "shared", "data", "nlu")
	if _, err := os.Stat(dir); err != nil {
		tb.Skipf("needs the shared NLU data sets in %s: %v", dir, err)
	}
	return dir
}

func TestLoadSharedDataSets(t *testing.T) {
	dir := sharedNLU(t)
	for _, ds := range dataSets {
		t.Run(ds.name, func(t *testing.T) {
			file := filepath.Join(dir, ds.name, "train.jsonl")
			d, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Examples) != ds.examples || len(d.Intents()) != ds.intents || len(d.EntityTypes()) != ds.types {
				t.Errorf("%d examples, %d intents, %d entity types; want %d, %d, %d",
					len(d.Examples), len(d.Intents()), len(d.EntityTypes()), ds.examples, ds.intents, ds.types)
			}
			if last := d.Examples[len(d.Examples)-1].Pos; last.Line != ds.lines || last.File != file {
				t.Errorf("last example at %s, want line %d", last, ds.lines)
			}
			for _, e := range d.Examples {
				checkEntities(t, e.Text, e.Entities)
			}
			if len(d.Warnings) != 0 {
				t.Errorf("warnings: %q", d.Warnings[:min(5, len(d.Warnings))])
			}
		})
	}
}

func BenchmarkLoadCAIS(b *testing.B) {
	file := filepath.Join(sharedNLU(b), "cais", "train.jsonl")
	fi, err := os.Stat(file)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(file); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseJSONL(f *testing.F) {
	for _, s := range []string{
		`{"text": "我要听吴雨霏的歌", "intent": "PlayMusic", "entities": [{"start": 3, "end": 6, "type": "singer_name", "value": "吴雨霏"}]}`,
		`{"text": "a", "intent": "b", "entities": [], "unaligned_slots": [{"type": "c", "value": "d"}]}` + "\n\n" + `{"text": "c", "intent": "b"}`,
		`{"text": "ab", "intent": "i", "entities": [{"start": 1, "end": 3, "type": "t"}]}`,
		`{"text": "ab", "intent": "i", "entities": [{"start": 0, "end": 1, "type": "t", "role": "r", "group": "g", "value": "a"}]}`,
		"{\n\"rasa_nlu_data\": {}}", `[]`, `{"text": 1}`,
		`{"Text": "a", "intent": "b"}`, `{"\u0074ext": "a", "intent": "b"}`, "{\"text\": \"a\", \"intent\": \"b\", \"entities\": [{\"\u017ftart\": 0}]}",
		`{"text": "a", "intent": "b", "entities": [null, {"start": 0, "end": 1.0, "type": "t"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse("f.jsonl", b)
		fuzzCheck(t, "f.jsonl", d, err)
		// The fast path must agree with the exact one on every line.
		for _, line := range bytes.Split(b, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 || line[0] != '{' || !utf8.Valid(line) {
				continue
			}
			p := Pos{File: "f.jsonl", Line: 1}
			fast, fastOK := parseJSONLLine(p, line, &errList{})
			var slow Example
			l, slowOK := decodeExact(p, line, &errList{})
			if slowOK {
				slow, slowOK = l.example(p, &errList{})
			}
			if fastOK != slowOK || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("line %q: fast %v %+v, exact %v %+v", line, fastOK, fast, slowOK, slow)
			}
		}
	})
}
