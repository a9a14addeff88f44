package domain

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/zhiyin/zhiyin/dialogue/nlu/rules"
)

// Keys allowed in each section, for the unknown-key messages.
const (
	topKeys      = "name, intents, entities, slots, responses, forms, faq, handoff, lanes, policy (version, nlu, stories and rules are skipped)"
	intentKeys   = "reply, skill, form, faq, handoff, resume, cancel, lane"
	slotKeys     = "type, entities, from_text"
	variantKeys  = "text, channels, markdown"
	formKeys     = "title, slots, max_retries, submit, resume"
	formSlotKeys = "slot, prompt, validate, invalid, optional"
	validateKeys = "regex, lookup, skill"
	submitKeys   = "skill, reply"
	faqKeys      = "id, intent, questions, answer"
	handoffKeys  = "intents, keywords, max_fallbacks, reply, released"
	laneKeys     = "urgent, batch"
	laneRuleKeys = "keywords, intents"
	policyKeys   = "fallback_reply, faq_threshold, cancel_keywords, resume_keywords, skill_error"
)

// refKind is what a reference names.
type refKind int

const (
	refResponse refKind = iota
	refForm
	refIntent
	refSlot
)

// ref is a name used somewhere, checked once every file is read.
type ref struct {
	kind refKind
	name string
	pos  Pos
	what string // where it is used, e.g. `intent "greet" reply`
}

// loader holds the domain being read and what the checks need.
type loader struct {
	d        *Domain
	errs     *errList
	set      map[string]Pos // keys that may appear once in the whole domain
	faqIDs   map[string]Pos
	entities map[string]bool
	refs     []ref
	faqOn    []ref // intents with faq: true
}

func (p *parser) ref(kind refKind, name string, n *yaml.Node, what string) {
	p.l.refs = append(p.l.refs, ref{kind, name, p.pos(n), what})
}

// once registers key, which may appear once in the whole domain; it reports
// a second one and returns false.
func (p *parser) once(key string, k *yaml.Node) bool {
	if first, ok := p.l.set[key]; ok {
		p.errf(k, "%s is set twice (first at %s): keep one", key, first)
		return false
	}
	p.l.set[key] = p.pos(k)
	return true
}

func (p *parser) document(doc *yaml.Node) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return
	}
	root := p.resolve(doc.Content[0])
	if isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		p.errf(root, "a domain file must be a mapping of sections (intents:, responses:, forms: ...), not %s", describe(root))
		return
	}
	for _, kv := range p.pairs(root) {
		switch kv.key.Value {
		case "version", "nlu", "stories", "rules":
			// Training data and its version: package nludata reads them.
		case "name":
			if p.once("name", kv.key) {
				if s, ok := p.name(kv.value, "name"); ok {
					p.l.d.Name = s
				}
			}
		case "intents":
			p.intents(kv.value)
		case "entities":
			p.entities(kv.value)
		case "slots":
			p.slots(kv.value)
		case "responses":
			p.responses(kv.value)
		case "forms":
			p.forms(kv.value)
		case "faq":
			p.faq(kv.value)
		case "handoff":
			p.handoff(kv.value)
		case "lanes":
			p.lanes(kv.value)
		case "policy":
			p.policy(kv.value)
		default:
			p.errf(kv.key, "unknown top-level key %q: use %s", kv.key.Value, topKeys)
		}
	}
}

// ---- intents ----

