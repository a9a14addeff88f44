package nlu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zhiyin/zhiyin/dialogue/nlu/bert"
	"github.com/zhiyin/zhiyin/dialogue/nlu/rules"
	"github.com/zhiyin/zhiyin/inference"
)

// FallbackIntent is the intent reported when the classifier's confidence is
// below the threshold.
const FallbackIntent = "nlu_fallback"

// Options configure a Parser.
type Options struct {
	// FallbackThreshold: below this confidence the intent is nlu_fallback
	// (0: never; the configuration's default is 0.3).
	FallbackThreshold float64
	// MaxChars is the longest text accepted, in characters (default 512).
	MaxChars int
	// Rules configures the rule extractors; the model's own lookup tables,
	// synonyms and regexes are added to it.
	Rules rules.Config
	// DataHash, when set, must equal the manifest's data hash (the model
	// was trained on the data the operator has now).
	DataHash string
	// Load passes the execution provider and concurrency to inference.
	Load inference.LoadOptions
	// IntentTransformer and EntityTransformer are bring-your-own BERT
	// folders (package bert) used instead of the trained intent classifier
	// or entity tagger.
	IntentTransformer, EntityTransformer string
	// Now returns the current time for relative dates (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Parser parses text with a trained model folder and the rule extractors.
// It is safe for concurrent use.
type Parser struct {
	man                  *Manifest
	dir                  string
	feat                 *featurizer
	intent               *inference.Model
	tagger               *inference.Model
	trans                []float32 // transitions [L*L]
	start                []float32
	rules                *rules.Extractor
	opts                 Options
	padID                int64
	byoIntent, byoTagger *bert.Model
}

// Intent is one intent with its confidence.
type Intent struct {
	Name       string  `json:"name"`
	Confidence float64 `json:"confidence"`
}

// Entity is an entity found in the text.
type Entity struct {
	Type string `json:"type"`
	// Value is the text of the span as written.
	Value string `json:"value"`
	// Normalized is the canonical value: a synonym's canonical form, a
	// phone number's digits, an ISO 8601 time, an amount's number.
	Normalized string `json:"normalized"`
	// Start and End are character (Unicode code point) offsets into the
	// original text, End exclusive.
	Start      int               `json:"start"`
	End        int               `json:"end"`
	Extractor  string            `json:"extractor"`
	Confidence float64           `json:"confidence"`
	Attrs      map[string]string `json:"attrs,omitempty"`
}

// Result is a parse.
type Result struct {
	Text     string   `json:"text"`
	Intent   Intent   `json:"intent"`
	Ranking  []Intent `json:"ranking"`
	Entities []Entity `json:"entities"`
}

// ReadManifest reads and checks a model folder's nlu.json and the sha256 of
// every file it lists.
func ReadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%w: %s has no %s: train one with `zhiyin train --data DATA --out %s`", ErrBadModel, dir, ManifestName, dir)
		}
		return nil, fmt.Errorf("%w: %v", ErrBadModel, err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadModel, filepath.Join(dir, ManifestName), err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%w: %s has format %q; this zhiyin reads %q: retrain with this version", ErrBadModel, dir, m.Format, Format)
	}
	if len(m.Intents) < 2 || m.Temperature <= 0 || m.Features.MaxNgram < 1 || m.Features.MaxNgram > 8 {
		return nil, fmt.Errorf("%w: %s: manifest lacks intents, temperature or feature parameters", ErrBadModel, dir)
	}
	if len(m.EntityTypes) > 0 && !slices.Equal(m.Labels, bioLabels(m.EntityTypes)) {
		return nil, fmt.Errorf("%w: %s: labels do not match the entity types", ErrBadModel, dir)
	}
	need := []string{intentGraph, intentVocab}
	if len(m.EntityTypes) > 0 {
		need = append(need, entitiesGraph, entitiesVocab, lexiconFile)
	}
	for _, name := range need {
		if !slices.ContainsFunc(m.Files, func(f ManifestFile) bool { return f.Path == name }) {
			return nil, fmt.Errorf("%w: %s: manifest does not list %s", ErrBadModel, dir, name)
		}
	}
	for _, f := range m.Files {
		if f.Path != filepath.Base(f.Path) || strings.HasPrefix(f.Path, ".") {
			return nil, fmt.Errorf("%w: %s: file %q is not a plain name in the folder", ErrBadModel, dir, f.Path)
		}
		sum, size, err := inference.FileSHA256(filepath.Join(dir, f.Path))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadModel, err)
		}
		if sum != f.SHA256 || size != f.Size {
			return nil, fmt.Errorf("%w: %s: sha256 %s (%d bytes) does not match the manifest's %s (%d bytes): the file was changed or damaged; copy the folder again or retrain", ErrBadModel, filepath.Join(dir, f.Path), sum, size, f.SHA256, f.Size)
		}
	}
	return &m, nil
}

