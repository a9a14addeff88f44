package nludata

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseYAML(t *testing.T) {
	src := `version: "3.1"
nlu:
- intent: track_package
  examples: |
    - 我的快递到哪了

    - 查[SF1234567890](tracking_no)
    - [顺丰](carrier){"value": "SF"}到哪了
    - 我的快递到哪了
- intent: greet
  metadata: {owner: ops}
  examples:
  - 你好
  - text: 在吗
    metadata: {x: 1}
- synonym: SF
  examples: |
    - 顺丰快递
- lookup: city
  examples: |
    - 北京
    - 上海
    - 北京
- regex: order_no
  examples: |
    - \d{10}
stories:
- story: s
  steps: []
`
	d, err := Parse("nlu.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	type ex struct {
		text, intent string
		line, ents   int
	}
	var got []ex
	for _, e := range d.Examples {
		if e.Pos.File != "nlu.yml" {
			t.Errorf("example %q file %q", e.Text, e.Pos.File)
		}
		got = append(got, ex{e.Text, e.Intent, e.Pos.Line, len(e.Entities)})
	}
	want := []ex{
		{"我的快递到哪了", "track_package", 5, 0},
		{"查SF1234567890", "track_package", 7, 1},
		{"顺丰到哪了", "track_package", 8, 1},
		{"你好", "greet", 13, 0},
		{"在吗", "greet", 14, 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("examples\n got %v\nwant %v", got, want)
	}
	if want := map[string]string{"顺丰": "SF", "顺丰快递": "SF"}; !reflect.DeepEqual(d.Synonyms, want) {
		t.Errorf("synonyms = %v, want %v", d.Synonyms, want)
	}
	if want := map[string][]string{"city": {"北京", "上海"}}; !reflect.DeepEqual(d.Lookups, want) {
		t.Errorf("lookups = %v, want %v", d.Lookups, want)
	}
	if want := []Regex{{Name: "order_no", Pattern: `\d{10}`, Pos: Pos{"nlu.yml", 26}}}; !reflect.DeepEqual(d.Regexes, want) {
		t.Errorf("regexes = %v, want %v", d.Regexes, want)
	}
	if d.Entities != nil || len(d.Warnings) != 0 || !reflect.DeepEqual(d.Files, []string{"nlu.yml"}) {
		t.Errorf("entities %v warnings %v files %v", d.Entities, d.Warnings, d.Files)
	}
}

func TestParseYAMLDomain(t *testing.T) {
	src := `version: "3.1"
intents:
- greet
- bye: {use_entities: []}
entities:
- carrier
- city:
    roles: [from, to]
slots:
  carrier: {type: text}
responses:
  utter_greet: [{text: hi}]
forms: {}
actions: [a]
session_config: {}
whatever: 1
`
	d, err := Parse("domain.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"carrier", "city"}; !reflect.DeepEqual(d.Entities, want) {
		t.Errorf("entities = %v, want %v", d.Entities, want)
	}
	if want := []declared{{"greet", Pos{"domain.yml", 3}}, {"bye", Pos{"domain.yml", 4}}}; !reflect.DeepEqual(d.intents, want) {
		t.Errorf("intents = %v, want %v", d.intents, want)
	}
}

func TestParseYAMLWarnings(t *testing.T) {
	src := `nlu:
- intent: a
  examples: |
    - one
    two
    -
- synonym: s
- intent: b
  examples: |
    - one
`
	d, err := Parse("w.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`w.yml:5: line "two" does not start with "- " and is skipped: write each example as "- text"`,
		`w.yml:6: empty example "-" skipped`,
		`w.yml:7: synonym "s" has no examples: list its variants under examples: |`,
	}
	if !reflect.DeepEqual(d.Warnings, want) {
		t.Errorf("warnings\n got %q\nwant %q", d.Warnings, want)
	}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	last := d.Warnings[len(d.Warnings)-1]
	if want := `w.yml:10: example "one" is under intent "b" here and under intent "a" at w.yml:4: keep it under one intent`; last != want {
		t.Errorf("conflict warning\n got %q\nwant %q", last, want)
	}
	n := len(d.Warnings)
	if err := d.Check(); err != nil || len(d.Warnings) != n {
		t.Errorf("second Check: %v, %d warnings (was %d)", err, len(d.Warnings), n)
	}
}

func TestParseYAMLErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the error must start with this
		also string // and contain this
	}{
		{"malformed mapping", "nlu:\n- intent: a\n  examples: |\n    - x\n   bad: 1\n", "f.yml:5: invalid YAML", "did not find expected key"},
		{"malformed first line", "nlu: a: b\n", "f.yml:1: invalid YAML", "mapping values"},
		{"tab", "nlu:\n- intent: a\n\texamples: x\n", "f.yml:3: invalid YAML", "tab"},
		{"unterminated quote", "version: 1\nnlu:\n- intent: \"a\n", "f.yml:3: invalid YAML", ""},
		{"unknown anchor", "version: 1\nnlu: *x\n", "f.yml:2: invalid YAML", "unknown anchor"},
		{"top level list", "- intent: a\n", "f.yml:1:", "top level must be a mapping"},
		{"nlu not a list", "nlu:\n  intent: a\n", "f.yml:2:", "must be a list"},
		{"item not a mapping", "nlu:\n- greet\n", "f.yml:2:", "must be a mapping"},
		{"examples number", "nlu:\n- intent: a\n  examples: 5\n", "f.yml:3:", "examples must be"},
		{"examples mapping", "nlu:\n- intent: a\n  examples:\n    x: y\n", "f.yml:4:", "examples must be"},
		{"examples list of lists", "nlu:\n- intent: a\n  examples:\n  - [x]\n", "f.yml:4:", "examples must be"},
		{"examples text item bad key", "nlu:\n- intent: a\n  examples:\n  - txt: x\n", "f.yml:4:", `unknown key "txt"`},
		{"no examples", "nlu:\n- intent: a\n", "f.yml:2:", `intent "a" has no examples`},
		{"empty examples block", "nlu:\n- intent: a\n  examples: |\n\n- intent: b\n  examples: |\n    - x\n", "f.yml:2:", "has no examples"},
		{"null examples", "nlu:\n- intent: a\n  examples:\n", "f.yml:2:", "has no examples"},
		{"empty intent", "nlu:\n- intent:\n  examples: |\n    - x\n", "f.yml:2:", "empty intent name"},
		{"blank intent", "nlu:\n- intent: \"  \"\n  examples: |\n    - x\n", "f.yml:2:", "empty intent name"},
		{"two kinds", "nlu:\n- intent: a\n  synonym: b\n", "f.yml:3:", "both intent and synonym"},
		{"no kind", "nlu:\n- examples: |\n    - x\n", "f.yml:2:", "needs one of intent"},
		{"unknown item key", "nlu:\n- intent: a\n  exmaples: |\n    - x\n", "f.yml:3:", `unknown key "exmaples"`},
		{"duplicate item key", "nlu:\n- intent: a\n  examples: |\n    - x\n  examples: |\n    - y\n", "f.yml:5:", "duplicate key"},
		{"unknown top key with nlu", "nlu:\n- intent: a\n  examples: |\n    - x\nslots: {}\n", "f.yml:5:", `unknown top-level key "slots"`},
		{"unterminated annotation", "nlu:\n- intent: a\n  examples: |\n    - ok\n    - [abc](\n", "f.yml:5:", "unterminated annotation"},
		{"unterminated annotation in list", "nlu:\n- intent: a\n  examples:\n  - ok\n  - \"[abc](x\"\n", "f.yml:5:", "unterminated annotation"},
		{"empty entity name", "nlu:\n- intent: a\n  examples: |\n    - [abc]()\n", "f.yml:4:", "empty entity name"},
		{"json not object", "nlu:\n- intent: a\n  examples: |\n    - x\n    - [abc]{\"entity\"}\n", "f.yml:5:", "not valid"},
		{"json non-string", "nlu:\n- intent: a\n  examples: |\n    - [abc](x){\"value\": 3}\n", "f.yml:4:", "must be a string"},
		{"bad regex", "nlu:\n- regex: r\n  examples: |\n    - ok\n    - (?=x)\n", "f.yml:5:", "does not compile"},
		{"entities not a list", "entities: carrier\n", "f.yml:1:", "must be a list"},
		{"entities bad item", "entities:\n- [a]\n", "f.yml:2:", "must be a list of names"},
		{"intents empty item", "intents:\n- \n", "f.yml:2:", "must be a list of names"},
		{"invalid utf8", "nlu:\n- intent: a\n  examples: |\n    - \xff\n", "f.yml:4: invalid UTF-8", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse("f.yml", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error; data %+v", d)
			}
			if d != nil {
				t.Errorf("data returned with error")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.want) || !strings.Contains(msg, tc.also) {
				t.Fatalf("error %q\nwant prefix %q containing %q", msg, tc.want, tc.also)
			}
			var de *Error
			if !errors.As(err, &de) || de.Pos.File != "f.yml" {
				t.Errorf("error %v is not an *Error for f.yml", err)
			}
		})
	}
}

func TestParseYAMLManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("nlu:\n- intent: a\n  examples: |\n")
	for range 30 {
		b.WriteString("    - [x](\n")
	}
	_, err := Parse("f.yml", []byte(b.String()))
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v is not joined", err)
	}
	errs := j.Unwrap()
	if len(errs) != maxErrors {
		t.Fatalf("%d errors, want %d", len(errs), maxErrors)
	}
	if !strings.HasPrefix(errs[0].Error(), "f.yml:4: ") {
		t.Errorf("first error %q", errs[0])
	}
	if last := errs[maxErrors-1].Error(); last != "f.yml: 11 more errors not shown: fix the ones above and run again" {
		t.Errorf("last error %q", last)
	}
}

func TestParseYAMLEmpty(t *testing.T) {
	for _, src := range []string{"", "\n", "# only a comment\n", "---\n", "version: \"3.1\"\n"} {
		d, err := Parse("e.yaml", []byte(src))
		if err != nil || len(d.Examples) != 0 {
			t.Errorf("Parse(%q) = %v, %v", src, d, err)
		}
	}
	d, err := Parse("e.yaml", []byte("nlu:\n"))
	if err != nil || len(d.Warnings) != 1 {
		t.Errorf("empty nlu: %v, %v", d, err)
	}
}

