package nludata

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadRasaProject(t *testing.T) {
	dir := filepath.Join("testdata", "rasa")
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	nlu := filepath.Join(dir, "nlu.yml")
	domain := filepath.Join(dir, "domain.yml")
	if want := []string{domain, nlu, filepath.Join(dir, "stories.yml")}; !reflect.DeepEqual(d.Files, want) {
		t.Errorf("files = %v, want %v", d.Files, want)
	}
	if len(d.Examples) != 14 {
		t.Errorf("%d examples, want 14", len(d.Examples))
	}
	if want := []string{"greet", "human_handoff", "return_goods", "track_package"}; !reflect.DeepEqual(d.Intents(), want) {
		t.Errorf("intents = %v, want %v", d.Intents(), want)
	}
	if want := []string{"carrier", "product", "tracking_no"}; !reflect.DeepEqual(d.Entities, want) || !reflect.DeepEqual(d.EntityTypes(), want) {
		t.Errorf("entities = %v, types %v, want %v", d.Entities, d.EntityTypes(), want)
	}
	wantSyn := map[string]string{"顺丰": "SF", "中通快递": "ZTO", "圆通": "YTO", "顺丰快递": "SF", "顺丰速运": "SF"}
	if !reflect.DeepEqual(d.Synonyms, wantSyn) {
		t.Errorf("synonyms = %v, want %v", d.Synonyms, wantSyn)
	}
	if want := map[string][]string{"carrier": {"顺丰", "中通", "圆通"}}; !reflect.DeepEqual(d.Lookups, want) {
		t.Errorf("lookups = %v, want %v", d.Lookups, want)
	}
	if len(d.Regexes) != 2 || d.Regexes[1].Pattern != `YT\d{13}` || d.Regexes[1].Pos != (Pos{nlu, 50}) {
		t.Errorf("regexes = %+v", d.Regexes)
	}
	if want := []string{domain + `:8: intent "goodbye" is declared but has no examples: add some under nlu: or remove it`}; !reflect.DeepEqual(d.Warnings, want) {
		t.Errorf("warnings = %q, want %q", d.Warnings, want)
	}
	// The hash must not change between runs or releases unless the data
	// does: a trained model records it.
	if h := d.Hash(); h != "7d497203e2cf463a21a1368d82398cc5eba28c36748854d9676c54b03cc1039f" {
		t.Errorf("hash of testdata/rasa = %s: the serialization changed; bump hashVersion and update this", h)
	}
	first := d.Examples[0]
	if first.Text != "我的快递到哪了" || first.Pos != (Pos{nlu, 6}) {
		t.Errorf("first example %+v", first)
	}
	var greet []string
	for _, e := range d.Examples {
		if e.Intent == "greet" {
			greet = append(greet, e.Text)
		}
	}
	if want := []string{"你好", "在吗", "价格[含税]是多少？"}; !reflect.DeepEqual(greet, want) {
		t.Errorf("greet = %q, want %q", greet, want)
	}
	got := d.Examples[2]
	wantEx := Example{Text: "顺丰单号SF1234567890到哪了", Intent: "track_package", Pos: Pos{nlu, 8}, Entities: []Entity{
		{Start: 0, End: 2, Type: "carrier", Value: "SF", Text: "顺丰"},
		{Start: 4, End: 16, Type: "tracking_no", Value: "SF1234567890", Text: "SF1234567890"},
	}}
	if !reflect.DeepEqual(got, wantEx) {
		t.Errorf("example\n got %+v\nwant %+v", got, wantEx)
	}
}

func TestLoadUndeclaredEntity(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"domain.yml":  "entities:\n- carrier\n",
		"nlu.yml":     "nlu:\n- intent: a\n  examples: |\n    - [顺丰](carrier)\n    - [北京](city)\n",
		"train.jsonl": `{"text": "上海", "intent": "b", "entities": [{"start": 0, "end": 2, "type": "city"}]}` + "\n",
	})
	_, err := Load(dir)
	if err == nil {
		t.Fatal("no error")
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok || len(j.Unwrap()) != 2 {
		t.Fatalf("error %v: want two", err)
	}
	for i, want := range []string{filepath.Join(dir, "nlu.yml") + ":5: ", filepath.Join(dir, "train.jsonl") + ":1: "} {
		if msg := j.Unwrap()[i].Error(); !strings.HasPrefix(msg, want) || !strings.Contains(msg, `entity type "city" is not declared`) {
			t.Errorf("error %d = %q, want prefix %q", i, msg, want)
		}
	}
	// Without any declaration every type is fine.
	os.Remove(filepath.Join(dir, "domain.yml"))
	d, err := Load(dir)
	if err != nil || d.Entities != nil {
		t.Fatalf("without domain: %v, entities %v", err, d)
	}
}

