package nludata

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// parseYAML reads a Rasa 3 style YAML file (nlu, domain or stories) into d;
// errors go to errs.
func parseYAML(file string, data []byte, d *Data, errs *errList) {
	docs, err := decodeYAML(data)
	if err != nil {
		line, msg := yamlErrorLine(data, err)
		errs.add(Pos{File: file, Line: line}, "invalid YAML: %s: check the indentation, quotes and the space after \":\" on this line or the one before", msg)
		return
	}
	p := &yamlParser{file: file, d: d, errs: errs, idx: d.exampleIndex(0)}
	for _, doc := range docs {
		p.document(doc)
	}
}

// decodeYAML decodes every document in data.
func decodeYAML(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			return nil, err
		}
		docs = append(docs, &n)
	}
}

// splitYAMLError splits yaml.v3's "yaml: line N: msg" into N (0 when absent)
// and msg.
func splitYAMLError(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				return n, after
			}
		}
	}
	return 0, msg
}

// yamlErrorLine finds the line of a YAML syntax error. yaml.v3 often names
// the line where the enclosing block started (0-based) or no line at all, so
// it looks for the shortest run of leading lines that fails with the same
// message (a binary search: a few extra parses, only on the error path).
func yamlErrorLine(data []byte, err error) (int, string) {
	line, msg := splitYAMLError(err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	fails := func(k int) bool {
		_, err := decodeYAML(bytes.Join(lines[:k], nil))
		if err == nil {
			return false
		}
		_, m := splitYAMLError(err)
		return m == msg
	}
	if lo, hi := 1, len(lines); hi > 0 && fails(hi) {
		for lo < hi {
			if mid := (lo + hi) / 2; fails(mid) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		return lo, msg
	}
	return max(line, 1), msg
}

type yamlParser struct {
	file string
	d    *Data
	errs *errList
	idx  map[exampleKey]int
}

// exampleLine is one example, synonym variant, lookup value or pattern.
type exampleLine struct {
	text string
	pos  Pos
}

type pair struct{ key, value *yaml.Node }

func (p *yamlParser) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: p.file}
	}
	return Pos{File: p.file, Line: n.Line}
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// pairs returns the key/value pairs of a mapping, reporting non-scalar and
// duplicate keys.
func (p *yamlParser) pairs(m *yaml.Node) []pair {
	out := make([]pair, 0, len(m.Content)/2)
	seen := make(map[string]int, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		if k == nil || k.Kind != yaml.ScalarNode {
			p.errs.add(p.pos(m.Content[i]), "a key must be a plain name")
			continue
		}
		if first, ok := seen[k.Value]; ok {
			p.errs.add(p.pos(k), "duplicate key %q (first at line %d): keep one", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k, v})
	}
	return out
}

func (p *yamlParser) document(doc *yaml.Node) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		p.errs.add(p.pos(root), "the top level must be a mapping with an nlu: key (Rasa 3 format)")
		return
	}
	pairs := p.pairs(root)
	hasNLU := slices.ContainsFunc(pairs, func(kv pair) bool { return kv.key.Value == "nlu" })
	for _, kv := range pairs {
		switch kv.key.Value {
		case "version":
			// Accepted whatever it says: Rasa 2 and 3 files read the same.
		case "nlu":
			p.nlu(kv.value)
		case "entities":
			p.entities(kv.value)
		case "intents":
			p.intents(kv.value)
		case "stories", "rules", "responses":
			// Rasa training-data keys that may share a file with nlu:.
		default:
			// A domain, stories or config file: the rest is not ours.
			if hasNLU {
				p.errs.add(p.pos(kv.key), "unknown top-level key %q in a file with nlu: (keys read: version, nlu, entities, intents): fix the name or move it to domain.yml", kv.key.Value)
			}
		}
	}
}

