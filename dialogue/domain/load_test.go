package domain

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

const shop = "testdata/shop"

func shopPos(file string, line int) Pos { return Pos{File: filepath.Join(shop, file), Line: line} }

// plain returns the variants without their compiled form, for comparisons.
func plain(vs []Variant) []Variant {
	out := make([]Variant, len(vs))
	for i, v := range vs {
		out[i] = Variant{Text: v.Text, Channels: v.Channels, Markdown: v.Markdown}
	}
	return out
}

func TestLoadShop(t *testing.T) {
	d, err := Load(shop)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "shop" || d.Source != shop || len(d.Hash) != 64 {
		t.Errorf("name %q source %q hash %q", d.Name, d.Source, d.Hash)
	}

	dom := func(line int) Pos { return shopPos("domain.yml", line) }
	wantIntents := map[string]*Intent{
		"greet":          {Name: "greet", Reply: "utter_greet", Pos: dom(5)},
		"track_parcel":   {Name: "track_parcel", Skill: "order_lookup", Reply: "utter_track_unavailable", Pos: dom(7)},
		"return_goods":   {Name: "return_goods", Form: "return_goods", Pos: dom(10)},
		"shipping_fee":   {Name: "shipping_fee", FAQ: true, Pos: dom(12)},
		"complaint":      {Name: "complaint", Reply: "utter_complaint", Lane: "urgent", Handoff: true, Pos: dom(14)},
		"human_handoff":  {Name: "human_handoff", Handoff: true, Pos: dom(18)},
		"resume":         {Name: "resume", Resume: true, Pos: dom(20)},
		"cancel_request": {Name: "cancel_request", Cancel: true, Pos: dom(22)},
		"bulk_export":    {Name: "bulk_export", Lane: "batch", Pos: dom(24)},
		"affirm":         {Name: "affirm", Pos: dom(26)},
		"deny":           {Name: "deny", Pos: dom(27)},
		"goodbye":        {Name: "goodbye", Reply: "utter_goodbye", Pos: shopPos("responses.yml", 41)},
	}
	if !reflect.DeepEqual(d.Intents, wantIntents) {
		for name, in := range d.Intents {
			if !reflect.DeepEqual(in, wantIntents[name]) {
				t.Errorf("intent %s = %+v, want %+v", name, in, wantIntents[name])
			}
		}
		t.Errorf("intents %v, want %v", d.IntentNames(), len(wantIntents))
	}
	if got, want := d.IntentNames(), []string{"affirm", "bulk_export", "cancel_request", "complaint", "deny", "goodbye",
		"greet", "human_handoff", "resume", "return_goods", "shipping_fee", "track_parcel"}; !reflect.DeepEqual(got, want) {
		t.Errorf("IntentNames = %v", got)
	}

	if want := []string{"address", "carrier", "invoice_title", "order_id", "reason", "tax_id", "tracking_no"}; !reflect.DeepEqual(d.Entities, want) {
		t.Errorf("entities = %v", d.Entities)
	}

	wantSlots := map[string]*Slot{
		"order_id": {Name: "order_id", Type: SlotText, Entities: []string{"order_id", "order_no"}, Pos: dom(37)},
		"reason":   {Name: "reason", Type: SlotText, Entities: []string{"reason"}, FromText: true, Pos: dom(40)},
		"tax_id":   {Name: "tax_id", Type: SlotText, Entities: []string{"tax_id"}, Pos: dom(42)},
		"quantity": {Name: "quantity", Type: SlotNumber, Entities: []string{"quantity"}, Pos: dom(43)},
		"carrier":  {Name: "carrier", Type: SlotAny, Entities: []string{"carrier"}, Pos: dom(46)},
	}
	if !reflect.DeepEqual(d.Slots, wantSlots) {
		for name, s := range d.Slots {
			t.Logf("slot %s = %+v", name, s)
		}
		t.Error("slots differ")
	}

	if n := len(d.Responses); n != 14 {
		t.Errorf("%d responses, want 14", n)
	}
	greet := d.Responses["utter_greet"]
	wantGreet := []Variant{
		{Text: "您好，我是知音客服，请问有什么可以帮您？"},
		{Text: "您好！请问有什么需要帮忙的？"},
		{Text: "**您好**，请问有什么可以帮您？", Channels: []string{"dingtalk", "feishu"}, Markdown: true},
	}
	if greet == nil || greet.Pos != shopPos("responses.yml", 2) || !reflect.DeepEqual(plain(greet.Variants), wantGreet) {
		t.Errorf("utter_greet = %+v", greet)
	}
	if v := d.Responses["utter_return_done"].Variants[0]; v.Text != "已为您提交退货申请：\n订单 {order_id}，原因 {reason}{{已受理}}" {
		t.Errorf("block text trimmed wrong: %q", v.Text)
	}

	f := d.Forms["return_goods"]
	if f == nil {
		t.Fatal("no form return_goods")
	}
	fp := func(line int) Pos { return shopPos("forms/return_goods.yml", line) }
	if f.Name != "return_goods" || f.Title != "退货申请" || f.MaxRetries != 2 || f.Resume != "utter_resume_return" ||
		f.Submit != (Submit{Skill: "return_submit", Reply: "utter_return_done"}) || f.Pos != fp(2) || len(f.Slots) != 3 {
		t.Fatalf("form = %+v", f)
	}
	s0 := f.Slots[0]
	if s0.Slot != "order_id" || s0.Prompt != "utter_ask_order_id" || s0.Invalid != "utter_invalid_order_id" || s0.Optional ||
		s0.Validate.Regex == nil || s0.Validate.Regex.String() != `^\d{8,20}$` || s0.Validate.Skill != "order_lookup" ||
		s0.Validate.Lookup != nil || s0.Pos != fp(5) {
		t.Errorf("form slot 0 = %+v", s0)
	}
	if s1 := f.Slots[1]; s1.Slot != "reason" || !reflect.DeepEqual(s1.Validate.Lookup, []string{"质量问题", "不想要了"}) || s1.Validate.Regex != nil || s1.Pos != fp(11) {
		t.Errorf("form slot 1 = %+v", s1)
	}
	if s2 := f.Slots[2]; s2.Slot != "tax_id" || !s2.Optional || s2.Invalid != "" || s2.Pos != fp(15) {
		t.Errorf("form slot 2 = %+v", s2)
	}

	wantFAQ := []*FAQEntry{
		{ID: "shipping_fee_standard", Intent: "shipping_fee", Questions: []string{"运费怎么算", "包邮吗", "邮费多少钱"},
			Answer: "单笔订单满99元包邮，不满99元收取运费8元。", Pos: shopPos("faq.yaml", 2)},
		{ID: "invoice", Questions: []string{"能开发票吗"}, Answer: "可以，下单后在订单详情里申请电子发票。", Pos: shopPos("faq.yaml", 6)},
	}
	if !reflect.DeepEqual(d.FAQ, wantFAQ) {
		t.Errorf("faq = %+v", d.FAQ)
	}

	wantHandoff := Handoff{Intents: []string{"human_handoff"}, Keywords: []string{"转人工", "人工客服", "找人工", "human agent"},
		MaxFallbacks: 3, Reply: "utter_handoff", Released: "utter_handoff_released"}
	if !reflect.DeepEqual(d.Handoff, wantHandoff) {
		t.Errorf("handoff = %+v", d.Handoff)
	}
	wantLanes := Lanes{
		Urgent: LaneRule{Keywords: []string{"紧急", "投诉", "报警", "急"}, Intents: []string{"complaint"}},
		Batch:  LaneRule{Keywords: []string{}, Intents: []string{"bulk_export"}},
	}
	if !reflect.DeepEqual(d.Lanes, wantLanes) {
		t.Errorf("lanes = %+v", d.Lanes)
	}
	wantPolicy := Policy{FallbackReply: "utter_default", FAQThreshold: 0.5, CancelKeywords: []string{"算了", "cancel"},
		ResumeKeywords: []string{"继续刚才", "接着刚才", "刚才的问题"}, SkillError: "utter_skill_error"}
	if !reflect.DeepEqual(d.Policy, wantPolicy) {
		t.Errorf("policy = %+v", d.Policy)
	}

	wantSkills := []SkillRef{
		{"order_lookup", dom(8)},
		{"order_lookup", fp(9)},
		{"return_submit", fp(20)},
	}
	if got := d.Skills(); !reflect.DeepEqual(got, wantSkills) {
		t.Errorf("Skills = %v", got)
	}
	if err := d.CheckSkills(func(name string) bool { return name == "order_lookup" || name == "return_submit" }); err != nil {
		t.Errorf("CheckSkills with every skill: %v", err)
	}
	err = d.CheckSkills(func(name string) bool { return name == "return_submit" })
	if got := errorLines(err); !reflect.DeepEqual(got, []string{
		shopPos("domain.yml", 8).String() + `: unknown skill "order_lookup": configure a skill of that name or fix the name`,
		fp(9).String() + `: unknown skill "order_lookup": configure a skill of that name or fix the name`,
	}) {
		t.Errorf("CheckSkills = %q", got)
	}
}

