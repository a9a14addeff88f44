package dialogue

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zhiyin/zhiyin/dialogue/domain"
	"github.com/zhiyin/zhiyin/dialogue/lanes"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/dialogue/nlu/rules"
	"github.com/zhiyin/zhiyin/dialogue/session"
	"github.com/zhiyin/zhiyin/dialogue/skill"
)

// Responses the engine says on its own; a domain may define them to change
// the wording.
const (
	respCancelled     = "utter_cancelled"
	respNothingCancel = "utter_nothing_to_cancel"
	respResumed       = "utter_resumed"
	respNothingResume = "utter_nothing_to_resume"
	respContinueForm  = "utter_continue_form"
)

// builtinText is the wording used when the domain defines none of its own.
var builtinText = map[string]string{
	respCancelled:     "好的，已为您取消{form}。",
	respNothingCancel: "好的。请问还有什么可以帮您？",
	respResumed:       "好的，我们接着刚才的对话。",
	respNothingResume: "没有找到可以继续的对话，请直接告诉我您要办理的事情。",
	respContinueForm:  "我们继续刚才的{form}…",
	"skill_error":     "抱歉，系统暂时查询不到结果，请稍后再试，或回复“转人工”联系人工客服。",
	"handoff":         "正在为您转接人工客服，请稍候。",
	"fallback":        "抱歉，我没有理解您的意思，可以换个说法吗？",
}

// freeTextInterrupt is the confidence an intent needs to interrupt a form
// that is waiting for free text.
const freeTextInterrupt = 0.7

// skipWords decline an optional slot.
var skipWords = []string{"不需要", "不用", "没有", "跳过", "不填", "无"}

// turn is the policy's work on one message: it reads the parse and the
// session's state (its own copy) and collects replies and changes.
type turn struct {
	e       *Engine
	ld      *loaded
	m       *Message
	parse   *nlu.Result
	norm    string
	lane    lanes.Lane
	now     time.Time
	sess    *session.Session
	st      *state
	started bool // the session starts with this turn

	replies       []Reply
	handoff       *session.HandoffEntry
	handoffReason string
	answered      bool // something other than the fallback answered
}

func normText(s string) string { return rules.Normalize(s).Text }

func (t *turn) dom() *domain.Domain { return t.ld.dom }

// run is the policy. Order: a conversation with a human gets no bot reply;
// then cancel, resume, explicit hand-off, slot filling, the open form, and
// the intent's own action.
func (t *turn) run(ctx context.Context) error {
	t.st.noteIntent(t.parse.Intent.Name)
	t.st.Lane = t.lane.String()
	t.dropUnknownForms()
	if t.sess.Handoff != "" {
		return nil // a human has it: stay silent
	}
	d := t.dom()
	in := d.Intents[t.parse.Intent.Name]
	switch {
	case (in != nil && in.Cancel) || containsAny(t.norm, d.Policy.CancelKeywords):
		t.cancel(ctx)
		return nil
	case (in != nil && in.Resume) || containsAny(t.norm, d.Policy.ResumeKeywords):
		return t.resume(ctx)
	case containsAny(t.norm, d.Handoff.Keywords):
		t.startHandoff(ctx, "keyword")
		return nil
	}
	filled := t.fillFromEntities(ctx)
	if f := t.st.top(); f != nil {
		if t.answersForm(f, in, filled) {
			t.continueForm(ctx, f, filled)
			t.finish()
			return nil
		}
		// An interruption: answer it, then come back to the form.
		f.Interrupted = true
		depth := len(t.st.Stack)
		t.act(ctx, in)
		if len(t.st.Stack) == depth && t.handoff == nil && t.st.top() != nil {
			t.resumeForm(ctx, t.st.top())
		}
		t.finish()
		return nil
	}
	t.act(ctx, in)
	t.finish()
	return nil
}

// finish resets the fallback count after an answered turn.
func (t *turn) finish() {
	if t.answered {
		t.st.Fallbacks = 0
	}
}

// act runs the intent's own action.
func (t *turn) act(ctx context.Context, in *domain.Intent) {
	d := t.dom()
	if in == nil || t.parse.Intent.Name == nlu.FallbackIntent {
		t.fallback(ctx)
		return
	}
	handoff := in.Handoff || slices.Contains(d.Handoff.Intents, in.Name)
	switch {
	case in.Form != "":
		t.startForm(ctx, in.Form)
	case in.FAQ:
		if !t.answerFAQ(in.Name, true) {
			t.fallback(ctx)
		}
	case in.Skill != "":
		if !t.callSkill(ctx, in.Skill, &skill.Request{Purpose: skill.Answer}) && in.Reply != "" {
			t.say(in.Reply)
		}
		t.answered = true
	case in.Reply != "":
		t.say(in.Reply)
		t.answered = true
	case handoff:
	default:
		t.fallback(ctx)
		return
	}
	if handoff {
		t.startHandoff(ctx, "intent:"+in.Name)
	}
}