func (p *parser) intents(v *yaml.Node) {
	items, _ := p.list(v, "intents", "\"- greet\" or \"- greet: {reply: utter_greet}\" lines")
	for _, it := range items {
		switch {
		case it.Kind == yaml.ScalarNode && !isNull(it):
			if name, ok := p.name(it, "an intent name"); ok {
				p.addIntent(&Intent{Name: name, Pos: p.pos(it)}, it)
			}
		case it.Kind == yaml.MappingNode:
			kvs := p.pairs(it)
			if len(kvs) == 0 {
				p.errf(it, "an intents item is empty: write \"- name\"")
				continue
			}
			if len(kvs) > 1 {
				p.errf(kvs[1].key, "an intents item is one intent: indent %q under %q, or start a new item with \"- \"", kvs[1].key.Value, kvs[0].key.Value)
				continue
			}
			kv := kvs[0]
			name, ok := p.name(kv.key, "an intent name")
			if !ok {
				continue
			}
			in := &Intent{Name: name, Pos: p.pos(kv.key)}
			if p.intentProps(in, kv.value) {
				p.addIntent(in, kv.key)
			}
		default:
			p.errf(it, "an intents item must be a name or \"name: {properties}\", not %s", describe(it))
		}
	}
}

func (p *parser) addIntent(in *Intent, n *yaml.Node) {
	if first, ok := p.l.d.Intents[in.Name]; ok {
		p.errf(n, "duplicate intent %q (first at %s): keep one", in.Name, first.Pos)
		return
	}
	p.l.d.Intents[in.Name] = in
}

// intentProps reads an intent's properties into in; false after an error.
func (p *parser) intentProps(in *Intent, v *yaml.Node) bool {
	what := fmt.Sprintf("intent %q", in.Name)
	kvs, ok := p.mapping(v, what)
	var actions []*yaml.Node // keys of the main actions given
	var handoff *yaml.Node
	flag := func(kv pair, dst *bool, main bool) {
		b, good := p.boolean(kv.value, what+" "+kv.key.Value)
		if !good {
			ok = false
			return
		}
		*dst = b
		if b && main {
			actions = append(actions, kv.key)
		}
	}
	for _, kv := range kvs {
		key := kv.key.Value
		switch key {
		case "reply", "skill", "form":
			s, good := p.name(kv.value, what+" "+key)
			if !good {
				ok = false
				continue
			}
			actions = append(actions, kv.key)
			switch key {
			case "reply":
				in.Reply = s
				p.ref(refResponse, s, kv.value, what+" reply")
			case "skill":
				in.Skill = s
				p.l.d.skills = append(p.l.d.skills, SkillRef{s, p.pos(kv.value)})
			case "form":
				in.Form = s
				p.ref(refForm, s, kv.value, what+" form")
			}
		case "faq":
			flag(kv, &in.FAQ, true)
			if in.FAQ {
				p.l.faqOn = append(p.l.faqOn, ref{refIntent, in.Name, p.pos(kv.key), what})
			}
		case "resume":
			flag(kv, &in.Resume, true)
		case "cancel":
			flag(kv, &in.Cancel, true)
		case "handoff":
			flag(kv, &in.Handoff, false)
			if in.Handoff {
				handoff = kv.key
			}
		case "lane":
			s, good := p.name(kv.value, what+" lane")
			switch {
			case !good:
				ok = false
			case s != "urgent" && s != "normal" && s != "batch":
				p.errf(kv.value, "%s lane %q is not a lane: use urgent, normal or batch", what, s)
				ok = false
			default:
				in.Lane = s
			}
		case "use_entities", "ignore_entities", "influence_conversation":
			// Rasa domain properties: accepted so Rasa files load; unused.
		default:
			p.unknown(kv.key, what, intentKeys)
			ok = false
		}
	}
	if len(actions) > 1 && !(len(actions) == 2 && in.Skill != "" && in.Reply != "") {
		p.errf(actions[1], "%s has both %s and %s: give it one action (only skill with reply, and handoff with reply, go together)", what, actions[0].Value, actions[1].Value)
		return false
	}
	if handoff != nil && len(actions) > 0 && in.Reply == "" {
		p.errf(handoff, "%s has both %s and handoff: handoff goes alone or with reply; remove one", what, actions[0].Value)
		return false
	}
	if handoff != nil && in.Skill != "" {
		p.errf(handoff, "%s has both skill and handoff: handoff goes alone or with reply; remove one", what)
		return false
	}
	return ok
}