// errorLines flattens an error from Load into one string per *Error.
func errorLines(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if err != nil {
			out = append(out, err.Error())
		}
	}
	walk(err)
	return out
}

// minimal is the smallest valid domain: every test domain below adds to it.
const minimal = `policy:
  fallback_reply: utter_default
responses:
  utter_default:
    - text: 抱歉，我没听懂。
`

func TestLoadFSDefaults(t *testing.T) {
	d, err := LoadFS(fstest.MapFS{
		"a.yml": {Data: []byte(minimal)},
		"b.yml": {Data: []byte("slots:\n  order_no:\nforms:\n  f:\n    slots:\n      - slot: order_no\n        prompt: utter_default\n")},
	}, "builtin")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "builtin" || d.Source != "builtin" {
		t.Errorf("name %q source %q", d.Name, d.Source)
	}
	want := Policy{FallbackReply: "utter_default", FAQThreshold: 0.45,
		CancelKeywords: []string{"算了", "取消", "不用了", "不办了", "不要了"},
		ResumeKeywords: []string{"继续刚才", "接着刚才", "刚才的问题"}}
	if !reflect.DeepEqual(d.Policy, want) {
		t.Errorf("policy = %+v", d.Policy)
	}
	if d.Handoff.MaxFallbacks != 2 || d.Handoff.Reply != "" || d.Handoff.Keywords != nil {
		t.Errorf("handoff = %+v", d.Handoff)
	}
	f := d.Forms["f"]
	if f.MaxRetries != 3 || f.Title != "f" || f.Slots[0].Pos != (Pos{"builtin/b.yml", 6}) {
		t.Errorf("form = %+v", f)
	}
	if s := d.Slots["order_no"]; s.Type != SlotText || !reflect.DeepEqual(s.Entities, []string{"order_no"}) {
		t.Errorf("slot = %+v", s)
	}
	if d.Entities == nil || len(d.Entities) != 0 || len(d.Intents) != 0 || d.FAQ != nil {
		t.Errorf("entities %v intents %v faq %v", d.Entities, d.Intents, d.FAQ)
	}
	if got := d.Skills(); len(got) != 0 {
		t.Errorf("Skills = %v", got)
	}
	if err := d.CheckSkills(nil); err != nil {
		t.Errorf("CheckSkills without skills: %v", err)
	}

	// Explicit settings that equal "nothing" are kept, not defaulted.
	d, err = LoadFS(fstest.MapFS{"d.yml": {Data: []byte(minimal + "---\npolicy:\n  cancel_keywords: []\n  faq_threshold: 1\nhandoff: {max_fallbacks: 0}\n")}}, "x/y")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "y" || d.Policy.CancelKeywords == nil || len(d.Policy.CancelKeywords) != 0 || d.Policy.FAQThreshold != 1 || d.Handoff.MaxFallbacks != 0 {
		t.Errorf("name %q policy %+v handoff %+v", d.Name, d.Policy, d.Handoff)
	}
}