// fallback tries the FAQ, then says the fallback reply; repeated fallbacks
// hand the conversation off.
func (t *turn) fallback(ctx context.Context) {
	if t.answerFAQ("", false) {
		return
	}
	d := t.dom()
	t.st.Fallbacks++
	t.e.m.fallbacks.Inc()
	if d.Handoff.MaxFallbacks > 0 && t.st.Fallbacks >= d.Handoff.MaxFallbacks {
		t.startHandoff(ctx, "fallbacks")
		return
	}
	t.say(d.Policy.FallbackReply)
}

// answerFAQ answers from the FAQ: the best entry above the threshold, or
// (force, for an FAQ intent) the best entry of that intent whatever its
// score.
func (t *turn) answerFAQ(intent string, force bool) bool {
	hit, ok := t.ld.faq.Search(t.m.Text, intent)
	if !ok || hit.Entry == nil {
		return false
	}
	if hit.Score < t.dom().Policy.FAQThreshold && !(force && hit.Entry.Intent == intent) {
		return false
	}
	t.replies = append(t.replies, Reply{Text: hit.Entry.Answer})
	t.answered = true
	return true
}

// fillFromEntities puts the message's entities into the slots that take
// them. Slots of the open form are validated first; it returns the slots
// filled.
func (t *turn) fillFromEntities(ctx context.Context) []string {
	d := t.dom()
	var filled []string
	f := t.st.top()
	var form *domain.Form
	if f != nil {
		form = d.Forms[f.Form]
	}
	for _, en := range t.parse.Entities {
		value := en.Normalized
		if value == "" {
			value = en.Value
		}
		for _, sl := range t.ld.slotsFor[en.Type] {
			if slices.Contains(filled, sl.Name) {
				continue
			}
			if fs := formSlot(form, sl.Name); fs != nil {
				if !t.valid(ctx, form, fs, value) {
					continue
				}
				if !slices.Contains(f.Filled, sl.Name) {
					f.Filled = append(f.Filled, sl.Name)
				}
			}
			t.st.setSlot(sl.Name, value)
			filled = append(filled, sl.Name)
		}
	}
	return filled
}

// answersForm decides whether the message belongs to the open form: it
// filled one of its slots, or it is not a request of its own.
func (t *turn) answersForm(f *frame, in *domain.Intent, filled []string) bool {
	d := t.dom()
	form := d.Forms[f.Form]
	for _, s := range filled {
		if formSlot(form, s) != nil {
			return true
		}
	}
	if in == nil || t.parse.Intent.Name == nlu.FallbackIntent || in.Form == f.Form || !hasAction(in) {
		return true
	}
	// A free-text answer (a reason, an address) is taken as the answer
	// unless it confidently asks for something that has its own
	// process: another form, a skill, the FAQ, a human.
	if fs := formSlot(form, f.Slot); fs != nil && d.Slots[fs.Slot] != nil && d.Slots[fs.Slot].FromText {
		ownProcess := in.Form != "" || in.Skill != "" || in.FAQ || slices.Contains(d.Handoff.Intents, in.Name)
		return !(ownProcess && t.parse.Intent.Confidence >= freeTextInterrupt)
	}
	return false
}

func hasAction(in *domain.Intent) bool {
	return in.Reply != "" || in.Skill != "" || in.Form != "" || in.FAQ || in.Handoff || in.Resume || in.Cancel
}

// continueForm takes the answer to the slot asked for, then asks for the
// next one or submits.
func (t *turn) continueForm(ctx context.Context, f *frame, filled []string) {
	t.answered = true
	d := t.dom()
	form := d.Forms[f.Form]
	f.Interrupted = false
	// A message that filled slots by entities (a correction) is not also
	// the answer to the slot asked for.
	if fs := formSlot(form, f.Slot); fs != nil && len(filled) == 0 {
		if !t.looksLikeAnswer(fs) && t.answerFAQ("", false) {
			// A question from the FAQ, not an answer.
			t.resumeForm(ctx, f)
			return
		}
		if !t.takeAnswer(ctx, f, form, fs) {
			return
		}
	}
	t.nextSlot(ctx, f, form)
}