// Load opens a model folder: checks it, reads its vocabularies and loads
// both graphs through rt (warmed up).
func Load(ctx context.Context, rt *inference.Runtime, dir string, opts Options) (*Parser, error) {
	if opts.MaxChars == 0 {
		opts.MaxChars = 512
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	man, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if opts.DataHash != "" && opts.DataHash != man.DataHash {
		return nil, fmt.Errorf("%w: %s was trained on data with hash %s but the training data now hashes to %s: retrain with `zhiyin train`", ErrBadModel, dir, man.DataHash, opts.DataHash)
	}
	p := &Parser{man: man, dir: dir, opts: opts}
	f := &featurizer{maxN: man.Features.MaxNgram, intents: man.Intents, types: man.EntityTypes, labels: man.Labels,
		intentVocab: newVocab(), tagVocab: newVocab(), gaz: newGazetteer()}
	iv, err := os.ReadFile(filepath.Join(dir, intentVocab))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadModel, err)
	}
	if len(iv)%12 != 0 {
		return nil, fmt.Errorf("%w: %s: size %d is not a multiple of 12", ErrBadModel, intentVocab, len(iv))
	}
	for i := 0; i < len(iv); i += 12 {
		f.intentVocab.add(binary.LittleEndian.Uint64(iv[i:]))
		f.idf = append(f.idf, math.Float32frombits(binary.LittleEndian.Uint32(iv[i+8:])))
	}
	if len(f.types) > 0 {
		tv, err := os.ReadFile(filepath.Join(dir, entitiesVocab))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadModel, err)
		}
		if len(tv)%8 != 0 {
			return nil, fmt.Errorf("%w: %s: size %d is not a multiple of 8", ErrBadModel, entitiesVocab, len(tv))
		}
		for i := 0; i < len(tv); i += 8 {
			f.tagVocab.add(binary.LittleEndian.Uint64(tv[i:]))
		}
		lex, err := os.ReadFile(filepath.Join(dir, lexiconFile))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadModel, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(lex))
		for sc.Scan() {
			typ, val, ok := strings.Cut(sc.Text(), "\t")
			if !ok {
				continue
			}
			if t := slices.Index(f.types, typ); t >= 0 {
				f.gaz.add([]rune(val), t)
			}
		}
		p.padID = int64(f.tagVocab.size())
	}
	p.feat = f

	rc := opts.Rules
	rc.Synonyms = mergeMap(rc.Synonyms, man.Synonyms)
	rc.Lookups = mergeLookups(rc.Lookups, man.Lookups)
	rc.Regexes = append(slices.Clone(rc.Regexes), man.Regexes...)
	if p.rules, err = rules.New(rc); err != nil {
		return nil, fmt.Errorf("nlu rules: %w", err)
	}

	sum := func(name string) []inference.FileSum {
		for _, mf := range man.Files {
			if mf.Path == name {
				return []inference.FileSum{{Path: mf.Path, SHA256: mf.SHA256, Size: mf.Size}}
			}
		}
		return nil
	}
	version := man.DataHash[:min(12, len(man.DataHash))]
	im := &inference.Manifest{
		ModelSpec: inference.ModelSpec{Name: "nlu-intent", Kind: "nlu", Version: version,
			Contract: inference.Contract{BatchDim: "N",
				Inputs: []inference.TensorSpec{
					{Name: "ids", DType: inference.Int64, Shape: dims("N", "K")},
					{Name: "weights", DType: inference.Float32, Shape: dims("N", "K")}},
				Outputs: []inference.TensorSpec{{Name: "logits", DType: inference.Float32, Shape: dims("N", 2*len(man.Intents))}}},
			Warmup:  []inference.WarmupCase{{Shapes: map[string][]int64{"ids": {1, 16}, "weights": {1, 16}}}},
			Runtime: inference.RuntimeHints{Batching: "off"},
		},
		Graph: intentGraph, Files: sum(intentGraph), Dir: dir,
	}
	lo := opts.Load
	lo.SkipVerify = true // ReadManifest just did
	if p.intent, err = rt.Load(ctx, im, lo); err != nil {
		return nil, fmt.Errorf("load intent model: %w", err)
	}
	if len(f.types) > 0 {
		L := len(f.labels)
		tm := &inference.Manifest{
			ModelSpec: inference.ModelSpec{Name: "nlu-entities", Kind: "nlu", Version: version,
				Contract: inference.Contract{
					Inputs: []inference.TensorSpec{{Name: "ids", DType: inference.Int64, Shape: dims("T", "F")}},
					Outputs: []inference.TensorSpec{
						{Name: "emissions", DType: inference.Float32, Shape: dims("T", L)},
						{Name: "transitions", DType: inference.Float32, Shape: dims(L+1, L)}}},
				Warmup:  []inference.WarmupCase{{Shapes: map[string][]int64{"ids": {8, 16}}}},
				Runtime: inference.RuntimeHints{Batching: "off"},
			},
			Graph: entitiesGraph, Files: sum(entitiesGraph), Dir: dir,
		}
		if p.tagger, err = rt.Load(ctx, tm, lo); err != nil {
			p.Close()
			return nil, fmt.Errorf("load entity model: %w", err)
		}
		out, err := p.tagger.Run(ctx, []inference.Tensor{inference.NewTensor([]int64{1, 1}, []int64{p.padID})})
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("load entity model: %w", err)
		}
		tr, err := inference.Values[float32](out[1])
		if err != nil || len(tr) != (L+1)*L {
			p.Close()
			return nil, fmt.Errorf("%w: entity model transitions have %d values, want %d", ErrBadModel, len(tr), (L+1)*L)
		}
		p.start, p.trans = slices.Clone(tr[:L]), slices.Clone(tr[L:])
	}
	if opts.IntentTransformer != "" {
		if p.byoIntent, err = bert.Load(ctx, rt, opts.IntentTransformer, inference.LoadOptions{Provider: lo.Provider, Concurrency: lo.Concurrency}); err == nil && p.byoIntent.Task() != "sequence" {
			err = fmt.Errorf("%s is a %s model; nlu.transformer.intent needs a sequence classifier", opts.IntentTransformer, p.byoIntent.Task())
		}
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("load intent transformer: %w", err)
		}
	}
	if opts.EntityTransformer != "" {
		if p.byoTagger, err = bert.Load(ctx, rt, opts.EntityTransformer, inference.LoadOptions{Provider: lo.Provider, Concurrency: lo.Concurrency}); err == nil && p.byoTagger.Task() != "token" {
			err = fmt.Errorf("%s is a %s model; nlu.transformer.entities needs a token classifier", opts.EntityTransformer, p.byoTagger.Task())
		}
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("load entity transformer: %w", err)
		}
	}
	return p, nil
}

