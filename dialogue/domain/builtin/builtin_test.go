package builtin

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zhiyin/zhiyin/dialogue/domain"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/dialogue/nlu/nludata"
	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/inference/inferencetest"
)

// Folders of the package on disk (tests run in the package directory).
const (
	domainDir = "domain"
	modelDir  = "model"
	evalFile  = "testdata/eval.yml"
)

// trainCmd is what a developer runs (from the repository root) after
// changing the domain's examples.
const trainCmd = "go run ./cmd/zhiyin train --data dialogue/domain/builtin/domain --out dialogue/domain/builtin/model --seed 1"

// Targets of the embedded data.
const (
	minExamplesPerIntent = 40
	minEvalPerIntent     = 8
	minEvalAccuracy      = 0.90
	maxModelFileBytes    = 5 << 20
	minFAQEntries        = 12
	minFAQQuestions      = 5
)

// The process's one ONNX Runtime, shared by the tests that parse.
var (
	testRT    *inference.Runtime
	testRTErr error
)

func TestMain(m *testing.M) {
	testRT, testRTErr = inferencetest.Start("../../..")
	os.Exit(inferencetest.Run(m, testRT))
}

func loadData(t testing.TB, path string) *nludata.Data {
	t.Helper()
	d, err := nludata.Load(path)
	if err != nil {
		t.Fatalf("nludata.Load(%s): %v", path, err)
	}
	return d
}

func loadDomain(t testing.TB) *domain.Domain {
	t.Helper()
	d, err := domain.LoadFS(Domain(), Source)
	if err != nil {
		t.Fatalf("domain.LoadFS(Domain(), %q): %v", Source, err)
	}
	return d
}

// TestModelIsCurrent fails when the examples changed after the model was
// trained.
func TestModelIsCurrent(t *testing.T) {
	data := loadData(t, domainDir)
	man, err := nlu.ReadManifest(modelDir)
	if err != nil {
		t.Fatalf("embedded model: %v\nretrain it from the repository root with:\n  %s", err, trainCmd)
	}
	if got, want := data.Hash(), man.DataHash; got != want {
		t.Fatalf("the embedded model was trained on other data (data hash %.12s, model's %.12s): retrain it from the repository root with:\n  %s", got, want, trainCmd)
	}
	if man.Seed != 1 {
		t.Errorf("model seed %d, want 1: retrain with:\n  %s", man.Seed, trainCmd)
	}
}

