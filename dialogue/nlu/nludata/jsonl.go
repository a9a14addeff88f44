package nludata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// jsonlKeys and entityKeys are the keys a JSON Lines object may hold.
const (
	jsonlKeys  = "text, intent, entities, unaligned_slots"
	entityKeys = "start, end, type, value, role, group"
)

// parseJSONL reads one example object per line into d; errors go to errs.
func parseJSONL(file string, data []byte, d *Data, errs *errList) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if isRasaJSON(data) {
		errs.add(Pos{File: file, Line: 1}, "this is Rasa's JSON training format, which is not read: convert it with `rasa data convert nlu -f yaml --data %s --out nlu.yml`, or write JSON Lines", file)
		return
	}
	// Room for every line, but no more than the bytes allow (the shortest
	// valid line is about 25 bytes), so a file of newlines cannot balloon.
	lines := min(bytes.Count(data, []byte("\n"))+1, len(data)/24+1)
	idx := d.exampleIndex(lines)
	d.Examples = slices.Grow(d.Examples, lines)
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		p := Pos{File: file, Line: n}
		if e, ok := parseJSONLLine(p, line, errs); ok {
			d.addExample(idx, e)
		}
	}
}

// jsonlLine and jsonlEntity are one decoded line; nil pointers are keys
// that were absent or null.
type jsonlLine struct {
	Text           *string         `json:"text"`
	Intent         *string         `json:"intent"`
	Entities       []*jsonlEntity  `json:"entities"`
	UnalignedSlots json.RawMessage `json:"unaligned_slots"` // accepted, not used
}

type jsonlEntity struct {
	Start *int    `json:"start"`
	End   *int    `json:"end"`
	Type  *string `json:"type"`
	Value *string `json:"value"`
	Role  *string `json:"role"`
	Group *string `json:"group"`
}

// exactKeys reports whether every object key in line, a valid JSON object,
// is one of the declared names spelled exactly. encoding/json matches keys
// case-insensitively (folding K and ſ too), so a line with any other key,
// or an escaped one, goes to the slower exact path for its verdict.
func exactKeys(line []byte) bool {
	for i := 0; i < len(line); i++ {
		if line[i] != '"' {
			continue
		}
		j, escaped := i+1, false
		for ; j < len(line) && line[j] != '"'; j++ {
			if line[j] == '\\' {
				escaped = true
				j++
			}
		}
		k := j + 1
		for k < len(line) && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r' || line[k] == '\n') {
			k++
		}
		if k < len(line) && line[k] == ':' && (escaped || !knownKey(line[i+1:min(j, len(line))])) {
			return false
		}
		i = j
	}
	return true
}

func knownKey(k []byte) bool {
	switch string(k) {
	case "text", "intent", "entities", "unaligned_slots", "start", "end", "type", "value", "role", "group":
		return true
	}
	return false
}

func parseJSONLLine(p Pos, line []byte, errs *errList) (Example, bool) {
	if line[0] != '{' {
		errs.add(p, "each line must be one JSON object like {\"text\": \"...\", \"intent\": \"...\", \"entities\": []}")
		return Example{}, false
	}
	// Fast path: one decode into a struct, accepted when every key is
	// declared and spelled exactly. Other lines go through decodeExact,
	// which names the unknown key or the mistyped value.
	var l jsonlLine
	if json.Unmarshal(line, &l) != nil || !exactKeys(line) {
		var ok bool
		if l, ok = decodeExact(p, line, errs); !ok {
			return Example{}, false
		}
	}
	return l.example(p, errs)
}

// decodeExact decodes a line key by key, reporting every unknown key and
// wrongly typed value with its name.
func decodeExact(p Pos, line []byte, errs *errList) (jsonlLine, bool) {
	var l jsonlLine
	dec := json.NewDecoder(bytes.NewReader(line))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		errs.add(p, "invalid JSON: %v: write one JSON object per line", err)
		return l, false
	}
	if dec.InputOffset() != int64(len(line)) {
		errs.add(p, "more than one JSON value on the line: write one object per line")
		return l, false
	}
	before := errs.total
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		switch k {
		case "text", "intent", "entities", "unaligned_slots":
		default:
			errs.add(p, "unknown key %q: a line may hold %s", k, jsonlKeys)
		}
	}
	l.Text = jsonString(p, "", "text", obj, errs)
	l.Intent = jsonString(p, "", "intent", obj, errs)
	if raw, ok := obj["entities"]; ok && string(raw) != "null" {
		var items []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
			errs.add(p, "\"entities\" must be a list of {\"start\", \"end\", \"type\", \"value\"} objects")
		}
		for i, it := range items {
			l.Entities = append(l.Entities, decodeEntityExact(p, i, it, errs))
		}
	}
	return l, errs.total == before
}