// byo replaces the trained models' answers with the transformers' where
// they are configured: ranking (probabilities, sorted) and spans in
// original-text runes.
func (p *Parser) byo(ctx context.Context, text string, res *Result) error {
	if p.byoIntent != nil {
		scores, err := p.byoIntent.Classify(ctx, text)
		if err != nil {
			return fmt.Errorf("intent transformer: %w", err)
		}
		if len(scores) == 0 {
			return fmt.Errorf("intent transformer: %w: no labels", ErrBadModel)
		}
		res.Ranking = res.Ranking[:0]
		for _, s := range scores[:min(5, len(scores))] {
			res.Ranking = append(res.Ranking, Intent{Name: s.Label, Confidence: round4(s.P)})
		}
	}
	if p.byoTagger != nil {
		spans, err := p.byoTagger.Tag(ctx, text)
		if err != nil {
			return fmt.Errorf("entity transformer: %w", err)
		}
		rs := []rune(text)
		res.Entities = res.Entities[:0]
		for _, sp := range spans {
			if sp.Start < 0 || sp.End > len(rs) || sp.Start >= sp.End {
				continue
			}
			val := string(rs[sp.Start:sp.End])
			norm := foldWidth(val)
			if c, ok := p.rules.Canonical(val); ok {
				norm = c
			}
			res.Entities = append(res.Entities, Entity{Type: sp.Type, Value: val, Normalized: norm, Start: sp.Start, End: sp.End,
				Extractor: "transformer", Confidence: round4(sp.Confidence)})
		}
	}
	return nil
}