func TestLoadFolder(t *testing.T) {
	if _, err := Load("testdata/missing"); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing folder: %v", err)
	}
	if _, err := Load("testdata/shop/domain.yml"); err == nil || !strings.Contains(err.Error(), "pass the folder") {
		t.Errorf("a file: %v", err)
	}
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(empty); !errors.Is(err, ErrNoDomainFiles) {
		t.Errorf("no yml files: %v", err)
	}
	// Without name: the folder's base name, also when given as ".";
	// extensions in any case.
	named := filepath.Join(t.TempDir(), "mydomain")
	if err := os.MkdirAll(filepath.Join(named, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(named, "sub", "d.YAML"), []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err := Load(named); err != nil || d.Name != "mydomain" || d.Policy.FallbackReply != "utter_default" {
		t.Errorf("Load(%s) = %+v, %v", named, d, err)
	}
	t.Run("dot", func(t *testing.T) {
		t.Chdir(named)
		if d, err := Load("."); err != nil || d.Name != "mydomain" || d.Responses["utter_default"].Pos != (Pos{"sub/d.YAML", 4}) {
			t.Errorf("Load(.) = %+v, %v", d, err)
		}
	})

	// The hash depends on names and bytes, not on where the folder is; a
	// link to a file is read; hidden names are skipped.
	orig, err := Load(shop)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(dir, os.DirFS(shop)); err != nil {
		t.Fatal(err)
	}
	again, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Hash != orig.Hash || again.Name != "shop" {
		t.Errorf("copy: hash %s name %s, want hash %s", again.Hash, again.Name, orig.Hash)
	}
	fsys, err := LoadFS(os.DirFS(shop), "shop")
	if err != nil {
		t.Fatal(err)
	}
	if fsys.Hash != orig.Hash || fsys.Intents["greet"].Pos != (Pos{"shop/domain.yml", 5}) {
		t.Errorf("LoadFS: hash %s pos %v", fsys.Hash, fsys.Intents["greet"].Pos)
	}
	faq := filepath.Join(dir, "faq.yaml")
	if err := os.Rename(faq, filepath.Join(t.TempDir(), "faq.yaml")); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(filepath.Join(shop, "faq.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, faq); err != nil {
		t.Skipf("symlinks: %v", err)
	}
	linked, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if linked.Hash != orig.Hash || len(linked.FAQ) != 2 {
		t.Errorf("through a link: hash %s, %d faq entries", linked.Hash, len(linked.FAQ))
	}
	if err := os.WriteFile(filepath.Join(dir, "more.yml"), []byte("intents: [thanks]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	more, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if more.Hash == orig.Hash || more.Intents["thanks"] == nil {
		t.Errorf("a new file: hash unchanged or intent missing")
	}
}

func TestTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal + "intents:\n")
	for range 30 {
		b.WriteString("  - x: {reply: utter_nope}\n")
	}
	_, err := LoadFS(fstest.MapFS{"d.yml": {Data: []byte(b.String())}}, "d")
	lines := errorLines(err)
	if len(lines) != maxErrors {
		t.Fatalf("%d errors, want %d: %q", len(lines), maxErrors, lines)
	}
	// Sorted by line: the first duplicate is the second item (line 8).
	if !strings.HasPrefix(lines[0], `d/d.yml:8: duplicate intent "x" (first at d/d.yml:7)`) {
		t.Errorf("first = %q", lines[0])
	}
	if lines[19] != "d: 10 more errors not shown: fix the ones above and load again" {
		t.Errorf("last = %q", lines[19])
	}
}

func TestSkillsHandBuilt(t *testing.T) {
	// A Domain built by hand (as other packages' tests do) derives the
	// references from its fields, at the intent's and form's positions.
	d := &Domain{
		Source:  "hand",
		Intents: map[string]*Intent{"a": {Name: "a", Skill: "zeta", Pos: Pos{"h.yml", 9}}, "b": {Name: "b"}},
		Forms: map[string]*Form{"f": {Name: "f", Pos: Pos{"h.yml", 2},
			Slots:  []FormSlot{{Slot: "x", Validate: Validation{Skill: "alpha"}, Pos: Pos{"h.yml", 4}}, {Slot: "y"}},
			Submit: Submit{Skill: "zeta"}}},
	}
	want := []SkillRef{{"alpha", Pos{"h.yml", 4}}, {"zeta", Pos{"h.yml", 2}}, {"zeta", Pos{"h.yml", 9}}}
	if got := d.Skills(); !reflect.DeepEqual(got, want) {
		t.Errorf("Skills = %v, want %v", got, want)
	}
	if got := errorLines(d.CheckSkills(nil)); len(got) != 3 || got[0] != `h.yml:2: unknown skill "zeta": configure a skill of that name or fix the name` {
		t.Errorf("CheckSkills(nil) = %q", got)
	}
}
