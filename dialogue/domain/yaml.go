package domain

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// decodeDocs decodes every YAML document in data into nodes.
func decodeDocs(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		n := new(yaml.Node)
		err := dec.Decode(n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, n)
	}
}

// yamlMessage strips yaml.v3's "yaml: " and "line N: " prefixes.
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if _, err := strconv.Atoi(num); err == nil {
				return after
			}
		}
	}
	return msg
}

// syntaxLine finds the line of a YAML syntax error. yaml.v3 often reports
// the line where the enclosing block began, or none, so the line is taken
// as the end of the shortest leading part of the file that already fails
// with the same message (bisection: a few more parses, on the error path
// only). It falls back to line 1.
func syntaxLine(data []byte, err error) (int, string) {
	msg := yamlMessage(err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	failsAt := func(k int) bool {
		_, err := decodeDocs(bytes.Join(lines[:k], nil))
		return err != nil && yamlMessage(err) == msg
	}
	lo, hi := 1, len(lines)
	if hi == 0 || !failsAt(hi) {
		return 1, msg
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if failsAt(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, msg
}

// invalidUTF8Line returns the 1-based line of the first invalid UTF-8
// sequence in data, or 0 when data is valid.
func invalidUTF8Line(data []byte) int {
	for i, line := range bytes.Split(data, []byte("\n")) {
		if !utf8.Valid(line) {
			return i + 1
		}
	}
	return 0
}

type pair struct{ key, value *yaml.Node }

// parser reads the documents of one file into the loader's domain.
type parser struct {
	l    *loader
	file string
	// visits counts nodes looked at; aliases can make a small file name
	// one subtree many times, so past budget resolve gives up.
	visits, budget int
}

func (p *parser) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: p.file}
	}
	return Pos{File: p.file, Line: n.Line}
}

func (p *parser) errf(n *yaml.Node, format string, args ...any) {
	p.l.errs.add(p.pos(n), format, args...)
}

// resolve follows aliases to the node they name and counts the visit. It
// returns nil once the file has used up its budget of visits.
func (p *parser) resolve(n *yaml.Node) *yaml.Node {
	p.visits++
	if p.visits > p.budget {
		if p.visits == p.budget+1 {
			// At the file (line 0), so it sorts first: the errors that
			// the repetition caused come after it.
			p.l.errs.add(Pos{File: p.file}, "the file expands to too many YAML nodes (aliases used over and over): write the values out instead of repeating *aliases")
		}
		return nil
	}
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == 100 {
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// describe names the kind of a node for "must be X, not Y" messages.
func describe(n *yaml.Node) string {
	switch {
	case isNull(n):
		return "empty"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Tag == "!!bool":
		return "true/false"
	case n.Tag == "!!int" || n.Tag == "!!float":
		return "a number"
	case n.Kind == yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "unreadable"
}

// pairs returns the key/value pairs of mapping m (already resolved),
// reporting keys that are not plain names, merge keys and duplicates.
func (p *parser) pairs(m *yaml.Node) []pair {
	out := make([]pair, 0, len(m.Content)/2)
	seen := make(map[string]int, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := p.resolve(m.Content[i]), p.resolve(m.Content[i+1])
		switch {
		case k == nil:
			continue
		case k.Kind != yaml.ScalarNode || isNull(k):
			p.errf(m.Content[i], "a key must be a plain name, not %s", describe(k))
			continue
		case k.Tag == "!!merge":
			p.errf(k, "merge keys (<<) are not supported: write the keys out")
			continue
		}
		if first, ok := seen[k.Value]; ok {
			p.errf(k, "duplicate key %q (first at line %d): keep one", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k, v})
	}
	return out
}

// mapping returns the pairs of n, which must be a mapping or empty (no
// pairs, ok). what names n in the message.
func (p *parser) mapping(n *yaml.Node, what string) ([]pair, bool) {
	switch {
	case isNull(n):
		return nil, true
	case n.Kind != yaml.MappingNode:
		p.errf(n, "%s must be a mapping of keys, not %s: check the indentation", what, describe(n))
		return nil, false
	}
	return p.pairs(n), true
}

// list returns the resolved items of n, which must be a list or empty.
// Items that ran over the budget are left out.
func (p *parser) list(n *yaml.Node, what, example string) ([]*yaml.Node, bool) {
	switch {
	case isNull(n):
		return nil, true
	case n.Kind != yaml.SequenceNode:
		p.errf(n, "%s must be a list, not %s: write %s", what, describe(n), example)
		return nil, false
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, it := range n.Content {
		if it = p.resolve(it); it != nil {
			out = append(out, it)
		}
	}
	return out, true
}

// name reads a non-empty string scalar (trimmed): a name of an intent,
// response, slot, form, skill, channel...
func (p *parser) name(n *yaml.Node, what string) (string, bool) {
	if isNull(n) || n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		p.errf(n, "%s must be a name, not %s", what, describe(n))
		return "", false
	}
	s := strings.TrimSpace(n.Value)
	if s == "" {
		p.errf(n, "%s is empty: give a name or remove the key", what)
		return "", false
	}
	return s, true
}

// text reads a non-empty scalar of any type, trimmed.
func (p *parser) text(n *yaml.Node, what string) (string, bool) {
	if isNull(n) || n.Kind != yaml.ScalarNode {
		p.errf(n, "%s must be a text, not %s", what, describe(n))
		return "", false
	}
	s := strings.TrimSpace(n.Value)
	if s == "" {
		p.errf(n, "%s is empty: write the text or remove the key", what)
		return "", false
	}
	return s, true
}

func (p *parser) boolean(n *yaml.Node, what string) (bool, bool) {
	var b bool
	if isNull(n) || n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.errf(n, "%s must be true or false, not %s", what, describe(n))
		return false, false
	}
	return b, true
}

func (p *parser) integer(n *yaml.Node, what string) (int, bool) {
	var v int
	if isNull(n) || n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		p.errf(n, "%s must be a whole number, not %s", what, describe(n))
		return 0, false
	}
	return v, true
}

func (p *parser) number(n *yaml.Node, what string) (float64, bool) {
	var v float64
	if isNull(n) || n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&v) != nil {
		p.errf(n, "%s must be a number, not %s", what, describe(n))
		return 0, false
	}
	return v, true
}

// named is a name and where it was written.
type named struct {
	name string
	pos  Pos
}

// names reads a list of names ("[a, b]" or "- a" lines).
func (p *parser) names(n *yaml.Node, what string) ([]named, bool) {
	items, ok := p.list(n, what, "["+what+" ...] or \"- name\" lines")
	out := make([]named, 0, len(items))
	for _, it := range items {
		if s, good := p.name(it, "an item of "+what); good {
			out = append(out, named{s, p.pos(it)})
		} else {
			ok = false
		}
	}
	return out, ok
}

// texts reads a list of non-empty texts.
func (p *parser) texts(n *yaml.Node, what string) ([]string, bool) {
	items, ok := p.list(n, what, "[\"...\", \"...\"] or \"- text\" lines")
	out := make([]string, 0, len(items))
	for _, it := range items {
		if s, good := p.text(it, "an item of "+what); good {
			out = append(out, s)
		} else {
			ok = false
		}
	}
	return out, ok
}

// unknown reports an unknown key k in where, listing the keys allowed.
func (p *parser) unknown(k *yaml.Node, where, allowed string) {
	p.errf(k, "unknown key %q in %s: use %s", k.Value, where, allowed)
}