func TestLoadErrors(t *testing.T) {
	empty := writeFiles(t, map[string]string{"README.md": "x", ".hidden/nlu.yml": "nlu: [", "config.toml": ""})
	_, err := Load(empty)
	if !errors.Is(err, ErrNoDataFiles) || !strings.Contains(err.Error(), ".yml, .yaml, .jsonl") {
		t.Errorf("folder without data: %v", err)
	}
	if _, err := Load(filepath.Join(empty, "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing path: %v", err)
	}
	if _, err := Load(filepath.Join(empty, "README.md")); err == nil || !strings.Contains(err.Error(), "unknown data file extension") {
		t.Errorf("wrong extension: %v", err)
	}
	// Errors from several files are all reported, in path order.
	bad := writeFiles(t, map[string]string{
		"b.yml":      "nlu:\n- intent:\n",
		"a/x.jsonl":  "{}\n",
		"c.yaml":     "nlu: a: b\n",
		"ok.jsonl":   `{"text": "a", "intent": "b"}` + "\n",
		".git/x.yml": "nlu: [",
	})
	_, err = Load(bad)
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v is not joined", err)
	}
	var got []string
	for _, e := range j.Unwrap() {
		got = append(got, strings.TrimPrefix(strings.SplitN(e.Error(), ": ", 2)[0], bad+string(filepath.Separator)))
	}
	if want := []string{filepath.Join("a", "x.jsonl") + ":1", filepath.Join("a", "x.jsonl") + ":1", "b.yml:2", "c.yaml:1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("error positions %v, want %v\n%v", got, want, err)
	}
}