// ---- entities and slots ----

func (p *parser) entities(v *yaml.Node) {
	items, _ := p.list(v, "entities", "[order_id, carrier] or \"- order_id\" lines")
	for _, it := range items {
		switch {
		case it.Kind == yaml.ScalarNode && !isNull(it):
			if name, ok := p.name(it, "an entity name"); ok {
				p.l.entities[name] = true
			}
		case it.Kind == yaml.MappingNode:
			// Rasa's "- city: {roles: [...]}" form.
			kvs := p.pairs(it)
			if len(kvs) != 1 {
				p.errf(it, "an entities item is one entity name: write \"- name\"")
				continue
			}
			name, ok := p.name(kvs[0].key, "an entity name")
			if !ok {
				continue
			}
			props, _ := p.mapping(kvs[0].value, fmt.Sprintf("entity %q", name))
			for _, kv := range props {
				switch kv.key.Value {
				case "roles", "groups", "influence_conversation":
					// Rasa properties: accepted, unused.
				default:
					p.unknown(kv.key, fmt.Sprintf("entity %q", name), "nothing (roles and groups are accepted and ignored)")
				}
			}
			p.l.entities[name] = true
		default:
			p.errf(it, "an entities item must be a name, not %s", describe(it))
		}
	}
}

func (p *parser) slots(v *yaml.Node) {
	kvs, _ := p.mapping(v, "slots")
	for _, kv := range kvs {
		name, ok := p.name(kv.key, "a slot name")
		if !ok {
			continue
		}
		what := fmt.Sprintf("slot %q", name)
		s := &Slot{Name: name, Type: SlotText, Pos: p.pos(kv.key)}
		props, ok := p.mapping(kv.value, what)
		hasEntities := false
		for _, pr := range props {
			switch pr.key.Value {
			case "type":
				t, good := p.name(pr.value, what+" type")
				switch SlotType(t) {
				case SlotText, SlotNumber, SlotBool, SlotList, SlotAny:
					s.Type = SlotType(t)
				default:
					if good {
						p.errf(pr.value, "%s type %q is not a slot type: use text, number, bool, list or any", what, t)
					}
					ok = false
				}
			case "entities":
				hasEntities = true
				list, good := p.names(pr.value, what+" entities")
				ok = ok && good
				s.Entities = make([]string, len(list))
				for i, e := range list {
					s.Entities[i] = e.name
				}
			case "from_text":
				b, good := p.boolean(pr.value, what+" from_text")
				ok = ok && good
				s.FromText = b
			case "mappings":
				p.errf(pr.key, "%s: Rasa slot mappings are not used: list the entity types that fill it under entities:, and set from_text: true to take the whole message", what)
				ok = false
			default:
				p.unknown(pr.key, what, slotKeys)
				ok = false
			}
		}
		if !hasEntities {
			s.Entities = []string{name}
		}
		if !ok {
			continue
		}
		if first, dup := p.l.d.Slots[name]; dup {
			p.errf(kv.key, "duplicate slot %q (first at %s): keep one", name, first.Pos)
			continue
		}
		p.l.d.Slots[name] = s
	}
}

// ---- responses ----

func (p *parser) responses(v *yaml.Node) {
	kvs, _ := p.mapping(v, "responses")
	for _, kv := range kvs {
		name, ok := p.name(kv.key, "a response name")
		if !ok {
			continue
		}
		if !strings.HasPrefix(name, "utter_") {
			p.errf(kv.key, "response name %q must start with utter_: rename it (and the places that use it)", name)
			continue
		}
		what := fmt.Sprintf("response %q", name)
		r := &Response{Name: name, Pos: p.pos(kv.key)}
		items, ok := p.list(kv.value, what, "\"- text: ...\" lines")
		if ok && len(items) == 0 {
			p.errf(kv.key, "%s has no variants: add at least one \"- text: ...\"", what)
			continue
		}
		for _, it := range items {
			v, good := p.variant(it, what)
			ok = ok && good
			r.Variants = append(r.Variants, v)
		}
		if !ok {
			continue
		}
		if first, dup := p.l.d.Responses[name]; dup {
			p.errf(kv.key, "duplicate response %q (first at %s): keep one", name, first.Pos)
			continue
		}
		p.l.d.Responses[name] = r
	}
}

