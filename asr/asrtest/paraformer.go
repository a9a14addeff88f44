package asrtest

import (
	"strconv"
	"strings"

	pb "github.com/zhiyin/zhiyin/inference/onnxpb"
)

// Shape of the generated Paraformer projection.
const (
	pfHidden  = 16
	pfFillers = 32
	pfW1Scale = 0.06
	pfW2Scale = 1.0
)

// pfModel is the Paraformer weights every layout shares.
type pfModel struct {
	proj   projection
	vocab  vocab
	cmvn   cmvn
	eosRow []float32 // [K]: row token_num−1
	padRow []float32 // [K]: rows past token_num
}

func newParaformer() *pfModel {
	v := paraformerVocab()
	c := paraformerCMVN()
	r := &rng{0x9a4a}
	// Columns: <blank>, <s>, </s>, <unk>, text…, pad marker, fillers….
	const textCol = 4
	padCol := textCol + len(v.text)
	fillCol := padCol + 1
	k := fillCol + pfFillers
	m := &pfModel{vocab: v, cmvn: c}
	p := &m.proj
	p.hidden, p.k = pfHidden, k
	p.w1 = hiddenWeights(r, pfHidden, pfW1Scale, c.silence())
	p.w2 = make([]float32, pfHidden*k)
	p.b2 = make([]float32, k)
	for j := 0; j < k; j++ {
		switch {
		case j < textCol || j == padCol:
			p.b2[j] = offLogit
		case j < padCol:
			for h := 0; h < pfHidden; h++ {
				p.w2[h*k+j] = r.uniform(pfW2Scale)
			}
			p.b2[j] = r.uniform(0.5)
		default:
			for h := 0; h < pfHidden; h++ {
				p.w2[h*k+j] = r.uniform(0.3)
			}
			p.b2[j] = fillerLogit + r.uniform(1)
		}
	}
	col := map[int]int{ParaformerBlankID: 0, ParaformerSOSID: 1, ParaformerEOSID: 2, ParaformerUnkID: 3, int(v.pad): padCol}
	for i, id := range v.text {
		col[int(id)] = textCol + i
	}
	p.idmap = make([]int32, ParaformerVocabSize)
	for id := range p.idmap {
		c, ok := col[id]
		if !ok {
			c = fillCol + r.intn(pfFillers)
		}
		p.idmap[id] = int32(c)
	}
	row := func(c int) []float32 {
		out := make([]float32, k)
		copy(out, p.b2)
		out[c] = tagLogit
		return out
	}
	m.eosRow, m.padRow = row(2), row(padCol)
	return m
}

// graph builds the Paraformer graph; timestamps adds us_alphas and
// us_cif_peak. Dimension names are FunASR's export_meta.py ones (sherpa-onnx
// converts FunASR's export).
func (m *pfModel) graph(timestamps bool) (*builder, []pb.ValueInfo, []pb.ValueInfo) {
	b := &builder{}
	k := int64(m.proj.k)
	text := m.proj.text(b, "speech")

	shape := b.op("Shape", []string{"speech"}, "speech_shape")
	one := b.i64("one", nil, 1)
	tLen := b.op("Gather", []string{shape, one}, "t_len", attrInt("axis", 0))
	rows := b.op("Range", []string{b.i64("zero", nil, 0), tLen, one}, "rows")

	// token_num = min(speech_lengths/4 + 1, T).
	tn := b.op("Div", []string{"speech_lengths", b.i32("four", nil, 4)}, "len_div4")
	tn = b.op("Add", []string{tn, b.i32("one_i32", nil, 1)}, "len_div4_plus1")
	t32 := b.op("Cast", []string{tLen}, "t_len32", attrInt("to", int64(pb.Int32)))
	b.op("Min", []string{tn, t32}, "token_num")

	tn64 := b.op("Cast", []string{"token_num"}, "token_num64", attrInt("to", int64(pb.Int64)))
	axis1 := b.i64("axis1", []int64{1}, 1)
	axis2 := b.i64("axis2", []int64{1}, 2)
	tnCol := b.op("Unsqueeze", []string{tn64, axis1}, "token_num_col")
	last := b.op("Sub", []string{tnCol, one}, "eos_row_index")
	isEOS := b.op("Equal", []string{rows, last}, "is_eos")
	isEOS = b.op("Unsqueeze", []string{isEOS, axis2}, "is_eos3")
	isPast := b.op("GreaterOrEqual", []string{rows, tnCol}, "is_past")
	isPast = b.op("Unsqueeze", []string{isPast, axis2}, "is_past3")
	text = b.op("Where", []string{isPast, b.floats("pad_row", []int64{k}, m.padRow), text}, "rows_padded")
	text = b.op("Where", []string{isEOS, b.floats("eos_row", []int64{k}, m.eosRow), text}, "rows_eos")
	raw := m.proj.spread(b, text, "raw_logits")
	b.op("LogSoftmax", []string{raw}, "logits", attrInt("axis", -1))

	outs := []pb.ValueInfo{
		pb.Value("logits", pb.Float, "batch_size", "logits_length", ParaformerVocabSize),
		pb.Value("token_num", pb.Int32, "batch_size"),
	}
	if timestamps {
		// CIF upsampled 3×: α = 1/3 per frame while k < 3·token_num; the
		// integrator's value ((k mod 3)+1)/3 reaches 1 at k = 3r+2.
		three := b.i64("three", nil, 3)
		k3 := b.op("Mul", []string{tLen, three}, "t3")
		ks := b.op("Range", []string{"zero", k3, one}, "cif_frames")
		phase := b.op("Mod", []string{ks, three}, "cif_phase", attrInt("fmod", 0))
		integ := b.op("Gather", []string{b.floats("cif_integrate", []int64{3}, []float32{1.0 / 3, 2.0 / 3, 1}), phase}, "cif_value", attrInt("axis", 0))
		tn3 := b.op("Mul", []string{tnCol, three}, "token_num3")
		active := b.op("Less", []string{ks, tn3}, "cif_active")
		zero := b.floats("zero_f", nil, []float32{0})
		b.op("Where", []string{active, b.floats("alpha", nil, []float32{1.0 / 3}), zero}, "us_alphas")
		b.op("Where", []string{active, integ, zero}, "us_cif_peak")
		outs = append(outs,
			pb.Value("us_alphas", pb.Float, "batch_size", "alphas_length"),
			pb.Value("us_cif_peak", pb.Float, "batch_size", "alphas_length"))
	}
	ins := []pb.ValueInfo{
		pb.Value("speech", pb.Float, "batch_size", "feats_length", FeatureDim),
		pb.Value("speech_lengths", pb.Int32, "batch_size"),
	}
	return b, ins, outs
}

