package nludata

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Entity is one annotated span of an example.
type Entity struct {
	Start, End int    // rune offsets into the example's Text, End exclusive
	Type       string // entity type, e.g. "carrier"
	Value      string // canonical value: the explicit value if given, else Text
	Text       string // the span's text: Text[Start:End] in runes
	Role       string // optional Rasa role
	Group      string // optional Rasa group
}

// Example is one training sentence with its intent and entities (sorted by
// Start).
type Example struct {
	Text     string
	Intent   string
	Entities []Entity
	Pos      Pos
}

// Regex is one named pattern from a "- regex: name" item; Pattern compiles
// with Go's regexp package.
type Regex struct {
	Name    string
	Pattern string
	Pos     Pos
}

// Data is the training data read from one or more files. Build it with
// Parse or Load and combine with Merge; then Check. A Data is not safe for
// concurrent mutation; reading it from several goroutines is fine.
type Data struct {
	// Examples in file order; the same trimmed text twice under one intent
	// is kept once (the first).
	Examples []Example
	// Synonyms maps a variant to its canonical value, from synonym items
	// and from annotations whose explicit value differs from their text.
	Synonyms map[string]string
	// Lookups maps a lookup table's name to its values, in file order,
	// without duplicates.
	Lookups map[string][]string
	// Regexes in file order.
	Regexes []Regex
	// Entities are the declared entity types (top-level entities: in any
	// YAML file), sorted; nil when no file declares any.
	Entities []string
	// Warnings are non-fatal problems, each "file:line: ...".
	Warnings []string
	// Files are the files read, in the order they were read.
	Files []string

	synPos  map[string]Pos // where each synonym variant was defined
	intents []declared     // intents listed under top-level intents:
}

// declared is a name listed in a domain file.
type declared struct {
	name string
	pos  Pos
}

func newData(file string) *Data {
	return &Data{
		Synonyms: map[string]string{},
		Lookups:  map[string][]string{},
		Files:    []string{file},
		synPos:   map[string]Pos{},
	}
}

func (d *Data) warnf(p Pos, format string, args ...any) {
	d.Warnings = append(d.Warnings, p.String()+": "+fmt.Sprintf(format, args...))
}

// exampleKey identifies duplicates: same intent, same trimmed text.
type exampleKey struct{ intent, text string }

func keyOf(e *Example) exampleKey {
	return exampleKey{e.Intent, strings.TrimSpace(e.Text)}
}

// exampleIndex maps the examples of d to their index, with room for extra
// more.
func (d *Data) exampleIndex(extra int) map[exampleKey]int {
	idx := make(map[exampleKey]int, len(d.Examples)+extra)
	for i := range d.Examples {
		k := keyOf(&d.Examples[i])
		if _, ok := idx[k]; !ok {
			idx[k] = i
		}
	}
	return idx
}

// addExample appends e unless idx already holds its text under its intent.
// A repeat is dropped silently unless its entities differ (then a warning).
func (d *Data) addExample(idx map[exampleKey]int, e Example) {
	k := keyOf(&e)
	if i, ok := idx[k]; ok {
		if first := &d.Examples[i]; !slices.Equal(first.Entities, e.Entities) {
			d.warnf(e.Pos, "example %q of intent %q repeats %s with different entities: keeping the first", k.text, k.intent, first.Pos)
		}
		return
	}
	idx[k] = len(d.Examples)
	d.Examples = append(d.Examples, e)
}

// addSynonym records variant -> canonical, warning when variant already
// maps to another value (the first one stays).
func (d *Data) addSynonym(variant, canonical string, p Pos) {
	if variant == canonical || variant == "" {
		return
	}
	if d.Synonyms == nil {
		d.Synonyms = map[string]string{}
	}
	if d.synPos == nil {
		d.synPos = map[string]Pos{}
	}
	if old, ok := d.Synonyms[variant]; ok {
		if old != canonical {
			d.warnf(p, "synonym %q maps to %q here but to %q at %s: keeping %q", variant, canonical, old, d.synPos[variant], old)
		}
		return
	}
	d.Synonyms[variant] = canonical
	d.synPos[variant] = p
}

// addLookup appends values to the lookup table name, skipping duplicates.
func (d *Data) addLookup(name string, values []string) {
	if d.Lookups == nil {
		d.Lookups = map[string][]string{}
	}
	have := d.Lookups[name]
	seen := make(map[string]bool, len(have)+len(values))
	for _, v := range have {
		seen[v] = true
	}
	for _, v := range values {
		if !seen[v] {
			seen[v] = true
			have = append(have, v)
		}
	}
	d.Lookups[name] = have
}

// addEntities adds declared entity types, keeping Entities sorted and unique.
func (d *Data) addEntities(names []string) {
	if len(names) == 0 {
		return
	}
	all := append(slices.Clone(d.Entities), names...)
	slices.Sort(all)
	d.Entities = slices.Compact(all)
}