func decodeEntityExact(p Pos, i int, raw json.RawMessage, errs *errList) *jsonlEntity {
	var e jsonlEntity
	var obj map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
		errs.add(p, "entity %d must be an object like {\"start\": 0, \"end\": 2, \"type\": \"carrier\", \"value\": \"顺丰\"}", i)
		return &e
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		switch k {
		case "start", "end", "type", "value", "role", "group":
		default:
			errs.add(p, "entity %d: unknown key %q: an entity may hold %s", i, k, entityKeys)
		}
	}
	what := fmt.Sprintf("entity %d: ", i)
	for _, f := range []struct {
		key string
		dst **int
	}{{"start", &e.Start}, {"end", &e.End}} {
		raw, ok := obj[f.key]
		if !ok || string(raw) == "null" {
			continue // reported as missing by example
		}
		var n int
		if json.Unmarshal(raw, &n) != nil {
			errs.add(p, "%s%q must be an integer rune offset", what, f.key)
			continue
		}
		*f.dst = &n
	}
	e.Type = jsonString(p, what, "type", obj, errs)
	e.Value = jsonString(p, what, "value", obj, errs)
	e.Role = jsonString(p, what, "role", obj, errs)
	e.Group = jsonString(p, what, "group", obj, errs)
	return &e
}

// jsonString decodes obj[key] as a string; absent and null give nil.
func jsonString(p Pos, what, key string, obj map[string]json.RawMessage, errs *errList) *string {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		errs.add(p, "%s%q must be a string", what, key)
		return nil
	}
	return &s
}

// example checks a decoded line and turns it into an Example.
func (l *jsonlLine) example(p Pos, errs *errList) (Example, bool) {
	before := errs.total
	e := Example{Pos: p}
	for _, f := range []struct {
		key string
		src *string
		dst *string
	}{{"text", l.Text, &e.Text}, {"intent", l.Intent, &e.Intent}} {
		switch {
		case f.src == nil:
			errs.add(p, "missing %q: every line needs text and intent", f.key)
		case strings.TrimSpace(*f.src) == "":
			errs.add(p, "%q is empty: give every example its %s", f.key, f.key)
		default:
			*f.dst = *f.src
		}
	}
	if e.Text == "" {
		return Example{}, false
	}
	runes := []rune(e.Text)
	for i, je := range l.Entities {
		if en, ok := je.entity(p, i, runes, errs); ok {
			e.Entities = append(e.Entities, en)
		}
	}
	if errs.total != before {
		return Example{}, false
	}
	slices.SortStableFunc(e.Entities, func(a, b Entity) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return a.End - b.End
	})
	return e, true
}

// entity checks one entity against the text's runes.
func (je *jsonlEntity) entity(p Pos, i int, text []rune, errs *errList) (Entity, bool) {
	if je == nil {
		errs.add(p, "entity %d must be an object like {\"start\": 0, \"end\": 2, \"type\": \"carrier\", \"value\": \"顺丰\"}", i)
		return Entity{}, false
	}
	before := errs.total
	if je.Start == nil {
		errs.add(p, "entity %d: missing \"start\": give the rune offset where the entity starts", i)
	}
	if je.End == nil {
		errs.add(p, "entity %d: missing \"end\": give the rune offset just past the entity", i)
	}
	if je.Type == nil || strings.TrimSpace(*je.Type) == "" {
		errs.add(p, "entity %d: missing or empty \"type\": name the entity type", i)
	}
	if errs.total != before {
		return Entity{}, false
	}
	en := Entity{Start: *je.Start, End: *je.End, Type: *je.Type}
	if je.Role != nil {
		en.Role = *je.Role
	}
	if je.Group != nil {
		en.Group = *je.Group
	}
	if en.Start < 0 || en.End > len(text) || en.Start >= en.End {
		errs.add(p, "entity %d (%s): span %d:%d is out of range or empty for a text of %d characters: offsets are Unicode code points, end exclusive", i, en.Type, en.Start, en.End, len(text))
		return Entity{}, false
	}
	en.Text = string(text[en.Start:en.End])
	en.Value = en.Text
	if je.Value != nil && *je.Value != "" && *je.Value != en.Text {
		errs.add(p, "entity %d (%s): span %d:%d is %q but value is %q: fix the offsets (Unicode code points, end exclusive) or the value", i, en.Type, en.Start, en.End, en.Text, *je.Value)
		return Entity{}, false
	}
	return en, true
}

// isRasaJSON reports whether data is one JSON object with rasa_nlu_data.
func isRasaJSON(data []byte) bool {
	if !bytes.Contains(data, []byte(`"rasa_nlu_data"`)) {
		return false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return false
	}
	_, ok := obj["rasa_nlu_data"]
	return ok
}

// invalidUTF8Line returns the 1-based line of the first invalid UTF-8 byte
// in data, or 0 when data is valid.
func invalidUTF8Line(data []byte) int {
	if utf8.Valid(data) {
		return 0
	}
	line := 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size == 1 {
			return line
		}
		if r == '\n' {
			line++
		}
		data = data[size:]
	}
	return line
}
