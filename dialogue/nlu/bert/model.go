package bert

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/zhiyin/zhiyin/inference"
)

// Kind is the manifest kind of a bring-your-own BERT folder.
const Kind = "nlu-bert"

// The tasks a BERT folder's metadata can name.
const (
	// TaskSequence classifies a whole text (intent): logits [N, C].
	TaskSequence = "sequence"
	// TaskToken labels every token with BIO tags (entities): logits
	// [N, T, C].
	TaskToken = "token"
)

// Metadata keys read from model.yaml.
const (
	MetaTask      = "task"       // sequence or token (required)
	MetaMaxLen    = "max_len"    // longest encoding in tokens, [CLS]/[SEP] included (default 128)
	MetaLabels    = "labels"     // labels file (default labels.txt)
	MetaVocab     = "vocab"      // vocabulary file (default vocab.txt)
	MetaLowerCase = "lower_case" // true (default) for uncased models, false for cased
)

// DefaultMaxLen is the encoding length used when the manifest gives none.
const DefaultMaxLen = 128

// maxLabels bounds a labels file.
const maxLabels = 1 << 16

// Score is one label's probability.
type Score struct {
	Label string  `json:"label"`
	P     float64 `json:"p"`
}

// Span is an entity found by Tag: its type (the label without B-/I-) and
// its [Start, End) in runes of the text.
type Span struct {
	Type  string `json:"type"`
	Start int    `json:"start"`
	End   int    `json:"end"`
	// Confidence is the mean probability of the labels of the span's
	// words.
	Confidence float64 `json:"confidence"`
}

type role int

const (
	roleIDs role = iota
	roleMask
	roleTypes
)

// Model is a loaded BERT folder: its tokenizer, labels and ONNX model. It
// is safe for concurrent use; Close releases the ONNX Runtime session.
type Model struct {
	m      *inference.Model
	wp     *WordPiece
	labels []string
	task   string
	maxLen int
	roles  []role
	dtypes []inference.DType
}

// Load opens a bring-your-own BERT folder: model.yaml (an inference
// manifest of kind nlu-bert whose metadata names the task and max_len), the
// vocabulary and the labels file (one label per line, in logit order; BIO
// labels such as B-carrier, I-carrier, O for the token task). The contract
// must have 2 or 3 int64 (or int32) inputs — input_ids, attention_mask and
// optionally token_type_ids, recognised by name and otherwise by that
// order — and the logits as first output. It verifies the files, loads the
// graph with opts and warms it up, so it blocks; ctx cancels the warm-up.
// The caller owns the model and must Close it. Errors wrap ErrModel or
// inference's errors and say what to fix.
func Load(ctx context.Context, rt *inference.Runtime, dir string, opts inference.LoadOptions) (*Model, error) {
	man, err := inference.ReadManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("load BERT model: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("load BERT model %s: %w: %s", dir, ErrModel, fmt.Sprintf(format, args...))
	}
	// Check every file's sha256 before reading any of them, and only once.
	if !opts.SkipVerify {
		if err := man.Verify(); err != nil {
			return nil, fmt.Errorf("load BERT model: %w", err)
		}
		opts.SkipVerify = true
	}
	if man.Kind != Kind {
		return nil, bad("model.yaml says kind %q; a BERT folder needs kind: %s", man.Kind, Kind)
	}
	md := man.Metadata
	m := &Model{task: md[MetaTask], maxLen: DefaultMaxLen}
	if m.task != TaskSequence && m.task != TaskToken {
		return nil, bad("metadata.%s is %q; set it to %s (intent) or %s (entities)", MetaTask, m.task, TaskSequence, TaskToken)
	}
	if s := md[MetaMaxLen]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			return nil, bad("metadata.%s is %q; it must be a number of tokens of at least 2 (typically 128 or 512)", MetaMaxLen, s)
		}
		m.maxLen = n
	}
	var wpOpts []Option
	switch strings.ToLower(md[MetaLowerCase]) {
	case "", "true", "yes", "1":
	case "false", "no", "0":
		wpOpts = append(wpOpts, LowerCase(false))
	default:
		return nil, bad("metadata.%s is %q; use true (uncased models) or false", MetaLowerCase, md[MetaLowerCase])
	}
	if m.wp, err = LoadVocab(man.Path(orDefault(md[MetaVocab], "vocab.txt")), wpOpts...); err != nil {
		return nil, bad("%v", err)
	}
	if m.labels, err = readLabels(man.Path(orDefault(md[MetaLabels], "labels.txt"))); err != nil {
		return nil, bad("%v", err)
	}
	if err := m.bind(&man.Contract); err != nil {
		return nil, bad("%v", err)
	}
	if m.m, err = rt.Load(ctx, man, opts); err != nil {
		return nil, fmt.Errorf("load BERT model: %w", err)
	}
	return m, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// readLabels reads one label per line; blank lines at the end are ignored.