func (p *yamlParser) nlu(v *yaml.Node) {
	if isNull(v) {
		p.d.warnf(p.pos(v), "nlu: is empty")
		return
	}
	if v.Kind != yaml.SequenceNode {
		p.errs.add(p.pos(v), "nlu: must be a list of items like \"- intent: greet\"")
		return
	}
	for _, it := range v.Content {
		p.item(resolve(it))
	}
}

// item reads one "- intent|synonym|lookup|regex: name" entry.
func (p *yamlParser) item(n *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		p.errs.add(p.pos(n), "an nlu item must be a mapping like \"- intent: greet\" with examples")
		return
	}
	var kind string
	var nameNode, examples *yaml.Node
	for _, kv := range p.pairs(n) {
		switch k := kv.key.Value; k {
		case "intent", "synonym", "lookup", "regex":
			if kind != "" {
				p.errs.add(p.pos(kv.key), "an nlu item has both %s and %s: split it into two items", kind, k)
				return
			}
			kind, nameNode = k, kv.value
		case "examples":
			examples = kv.value
		case "metadata":
			// Rasa metadata is not used for training.
		default:
			p.errs.add(p.pos(kv.key), "unknown key %q in an nlu item: use intent, synonym, lookup or regex, with examples and optional metadata", k)
		}
	}
	if kind == "" {
		p.errs.add(p.pos(n), "an nlu item needs one of intent, synonym, lookup or regex")
		return
	}
	pos := p.pos(n)
	if isNull(nameNode) || nameNode.Kind != yaml.ScalarNode || strings.TrimSpace(nameNode.Value) == "" {
		p.errs.add(pos, "empty %s name: write \"- %s: name\"", kind, kind)
		return
	}
	name := strings.TrimSpace(nameNode.Value)
	lines, ok := p.exampleLines(examples)
	if !ok {
		return
	}
	switch kind {
	case "intent":
		if len(lines) == 0 {
			p.errs.add(pos, "intent %q has no examples: add lines like \"- example\" under examples: |", name)
			return
		}
		for _, l := range lines {
			p.example(name, l)
		}
	case "synonym":
		if len(lines) == 0 {
			p.d.warnf(pos, "synonym %q has no examples: list its variants under examples: |", name)
		}
		for _, l := range lines {
			p.d.addSynonym(l.text, name, l.pos)
		}
	case "lookup":
		if len(lines) == 0 {
			p.d.warnf(pos, "lookup %q has no examples: list its values under examples: |", name)
		}
		values := make([]string, len(lines))
		for i, l := range lines {
			values[i] = l.text
		}
		p.d.addLookup(name, values)
	case "regex":
		if len(lines) == 0 {
			p.d.warnf(pos, "regex %q has no examples: list its patterns under examples: |", name)
		}
		for _, l := range lines {
			if _, err := regexp.Compile(l.text); err != nil {
				p.errs.add(l.pos, "regex %q: pattern %q does not compile with Go regexp (RE2 has no lookaround or backreferences): %v", name, l.text, err)
				continue
			}
			if !slices.ContainsFunc(p.d.Regexes, func(r Regex) bool { return r.Name == name && r.Pattern == l.text }) {
				p.d.Regexes = append(p.d.Regexes, Regex{Name: name, Pattern: l.text, Pos: l.pos})
			}
		}
	}
}

// example parses one annotated example of intent.
func (p *yamlParser) example(intent string, l exampleLine) {
	text, ents, err := ParseAnnotated(l.text)
	if err != nil {
		p.errs.add(l.pos, "%v", err)
		return
	}
	for _, e := range ents {
		if e.Value != e.Text {
			p.d.addSynonym(e.Text, e.Value, l.pos)
		}
	}
	p.d.addExample(p.idx, Example{Text: text, Intent: intent, Entities: ents, Pos: l.pos})
}