func dims(ds ...any) []inference.Dim {
	out := make([]inference.Dim, len(ds))
	for i, d := range ds {
		switch d := d.(type) {
		case int:
			out[i] = inference.Dim{Size: int64(d)}
		case string:
			out[i] = inference.Dim{Size: -1, Sym: d}
		}
	}
	return out
}

func mergeMap(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range b {
		out[k] = v
	}
	for k, v := range a { // the operator's configuration wins
		out[k] = v
	}
	return out
}

func mergeLookups(a, b map[string][]string) map[string][]string {
	out := make(map[string][]string, len(a)+len(b))
	for k, v := range b {
		out[k] = slices.Clone(v)
	}
	for k, v := range a {
		out[k] = append(out[k], v...)
	}
	return out
}

// Manifest returns the model's manifest.
func (p *Parser) Manifest() *Manifest { return p.man }

// Dir is the model folder.
func (p *Parser) Dir() string { return p.dir }

// Close releases the models. Nil-safe and idempotent.
func (p *Parser) Close() error {
	if p == nil {
		return nil
	}
	var errs []error
	if p.intent != nil {
		errs = append(errs, p.intent.Close())
	}
	if p.tagger != nil {
		errs = append(errs, p.tagger.Close())
	}
	if p.byoIntent != nil {
		errs = append(errs, p.byoIntent.Close())
	}
	if p.byoTagger != nil {
		errs = append(errs, p.byoTagger.Close())
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// CheckText validates a text to parse.
func (p *Parser) CheckText(text string) error {
	if !utf8.ValidString(text) {
		return ErrInvalidUTF8
	}
	if strings.TrimSpace(text) == "" {
		return ErrEmpty
	}
	if n := utf8.RuneCountInString(text); n > p.opts.MaxChars {
		return fmt.Errorf("%w: %d characters, the maximum is %d", ErrTooLong, n, p.opts.MaxChars)
	}
	return nil
}

// Parse returns the intent and entities of text.
func (p *Parser) Parse(ctx context.Context, text string) (*Result, error) {
	if err := p.CheckText(text); err != nil {
		return nil, err
	}
	n := rules.Normalize(text) // once: the models and the rules share it
	rs, orig := n.Runes, n.Orig
	raw, err := p.feat.run(ctx, (*ortScorer)(p), rs, p.man.Temperature)
	if err != nil {
		return nil, err
	}
	res := &Result{Text: text, Entities: []Entity{}}
	order := make([]int, len(raw.scores))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case raw.scores[a] > raw.scores[b]:
			return -1
		case raw.scores[a] < raw.scores[b]:
			return 1
		}
		return 0
	})
	for _, i := range order[:min(5, len(order))] {
		res.Ranking = append(res.Ranking, Intent{Name: p.feat.intents[i], Confidence: round4(raw.scores[i])})
	}
	origRunes := []rune(text)
	for _, sp := range raw.spans {
		res.Entities = append(res.Entities, p.modelEntity(sp, rs, orig, origRunes))
	}
	if err := p.byo(ctx, text, res); err != nil {
		return nil, err
	}
	res.Intent = res.Ranking[0]
	if res.Intent.Confidence < p.opts.FallbackThreshold {
		res.Intent = Intent{Name: FallbackIntent, Confidence: res.Intent.Confidence}
	}
	for _, e := range p.rules.ExtractNormalized(n, text, p.opts.Now()) {
		res.Entities = mergeRule(res.Entities, e)
	}
	slices.SortStableFunc(res.Entities, func(a, b Entity) int { return a.Start - b.Start })
	return res, nil
}