// Merge adds o's data to d: examples (dropping repeats of d's), synonyms
// (the first mapping of a variant wins, with a warning), lookups, regexes,
// declared entities, warnings and files. o is not modified; Merge(nil) does
// nothing. Call Check after the last Merge.
func (d *Data) Merge(o *Data) {
	if o == nil {
		return
	}
	d.Warnings = append(d.Warnings, o.Warnings...)
	d.Files = append(d.Files, o.Files...)
	idx := d.exampleIndex(len(o.Examples))
	d.Examples = slices.Grow(d.Examples, len(o.Examples))
	for _, e := range o.Examples {
		d.addExample(idx, e)
	}
	for _, v := range slices.Sorted(maps.Keys(o.Synonyms)) {
		p, ok := o.synPos[v]
		if !ok && len(o.Files) > 0 {
			p = Pos{File: o.Files[0]}
		}
		d.addSynonym(v, o.Synonyms[v], p)
	}
	for _, name := range slices.Sorted(maps.Keys(o.Lookups)) {
		d.addLookup(name, o.Lookups[name])
	}
	for _, r := range o.Regexes {
		if !slices.ContainsFunc(d.Regexes, func(x Regex) bool { return x.Name == r.Name && x.Pattern == r.Pattern }) {
			d.Regexes = append(d.Regexes, r)
		}
	}
	d.addEntities(o.Entities)
	d.intents = append(d.intents, o.intents...)
}

// Check runs the checks that need all files merged. It returns an *Error
// (or errors.Join of at most 20) for every entity type used in an example
// but not declared, when any file declares entities. It adds warnings for
// one text under two intents, for intents declared under intents: without
// examples and, when intents are declared, for intents used but not
// declared. Calling it again adds no warning twice.
func (d *Data) Check() error {
	have := make(map[string]bool, len(d.Warnings))
	for _, w := range d.Warnings {
		have[w] = true
	}
	warn := func(p Pos, format string, args ...any) {
		w := p.String() + ": " + fmt.Sprintf(format, args...)
		if !have[w] {
			have[w] = true
			d.Warnings = append(d.Warnings, w)
		}
	}

	// The same text under different intents confuses the intent model.
	type first struct {
		intent string
		pos    Pos
	}
	byText := make(map[string][]first, len(d.Examples))
	for _, e := range d.Examples {
		t := strings.TrimSpace(e.Text)
		prev := byText[t]
		if slices.ContainsFunc(prev, func(f first) bool { return f.intent == e.Intent }) {
			continue
		}
		for _, f := range prev {
			warn(e.Pos, "example %q is under intent %q here and under intent %q at %s: keep it under one intent", t, e.Intent, f.intent, f.pos)
		}
		byText[t] = append(prev, first{e.Intent, e.Pos})
	}

	if len(d.intents) > 0 {
		used := make(map[string]bool)
		for _, e := range d.Examples {
			used[e.Intent] = true
		}
		listed := make(map[string]bool)
		for _, in := range d.intents {
			listed[in.name] = true
			if !used[in.name] {
				warn(in.pos, "intent %q is declared but has no examples: add some under nlu: or remove it", in.name)
			}
		}
		for _, e := range d.Examples {
			if !listed[e.Intent] {
				listed[e.Intent] = true // warn once per intent
				warn(e.Pos, "intent %q has examples but is not declared under intents: in the domain", e.Intent)
			}
		}
	}

	errs := &errList{}
	if len(d.Entities) > 0 {
		if len(d.Files) > 0 {
			errs.file = d.Files[0]
		}
		declared := make(map[string]bool, len(d.Entities))
		for _, t := range d.Entities {
			declared[t] = true
		}
		for _, e := range d.Examples {
			for _, en := range e.Entities {
				if !declared[en.Type] {
					errs.add(e.Pos, "entity type %q is not declared: add it under entities: in the domain or fix the annotation of %q", en.Type, en.Text)
				}
			}
		}
	}
	return errs.err()
}

// Intents returns the intents that have examples, sorted.
func (d *Data) Intents() []string {
	set := make(map[string]bool)
	for _, e := range d.Examples {
		set[e.Intent] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// EntityTypes returns the entity types used in examples plus the declared
// ones, sorted.
func (d *Data) EntityTypes() []string {
	set := make(map[string]bool)
	for _, t := range d.Entities {
		set[t] = true
	}
	for _, e := range d.Examples {
		for _, en := range e.Entities {
			set[en.Type] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// hashVersion starts the hashed serialization; change it when the encoding
// changes so old and new hashes never compare equal by accident.
const hashVersion = "zhiyin-nludata-v1"

// Hash returns the hex SHA-256 of a canonical serialization of the examples
// (in order, with their entities), synonyms, lookups and regexes. Positions,
// file names, warnings and declarations do not count, so moving data between
// files or editing comments keeps the hash; reordering examples changes it.
func (d *Data) Hash() string {
	h := sha256.New()
	var buf []byte
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	num := func(n int) { buf = binary.AppendVarint(buf, int64(n)) }
	flush := func() {
		h.Write(buf)
		buf = buf[:0]
	}
	str(hashVersion)
	num(len(d.Examples))
	for _, e := range d.Examples {
		str(e.Text)
		str(e.Intent)
		num(len(e.Entities))
		for _, en := range e.Entities {
			num(en.Start)
			num(en.End)
			str(en.Type)
			str(en.Value)
			str(en.Role)
			str(en.Group)
		}
		flush()
	}
	num(len(d.Synonyms))
	for _, v := range slices.Sorted(maps.Keys(d.Synonyms)) {
		str(v)
		str(d.Synonyms[v])
	}
	num(len(d.Lookups))
	for _, name := range slices.Sorted(maps.Keys(d.Lookups)) {
		str(name)
		num(len(d.Lookups[name]))
		for _, v := range d.Lookups[name] {
			str(v)
		}
	}
	num(len(d.Regexes))
	for _, r := range d.Regexes {
		str(r.Name)
		str(r.Pattern)
	}
	flush()
	return hex.EncodeToString(h.Sum(nil))
}
