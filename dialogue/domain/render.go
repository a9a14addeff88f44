package domain

import (
	"strings"
)

// segment is a piece of a compiled response text: literal text, or a slot
// whose value goes there.
type segment struct {
	text string // the literal, or the slot name when slot is set
	slot bool
}

// hole is a placeholder found by compile, at byte offset off of the text.
type hole struct {
	name string
	off  int
}

// templateError is a brace problem at byte offset off of the text.
type templateError struct {
	off int
	msg string
}

// compile splits s into literal and {slot} segments: "{{" and "}}" are
// literal braces, "{name}" is the value of slot name (spaces around the name
// are ignored), and any other brace is an error. Adjacent literals are
// merged, so text without placeholders is one segment.
func compile(s string) ([]segment, []hole, *templateError) {
	var segs []segment
	var holes []hole
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			segs = append(segs, segment{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i += 2
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i += 2
		case c == '}':
			return nil, nil, &templateError{i, `unbalanced "}": write "}}" for a literal brace`}
		case c == '{':
			end := strings.IndexAny(s[i+1:], "{}")
			if end < 0 || s[i+1+end] == '{' {
				return nil, nil, &templateError{i, `unbalanced "{": close the placeholder as {slot_name}, or write "{{" for a literal brace`}
			}
			name := strings.TrimSpace(s[i+1 : i+1+end])
			if name == "" {
				return nil, nil, &templateError{i, `empty placeholder "{}": write {slot_name}, or "{{}}" for literal braces`}
			}
			flush()
			segs = append(segs, segment{text: name, slot: true})
			holes = append(holes, hole{name, i})
			i += end + 2
		default:
			j := i + 1
			for j < len(s) && s[j] != '{' && s[j] != '}' {
				j++
			}
			lit.WriteString(s[i:j])
			i = j
		}
	}
	flush()
	return segs, holes, nil
}

// Variant selection modes of Render.
const (
	pickChannel = iota // variants for the channel
	pickGeneric        // variants without channels
	pickAny            // every variant
)

func (v *Variant) on(channel string) bool {
	if channel == "" {
		return false
	}
	for _, c := range v.Channels {
		if strings.EqualFold(c, channel) {
			return true
		}
	}
	return false
}

func (v *Variant) in(mode int, channel string) bool {
	switch mode {
	case pickChannel:
		return v.on(channel)
	case pickGeneric:
		return len(v.Channels) == 0
	}
	return true
}

// Render picks a variant for channel and fills its placeholders. Variants
// whose channels include channel (compared case-insensitively) are preferred;
// when there are none it picks among the variants without channels, and when
// there are none of those either, among all. pick(n) returns an index in
// [0,n) (rand.IntN in production, fixed in tests); it is called only when
// there is a choice, and a nil pick or an index out of range means the first.
// Each {slot} placeholder becomes slots[slot], empty when missing. It returns
// the text and whether it is Markdown; a nil or empty response renders "".
//
// Render does not change r and is safe for concurrent use. A response from
// Load allocates at most the returned string; one built by hand has its text
// compiled on each call (a text with brace errors is returned as written).
func (r *Response) Render(channel string, slots map[string]string, pick func(n int) int) (text string, markdown bool) {
	if r == nil || len(r.Variants) == 0 {
		return "", false
	}
	var specific, generic int
	for i := range r.Variants {
		v := &r.Variants[i]
		if len(v.Channels) == 0 {
			generic++
		} else if v.on(channel) {
			specific++
		}
	}
	mode, n := pickChannel, specific
	switch {
	case specific > 0:
	case generic > 0:
		mode, n = pickGeneric, generic
	default:
		mode, n = pickAny, len(r.Variants)
	}
	k := 0
	if n > 1 && pick != nil {
		if k = pick(n); k < 0 || k >= n {
			k = 0
		}
	}
	for i := range r.Variants {
		v := &r.Variants[i]
		if !v.in(mode, channel) {
			continue
		}
		if k > 0 {
			k--
			continue
		}
		return v.render(slots), v.Markdown
	}
	return "", false // not reached: n matching variants exist
}

// render fills the variant's placeholders from slots.
func (v *Variant) render(slots map[string]string) string {
	segs := v.segs
	if segs == nil {
		var err *templateError
		if segs, _, err = compile(v.Text); err != nil {
			return v.Text
		}
	}
	switch {
	case len(segs) == 0:
		return ""
	case len(segs) == 1 && segs[0].slot:
		return slots[segs[0].text]
	case len(segs) == 1:
		return segs[0].text
	}
	// Each slot is looked up once: values of the first len(vals) slot
	// segments wait on the stack between sizing and writing.
	var vals [8]string
	size, k := 0, 0
	for _, s := range segs {
		if !s.slot {
			size += len(s.text)
			continue
		}
		v := slots[s.text]
		if k < len(vals) {
			vals[k] = v
			k++
		}
		size += len(v)
	}
	var b strings.Builder
	b.Grow(size)
	k = 0
	for _, s := range segs {
		switch {
		case !s.slot:
			b.WriteString(s.text)
		case k < len(vals):
			b.WriteString(vals[k])
			k++
		default:
			b.WriteString(slots[s.text])
		}
	}
	return b.String()
}
