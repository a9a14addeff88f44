package domain

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
)

// Domain is a loaded, checked domain folder. Load and LoadFS return it;
// nothing changes it afterwards, so it is safe for concurrent use. Maps are
// keyed by name; positions name the file and line of each declaration.
type Domain struct {
	Name      string
	Source    string // folder path, or the source given to LoadFS ("builtin")
	Hash      string // sha256 hex over the files' names+bytes (sorted), for logs/audit
	Intents   map[string]*Intent
	Entities  []string // declared entity types (sorted); rule extractor types are known besides
	Slots     map[string]*Slot
	Responses map[string]*Response
	Forms     map[string]*Form
	FAQ       []*FAQEntry // in file order
	Handoff   Handoff
	Lanes     Lanes
	Policy    Policy

	// skills are the skill references with the line of each skill: key,
	// filled by the loader; Skills derives them from the fields otherwise.
	skills []SkillRef
}

// Intent is one entry of intents:. At most one of Reply, Skill, Form, FAQ,
// Resume and Cancel is its main action, except that Skill may come with
// Reply (sent when the skill is unavailable or answers nothing) and Handoff
// may come with Reply or alone. An intent with none of them answers with
// Policy.FallbackReply unless something else (a form, hand-off) applies.
type Intent struct {
	Name, Reply, Skill, Form     string
	FAQ, Handoff, Resume, Cancel bool
	// Lane is "", "urgent", "normal" or "batch". Lanes.Urgent.Intents and
	// Lanes.Batch.Intents name intents too; callers check both.
	Lane string
	Pos  Pos
}

// SlotType is the type of a slot's value.
type SlotType string

// Slot types.
const (
	SlotText   SlotType = "text"
	SlotNumber SlotType = "number"
	SlotBool   SlotType = "bool"
	SlotList   SlotType = "list"
	SlotAny    SlotType = "any"
)

// Slot is one entry of slots:. Entities are the entity types that fill it
// (default: the slot's own name); FromText lets a form take the whole message
// as the value when it asked for this slot and no entity filled it.
type Slot struct {
	Name     string
	Type     SlotType // default SlotText
	Entities []string
	FromText bool
	Pos      Pos
}

// Response is one entry of responses:, with at least one variant.
type Response struct {
	Name     string
	Variants []Variant
	Pos      Pos
}

// Variant is one text a response may say. Channels, when not empty, limit it
// to those channels (where it is preferred to the generic variants).
type Variant struct {
	Text     string
	Channels []string
	Markdown bool

	// segs is Text compiled at load; nil for a Variant built by hand.
	segs []segment
}

// Form is one entry of forms:. Slots are asked in order.
type Form struct {
	Name, Title string // Title defaults to Name
	Slots       []FormSlot
	MaxRetries  int // invalid answers for one slot before hand-off, ≥1 (default 3)
	Submit      Submit
	Resume      string // response name or ""
	Pos         Pos
}

// FormSlot is one slot a form asks for.
type FormSlot struct {
	Slot, Prompt, Invalid string // Invalid "" means re-prompt
	Optional              bool
	Validate              Validation
	Pos                   Pos
}

// Validation holds a form slot's checks; every one given must pass. Regex is
// nil, Lookup nil and Skill "" when not given.
type Validation struct {
	Regex  *regexp.Regexp
	Lookup []string // trimmed allowed values, compared exactly
	Skill  string   // called with Purpose "validate"
}

// Submit is what a form does once every slot is filled; both may be "".
type Submit struct{ Skill, Reply string }

// FAQEntry is one entry of faq:. Questions and Answer are never empty.
type FAQEntry struct {
	ID, Intent string
	Questions  []string
	Answer     string
	Pos        Pos
}

// Handoff says when to hand the conversation to a human. Keywords are
// normalized with rules.Normalize and match as substrings of the normalized
// message. MaxFallbacks consecutive unanswered turns hand off (default 2; 0
// never). Reply and Released are response names or "". Intents with
// Intent.Handoff set hand off too.
type Handoff struct {
	Intents, Keywords []string
	MaxFallbacks      int
	Reply, Released   string
}

// LaneRule sends a turn to a lane when the normalized message contains one
// of Keywords (normalized like Handoff.Keywords) or its intent is listed.
type LaneRule struct{ Keywords, Intents []string }

// Lanes are the urgent and batch rules; every other turn is normal.
type Lanes struct{ Urgent, Batch LaneRule }

// Policy holds the dialogue policy's settings. FallbackReply is always a
// known response. FAQThreshold is in (0,1] (default 0.45). The keyword lists
// are normalized like Handoff.Keywords; left out, they default to
// [算了 取消 不用了 不办了 不要了] and [继续刚才 接着刚才 刚才的问题]. SkillError is a
// response name or "" (the engine's built-in apology).
type Policy struct {
	FallbackReply                  string
	FAQThreshold                   float64
	CancelKeywords, ResumeKeywords []string
	SkillError                     string
}

// SkillRef is one place the domain names a skill.
type SkillRef struct {
	Name string
	Pos  Pos
}

// Skills returns every skill the domain references (intent skill:, form
// validate.skill and submit.skill), sorted by name then position, so the
// caller can refuse unknown ones with file and line. The caller owns the
// slice.
func (d *Domain) Skills() []SkillRef {
	var refs []SkillRef
	if d.skills != nil {
		refs = slices.Clone(d.skills)
	} else {
		for _, in := range d.Intents {
			if in.Skill != "" {
				refs = append(refs, SkillRef{in.Skill, in.Pos})
			}
		}
		for _, f := range d.Forms {
			for _, fs := range f.Slots {
				if fs.Validate.Skill != "" {
					refs = append(refs, SkillRef{fs.Validate.Skill, fs.Pos})
				}
			}
			if f.Submit.Skill != "" {
				refs = append(refs, SkillRef{f.Submit.Skill, f.Pos})
			}
		}
	}
	slices.SortFunc(refs, func(a, b SkillRef) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), comparePos(a.Pos, b.Pos))
	})
	return refs
}

// CheckSkills returns an *Error for every skill reference that known
// rejects (errors.Join of at most 20, in file and line order), or
// nil. A nil known
// knows no skill.
func (d *Domain) CheckSkills(known func(name string) bool) error {
	errs := &errList{source: d.Source}
	for _, r := range d.Skills() {
		if known == nil || !known(r.Name) {
			errs.add(r.Pos, "unknown skill %q: configure a skill of that name or fix the name", r.Name)
		}
	}
	return errs.err()
}

// IntentNames returns the declared intent names, sorted. The caller owns
// the slice.
func (d *Domain) IntentNames() []string {
	names := make([]string, 0, len(d.Intents))
	for name := range d.Intents {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
