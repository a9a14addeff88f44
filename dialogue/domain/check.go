package domain

import (
	"slices"

	"github.com/zhiyin/zhiyin/dialogue/nlu/rules"
)

// Defaults of the settings the domain may leave out.
const (
	defaultMaxRetries   = 3
	defaultFAQThreshold = 0.45
	defaultMaxFallbacks = 2
)

func defaultCancelKeywords() []string {
	return []string{"算了", "取消", "不用了", "不办了", "不要了"}
}
func defaultResumeKeywords() []string {
	return []string{"继续刚才", "接着刚才", "刚才的问题"}
}

// ruleType reports whether typ is an entity type the rule extractors emit.
func ruleType(typ string) bool {
	switch typ {
	case rules.TypePhone, rules.TypeLandline, rules.TypeEmail, rules.TypeIDCard, rules.TypeOrderNo,
		rules.TypeTrackingNo, rules.TypeAmount, rules.TypeDateTime, rules.TypeDate, rules.TypeTime, rules.TypeQuantity:
		return true
	}
	return false
}

// check runs the checks that need every file: references, form slots and
// the required policy.
func (l *loader) check() {
	d := l.d
	for _, r := range l.refs {
		switch r.kind {
		case refResponse:
			if d.Responses[r.name] == nil {
				l.errs.add(r.pos, "%s: unknown response %q: declare it under responses: or fix the name", r.what, r.name)
			}
		case refForm:
			if d.Forms[r.name] == nil {
				l.errs.add(r.pos, "%s: unknown form %q: declare it under forms: or fix the name", r.what, r.name)
			}
		case refIntent:
			if d.Intents[r.name] == nil {
				l.errs.add(r.pos, "%s: unknown intent %q: declare it under intents: or fix the name", r.what, r.name)
			}
		case refSlot:
			if d.Slots[r.name] == nil {
				l.errs.add(r.pos, "%s: unknown slot {%s}: declare it under slots:, or write {{ and }} for literal braces", r.what, r.name)
			}
		}
	}
	if len(d.FAQ) == 0 {
		for _, r := range l.faqOn {
			l.errs.add(r.pos, "%s has faq: true but the domain has no faq entries: add them under faq:", r.what)
		}
	}
	for _, name := range sortedKeys(d.Forms) {
		f := d.Forms[name]
		for _, fs := range f.Slots {
			s := d.Slots[fs.Slot]
			switch {
			case s == nil:
				l.errs.add(fs.Pos, "form %q asks for slot %q, which is not declared: declare it under slots:", name, fs.Slot)
			case !s.FromText && !slices.ContainsFunc(s.Entities, func(e string) bool { return l.entities[e] || ruleType(e) }):
				l.errs.add(fs.Pos, "form %q asks for slot %q, which nothing can fill: none of its entities %v is declared under entities: or a rule type; declare one, or set from_text: true on the slot", name, fs.Slot, s.Entities)
			}
		}
	}
	if _, ok := l.set["policy.fallback_reply"]; !ok {
		l.errs.add(Pos{File: d.Source}, "policy.fallback_reply is missing: add \"policy: {fallback_reply: utter_default}\" to a domain file, with that response")
	}
}

// defaults fills in what the domain left out and sorts the entity list.
func (l *loader) defaults() {
	d := l.d
	if _, ok := l.set["policy.faq_threshold"]; !ok {
		d.Policy.FAQThreshold = defaultFAQThreshold
	}
	if d.Policy.CancelKeywords == nil {
		d.Policy.CancelKeywords = normalizeAll(defaultCancelKeywords())
	}
	if d.Policy.ResumeKeywords == nil {
		d.Policy.ResumeKeywords = normalizeAll(defaultResumeKeywords())
	}
	if _, ok := l.set["handoff.max_fallbacks"]; !ok {
		d.Handoff.MaxFallbacks = defaultMaxFallbacks
	}
	d.Entities = sortedKeys(l.entities)
	if d.skills == nil {
		d.skills = []SkillRef{} // loaded: Skills reads these, not the fields
	}
}

func normalizeAll(list []string) []string {
	for i, s := range list {
		list[i] = rules.Normalize(s).Text
	}
	return list
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