// modelEntity maps a tagger span from normalized to original coordinates.
func (p *Parser) modelEntity(sp spanOf, rs []rune, orig []int, origRunes []rune) Entity {
	a, b := orig[sp.Start], orig[sp.End-1]+1
	val := string(origRunes[a:b])
	norm := foldWidth(val)
	if c, ok := p.rules.Canonical(string(rs[sp.Start:sp.End])); ok {
		norm = c
	}
	return Entity{Type: sp.Type, Value: val, Normalized: norm, Start: a, End: b, Extractor: "crf", Confidence: round4(sp.Confidence)}
}

// mergeRule adds a rule entity: when a model entity covers exactly the same
// span, the rule's normalized value and attributes complete it instead
// (the model knows the role, the rule the value).
func mergeRule(ents []Entity, e rules.Entity) []Entity {
	for i := range ents {
		if ents[i].Start == e.Start && ents[i].End == e.End {
			ents[i].Normalized = e.Normalized
			ents[i].Attrs = e.Attrs
			return ents
		}
	}
	return append(ents, Entity{Type: e.Type, Value: e.Value, Normalized: e.Normalized, Start: e.Start, End: e.End,
		Extractor: e.Extractor, Confidence: e.Confidence, Attrs: e.Attrs})
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// ortScorer scores through ONNX Runtime.
type ortScorer Parser

func (s *ortScorer) intentScores(ctx context.Context, x sparse) ([]float64, error) {
	k := max(1, len(x.ids))
	ids := make([]int64, k)
	ws := make([]float32, k)
	for i, id := range x.ids {
		ids[i] = int64(id)
		ws[i] = x.vals[i]
	}
	out, err := s.intent.Run(ctx, []inference.Tensor{
		inference.NewTensor([]int64{1, int64(k)}, ids),
		inference.NewTensor([]int64{1, int64(k)}, ws)})
	if err != nil {
		return nil, fmt.Errorf("intent model: %w", err)
	}
	v, err := inference.Values[float32](out[0])
	if err != nil {
		return nil, fmt.Errorf("intent model: %w", err)
	}
	z := make([]float64, len(v))
	for i, f := range v {
		z[i] = float64(f)
	}
	return z, nil
}

func (s *ortScorer) emissions(ctx context.Context, feats [][]int32) ([]float64, []float32, []float32, error) {
	F := 1
	for _, f := range feats {
		F = max(F, len(f))
	}
	T := len(feats)
	ids := make([]int64, T*F)
	for t, f := range feats {
		row := ids[t*F : (t+1)*F]
		for i := range row {
			if i < len(f) {
				row[i] = int64(f[i])
			} else {
				row[i] = s.padID
			}
		}
	}
	out, err := s.tagger.Run(ctx, []inference.Tensor{inference.NewTensor([]int64{int64(T), int64(F)}, ids)})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("entity model: %w", err)
	}
	v, err := inference.Values[float32](out[0])
	if err != nil {
		return nil, nil, nil, fmt.Errorf("entity model: %w", err)
	}
	em := make([]float64, len(v))
	for i, f := range v {
		em[i] = float64(f)
	}
	return em, s.trans, s.start, nil
}

// foldWidth maps full-width ASCII forms and the ideographic space to their
// half-width forms, keeping case (a model entity's normalized value).
func foldWidth(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			return r - 0xFEE0
		case r == 0x3000:
			return ' '
		}
		return r
	}, s)
}