func (p *parser) variant(it *yaml.Node, what string) (Variant, bool) {
	var v Variant
	if it.Kind != yaml.MappingNode {
		p.errf(it, "a variant of %s must be a mapping like \"- text: ...\", not %s", what, describe(it))
		return v, false
	}
	ok := true
	var textNode *yaml.Node
	for _, kv := range p.pairs(it) {
		switch kv.key.Value {
		case "text":
			textNode = kv.value
		case "channels":
			list, good := p.names(kv.value, what+" channels")
			ok = ok && good
			for _, c := range list {
				v.Channels = append(v.Channels, c.name)
			}
		case "markdown":
			b, good := p.boolean(kv.value, what+" markdown")
			ok = ok && good
			v.Markdown = b
		case "channel":
			p.errf(kv.key, "%s: use channels: [name] (a list) instead of channel:", what)
			ok = false
		default:
			p.unknown(kv.key, "a variant of "+what, variantKeys)
			ok = false
		}
	}
	if textNode == nil {
		p.errf(it, "a variant of %s has no text: add text: \"...\"", what)
		return v, false
	}
	text, good := p.text(textNode, what+" text")
	if !good {
		return v, false
	}
	v.Text = text
	v.segs, good = p.template(textNode, text, what)
	return v, ok && good
}

// template compiles text (textNode's value, trimmed), reporting brace
// errors and recording its placeholders as slot references, each at its
// own line where the node's style allows.
func (p *parser) template(textNode *yaml.Node, text, what string) ([]segment, bool) {
	lineAt := func(off int) Pos {
		pos := p.pos(textNode)
		if textNode.Style&yaml.LiteralStyle != 0 {
			lead := strings.Index(textNode.Value, text)
			pos.Line += 1 + strings.Count(textNode.Value[:max(lead, 0)+off], "\n")
		}
		return pos
	}
	segs, holes, err := compile(text)
	if err != nil {
		p.l.errs.add(lineAt(err.off), "%s: %s", what, err.msg)
		return nil, false
	}
	for _, h := range holes {
		p.l.refs = append(p.l.refs, ref{refSlot, h.name, lineAt(h.off), what})
	}
	return segs, true
}

// ---- forms ----

func (p *parser) forms(v *yaml.Node) {
	kvs, _ := p.mapping(v, "forms")
	for _, kv := range kvs {
		name, ok := p.name(kv.key, "a form name")
		if !ok {
			continue
		}
		f, ok := p.form(name, kv)
		if !ok {
			continue
		}
		if first, dup := p.l.d.Forms[name]; dup {
			p.errf(kv.key, "duplicate form %q (first at %s): keep one", name, first.Pos)
			continue
		}
		p.l.d.Forms[name] = f
	}
}