// looksLikeAnswer: the slot takes free text, or the text matches its
// pattern.
func (t *turn) looksLikeAnswer(fs *domain.FormSlot) bool {
	if sl := t.dom().Slots[fs.Slot]; sl != nil && sl.FromText {
		return true
	}
	return fs.Validate.Regex != nil && fs.Validate.Regex.MatchString(strings.TrimSpace(t.m.Text))
}

// takeAnswer reads the message as the value of the slot asked for; it
// reports false when it said something (an invalid value, a hand-off).
func (t *turn) takeAnswer(ctx context.Context, f *frame, form *domain.Form, fs *domain.FormSlot) bool {
	d := t.dom()
	text := strings.TrimSpace(t.m.Text)
	if fs.Optional && (t.parse.Intent.Name == "deny" || slices.Contains(skipWords, strings.Trim(t.norm, "。.!！ "))) {
		f.Skipped = append(f.Skipped, fs.Slot)
		return true
	}
	var value string
	switch {
	case fs.Validate.Regex != nil && fs.Validate.Regex.MatchString(text):
		value = text
	case d.Slots[fs.Slot] != nil && d.Slots[fs.Slot].FromText:
		value = text
	}
	if value != "" && t.valid(ctx, form, fs, value) {
		t.st.setSlot(fs.Slot, value)
		if !slices.Contains(f.Filled, fs.Slot) {
			f.Filled = append(f.Filled, fs.Slot)
		}
		f.Retries = 0
		return true
	}
	f.Retries++
	if f.Retries >= form.MaxRetries {
		t.startHandoff(ctx, "form_retries")
		return false
	}
	if fs.Invalid != "" {
		t.say(fs.Invalid)
	}
	t.say(fs.Prompt)
	return false
}

// valid checks a value against the form slot's validation.
func (t *turn) valid(ctx context.Context, form *domain.Form, fs *domain.FormSlot, value string) bool {
	d := t.dom()
	if sl := d.Slots[fs.Slot]; sl != nil && sl.Type == "number" {
		if _, err := strconv.ParseFloat(value, 64); err != nil {
			return false
		}
	}
	v := fs.Validate
	if v.Regex != nil && !v.Regex.MatchString(value) {
		return false
	}
	if len(v.Lookup) > 0 && !slices.Contains(v.Lookup, strings.TrimSpace(value)) {
		return false
	}
	if v.Skill != "" {
		resp, ok := t.skill(ctx, v.Skill, &skill.Request{Purpose: skill.Validate, Form: form.Name, Slot: fs.Slot, Value: value})
		if !ok {
			return true // the checker is down: accept rather than trap the customer
		}
		if resp.Valid != nil && !*resp.Valid {
			t.addReplies(resp.Replies)
			return false
		}
	}
	return true
}

// nextSlot asks for the first missing slot, or submits the form.
func (t *turn) nextSlot(ctx context.Context, f *frame, form *domain.Form) {
	for _, fs := range form.Slots {
		if t.st.Slots[fs.Slot] != "" || slices.Contains(f.Skipped, fs.Slot) {
			continue
		}
		if f.Slot != fs.Slot {
			f.Slot, f.Retries = fs.Slot, 0
		}
		t.say(fs.Prompt)
		return
	}
	t.submit(ctx, form)
}

// submit completes the top form: its skill, its reply, then the form below
// (if any) resumes.
func (t *turn) submit(ctx context.Context, form *domain.Form) {
	if form.Submit.Skill != "" {
		t.callSkill(ctx, form.Submit.Skill, &skill.Request{Purpose: skill.Submit, Form: form.Name})
	}
	if form.Submit.Reply != "" {
		t.say(form.Submit.Reply)
	}
	t.st.Stack = t.st.Stack[:len(t.st.Stack)-1]
	t.answered = true
	if f := t.st.top(); f != nil && t.handoff == nil {
		t.resumeForm(ctx, f)
	}
}

// startForm opens a form (or, when it is already open, goes back to it).
func (t *turn) startForm(ctx context.Context, name string) {
	t.answered = true
	for i := range t.st.Stack {
		if t.st.Stack[i].Form == name {
			f := t.st.Stack[i]
			t.st.Stack = append(slices.Delete(t.st.Stack, i, i+1), f)
			t.nextSlot(ctx, t.st.top(), t.dom().Forms[name])
			return
		}
	}
	t.st.Stack = append(t.st.Stack, frame{Form: name})
	f := t.st.top()
	form := t.dom().Forms[name]
	for _, fs := range form.Slots { // slots this message already filled count as answers
		if t.st.Slots[fs.Slot] != "" && slices.ContainsFunc(t.parse.Entities, func(en nlu.Entity) bool {
			return slices.Contains(t.dom().Slots[fs.Slot].Entities, en.Type)
		}) {
			f.Filled = append(f.Filled, fs.Slot)
		}
	}
	t.nextSlot(ctx, f, form)
}

