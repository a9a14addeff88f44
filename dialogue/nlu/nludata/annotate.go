package nludata

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// entitySpec is what one annotation says about its span.
type entitySpec struct {
	entity, value, role, group string
}

// ParseAnnotated reads one Rasa-style annotated example and returns its
// plain text and entities (rune offsets into text). It accepts
//
//	[SF1234567890](tracking_no)
//	[顺丰](carrier:SF)                        Rasa 1: entity:value
//	[顺丰](carrier){"value": "SF"}            JSON object after the name
//	[顺丰]{"entity": "carrier", "value": "SF"}
//	[顺丰][{"entity": "carrier"}, {"entity": "org"}]   several on one span
//
// JSON objects may hold the string keys entity, value, role and group. Value
// is the explicit value when given, else the span's text. \[ and \] are
// literal brackets, and a "[" that does not start an annotation ("[abc]"
// followed by anything but "(", "{" or "[{") stays literal text. The error
// names the annotation and says how to fix it; it has no position, callers
// add one. ParseAnnotated does no I/O and is safe for concurrent use.
func ParseAnnotated(s string) (text string, ents []Entity, err error) {
	if !utf8.ValidString(s) {
		return "", nil, errors.New("invalid UTF-8: save the file as UTF-8")
	}
	if !strings.ContainsAny(s, `[\`) {
		return s, nil, nil
	}
	in := []rune(s)
	out := make([]rune, 0, len(in))
	for i := 0; i < len(in); {
		c := in[i]
		if c == '\\' && i+1 < len(in) && isBracket(in[i+1]) {
			out = append(out, in[i+1])
			i += 2
			continue
		}
		if c != '[' {
			out = append(out, c)
			i++
			continue
		}
		span, closeAt, ok := scanSpan(in, i)
		if !ok || closeAt+1 >= len(in) {
			out = append(out, c)
			i++
			continue
		}
		var (
			specs []entitySpec
			next  int
		)
		switch k := closeAt + 1; in[k] {
		case '(':
			specs, next, err = parseParen(in, i, k)
		case '{':
			specs, next, err = parseDictAnnotation(in, i, k)
		case '[':
			if !listAhead(in, k) {
				out = append(out, c)
				i++
				continue
			}
			specs, next, err = parseListAnnotation(in, i, k)
		default:
			out = append(out, c)
			i++
			continue
		}
		if err != nil {
			return "", nil, err
		}
		if len(span) == 0 {
			return "", nil, fmt.Errorf("annotation %q has no text: put the words of the entity between the brackets", string(in[i:next]))
		}
		start := len(out)
		out = append(out, span...)
		spanText := string(span)
		for _, sp := range specs {
			e := Entity{Start: start, End: len(out), Type: sp.entity, Value: sp.value, Text: spanText, Role: sp.role, Group: sp.group}
			if e.Value == "" {
				e.Value = spanText
			}
			ents = append(ents, e)
		}
		i = next
	}
	return string(out), ents, nil
}

func isBracket(r rune) bool { return r == '[' || r == ']' }

// scanSpan reads the text of a bracket opened at in[open] up to the next
// unescaped "]", unescaping \[ and \]. It fails when the text runs out or an
// unescaped "[" comes first (then in[open] is a literal bracket).
func scanSpan(in []rune, open int) (span []rune, closeAt int, ok bool) {
	for j := open + 1; j < len(in); j++ {
		switch c := in[j]; {
		case c == '\\' && j+1 < len(in) && isBracket(in[j+1]):
			span = append(span, in[j+1])
			j++
		case c == '[':
			return nil, 0, false
		case c == ']':
			return span, j, true
		default:
			span = append(span, c)
		}
	}
	return nil, 0, false
}

// listAhead reports whether in[k] == '[' opens a JSON list of objects.
func listAhead(in []rune, k int) bool {
	for j := k + 1; j < len(in); j++ {
		if !unicode.IsSpace(in[j]) {
			return in[j] == '{'
		}
	}
	return false
}

// parseParen reads "(entity)" or "(entity:value)" at in[k], optionally
// followed by a JSON object.
func parseParen(in []rune, open, k int) ([]entitySpec, int, error) {
	end := -1
	for j := k + 1; j < len(in); j++ {
		if in[j] == ')' {
			end = j
			break
		}
		if strings.ContainsRune("([]{}", in[j]) { // a missing ")"
			break
		}
	}
	if end < 0 {
		return nil, 0, fmt.Errorf("unterminated annotation %q: close it like [text](entity), or write \\[ for a literal bracket", snippet(in, open, k+1))
	}
	inner := string(in[k+1 : end])
	name, value, hasValue := strings.Cut(inner, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	ann := string(in[open : end+1])
	if name == "" {
		return nil, 0, fmt.Errorf("annotation %q has an empty entity name: write [text](entity)", ann)
	}
	if strings.IndexFunc(name, unicode.IsSpace) >= 0 {
		return nil, 0, fmt.Errorf("annotation %q: entity name %q contains a space: use a name like tracking_no", ann, name)
	}
	if hasValue && value == "" {
		return nil, 0, fmt.Errorf("annotation %q has an empty value after \":\": write [text](entity:value) or leave \":\" out", ann)
	}
	sp := entitySpec{entity: name, value: value}
	next := end + 1
	if next < len(in) && in[next] == '{' {
		obj, after, err := parseJSONObjectAt(in, open, next)
		if err != nil {
			return nil, 0, err
		}
		ann = string(in[open:after])
		if obj.entity != "" && obj.entity != sp.entity {
			return nil, 0, fmt.Errorf("annotation %q names entity %q in () and %q in the JSON: keep one", ann, sp.entity, obj.entity)
		}
		if obj.value != "" {
			if sp.value != "" && sp.value != obj.value {
				return nil, 0, fmt.Errorf("annotation %q gives value %q after \":\" and %q in the JSON: keep one", ann, sp.value, obj.value)
			}
			sp.value = obj.value
		}
		sp.role, sp.group = obj.role, obj.group
		next = after
	}
	return []entitySpec{sp}, next, nil
}

// parseDictAnnotation reads {"entity": ..., ...} at in[k].
func parseDictAnnotation(in []rune, open, k int) ([]entitySpec, int, error) {
	sp, next, err := parseJSONObjectAt(in, open, k)
	if err != nil {
		return nil, 0, err
	}
	if sp.entity == "" {
		return nil, 0, fmt.Errorf("annotation %q has an empty entity name: add \"entity\": \"name\" to the JSON", string(in[open:next]))
	}
	return []entitySpec{sp}, next, nil
}

// parseListAnnotation reads [{"entity": ...}, ...] at in[k].
func parseListAnnotation(in []rune, open, k int) ([]entitySpec, int, error) {
	raw, next, err := decodeJSONAt(in, open, k)
	if err != nil {
		return nil, 0, err
	}
	ann := string(in[open:next])
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || len(items) == 0 {
		return nil, 0, fmt.Errorf("annotation %q: the JSON after the text must be an object or a non-empty list of objects", ann)
	}
	specs := make([]entitySpec, 0, len(items))
	for _, it := range items {
		sp, err := entityObject(it, ann)
		if err != nil {
			return nil, 0, err
		}
		if sp.entity == "" {
			return nil, 0, fmt.Errorf("annotation %q has an empty entity name: give every object \"entity\": \"name\"", ann)
		}
		specs = append(specs, sp)
	}
	return specs, next, nil
}

// parseJSONObjectAt decodes one JSON object starting at in[k].
func parseJSONObjectAt(in []rune, open, k int) (entitySpec, int, error) {
	raw, next, err := decodeJSONAt(in, open, k)
	if err != nil {
		return entitySpec{}, 0, err
	}
	sp, err := entityObject(raw, string(in[open:next]))
	return sp, next, err
}

// decodeJSONAt decodes the JSON value starting at in[k] and returns it and
// the rune index just past it.
func decodeJSONAt(in []rune, open, k int) (json.RawMessage, int, error) {
	rest := string(in[k:])
	dec := json.NewDecoder(strings.NewReader(rest))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, 0, fmt.Errorf("annotation %q: the JSON after the text is not valid (%v): write it like {\"entity\": \"carrier\", \"value\": \"SF\"}", snippet(in, open, len(in)), err)
	}
	return raw, k + utf8.RuneCountInString(rest[:dec.InputOffset()]), nil
}

// entityObject reads {"entity","value","role","group"}, all strings.
func entityObject(raw json.RawMessage, ann string) (entitySpec, error) {
	var obj map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
		return entitySpec{}, fmt.Errorf("annotation %q: the JSON after the text must be an object like {\"entity\": \"carrier\", \"value\": \"SF\"}", ann)
	}
	var sp entitySpec
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		v := obj[key]
		var dst *string
		switch key {
		case "entity":
			dst = &sp.entity
		case "value":
			dst = &sp.value
		case "role":
			dst = &sp.role
		case "group":
			dst = &sp.group
		default:
			return entitySpec{}, fmt.Errorf("annotation %q: unknown key %q: the JSON may hold entity, value, role and group", ann, key)
		}
		if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, dst) != nil {
			return entitySpec{}, fmt.Errorf("annotation %q: %q must be a string, e.g. \"%s\": \"SF\"", ann, key, key)
		}
		*dst = strings.TrimSpace(*dst)
	}
	if strings.IndexFunc(sp.entity, unicode.IsSpace) >= 0 {
		return entitySpec{}, fmt.Errorf("annotation %q: entity name %q contains a space: use a name like tracking_no", ann, sp.entity)
	}
	return sp, nil
}

// snippet returns in[from:to] (clamped) for messages, shortened when long.
func snippet(in []rune, from, to int) string {
	to = min(to, len(in))
	if to-from > 40 {
		return string(in[from:from+40]) + "…"
	}
	return string(in[from:to])
}
