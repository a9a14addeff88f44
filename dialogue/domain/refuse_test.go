package domain

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

// TestRefusals loads a small domain per refusal the format lists and checks
// that the error names the right file and line. Every domain gets base.yml
// (minimal) besides its own files unless it sets noBase.
func TestRefusals(t *testing.T) {
	type file = map[string]string
	tests := []struct {
		name   string
		files  file
		noBase bool
		want   string // "file:line: part of the message"
	}{
		// Unknown keys, anywhere.
		{"unknown top-level key", file{"domain.yml": "intents: [greet]\nactions: [utter_greet]\n"},
			false, `d/domain.yml:2: unknown top-level key "actions": use name, intents`},
		{"unknown intent key", file{"domain.yml": "intents:\n  - greet:\n      replay: utter_default\n"},
			false, `d/domain.yml:3: unknown key "replay" in intent "greet": use reply, skill`},
		{"unknown slot key", file{"domain.yml": "slots:\n  order_id:\n    kind: text\n"},
			false, `d/domain.yml:3: unknown key "kind" in slot "order_id": use type, entities, from_text`},
		{"rasa slot mappings", file{"domain.yml": "slots:\n  order_id:\n    mappings: []\n"},
			false, `d/domain.yml:3: slot "order_id": Rasa slot mappings are not used`},
		{"unknown variant key", file{"domain.yml": "responses:\n  utter_x:\n    - text: hi\n      image: a.png\n"},
			false, `d/domain.yml:4: unknown key "image" in a variant of response "utter_x": use text, channels, markdown`},
		{"variant channel", file{"domain.yml": "responses:\n  utter_x:\n    - text: hi\n      channel: slack\n"},
			false, `d/domain.yml:4: response "utter_x": use channels: [name]`},
		{"unknown form key", file{"domain.yml": formWith("    required_slots: [a]\n")},
			false, `d/domain.yml:5: unknown key "required_slots" in form "f": use title, slots`},
		{"unknown form slot key", file{"domain.yml": formWith("") + "        ask: utter_default\n"},
			false, `d/domain.yml:8: unknown key "ask" in form "f" slot "order_no": use slot, prompt`},
		{"unknown validate key", file{"domain.yml": formWith("") + "        validate: {min: 3}\n"},
			false, `d/domain.yml:8: unknown key "min" in form "f" slot "order_no" validate: use regex, lookup, skill`},
		{"unknown submit key", file{"domain.yml": formWith("    submit: {action: x}\n")},
			false, `d/domain.yml:5: unknown key "action" in form "f" submit: use skill, reply`},
		{"unknown faq key", file{"domain.yml": "faq:\n  - id: a\n    questions: [q]\n    answer: x\n    answers: y\n"},
			false, `d/domain.yml:5: unknown key "answers" in faq "a": use id, intent`},
		{"unknown handoff key", file{"domain.yml": "handoff:\n  keyword: [人工]\n"},
			false, `d/domain.yml:2: unknown key "keyword" in handoff: use intents, keywords`},
		{"unknown lane", file{"domain.yml": "lanes:\n  slow: {keywords: [x]}\n"},
			false, `d/domain.yml:2: unknown key "slow" in lanes: use urgent, batch`},
		{"lanes.normal", file{"domain.yml": "lanes:\n  normal: {keywords: [x]}\n"},
			false, `d/domain.yml:2: lanes.normal is not needed`},
		{"unknown lane rule key", file{"domain.yml": "lanes:\n  urgent:\n    words: [急]\n"},
			false, `d/domain.yml:3: unknown key "words" in lanes.urgent: use keywords, intents`},
		{"unknown policy key", file{"domain.yml": "policy:\n  fallback: utter_default\n"},
			false, `d/domain.yml:2: unknown key "fallback" in policy: use fallback_reply`},
		{"unknown entity property", file{"domain.yml": "entities:\n  - city:\n      synonyms: [x]\n"},
			false, `d/domain.yml:3: unknown key "synonyms" in entity "city"`},

		// Wrong YAML types.
		{"intents not a list", file{"domain.yml": "intents:\n  greet: {}\n"},
			false, `d/domain.yml:2: intents must be a list, not a mapping`},
		{"reply a number", file{"domain.yml": "intents:\n  - greet:\n      reply: 42\n"},
			false, `d/domain.yml:3: intent "greet" reply must be a name, not a number`},
		{"faq flag a string", file{"domain.yml": "intents:\n  - fee:\n      faq: \"yes\"\n"},
			false, `d/domain.yml:3: intent "fee" faq must be true or false, not "yes"`},
		{"max_retries a word", file{"domain.yml": formWith("    max_retries: three\n")},
			false, `d/domain.yml:5: form "f" max_retries must be a whole number, not "three"`},
		{"faq_threshold a word", file{"domain.yml": "policy:\n  faq_threshold: high\n"},
			false, `d/domain.yml:2: policy.faq_threshold must be a number, not "high"`},
		{"responses a list", file{"domain.yml": "responses:\n  - utter_x\n"},
			false, `d/domain.yml:2: responses must be a mapping of keys, not a list`},
		{"variant a string", file{"domain.yml": "responses:\n  utter_x:\n    - hello\n"},
			false, `d/domain.yml:3: a variant of response "utter_x" must be a mapping like "- text: ..."`},
		{"top level a list", file{"domain.yml": "- intents\n"},
			false, `d/domain.yml:1: a domain file must be a mapping of sections`},
		{"keywords a string", file{"domain.yml": "handoff:\n  keywords: 转人工\n"},
			false, `d/domain.yml:2: handoff.keywords must be a list, not "转人工"`},
		{"slot type", file{"domain.yml": "slots:\n  n:\n    type: integer\n"},
			false, `d/domain.yml:3: slot "n" type "integer" is not a slot type: use text, number, bool, list or any`},
		{"lane value", file{"domain.yml": "intents:\n  - x:\n      lane: fast\n"},
			false, `d/domain.yml:3: intent "x" lane "fast" is not a lane: use urgent, normal or batch`},
		{"invalid yaml", file{"domain.yml": "intents:\n  - greet\n  - thanks\nresponses:\n  utter_x:\n    - text: \"open\n"},
			false, `d/domain.yml:6: invalid YAML: `},
		{"invalid yaml tab", file{"domain.yml": "intents:\n  - greet\n\t- thanks\n"},
			false, `d/domain.yml:3: invalid YAML: found a tab character`},
		{"invalid utf-8", file{"domain.yml": "intents:\n  - greet\n  - \xff\xfe\n"},
			false, `d/domain.yml:3: invalid UTF-8: save the file as UTF-8`},
		{"intent item indented wrong", file{"domain.yml": "intents:\n  - greet:\n    reply: utter_default\n"},
			false, `d/domain.yml:3: an intents item is one intent: indent "reply" under "greet"`},
		{"merge key", file{"domain.yml": "slots:\n  a: &a {type: text}\n  b:\n    <<: *a\n"},
			false, `d/domain.yml:4: merge keys (<<) are not supported`},

		// Empty names.
		{"empty intent name", file{"domain.yml": "intents:\n  - greet\n  - \"\"\n"},
			false, `d/domain.yml:3: an intent name is empty`},
		{"empty reply", file{"domain.yml": "intents:\n  - greet:\n      reply:\n"},
			false, `d/domain.yml:3: intent "greet" reply must be a name, not empty`},
		{"empty slot name", file{"domain.yml": "slots:\n  \" \": {}\n"},
			false, `d/domain.yml:2: a slot name is empty`},
		{"empty response text", file{"domain.yml": "responses:\n  utter_x:\n    - text: \"  \"\n"},
			false, `d/domain.yml:3: response "utter_x" text is empty`},
		{"variant without text", file{"domain.yml": "responses:\n  utter_x:\n    - markdown: true\n"},
			false, `d/domain.yml:3: a variant of response "utter_x" has no text`},
		{"response without variants", file{"domain.yml": "responses:\n  utter_x: []\n"},
			false, `d/domain.yml:2: response "utter_x" has no variants`},
		{"response name prefix", file{"domain.yml": "responses:\n  greet:\n    - text: hi\n"},
			false, `d/domain.yml:2: response name "greet" must start with utter_`},
		{"empty keyword", file{"domain.yml": "handoff:\n  keywords: [人工, \"\\u200b\"]\n"},
			false, `d/domain.yml:2: handoff.keywords keyword "\u200b" is empty once normalized`},

		// Duplicates, both places named.
		{"duplicate intent in two files", file{"a.yml": "intents:\n  - greet\n", "b.yml": "intents:\n  - thanks\n  - greet: {reply: utter_default}\n"},
			false, `d/b.yml:3: duplicate intent "greet" (first at d/a.yml:2)`},
		{"duplicate response in two files", file{"a.yml": "responses:\n  utter_x:\n    - text: a\n", "b.yml": "\nresponses:\n  utter_x:\n    - text: b\n"},
			false, `d/b.yml:3: duplicate response "utter_x" (first at d/a.yml:2)`},
		{"duplicate slot", file{"a.yml": "slots:\n  s: {}\n", "b.yml": "slots:\n  s: {type: any}\n"},
			false, `d/b.yml:2: duplicate slot "s" (first at d/a.yml:2)`},
		{"duplicate form", file{"a.yml": formWith(""), "b.yml": "\n\n" + formWith("")},
			false, `d/b.yml:6: duplicate form "f" (first at d/a.yml:4)`},
		{"duplicate faq id", file{"a.yml": "faq:\n  - id: fee\n    questions: [q]\n    answer: a\n  - id: fee\n    questions: [r]\n    answer: b\n"},
			false, `d/a.yml:5: duplicate faq id "fee" (first at d/a.yml:2)`},
		{"duplicate key in one mapping", file{"domain.yml": "intents: [a]\nintents: [b]\n"},
			false, `d/domain.yml:2: duplicate key "intents" (first at line 1)`},
		{"setting in two files", file{"domain.yml": "policy:\n  fallback_reply: utter_default\n"},
			false, `d/domain.yml:2: policy.fallback_reply is set twice`},
		{"form slot twice", file{"domain.yml": formWith("") + "      - slot: order_no\n        prompt: utter_default\n"},
			false, `d/domain.yml:8: form "f" asks for slot "order_no" twice (first at d/domain.yml:6)`},

		// Intent actions.
		{"reply unknown response", file{"domain.yml": "intents:\n  - greet:\n      reply: utter_greet\n"},
			false, `d/domain.yml:3: intent "greet" reply: unknown response "utter_greet": declare it under responses:`},
		{"form unknown form", file{"domain.yml": "intents:\n  - r:\n      form: return_goods\n"},
			false, `d/domain.yml:3: intent "r" form: unknown form "return_goods": declare it under forms:`},
		{"reply and form", file{"domain.yml": "intents:\n  - r:\n      reply: utter_default\n      form: f\n"},
			false, `d/domain.yml:4: intent "r" has both reply and form: give it one action`},
		{"faq and resume", file{"domain.yml": "intents:\n  - r:\n      faq: true\n      resume: true\n"},
			false, `d/domain.yml:4: intent "r" has both faq and resume`},
		{"handoff and form", file{"domain.yml": "intents:\n  - r:\n      form: f\n      handoff: true\n"},
			false, `d/domain.yml:4: intent "r" has both form and handoff: handoff goes alone or with reply`},
		{"handoff and skill", file{"domain.yml": "intents:\n  - r:\n      skill: s\n      reply: utter_default\n      handoff: true\n"},
			false, `d/domain.yml:5: intent "r" has both skill and handoff`},
		{"faq without entries", file{"domain.yml": "intents:\n  - fee:\n      faq: true\n"},
			false, `d/domain.yml:3: intent "fee" has faq: true but the domain has no faq entries`},

		// Templates.
		{"unknown slot in template", file{"domain.yml": "slots:\n  order_id: {}\nresponses:\n  utter_x:\n    - text: \"订单 {order_id} 到 {city}\"\n"},
			false, `d/domain.yml:5: response "utter_x": unknown slot {city}: declare it under slots:`},
		{"unknown slot in block line", file{"domain.yml": "responses:\n  utter_x:\n    - text: |\n        第一行\n        第二行 {city}\n"},
			false, `d/domain.yml:5: response "utter_x": unknown slot {city}`},
		{"unbalanced open brace", file{"domain.yml": "responses:\n  utter_x:\n    - text: \"a {b\"\n"},
			false, `d/domain.yml:3: response "utter_x": unbalanced "{"`},
		{"unbalanced close brace", file{"domain.yml": "responses:\n  utter_x:\n    - text: |\n        a\n        b}\n"},
			false, `d/domain.yml:5: response "utter_x": unbalanced "}": write "}}"`},
		{"empty placeholder", file{"domain.yml": "responses:\n  utter_x:\n    - text: \"a {} b\"\n"},
			false, `d/domain.yml:3: response "utter_x": empty placeholder "{}"`},

		// Forms.
		{"form slot not declared", file{"domain.yml": "forms:\n  f:\n    slots:\n      - slot: order_id\n        prompt: utter_default\n"},
			false, `d/domain.yml:4: form "f" asks for slot "order_id", which is not declared: declare it under slots:`},
		{"form slot nothing fills", file{"domain.yml": "slots:\n  reason: {entities: [reason, why]}\nforms:\n  f:\n    slots:\n      - slot: reason\n        prompt: utter_default\n"},
			false, `d/domain.yml:6: form "f" asks for slot "reason", which nothing can fill: none of its entities [reason why]`},
		{"form slot prompt unknown", file{"domain.yml": "slots:\n  order_no: {}\nforms:\n  f:\n    slots:\n      - slot: order_no\n        prompt: utter_ask_order_no\n"},
			false, `d/domain.yml:7: form "f" slot "order_no" prompt: unknown response "utter_ask_order_no"`},
		{"form slot invalid unknown", file{"domain.yml": formWith("") + "        invalid: utter_bad\n"},
			false, `d/domain.yml:8: form "f" slot "order_no" invalid: unknown response "utter_bad"`},
		{"form slot without prompt", file{"domain.yml": "slots:\n  order_no: {}\nforms:\n  f:\n    slots:\n      - slot: order_no\n"},
			false, `d/domain.yml:6: form "f" slot "order_no" has no prompt: add prompt: utter_ask_order_no`},
		{"form slot without name", file{"domain.yml": "forms:\n  f:\n    slots:\n      - prompt: utter_default\n"},
			false, `d/domain.yml:4: a slot of form "f" has no slot: name`},
		{"form without slots", file{"domain.yml": "forms:\n  f:\n    title: x\n"},
			false, `d/domain.yml:2: form "f" has no slots`},
		{"bad regex", file{"domain.yml": formWith("") + "        validate:\n          regex: '(?<=x)\\d+'\n"},
			false, `d/domain.yml:9: form "f" slot "order_no" validate.regex "(?<=x)\\d+" does not compile as Go RE2`},
		{"empty lookup", file{"domain.yml": formWith("") + "        validate: {lookup: []}\n"},
			false, `d/domain.yml:8: form "f" slot "order_no" validate.lookup is empty`},
		{"max_retries zero", file{"domain.yml": formWith("    max_retries: 0\n")},
			false, `d/domain.yml:5: form "f" max_retries is 0: it must be at least 1`},
		{"submit reply unknown", file{"domain.yml": formWith("    submit: {reply: utter_done}\n")},
			false, `d/domain.yml:5: form "f" submit.reply: unknown response "utter_done"`},
		{"resume unknown", file{"domain.yml": formWith("    resume: utter_resume\n")},
			false, `d/domain.yml:5: form "f" resume: unknown response "utter_resume"`},

		// Hand-off, lanes, policy.
		{"handoff intent not declared", file{"domain.yml": "intents: [greet]\nhandoff:\n  intents: [greet, human]\n"},
			false, `d/domain.yml:3: handoff.intents: unknown intent "human": declare it under intents:`},
		{"handoff reply unknown", file{"domain.yml": "handoff:\n  reply: utter_handoff\n"},
			false, `d/domain.yml:2: handoff.reply: unknown response "utter_handoff"`},
		{"handoff max_fallbacks negative", file{"domain.yml": "handoff:\n  max_fallbacks: -1\n"},
			false, `d/domain.yml:2: handoff.max_fallbacks is -1`},
		{"lane intent not declared", file{"domain.yml": "lanes:\n  batch:\n    intents:\n      - export\n"},
			false, `d/domain.yml:4: lanes.batch.intents: unknown intent "export"`},
		{"fallback_reply missing", file{"domain.yml": "responses:\n  utter_default:\n    - text: x\n"},
			true, `d: policy.fallback_reply is missing`},
		{"fallback_reply unknown", file{"domain.yml": "policy:\n  fallback_reply: utter_fallback\n"},
			true, `d/domain.yml:2: policy.fallback_reply: unknown response "utter_fallback"`},
		{"skill_error unknown", file{"domain.yml": "policy:\n  skill_error: utter_oops\n"},
			false, `d/domain.yml:2: policy.skill_error: unknown response "utter_oops"`},
		{"faq_threshold zero", file{"domain.yml": "policy:\n  faq_threshold: 0\n"},
			false, `d/domain.yml:2: policy.faq_threshold is 0: use a similarity above 0 and at most 1`},
		{"faq_threshold above one", file{"domain.yml": "policy:\n  faq_threshold: 1.5\n"},
			false, `d/domain.yml:2: policy.faq_threshold is 1.5`},

		// FAQ.
		{"faq without questions", file{"domain.yml": "faq:\n  - id: a\n    answer: x\n"},
			false, `d/domain.yml:2: faq "a" has no questions`},
		{"faq empty questions", file{"domain.yml": "faq:\n  - id: a\n    questions: []\n    answer: x\n"},
			false, `d/domain.yml:3: faq "a" has no questions`},
		{"faq empty question", file{"domain.yml": "faq:\n  - id: a\n    questions: [ok, \"\"]\n    answer: x\n"},
			false, `d/domain.yml:3: an item of faq "a" questions is empty`},
		{"faq empty answer", file{"domain.yml": "faq:\n  - id: a\n    questions: [q]\n    answer: \"\"\n"},
			false, `d/domain.yml:4: faq "a" answer is empty`},
		{"faq without answer", file{"domain.yml": "faq:\n  - id: a\n    questions: [q]\n"},
			false, `d/domain.yml:2: faq "a" has no answer`},
		{"faq without id", file{"domain.yml": "faq:\n  - questions: [q]\n    answer: a\n"},
			false, `d/domain.yml:2: a faq entry has no id`},
		{"faq intent not declared", file{"domain.yml": "faq:\n  - id: a\n    intent: fee\n    questions: [q]\n    answer: a\n"},
			false, `d/domain.yml:3: faq "a" intent: unknown intent "fee"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			if !tt.noBase {
				fsys["base.yml"] = &fstest.MapFile{Data: []byte(minimal)}
			}
			for name, data := range tt.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			d, err := LoadFS(fsys, "d")
			if err == nil {
				t.Fatalf("loaded %d intents, want an error %q", len(d.Intents), tt.want)
			}
			lines := errorLines(err)
			found := false
			for _, l := range lines {
				found = found || strings.HasPrefix(l, tt.want)
			}
			if !found {
				t.Errorf("errors:\n  %s\nwant one starting with\n  %s", strings.Join(lines, "\n  "), tt.want)
			}
			// Every error is an *Error with advice after the last colon.
			for _, e := range flatten(err) {
				var de *Error
				if !errors.As(e, &de) {
					t.Errorf("%T %v is not an *Error", e, e)
				}
			}
		})
	}
}

// formWith is a domain with form f asking for order_no (a rule type), with
// formKeys (one line, 4-space indent) at line 5 before its slots; form slot
// keys (8-space indent) may be appended at line 8 when formKeys is empty.
func formWith(formKeys string) string {
	return "slots:\n  order_no: {}\nforms:\n  f:\n" + formKeys + "    slots:\n      - slot: order_no\n        prompt: utter_default\n"
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestAliasBudget(t *testing.T) {
	// 300 forms name one slot list of 300 slots that name one lookup of 300
	// values: a 10 KB file that would take 27 million visits to walk.
	var b strings.Builder
	b.WriteString(minimal + "slots:\n  order_no: {}\nforms:\n  f0:\n    slots: &slots\n")
	b.WriteString("      - &slot\n        slot: order_no\n        prompt: utter_default\n        validate:\n          lookup: [")
	for i := range 300 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("v")
	}
	b.WriteString("]\n")
	for range 299 {
		b.WriteString("      - *slot\n")
	}
	for i := 1; i < 300; i++ {
		fmt.Fprintf(&b, "  f%d: {slots: *slots}\n", i)
	}
	_, err := LoadFS(fstest.MapFS{"d.yml": {Data: []byte(b.String())}}, "d")
	if err == nil || !strings.Contains(err.Error(), "too many YAML nodes") {
		t.Errorf("err = %.300v", err)
	}
}