// resumeForm says where the form stood and asks again for the slot.
func (t *turn) resumeForm(ctx context.Context, f *frame) {
	form := t.dom().Forms[f.Form]
	f.Interrupted = false
	if form.Resume != "" {
		t.say(form.Resume)
	} else {
		t.sayBuiltin(respContinueForm, map[string]string{"form": form.Title})
	}
	t.nextSlot(ctx, f, form)
}

// cancel pops the open form ("算了"), clearing the slots it filled.
func (t *turn) cancel(ctx context.Context) {
	t.answered = true
	f := t.st.top()
	if f == nil {
		t.sayBuiltin(respNothingCancel, nil)
		return
	}
	form := t.dom().Forms[f.Form]
	for _, s := range f.Filled {
		delete(t.st.Slots, s)
	}
	t.st.Stack = t.st.Stack[:len(t.st.Stack)-1]
	t.sayBuiltin(respCancelled, map[string]string{"form": form.Title})
	if below := t.st.top(); below != nil {
		t.resumeForm(ctx, below)
	}
}

// resume brings back the last expired session's context (when this
// session has just started) or the interrupted form.
func (t *turn) resume(ctx context.Context) error {
	t.answered = true
	if len(t.st.Stack) == 0 && t.sess.ResumedFrom == "" {
		since := t.now.Add(-t.e.cfg.ResumeWindow)
		old, err := t.e.deps.Store.LatestExpired(ctx, t.sess.Key, since)
		switch {
		case err == nil && old.ID != t.sess.ID:
			ost, err := decodeState(old.State)
			if err != nil {
				return err
			}
			t.st.Slots = maps.Clone(ost.Slots)
			t.st.Stack = ost.Stack
			t.dropUnknownForms()
			t.sess.ResumedFrom = old.ID
			t.e.m.resumes.Inc()
		case err != nil && !errors.Is(err, session.ErrNotFound):
			return err
		}
	}
	if f := t.st.top(); f != nil {
		t.sayBuiltin(respResumed, nil)
		t.resumeForm(ctx, f)
		return nil
	}
	if t.sess.ResumedFrom != "" {
		t.sayBuiltin(respResumed, nil)
		t.say(t.dom().Policy.FallbackReply)
		return nil
	}
	t.sayBuiltin(respNothingResume, nil)
	return nil
}

// startHandoff gives the conversation to a human: the bot says so and is
// silent until an agent releases it.
func (t *turn) startHandoff(ctx context.Context, reason string) {
	if t.handoff != nil {
		return
	}
	d := t.dom()
	if d.Handoff.Reply != "" {
		t.say(d.Handoff.Reply)
	} else {
		t.sayBuiltin("handoff", nil)
	}
	t.answered = true
	t.sess.Handoff = session.HandoffWaiting
	t.handoffReason = reason
	sum := summary{Reason: reason, Intents: t.st.Intents, Slots: t.st.Slots, Forms: t.st.formNames()}
	if hist, err := t.e.deps.Store.History(ctx, t.sess.ID, 4); err == nil {
		for _, h := range hist {
			sum.Messages = append(sum.Messages, h.User)
		}
	}
	sum.Messages = append(sum.Messages, t.m.Text)
	b, _ := json.Marshal(sum)
	t.handoff = &session.HandoffEntry{SessionID: t.sess.ID, Status: session.HandoffStatusWaiting, Reason: reason,
		Summary: b, CreatedAt: t.now, UpdatedAt: t.now, Key: t.sess.Key}
}

// summary is what the agent sees first of a handed-off conversation.
type summary struct {
	Reason   string            `json:"reason"`
	Intents  []string          `json:"intents"`
	Slots    map[string]string `json:"slots,omitempty"`
	Forms    []string          `json:"forms,omitempty"`
	Messages []string          `json:"messages"`
}

// callSkill runs a skill and applies its answer; it reports whether the
// skill said something.
func (t *turn) callSkill(ctx context.Context, name string, req *skill.Request) bool {
	resp, ok := t.skill(ctx, name, req)
	if !ok {
		return true // the apology was said
	}
	for k, v := range resp.Slots {
		if v == nil {
			delete(t.st.Slots, k)
		} else {
			t.st.setSlot(k, *v)
		}
	}
	t.addReplies(resp.Replies)
	if resp.Handoff {
		t.startHandoff(ctx, "skill:"+name)
	}
	return len(resp.Replies) > 0
}