func TestLoadDeterministic(t *testing.T) {
	files := map[string]string{
		"z.yml":       "nlu:\n- intent: a\n  examples: |\n    - [x](t:X)\n    - two\n- synonym: S\n  examples: |\n    - s1\n",
		"m/a.jsonl":   `{"text": "two", "intent": "b"}` + "\n" + `{"text": "three", "intent": "a"}` + "\n",
		"b.yaml":      "nlu:\n- lookup: l\n  examples: |\n    - v1\n    - v2\n- regex: r\n  examples: |\n    - \\d+\n",
		"domain.yml":  "intents: [a, b]\n",
		"sub/c.jsonl": `{"text": "x", "intent": "a", "entities": [{"start": 0, "end": 1, "type": "t"}]}` + "\n",
	}
	d1, err := Load(writeFiles(t, files))
	if err != nil {
		t.Fatal(err)
	}
	d2, err := Load(writeFiles(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if d1.Hash() != d2.Hash() {
		t.Errorf("hash differs between folders: %s %s", d1.Hash(), d2.Hash())
	}
	if len(d1.Warnings) != 2 || !strings.Contains(d1.Warnings[0], `z.yml:4: example "x" of intent "a" repeats `) ||
		!strings.Contains(d1.Warnings[1], `z.yml:5: example "two" is under intent "a" here and under intent "b" at `) {
		t.Errorf("warnings %q", d1.Warnings)
	}
	var texts []string
	for _, e := range d1.Examples {
		texts = append(texts, e.Intent+":"+e.Text)
	}
	if want := []string{"b:two", "a:three", "a:x", "a:two"}; !reflect.DeepEqual(texts, want) {
		t.Errorf("examples %v, want %v", texts, want)
	}
}

func TestHash(t *testing.T) {
	parse := func(file, src string) *Data {
		t.Helper()
		d, err := Parse(file, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a := parse("a.yml", "nlu:\n- intent: a\n  examples: |\n    - one\n    - [two](t)\n")
	b := parse("other/b.yml", "# moved and commented\n\nnlu:\n- intent: a\n  examples:\n  - one\n  - \"[two](t)\"\n")
	if a.Hash() != b.Hash() {
		t.Errorf("file name or layout changed the hash")
	}
	if h := a.Hash(); len(h) != 64 || h != a.Hash() {
		t.Errorf("hash %q not stable hex sha256", h)
	}
	c := parse("a.yml", "nlu:\n- intent: a\n  examples: |\n    - [two](t)\n    - one\n")
	if a.Hash() == c.Hash() {
		t.Errorf("example order does not change the hash")
	}
	for _, src := range []string{
		"nlu:\n- intent: a\n  examples: |\n    - one\n    - [two](u)\n",
		"nlu:\n- intent: b\n  examples: |\n    - one\n    - [two](t)\n",
		"nlu:\n- intent: a\n  examples: |\n    - one\n    - [two](t:2)\n",
		"nlu:\n- intent: a\n  examples: |\n    - one\n    - [two](t)\n- lookup: l\n  examples: |\n    - v\n",
		"nlu:\n- intent: a\n  examples: |\n    - one\n    - [two](t)\n- regex: r\n  examples: |\n    - v\n",
		"nlu:\n- intent: a\n  examples: |\n    - one\n    - [two](t)\n- synonym: s\n  examples: |\n    - v\n",
		"nlu:\n- intent: a\n  examples: |\n    - on\n    - e[two](t)\n",
	} {
		if parse("a.yml", src).Hash() == a.Hash() {
			t.Errorf("hash ignores the change in\n%s", src)
		}
	}
}

func TestMerge(t *testing.T) {
	a, err := Parse("a.yml", []byte("entities: [x]\nnlu:\n- intent: i\n  examples: |\n    - [顺丰](x:SF)\n- lookup: l\n  examples: |\n    - 1\n    - 2\n- regex: r\n  examples: |\n    - a+\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("b.yml", []byte("entities: [y, x]\nnlu:\n- intent: i\n  examples: |\n    - [顺丰](x)\n    - 新的\n- synonym: ZTO\n  examples: |\n    - 顺丰\n- lookup: l\n  examples: |\n    - 2\n    - 3\n- regex: r\n  examples: |\n    - a+\n    - b+\n"))
	if err != nil {
		t.Fatal(err)
	}
	a.Merge(b)
	a.Merge(nil)
	if len(a.Examples) != 2 || a.Examples[1].Text != "新的" {
		t.Errorf("examples %+v", a.Examples)
	}
	if want := []string{"x", "y"}; !reflect.DeepEqual(a.Entities, want) {
		t.Errorf("entities %v", a.Entities)
	}
	if want := []string{"1", "2", "3"}; !reflect.DeepEqual(a.Lookups["l"], want) {
		t.Errorf("lookup %v", a.Lookups["l"])
	}
	if len(a.Regexes) != 2 || a.Regexes[1].Pattern != "b+" {
		t.Errorf("regexes %v", a.Regexes)
	}
	if a.Synonyms["顺丰"] != "SF" {
		t.Errorf("synonyms %v", a.Synonyms)
	}
	if want := []string{
		`b.yml:5: example "顺丰" of intent "i" repeats a.yml:5 with different entities: keeping the first`,
		`b.yml:9: synonym "顺丰" maps to "ZTO" here but to "SF" at a.yml:5: keeping "SF"`,
	}; !reflect.DeepEqual(a.Warnings, want) {
		t.Errorf("warnings %q, want %q", a.Warnings, want)
	}
	if want := []string{"a.yml", "b.yml"}; !reflect.DeepEqual(a.Files, want) {
		t.Errorf("files %v", a.Files)
	}
	var zero Data
	zero.Merge(b)
	if len(zero.Examples) != 2 || zero.Synonyms["顺丰"] != "ZTO" {
		t.Errorf("merge into zero Data: %+v", zero)
	}
}

func TestPosString(t *testing.T) {
	for _, tc := range []struct {
		p    Pos
		want string
	}{{Pos{"a.yml", 3}, "a.yml:3"}, {Pos{"a.yml", 0}, "a.yml"}} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.p, got, tc.want)
		}
	}
	if got := (&Error{Pos{"a.yml", 3}, "bad"}).Error(); got != "a.yml:3: bad" {
		t.Errorf("Error() = %q", got)
	}
}