func readLabels(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	defer f.Close()
	labels, err := ParseLabels(f)
	if err != nil {
		return nil, fmt.Errorf("labels %s: %w", filepath.Base(path), err)
	}
	return labels, nil
}

// ParseLabels reads a labels file: one label per line, in logit order.
// Surrounding spaces are trimmed; blank lines at the end are ignored, blank
// or repeated labels elsewhere are errors.
func ParseLabels(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	var labels []string
	for sc.Scan() {
		if len(labels) >= maxLabels {
			return nil, fmt.Errorf("more than %d lines: this is not a labels file", maxLabels)
		}
		labels = append(labels, strings.TrimSpace(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for len(labels) > 0 && labels[len(labels)-1] == "" {
		labels = labels[:len(labels)-1]
	}
	if len(labels) < 2 {
		return nil, errors.New("fewer than 2 labels: write one label per line, in the order of the model's logits")
	}
	seen := map[string]int{}
	for i, l := range labels {
		if l == "" {
			return nil, fmt.Errorf("line %d is blank: every line up to the last label must name one", i+1)
		}
		if j, ok := seen[l]; ok {
			return nil, fmt.Errorf("label %q is on lines %d and %d", l, j+1, i+1)
		}
		seen[l] = i
	}
	return labels, nil
}

// bind works out which contract input is which and checks the logits.
func (m *Model) bind(c *inference.Contract) error {
	if n := len(c.Inputs); n != 2 && n != 3 {
		return fmt.Errorf("the contract has %d inputs; a BERT model takes input_ids, attention_mask and optionally token_type_ids", n)
	}
	m.roles = make([]role, len(c.Inputs))
	m.dtypes = make([]inference.DType, len(c.Inputs))
	seen := map[role]bool{}
	byName := true
	for i, in := range c.Inputs {
		if in.DType != inference.Int64 && in.DType != inference.Int32 {
			return fmt.Errorf("contract input %d (%s) is %s; BERT inputs are int64 or int32", i, in.Name, in.DType)
		}
		if len(in.Shape) != 2 {
			return fmt.Errorf("contract input %d (%s) has rank %d; BERT inputs are [N, T]", i, in.Name, len(in.Shape))
		}
		m.dtypes[i] = in.DType
		r := roleOf(append([]string{in.Name}, in.Aliases...))
		if seen[r] {
			byName = false
		}
		seen[r] = true
		m.roles[i] = r
	}
	if !byName {
		for i := range m.roles {
			m.roles[i] = role(i)
		}
	}
	if len(c.Outputs) == 0 {
		return errors.New("the contract has no outputs; the first must be the logits")
	}
	out := c.Outputs[0]
	want := 2
	if m.task == TaskToken {
		want = 3
	}
	if out.DType != inference.Float32 || len(out.Shape) != want {
		return fmt.Errorf("contract output 0 (%s) is %s of rank %d; the %s task needs float32 logits of rank %d", out.Name, out.DType, len(out.Shape), m.task, want)
	}
	if last := out.Shape[len(out.Shape)-1]; last.Fixed() && last.Size != int64(len(m.labels)) {
		return fmt.Errorf("the logits have %d classes but the labels file lists %d labels", last.Size, len(m.labels))
	}
	return nil
}

func roleOf(names []string) role {
	for _, n := range names {
		n = strings.ToLower(n)
		switch {
		case strings.Contains(n, "mask"):
			return roleMask
		case strings.Contains(n, "type") || strings.Contains(n, "segment"):
			return roleTypes
		}
	}
	return roleIDs
}

// Task returns TaskSequence or TaskToken.
func (m *Model) Task() string { return m.task }

// Labels returns the labels in logit order. The caller must not modify
// them.
func (m *Model) Labels() []string { return m.labels }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *WordPiece { return m.wp }

// MaxLen returns the longest encoding given to the model, in tokens.
func (m *Model) MaxLen() int { return m.maxLen }

// Close releases the ONNX Runtime session. Nil-safe and idempotent.
func (m *Model) Close() error {
	if m == nil || m.m == nil {
		return nil
	}
	return m.m.Close()
}

// logits encodes text and runs the model: the encoding and the logits as
// rows of C values (1 row for the sequence task, one per token for the
// token task).
func (m *Model) logits(ctx context.Context, text string) (Encoding, [][]float32, error) {
	enc := m.wp.Encode(text, m.maxLen)
	t := int64(enc.Len())
	ins := make([]inference.Tensor, len(m.roles))
	for i, r := range m.roles {
		src := enc.IDs
		switch r {
		case roleMask:
			src = enc.Mask
		case roleTypes:
			src = enc.TypeIDs
		}
		if m.dtypes[i] == inference.Int32 {
			v := make([]int32, len(src))
			for j, x := range src {
				v[j] = int32(x)
			}
			ins[i] = inference.NewTensor([]int64{1, t}, v)
		} else {
			ins[i] = inference.NewTensor([]int64{1, t}, src)
		}
	}
	outs, err := m.m.Run(ctx, ins)
	if err != nil {
		return enc, nil, err
	}
	v, err := inference.Values[float32](outs[0])
	if err != nil {
		return enc, nil, fmt.Errorf("%w: logits: %v", ErrModel, err)
	}
	c := len(m.labels)
	rows := 1
	if m.task == TaskToken {
		rows = int(t)
	}
	if len(v) != rows*c {
		return enc, nil, fmt.Errorf("%w: logits have shape %v, want %d×%d (labels file: %d labels)", ErrModel, outs[0].Shape, rows, c, c)
	}
	out := make([][]float32, rows)
	for i := range out {
		out[i] = v[i*c : (i+1)*c]
	}
	return enc, out, nil
}

// Classify returns every label's probability for text (the softmax of the
// logits), highest first. It runs the model, so it blocks; ctx cancels the
// run. Errors wrap ErrTask for a token model, and inference's Run errors.
// Safe for concurrent use.
func (m *Model) Classify(ctx context.Context, text string) ([]Score, error) {
	if m.task != TaskSequence {
		return nil, fmt.Errorf("classify: %w: this model's task is %s; use Tag", ErrTask, m.task)
	}
	_, rows, err := m.logits(ctx, text)
	if err != nil {
		return nil, fmt.Errorf("classify: %w", err)
	}
	p := softmax(rows[0])
	scores := make([]Score, len(p))
	for i, x := range p {
		scores[i] = Score{Label: m.labels[i], P: x}
	}
	sort.SliceStable(scores, func(i, j int) bool { return scores[i].P > scores[j].P })
	return scores, nil
}

// Tag returns the entities in text, in order: the label of each word is
// the most probable one at its first piece, and B-x starts a span of type
// x, I-x continues a span of type x (or starts one after O or another
// type), O ends it; a label without a B-/I- prefix is treated like I-.
// Words cut off by max_len are not tagged. It runs the model, so it
// blocks; ctx cancels the run. Errors wrap ErrTask for a sequence model,
// and inference's Run errors. Safe for concurrent use.
func (m *Model) Tag(ctx context.Context, text string) ([]Span, error) {
	if m.task != TaskToken {
		return nil, fmt.Errorf("tag: %w: this model's task is %s; use Classify", ErrTask, m.task)
	}
	enc, rows, err := m.logits(ctx, text)
	if err != nil {
		return nil, fmt.Errorf("tag: %w", err)
	}
	return m.decode(enc, rows), nil
}

// decode turns per-token logits into BIO spans (see Tag).
func (m *Model) decode(enc Encoding, rows [][]float32) []Span {
	var spans []Span
	var cur *Span
	var sum float64
	var words int
	closeSpan := func() {
		if cur != nil {
			cur.Confidence = sum / float64(words)
			spans = append(spans, *cur)
			cur = nil
		}
	}
	for i := 0; i < enc.Len(); i++ {
		w := enc.Words[i]
		if w < 0 {
			continue
		}
		if i > 0 && enc.Words[i-1] == w {
			if cur != nil && cur.End < enc.Offsets[i][1] {
				cur.End = enc.Offsets[i][1] // a continuation piece extends the span
			}
			continue
		}
		p := softmax(rows[i])
		best := 0
		for j := range p {
			if p[j] > p[best] {
				best = j
			}
		}
		label := m.labels[best]
		prefix, typ := splitBIO(label)
		switch {
		case prefix == "O":
			closeSpan()
			continue
		case prefix == "B" || cur == nil || cur.Type != typ:
			closeSpan()
			cur = &Span{Type: typ, Start: enc.Offsets[i][0], End: enc.Offsets[i][1]}
			sum, words = 0, 0
		default:
			cur.End = enc.Offsets[i][1]
		}
		sum += p[best]
		words++
	}
	closeSpan()
	return spans
}

// splitBIO splits "B-x" into ("B", "x"); "O" gives ("O", ""); a label
// without prefix counts as "I".
func splitBIO(label string) (prefix, typ string) {
	if label == "O" {
		return "O", ""
	}
	if len(label) > 2 && (label[0] == 'B' || label[0] == 'I') && (label[1] == '-' || label[1] == '_') {
		return label[:1], label[2:]
	}
	return "I", label
}

func softmax(x []float32) []float64 {
	out := make([]float64, len(x))
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	for i, v := range x {
		out[i] = math.Exp(float64(v) - mx)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}