// skill calls a skill with the turn's context filled in. A missing skill,
// one that cannot handle the request, an error or a timeout is an apology,
// a metric and a log line; the session stays intact.
func (t *turn) skill(ctx context.Context, name string, req *skill.Request) (*skill.Response, bool) {
	s, ok := t.e.deps.Skills.Get(name)
	if !ok {
		t.skillFailed(name, "missing", nil)
		return nil, false
	}
	req.Skill = name
	req.SessionID, req.UserID, req.Channel, req.Text = t.sess.ID, t.m.User, t.m.Channel, t.m.Text
	req.Intent, req.Confidence = t.parse.Intent.Name, t.parse.Intent.Confidence
	req.Slots = maps.Clone(t.st.Slots)
	for _, en := range t.parse.Entities {
		req.Entities = append(req.Entities, skill.Entity{Type: en.Type, Value: en.Value, Normalized: en.Normalized})
	}
	if !s.CanHandle(req) {
		return &skill.Response{}, true
	}
	cctx, cancel := context.WithTimeout(ctx, t.e.cfg.SkillTimeout)
	defer cancel()
	start := time.Now()
	resp, err := s.Handle(cctx, req)
	t.e.m.skillDuration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err != nil || resp == nil {
		reason := "error"
		if cctx.Err() != nil {
			reason = "timeout"
		}
		t.skillFailed(name, reason, err)
		return nil, false
	}
	return resp, true
}

func (t *turn) skillFailed(name, reason string, err error) {
	t.e.m.skillErrors.WithLabelValues(name, reason).Inc()
	t.e.log.Warn("skill failed; the customer got an apology", "skill", name, "reason", reason, "error", err)
	if r := t.dom().Policy.SkillError; r != "" {
		t.say(r)
	} else {
		t.sayBuiltin("skill_error", nil)
	}
}

func (t *turn) addReplies(rs []skill.Reply) {
	for _, r := range rs {
		if strings.TrimSpace(r.Text) != "" {
			t.replies = append(t.replies, Reply{Text: r.Text, Markdown: r.Markdown})
		}
	}
}

// say renders a domain response.
func (t *turn) say(name string) {
	r := t.dom().Responses[name]
	if r == nil {
		return
	}
	text, md := r.Render(t.m.Channel, t.st.Slots, t.e.deps.Pick)
	if text != "" {
		t.replies = append(t.replies, Reply{Text: text, Markdown: md, Response: name})
	}
}

// sayBuiltin says the domain's response of that name, or the built-in
// wording with {name} filled from vars.
func (t *turn) sayBuiltin(name string, vars map[string]string) {
	if _, ok := t.dom().Responses[name]; ok {
		t.say(name)
		return
	}
	text := builtinText[name]
	for k, v := range vars {
		text = strings.ReplaceAll(text, "{"+k+"}", v)
	}
	t.replies = append(t.replies, Reply{Text: text, Response: name})
}

// dropUnknownForms removes frames of forms the domain no longer has (after
// a reload).
func (t *turn) dropUnknownForms() {
	t.st.Stack = slices.DeleteFunc(t.st.Stack, func(f frame) bool { return t.dom().Forms[f.Form] == nil })
}

func (t *turn) result() *Result {
	ents := t.parse.Entities
	if ents == nil {
		ents = []nlu.Entity{}
	}
	replies := t.replies
	if replies == nil {
		replies = []Reply{}
	}
	slots := maps.Clone(t.st.Slots)
	if slots == nil {
		slots = map[string]string{}
	}
	return &Result{SessionID: t.sess.ID, Replies: replies, Intent: t.parse.Intent, Entities: ents, Slots: slots,
		Lane: t.lane.String(), Handoff: t.sess.Handoff != "", Stack: t.st.formNames(), NewSession: t.started}
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if w != "" && strings.Contains(s, w) {
			return true
		}
	}
	return false
}

func formSlot(form *domain.Form, name string) *domain.FormSlot {
	if form == nil || name == "" {
		return nil
	}
	for i := range form.Slots {
		if form.Slots[i].Slot == name {
			return &form.Slots[i]
		}
	}
	return nil
}

// slotsByEntity maps entity types to the slots they fill, by slot name.
func slotsByEntity(d *domain.Domain) map[string][]*domain.Slot {
	out := map[string][]*domain.Slot{}
	for _, k := range slices.Sorted(maps.Keys(d.Slots)) {
		for _, typ := range d.Slots[k].Entities {
			out[typ] = append(out[typ], d.Slots[k])
		}
	}
	return out
}