func TestParseYAMLAnchors(t *testing.T) {
	src := "common: &c |\n  - 你好\nnlu: []\n"
	if _, err := Parse("a.yml", []byte(src)); err == nil || !strings.HasPrefix(err.Error(), "a.yml:1:") {
		t.Errorf("unknown key with nlu: %v", err)
	}
	src = "nlu:\n- intent: a\n  examples: &c |\n    - 你好\n- intent: b\n  examples: *c\n"
	d, err := Parse("a.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Examples) != 2 || d.Examples[1].Intent != "b" {
		t.Errorf("examples %+v", d.Examples)
	}
}

func FuzzParseYAML(f *testing.F) {
	for _, s := range []string{
		"version: \"3.1\"\nnlu:\n- intent: a\n  examples: |\n    - [x](y)\n    - z\n",
		"nlu:\n- intent: a\n  examples:\n  - x\n  - text: y\n",
		"nlu:\n- synonym: s\n  examples: |\n    - t\n- lookup: l\n  examples: |\n    - v\n- regex: r\n  examples: |\n    - \\d+\n",
		"entities:\n- a\n- b: {roles: [x]}\nintents: [i]\nslots: {}\n",
		"nlu:\n- intent: a\n  examples: &c |\n    - 你好\n- intent: b\n  examples: *c\n",
		"nlu: a: b\n", "- x\n", "nlu:\n- intent: a\n  examples: |\n    - [abc](\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse("f.yml", b)
		fuzzCheck(t, "f.yml", d, err)
	})
}

// fuzzCheck asserts what every Parse result keeps: errors are *Error for
// the file; data has valid spans and positions.
func fuzzCheck(t *testing.T, file string, d *Data, err error) {
	t.Helper()
	if err != nil {
		if d != nil {
			t.Fatal("data with error")
		}
		var de *Error
		if !errors.As(err, &de) || de.Pos.File != file || !strings.HasPrefix(err.Error(), file) {
			t.Fatalf("error %q is not an *Error for %s", err, file)
		}
		return
	}
	for _, e := range d.Examples {
		if e.Pos.File != file || e.Pos.Line < 1 || e.Intent == "" || strings.TrimSpace(e.Text) == "" {
			t.Fatalf("bad example %+v", e)
		}
		checkEntities(t, e.Text, e.Entities)
	}
	for _, w := range d.Warnings {
		if !strings.HasPrefix(w, file) {
			t.Fatalf("warning %q without position", w)
		}
	}
	_ = d.Hash()
	_ = d.Check()
}