func (p *parser) form(name string, kv pair) (*Form, bool) {
	what := fmt.Sprintf("form %q", name)
	f := &Form{Name: name, Title: name, MaxRetries: defaultMaxRetries, Pos: p.pos(kv.key)}
	props, ok := p.mapping(kv.value, what)
	var slotsNode *yaml.Node
	for _, pr := range props {
		switch pr.key.Value {
		case "title":
			s, good := p.text(pr.value, what+" title")
			ok = ok && good
			f.Title = s
		case "slots":
			slotsNode = pr.key
			items, good := p.list(pr.value, what+" slots", "\"- slot: name\" items with a prompt:")
			ok = ok && good
			seen := map[string]Pos{}
			for _, it := range items {
				fs, good := p.formSlot(it, what)
				if !good {
					ok = false
					continue
				}
				if first, dup := seen[fs.Slot]; dup {
					p.errf(it, "%s asks for slot %q twice (first at %s): keep one", what, fs.Slot, first)
					ok = false
					continue
				}
				seen[fs.Slot] = fs.Pos
				f.Slots = append(f.Slots, fs)
			}
		case "max_retries":
			n, good := p.integer(pr.value, what+" max_retries")
			if good && n < 1 {
				p.errf(pr.value, "%s max_retries is %d: it must be at least 1", what, n)
				good = false
			}
			ok = ok && good
			f.MaxRetries = n
		case "submit":
			sub, good := p.mapping(pr.value, what+" submit")
			ok = ok && good
			for _, s := range sub {
				switch s.key.Value {
				case "skill":
					name, good := p.name(s.value, what+" submit.skill")
					ok = ok && good
					if good {
						f.Submit.Skill = name
						p.l.d.skills = append(p.l.d.skills, SkillRef{name, p.pos(s.value)})
					}
				case "reply":
					name, good := p.name(s.value, what+" submit.reply")
					ok = ok && good
					if good {
						f.Submit.Reply = name
						p.ref(refResponse, name, s.value, what+" submit.reply")
					}
				default:
					p.unknown(s.key, what+" submit", submitKeys)
					ok = false
				}
			}
		case "resume":
			s, good := p.name(pr.value, what+" resume")
			ok = ok && good
			if good {
				f.Resume = s
				p.ref(refResponse, s, pr.value, what+" resume")
			}
		default:
			p.unknown(pr.key, what, formKeys)
			ok = false
		}
	}
	if ok && len(f.Slots) == 0 {
		at := kv.key
		if slotsNode != nil {
			at = slotsNode
		}
		p.errf(at, "%s has no slots: list them under slots: as \"- slot: name\" with prompt: utter_ask_name", what)
		ok = false
	}
	return f, ok
}

func (p *parser) formSlot(it *yaml.Node, what string) (FormSlot, bool) {
	fs := FormSlot{Pos: p.pos(it)}
	if it.Kind != yaml.MappingNode {
		p.errf(it, "a slot of %s must be a mapping like \"- slot: name\" with prompt:, not %s", what, describe(it))
		return fs, false
	}
	ok := true
	var promptSeen bool
	kvs := p.pairs(it)
	for _, kv := range kvs {
		if kv.key.Value == "slot" {
			s, good := p.name(kv.value, "a slot of "+what)
			if !good {
				return fs, false
			}
			fs.Slot = s
		}
	}
	if fs.Slot == "" {
		p.errf(it, "a slot of %s has no slot: name: add \"slot: name\"", what)
		return fs, false
	}
	where := fmt.Sprintf("%s slot %q", what, fs.Slot)
	for _, kv := range kvs {
		switch kv.key.Value {
		case "slot":
		case "prompt":
			s, good := p.name(kv.value, where+" prompt")
			ok = ok && good
			if good {
				promptSeen = true
				fs.Prompt = s
				p.ref(refResponse, s, kv.value, where+" prompt")
			}
		case "invalid":
			s, good := p.name(kv.value, where+" invalid")
			ok = ok && good
			if good {
				fs.Invalid = s
				p.ref(refResponse, s, kv.value, where+" invalid")
			}
		case "optional":
			b, good := p.boolean(kv.value, where+" optional")
			ok = ok && good
			fs.Optional = b
		case "validate":
			ok = p.validation(&fs.Validate, kv.value, where) && ok
		default:
			p.unknown(kv.key, where, formSlotKeys)
			ok = false
		}
	}
	if !promptSeen && ok {
		p.errf(it, "%s has no prompt: add prompt: utter_ask_%s (a response that asks for it)", where, fs.Slot)
		ok = false
	}
	return fs, ok
}