// sherpaMeta is the metadata sherpa-onnx requires of a Paraformer.
func (m *pfModel) sherpaMeta() []pb.KV {
	return []pb.KV{
		{Key: "vocab_size", Value: strconv.Itoa(ParaformerVocabSize)},
		{Key: "lfr_window_size", Value: "7"},
		{Key: "lfr_window_shift", Value: "6"},
		{Key: "neg_mean", Value: strings.Join(m.cmvn.negMean, ",")},
		{Key: "inv_stddev", Value: strings.Join(m.cmvn.invStddev, ",")},
		{Key: "model_type", Value: "paraformer"},
		{Key: "maintainer", Value: Maintainer},
	}
}

// ParaformerSherpa returns the sherpa-onnx Paraformer release folder
// (model.onnx with metadata, tokens.txt): inputs speech f32[N,T,560],
// speech_lengths i32[N]; outputs logits f32[N,U,8404] (log-softmax, U = T)
// and token_num i32[N]. The result is the caller's.
func ParaformerSherpa() Folder {
	m := newParaformer()
	b, ins, outs := m.graph(false)
	return Folder{Name: ParaformerSherpaName, Files: []File{
		{"model.onnx", b.model("paraformer_contract", contractDoc, ins, outs, m.sherpaMeta())},
		{"tokens.txt", tokensTxt(m.vocab.pieces)},
	}}
}

// ParaformerTimestamps returns the sherpa-onnx Paraformer release with CIF
// timestamps: ParaformerSherpa's model plus outputs us_alphas and
// us_cif_peak f32[N,3T]. The result is the caller's.
func ParaformerTimestamps() Folder {
	m := newParaformer()
	b, ins, outs := m.graph(true)
	return Folder{Name: ParaformerTimestampsName, Files: []File{
		{"model.onnx", b.model("paraformer_timestamps_contract", contractDoc, ins, outs, m.sherpaMeta())},
		{"tokens.txt", tokensTxt(m.vocab.pieces)},
	}}
}

// ParaformerFunASR returns the FunASR Paraformer export folder (model.onnx
// without metadata, tokens.json, am.mvn, config.yaml with predictor_bias
// 1), with ParaformerSherpa's weights and CMVN. The result is the caller's.
func ParaformerFunASR() Folder {
	m := newParaformer()
	b, ins, outs := m.graph(false)
	return Folder{Name: ParaformerFunASRName, Files: []File{
		{"model.onnx", b.model("paraformer_contract", contractDoc, ins, outs, nil)},
		{"tokens.json", tokensJSON(m.vocab.pieces)},
		{"am.mvn", m.cmvn.amMVN()},
		{"config.yaml", []byte(paraformerConfig)},
	}}
}