// exampleLines reads examples: a block of "- text" lines, or a list of
// strings (or of Rasa 3 {text, metadata} maps). ok is false after an error.
func (p *yamlParser) exampleLines(n *yaml.Node) (lines []exampleLine, ok bool) {
	if isNull(n) {
		return nil, true
	}
	const want = "examples must be a block of \"- example\" lines (examples: |) or a list of strings"
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag != "!!str" {
			p.errs.add(p.pos(n), want)
			return nil, false
		}
		return p.blockLines(n), true
	case yaml.SequenceNode:
		ok = true
		for _, it := range n.Content {
			it = resolve(it)
			if it != nil && it.Kind == yaml.MappingNode {
				it = p.textItem(it)
				if it == nil {
					ok = false
					continue
				}
			}
			if isNull(it) || it.Kind != yaml.ScalarNode {
				p.errs.add(p.pos(it), want)
				ok = false
				continue
			}
			if s := strings.TrimSpace(it.Value); s != "" {
				lines = append(lines, exampleLine{text: s, pos: p.pos(it)})
			}
		}
		return lines, ok
	default:
		p.errs.add(p.pos(n), want)
		return nil, false
	}
}

// textItem returns the text of a Rasa 3 "- text: ...\n  metadata: ..."
// example, or nil after an error.
func (p *yamlParser) textItem(m *yaml.Node) *yaml.Node {
	var text *yaml.Node
	for _, kv := range p.pairs(m) {
		switch kv.key.Value {
		case "text":
			text = kv.value
		case "metadata":
		default:
			p.errs.add(p.pos(kv.key), "unknown key %q in an example: use text and optional metadata", kv.key.Value)
			return nil
		}
	}
	if isNull(text) || text.Kind != yaml.ScalarNode {
		p.errs.add(p.pos(m), "an example given as a mapping needs text: \"...\"")
		return nil
	}
	return text
}

// blockLines splits a block of "- text" lines. In a literal block (|) line k
// of the value sits on the line after the indicator plus k; other styles
// fold lines, so every piece gets the scalar's line.
func (p *yamlParser) blockLines(n *yaml.Node) []exampleLine {
	var out []exampleLine
	literal := n.Style&yaml.LiteralStyle != 0
	for k, raw := range strings.Split(n.Value, "\n") {
		pos := p.pos(n)
		if literal {
			pos.Line += 1 + k
		}
		s := strings.TrimSpace(raw)
		if s == "" {
			continue
		}
		if !strings.HasPrefix(s, "-") {
			p.d.warnf(pos, "line %q does not start with \"- \" and is skipped: write each example as \"- text\"", s)
			continue
		}
		if s = strings.TrimSpace(s[1:]); s == "" {
			p.d.warnf(pos, "empty example \"-\" skipped")
			continue
		}
		out = append(out, exampleLine{text: s, pos: pos})
	}
	return out
}

// names reads a top-level list of names: scalars, or single-key mappings
// as in a Rasa domain ("- city: {roles: [...]}").
func (p *yamlParser) names(v *yaml.Node, what string) []declared {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		p.errs.add(p.pos(v), "%s: must be a list of names", what)
		return nil
	}
	var out []declared
	for _, it := range v.Content {
		it = resolve(it)
		switch {
		case it != nil && it.Kind == yaml.ScalarNode && !isNull(it) && strings.TrimSpace(it.Value) != "":
			out = append(out, declared{strings.TrimSpace(it.Value), p.pos(it)})
		case it != nil && it.Kind == yaml.MappingNode:
			for _, kv := range p.pairs(it) {
				if name := strings.TrimSpace(kv.key.Value); name != "" {
					out = append(out, declared{name, p.pos(kv.key)})
				} else {
					p.errs.add(p.pos(kv.key), "empty name in %s:", what)
				}
			}
		default:
			p.errs.add(p.pos(it), "%s: must be a list of names; this item is empty or not a name", what)
		}
	}
	return out
}

func (p *yamlParser) entities(v *yaml.Node) {
	names := p.names(v, "entities")
	list := make([]string, len(names))
	for i, n := range names {
		list[i] = n.name
	}
	p.d.addEntities(list)
}

func (p *yamlParser) intents(v *yaml.Node) {
	p.d.intents = append(p.d.intents, p.names(v, "intents")...)
}