func (p *parser) validation(v *Validation, n *yaml.Node, where string) bool {
	kvs, ok := p.mapping(n, where+" validate")
	for _, kv := range kvs {
		switch kv.key.Value {
		case "regex":
			s, good := p.text(kv.value, where+" validate.regex")
			if !good {
				ok = false
				continue
			}
			re, err := regexp.Compile(s)
			if err != nil {
				p.errf(kv.value, "%s validate.regex %q does not compile as Go RE2 (no lookaround or backreferences): %v", where, s, err)
				ok = false
				continue
			}
			v.Regex = re
		case "lookup":
			list, good := p.texts(kv.value, where+" validate.lookup")
			if good && len(list) == 0 {
				p.errf(kv.value, "%s validate.lookup is empty: list the allowed values or remove it", where)
				good = false
			}
			ok = ok && good
			v.Lookup = list
		case "skill":
			s, good := p.name(kv.value, where+" validate.skill")
			ok = ok && good
			if good {
				v.Skill = s
				p.l.d.skills = append(p.l.d.skills, SkillRef{s, p.pos(kv.value)})
			}
		default:
			p.unknown(kv.key, where+" validate", validateKeys)
			ok = false
		}
	}
	return ok
}

// ---- faq ----

func (p *parser) faq(v *yaml.Node) {
	items, _ := p.list(v, "faq", "\"- id: name\" entries with questions: and answer:")
	for _, it := range items {
		if it.Kind != yaml.MappingNode {
			p.errf(it, "a faq entry must be a mapping with id, questions and answer, not %s", describe(it))
			continue
		}
		e := &FAQEntry{Pos: p.pos(it)}
		kvs := p.pairs(it)
		ok := true
		var idNode *yaml.Node
		for _, kv := range kvs {
			if kv.key.Value == "id" {
				idNode = kv.value
				e.ID, ok = p.name(kv.value, "a faq id")
			}
		}
		if idNode == nil {
			p.errf(it, "a faq entry has no id: add \"id: name\" (unique)")
			continue
		}
		if !ok {
			continue
		}
		what := fmt.Sprintf("faq %q", e.ID)
		var hasQ, hasA bool
		for _, kv := range kvs {
			switch kv.key.Value {
			case "id":
			case "intent":
				s, good := p.name(kv.value, what+" intent")
				ok = ok && good
				if good {
					e.Intent = s
					p.ref(refIntent, s, kv.value, what+" intent")
				}
			case "questions":
				hasQ = true
				list, good := p.texts(kv.value, what+" questions")
				if good && len(list) == 0 {
					p.errf(kv.key, "%s has no questions: list the ways a customer asks it", what)
					good = false
				}
				ok = ok && good
				e.Questions = list
			case "answer":
				hasA = true
				s, good := p.text(kv.value, what+" answer")
				ok = ok && good
				e.Answer = s
			default:
				p.unknown(kv.key, what, faqKeys)
				ok = false
			}
		}
		if ok && !hasQ {
			p.errf(it, "%s has no questions: add questions: [\"...\"]", what)
			ok = false
		}
		if ok && !hasA {
			p.errf(it, "%s has no answer: add answer: \"...\"", what)
			ok = false
		}
		if !ok {
			continue
		}
		if first, dup := p.l.faqIDs[e.ID]; dup {
			p.errf(idNode, "duplicate faq id %q (first at %s): keep one", e.ID, first)
			continue
		}
		p.l.faqIDs[e.ID] = p.pos(idNode)
		p.l.d.FAQ = append(p.l.d.FAQ, e)
	}
}

// ---- handoff, lanes, policy ----