// TestModelFiles checks the manifest's sha256 and sizes (ReadManifest) and
// that the embedded folder holds exactly the manifest and its files.
func TestModelFiles(t *testing.T) {
	man, err := nlu.ReadManifest(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{nlu.ManifestName}
	for _, f := range man.Files {
		want = append(want, f.Path)
		if f.Size >= maxModelFileBytes {
			t.Errorf("model file %s is %d bytes; keep each under %d", f.Path, f.Size, maxModelFileBytes)
		}
	}
	slices.Sort(want)
	var got []string
	err = fs.WalkDir(Model(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		got = append(got, p)
		b, err := fs.ReadFile(Model(), p)
		if err != nil {
			return err
		}
		disk, err := os.ReadFile(filepath.Join(modelDir, filepath.FromSlash(p)))
		if err != nil {
			return err
		}
		if !bytes.Equal(b, disk) {
			t.Errorf("embedded %s differs from %s on disk: rebuild the test binary", p, modelDir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("embedded model files %q, manifest lists %q: delete stray files and retrain with:\n  %s", got, want, trainCmd)
	}
}

// TestDomainLoads loads the embedded domain with the loader the server uses
// and checks its only skill is order_lookup.
func TestDomainLoads(t *testing.T) {
	d := loadDomain(t)
	if d.Source != Source {
		t.Errorf("Source %q, want %q", d.Source, Source)
	}
	if err := d.CheckSkills(func(n string) bool { return n == "order_lookup" }); err != nil {
		t.Error(err)
	}
	if len(d.Skills()) == 0 {
		t.Error("no skill referenced; order_lookup answers track_parcel, refund_status and cancel_order")
	}
}

// TestDomainContent checks the shape the product promises for the default
// domain (intent actions, forms, hand-off, lanes, FAQ).
func TestDomainContent(t *testing.T) {
	d := loadDomain(t)
	intents := []struct {
		name                 string
		reply, skill, form   bool
		faq, handoff, resume bool
		lane                 string
	}{
		{name: "greet", reply: true},
		{name: "goodbye", reply: true},
		{name: "thanks", reply: true},
		{name: "affirm"},
		{name: "deny"},
		{name: "track_parcel", skill: true, reply: true},
		{name: "return_goods", form: true},
		{name: "refund_status", skill: true, reply: true},
		{name: "change_address", form: true},
		{name: "invoice", form: true},
		{name: "cancel_order", skill: true, reply: true},
		{name: "complaint", reply: true, handoff: true, lane: "urgent"},
		{name: "human_handoff", handoff: true},
		{name: "shipping_fee", faq: true},
		{name: "delivery_time", faq: true},
		{name: "resume", resume: true},
	}
	var names []string
	for _, tc := range intents {
		names = append(names, tc.name)
		t.Run(tc.name, func(t *testing.T) {
			in := d.Intents[tc.name]
			if in == nil {
				t.Fatalf("intent %s missing", tc.name)
			}
			if (in.Reply != "") != tc.reply || (in.Skill != "") != tc.skill || (in.Form != "") != tc.form ||
				in.FAQ != tc.faq || in.Handoff != tc.handoff || in.Resume != tc.resume || in.Lane != tc.lane {
				t.Errorf("intent %s = %+v, want reply %v skill %v form %v faq %v handoff %v resume %v lane %q",
					tc.name, *in, tc.reply, tc.skill, tc.form, tc.faq, tc.handoff, tc.resume, tc.lane)
			}
			if tc.skill && in.Skill != "order_lookup" {
				t.Errorf("intent %s skill %q, want order_lookup", tc.name, in.Skill)
			}
			if tc.form && in.Form != tc.name {
				t.Errorf("intent %s form %q, want %q", tc.name, in.Form, tc.name)
			}
		})
	}
	slices.Sort(names)
	if got := d.IntentNames(); !slices.Equal(got, names) {
		t.Errorf("intents %q, want %q", got, names)
	}

	forms := []struct {
		name  string
		slots []string
	}{
		{"return_goods", []string{"order_id", "reason"}},
		{"change_address", []string{"order_id", "address"}},
		{"invoice", []string{"order_id", "invoice_title", "tax_id"}},
	}
	for _, tc := range forms {
		t.Run("form_"+tc.name, func(t *testing.T) {
			f := d.Forms[tc.name]
			if f == nil {
				t.Fatalf("form %s missing", tc.name)
			}
			var slots []string
			for _, s := range f.Slots {
				slots = append(slots, s.Slot)
				if s.Prompt == "" {
					t.Errorf("slot %s has no prompt", s.Slot)
				}
				if s.Optional != (s.Slot == "tax_id") {
					t.Errorf("slot %s optional %v; only tax_id is optional", s.Slot, s.Optional)
				}
				if s.Slot == "order_id" {
					v := s.Validate
					if v.Regex == nil || v.Regex.String() != `^\d{10,20}$` || v.Skill != "order_lookup" || s.Invalid == "" {
						t.Errorf("order_id validation %+v invalid %q: want regex ^\\d{10,20}$, skill order_lookup and an invalid reply", v, s.Invalid)
					}
					if !v.Regex.MatchString("20241234567890") || v.Regex.MatchString("2024-1234") {
						t.Errorf("order_id regex %s", v.Regex)
					}
				}
			}
			if !slices.Equal(slots, tc.slots) {
				t.Errorf("slots %q, want %q", slots, tc.slots)
			}
			if f.Submit.Skill != "order_lookup" || f.Submit.Reply == "" {
				t.Errorf("submit %+v: want skill order_lookup and a confirmation reply", f.Submit)
			}
			if f.Title == "" || f.Resume == "" {
				t.Errorf("form %s needs a title and a resume reply", tc.name)
			}
		})
	}
	for _, s := range []string{"reason", "address"} {
		if sl := d.Slots[s]; sl == nil || !sl.FromText {
			t.Errorf("slot %s must be from_text", s)
		}
	}

	if d.Handoff.MaxFallbacks != 2 || !slices.Contains(d.Handoff.Keywords, "转人工") || !slices.Contains(d.Handoff.Keywords, "人工客服") || d.Handoff.Reply == "" {
		t.Errorf("handoff %+v: want max_fallbacks 2, keywords 转人工 and 人工客服, a reply", d.Handoff)
	}
	for _, k := range []string{"紧急", "投诉", "报警", "加急", "重要"} {
		if !slices.Contains(d.Lanes.Urgent.Keywords, k) {
			t.Errorf("urgent lane lacks keyword %s", k)
		}
	}
	if !slices.Equal(d.Lanes.Urgent.Intents, []string{"complaint"}) {
		t.Errorf("urgent lane intents %q, want [complaint]", d.Lanes.Urgent.Intents)
	}
	if d.Policy.FallbackReply != "utter_default" {
		t.Errorf("fallback reply %q", d.Policy.FallbackReply)
	}

	if len(d.FAQ) < minFAQEntries {
		t.Errorf("%d FAQ entries, want at least %d", len(d.FAQ), minFAQEntries)
	}
	faqIntents := map[string]bool{}
	for _, e := range d.FAQ {
		if len(e.Questions) < minFAQQuestions {
			t.Errorf("FAQ %s has %d questions, want at least %d", e.ID, len(e.Questions), minFAQQuestions)
		}
		faqIntents[e.Intent] = true
		for _, q := range e.Questions {
			for _, k := range d.Handoff.Keywords {
				if strings.Contains(q, k) {
					t.Errorf("FAQ %s question %q contains hand-off keyword %s: it would hand off instead of answering", e.ID, q, k)
				}
			}
		}
	}
	for _, in := range []string{"shipping_fee", "delivery_time"} {
		if !faqIntents[in] {
			t.Errorf("no FAQ entry carries intent %s", in)
		}
	}

	for name, r := range d.Responses {
		if len(r.Variants) < 2 {
			t.Errorf("response %s has %d variant(s); give it at least 2", name, len(r.Variants))
		}
	}
	md := 0
	for _, r := range d.Responses {
		if slices.ContainsFunc(r.Variants, func(v domain.Variant) bool {
			return v.Markdown && slices.Contains(v.Channels, "dingtalk") && slices.Contains(v.Channels, "feishu")
		}) {
			md++
		}
	}
	if md < 3 {
		t.Errorf("%d responses have a dingtalk/feishu markdown variant, want at least 3", md)
	}
}

// TestRender renders a form's confirmation with its slots, on a plain and a
// markdown channel.
func TestRender(t *testing.T) {
	d := loadDomain(t)
	r := d.Responses[d.Forms["return_goods"].Submit.Reply]
	slots := map[string]string{"order_id": "20241234567890", "reason": "尺码不合适"}
	first := func(int) int { return 0 }
	for _, ch := range []string{"webchat", "feishu"} {
		text, _ := r.Render(ch, slots, first)
		if !strings.Contains(text, "20241234567890") || !strings.Contains(text, "尺码不合适") || strings.ContainsAny(text, "{}") {
			t.Errorf("%s: %q does not carry the slots", ch, text)
		}
	}
	if _, md := r.Render("feishu", slots, first); !md {
		t.Error("feishu variant of the return confirmation is not markdown")
	}
}

// TestTrainingData checks the examples: enough per intent, every domain
// intent has examples (nlu_fallback is built in), no warnings, and the
// urgent lane's words only in complaint examples.
func TestTrainingData(t *testing.T) {
	data := loadData(t, domainDir)
	for _, w := range data.Warnings {
		t.Errorf("warning: %s", w)
	}
	count := map[string]int{}
	for _, e := range data.Examples {
		count[e.Intent]++
	}
	d := loadDomain(t)
	for _, in := range d.IntentNames() {
		if count[in] < minExamplesPerIntent {
			t.Errorf("intent %s has %d examples, want at least %d", in, count[in], minExamplesPerIntent)
		}
	}
	if got, want := data.Intents(), d.IntentNames(); !slices.Equal(got, want) {
		t.Errorf("nlu.yml intents %q, domain intents %q", got, want)
	}
	for _, e := range data.Examples {
		if e.Intent == "complaint" {
			continue
		}
		for _, k := range []string{"紧急", "投诉"} {
			if strings.Contains(e.Text, k) {
				t.Errorf("%s: %q (intent %s) contains urgent word %s; keep those in complaint", e.Pos, e.Text, e.Intent, k)
			}
		}
	}
}

// TestEvalHeldOut checks that the evaluation sentences are not training
// examples and cover every intent.
func TestEvalHeldOut(t *testing.T) {
	train := loadData(t, domainDir)
	eval := loadData(t, evalFile)
	seen := map[string]bool{}
	for _, e := range train.Examples {
		seen[strings.TrimSpace(e.Text)] = true
	}
	count := map[string]int{}
	for _, e := range eval.Examples {
		count[e.Intent]++
		if seen[strings.TrimSpace(e.Text)] {
			t.Errorf("%s: %q is also a training example: write a new sentence", e.Pos, e.Text)
		}
	}
	for _, in := range train.Intents() {
		if count[in] < minEvalPerIntent {
			t.Errorf("intent %s has %d evaluation sentences, want at least %d", in, count[in], minEvalPerIntent)
		}
	}
}

func loadParser(t testing.TB) *nlu.Parser {
	t.Helper()
	rt := inferencetest.Need(t, testRT, testRTErr)
	data := loadData(t, domainDir)
	p, err := nlu.Load(context.Background(), rt, modelDir, nlu.Options{DataHash: data.Hash()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestEvalAccuracy parses the held-out sentences with the embedded model
// (needs ONNX Runtime).
func TestEvalAccuracy(t *testing.T) {
	p := loadParser(t)
	rep, err := nlu.Evaluate(context.Background(), p, loadData(t, evalFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) > 0 {
		t.Errorf("parse errors: %q", rep.Errors)
	}
	t.Logf("held-out intent accuracy %.2f%% over %d sentences, entity F1 %.2f%%", 100*rep.IntentAccuracy, rep.N, 100*rep.EntityF1)
	if rep.IntentAccuracy < minEvalAccuracy {
		t.Errorf("held-out intent accuracy %.2f%%, want at least %.0f%% (confused: %+v): improve nlu.yml (do not copy evaluation sentences) and retrain with:\n  %s",
			100*rep.IntentAccuracy, 100*minEvalAccuracy, rep.Confused, trainCmd)
	}
}

// TestParseEntities checks that the model tags the identifiers the forms
// and skills need (needs ONNX Runtime).
func TestParseEntities(t *testing.T) {
	p := loadParser(t)
	tests := []struct {
		text, intent, typ, value string
	}{
		{"订单号是20241234567890，我要退货", "return_goods", "order_id", "20241234567890"},
		{"顺丰SF1234567890到哪了", "track_parcel", "tracking_no", "SF1234567890"},
		{"京东的JDVA12345678901帮我查一下", "track_parcel", "tracking_no", "JDVA12345678901"},
		{"地址改成浙江省杭州市西湖区文三路90号", "change_address", "address", "浙江省杭州市西湖区文三路90号"},
		{"税号91330106MA27Y8KX3L，开个发票", "invoice", "tax_id", "91330106MA27Y8KX3L"},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			res, err := p.Parse(context.Background(), tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if res.Intent.Name != tc.intent {
				t.Errorf("intent %s (%.2f), want %s", res.Intent.Name, res.Intent.Confidence, tc.intent)
			}
			if !slices.ContainsFunc(res.Entities, func(e nlu.Entity) bool { return e.Type == tc.typ && e.Value == tc.value }) {
				t.Errorf("entities %+v lack %s %q", res.Entities, tc.typ, tc.value)
			}
		})
	}
}

// BenchmarkParse parses a typical message with the embedded model.
func BenchmarkParse(b *testing.B) {
	p := loadParser(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(ctx, "订单号20241234567890的快递到哪了，顺丰SF1234567890"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadDomain loads the embedded domain (done once per start).
func BenchmarkLoadDomain(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := domain.LoadFS(Domain(), Source); err != nil {
			b.Fatal(err)
		}
	}
}