// keywords reads a keyword list, normalized as messages are before
// matching, without duplicates.
func (p *parser) keywords(n *yaml.Node, what string) ([]string, bool) {
	items, ok := p.list(n, what, "[转人工, 人工客服]")
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, good := p.text(it, "an item of "+what)
		if !good {
			ok = false
			continue
		}
		k := rules.Normalize(s).Text
		if k == "" {
			p.errf(it, "%s keyword %q is empty once normalized: remove it", what, s)
			ok = false
			continue
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, ok
}

// intentList reads a list of intent names, each checked once all files are
// read.
func (p *parser) intentList(n *yaml.Node, what string) []string {
	list, _ := p.names(n, what)
	out := make([]string, len(list))
	for i, it := range list {
		out[i] = it.name
		p.l.refs = append(p.l.refs, ref{refIntent, it.name, it.pos, what})
	}
	return out
}

func (p *parser) handoff(v *yaml.Node) {
	kvs, _ := p.mapping(v, "handoff")
	h := &p.l.d.Handoff
	for _, kv := range kvs {
		key := kv.key.Value
		what := "handoff." + key
		switch key {
		case "intents", "keywords", "max_fallbacks", "reply", "released":
		default:
			p.unknown(kv.key, "handoff", handoffKeys)
			continue
		}
		if !p.once(what, kv.key) {
			continue
		}
		switch key {
		case "intents":
			h.Intents = p.intentList(kv.value, what)
		case "keywords":
			h.Keywords, _ = p.keywords(kv.value, what)
		case "max_fallbacks":
			n, ok := p.integer(kv.value, what)
			if ok && n < 0 {
				p.errf(kv.value, "%s is %d: use 0 (never) or more", what, n)
			}
			h.MaxFallbacks = n
		case "reply", "released":
			s, ok := p.name(kv.value, what)
			if !ok {
				continue
			}
			if key == "reply" {
				h.Reply = s
			} else {
				h.Released = s
			}
			p.ref(refResponse, s, kv.value, what)
		}
	}
}

func (p *parser) lanes(v *yaml.Node) {
	kvs, _ := p.mapping(v, "lanes")
	for _, kv := range kvs {
		var rule *LaneRule
		switch kv.key.Value {
		case "urgent":
			rule = &p.l.d.Lanes.Urgent
		case "batch":
			rule = &p.l.d.Lanes.Batch
		case "normal":
			p.errf(kv.key, "lanes.normal is not needed: every turn that is not urgent or batch is normal; remove it")
			continue
		default:
			p.unknown(kv.key, "lanes", laneKeys)
			continue
		}
		what := "lanes." + kv.key.Value
		if !p.once(what, kv.key) {
			continue
		}
		props, _ := p.mapping(kv.value, what)
		for _, pr := range props {
			switch pr.key.Value {
			case "keywords":
				rule.Keywords, _ = p.keywords(pr.value, what+".keywords")
			case "intents":
				rule.Intents = p.intentList(pr.value, what+".intents")
			default:
				p.unknown(pr.key, what, laneRuleKeys)
			}
		}
	}
}

func (p *parser) policy(v *yaml.Node) {
	kvs, _ := p.mapping(v, "policy")
	pol := &p.l.d.Policy
	for _, kv := range kvs {
		key := kv.key.Value
		what := "policy." + key
		switch key {
		case "fallback_reply", "faq_threshold", "cancel_keywords", "resume_keywords", "skill_error":
		default:
			p.unknown(kv.key, "policy", policyKeys)
			continue
		}
		if !p.once(what, kv.key) {
			continue
		}
		switch key {
		case "fallback_reply", "skill_error":
			s, ok := p.name(kv.value, what)
			if !ok {
				continue
			}
			if key == "fallback_reply" {
				pol.FallbackReply = s
			} else {
				pol.SkillError = s
			}
			p.ref(refResponse, s, kv.value, what)
		case "faq_threshold":
			f, ok := p.number(kv.value, what)
			if ok && !(f > 0 && f <= 1) {
				p.errf(kv.value, "%s is %g: use a similarity above 0 and at most 1 (default 0.45)", what, f)
			}
			pol.FAQThreshold = f
		case "cancel_keywords", "resume_keywords":
			if isNull(kv.value) {
				continue // left empty: the default list
			}
			list, _ := p.keywords(kv.value, what)
			if key == "cancel_keywords" {
				pol.CancelKeywords = list
			} else {
				pol.ResumeKeywords = list
			}
		}
	}
}
