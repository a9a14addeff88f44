package asrtest

import (
	"strconv"
	"strings"

	pb "github.com/zhiyin/zhiyin/inference/onnxpb"
)

// Shape of the generated SenseVoice projection.
const (
	svHidden    = 16
	svFillers   = 32   // filler columns the other ids share
	svW1Scale   = 0.15 // hidden weights, uniform ±
	svW2Scale   = 1.0  // text columns, uniform ±
	svBlankBias = 5.5  // blank's constant logit in text frames
	tagLogit    = 20   // a chosen tag, pad marker or </s> in a constant row
	offLogit    = -30  // columns a text frame never chooses
	fillerLogit = -40  // filler columns (with ±0.3 weights: still below text)
)

// svModel is the SenseVoice weights both layouts share.
type svModel struct {
	proj   projection
	vocab  vocab
	cmvn   cmvn
	qLang  []float32 // [17, K]: rows for language values 0…16 (clipped)
	qMid   []float32 // [1, 2, K]: <|NEUTRAL|>, <|Speech|>
	qITN   []float32 // [2, K]: <|woitn|>, <|withitn|>
	padRow []float32 // [K]
}

func newSenseVoice() *svModel {
	v := senseVoiceVocab()
	c := senseVoiceCMVN()
	r := &rng{0x5e05e}
	// Columns: blank, text…, pad marker, tags…, fillers….
	nText := len(v.text)
	padCol := 1 + nText
	tagCol := padCol + 1
	fillCol := tagCol + len(senseVoiceTags)
	k := fillCol + svFillers
	m := &svModel{vocab: v, cmvn: c}
	p := &m.proj
	p.hidden, p.k = svHidden, k
	p.w1 = hiddenWeights(r, svHidden, svW1Scale, c.silence())
	p.w2 = make([]float32, svHidden*k)
	p.b2 = make([]float32, k)
	for j := 0; j < k; j++ {
		switch {
		case j == 0:
			p.b2[j] = svBlankBias
		case j < padCol:
			for h := 0; h < svHidden; h++ {
				p.w2[h*k+j] = r.uniform(svW2Scale)
			}
			p.b2[j] = r.uniform(0.5)
		case j < fillCol:
			p.b2[j] = offLogit
		default:
			for h := 0; h < svHidden; h++ {
				p.w2[h*k+j] = r.uniform(0.3)
			}
			p.b2[j] = fillerLogit + r.uniform(1)
		}
	}
	p.idmap = make([]int32, SenseVoiceVocabSize)
	col := map[int]int{SenseVoiceBlankID: 0, int(v.pad): padCol}
	for i, id := range v.text {
		col[int(id)] = 1 + i
	}
	tagCols := map[int]int{}
	for i, t := range senseVoiceTags {
		col[t.id] = tagCol + i
		tagCols[t.id] = tagCol + i
	}
	for id := range p.idmap {
		c, ok := col[id]
		if !ok {
			c = fillCol + r.intn(svFillers)
		}
		p.idmap[id] = int32(c)
	}
	// Constant rows: the projection of silence with one column raised.
	row := func(c int) []float32 {
		out := make([]float32, k)
		copy(out, p.b2)
		out[c] = tagLogit
		return out
	}
	for lang := int32(0); lang <= 16; lang++ {
		m.qLang = append(m.qLang, row(tagCols[LanguageTag(lang)])...)
	}
	m.qMid = append(row(tagCols[TagNeutral]), row(tagCols[TagSpeech])...)
	m.qITN = append(row(tagCols[TagWoITN]), row(tagCols[TagWithITN])...)
	m.padRow = row(padCol)
	return m
}

// svNames are one layout's tensor and dimension names.
type svNames struct {
	x, xLen, lang, textNorm, logits, lens string
	n, t, tOut                            string
	funasr                                bool
}

// graph builds the SenseVoice graph: 4 query frames, then the masked
// text projection, spread over the vocabulary.
func (m *svModel) graph(nm svNames) (*builder, []pb.ValueInfo, []pb.ValueInfo) {
	b := &builder{}
	k := int64(m.proj.k)
	text := m.proj.text(b, nm.x)

	// Frames at or past x_length take the pad row.
	shape := b.op("Shape", []string{nm.x}, "x_shape")
	tLen := b.op("Gather", []string{shape, b.i64("one", nil, 1)}, "t_len", attrInt("axis", 0))
	frames := b.op("Range", []string{b.i64("zero", nil, 0), tLen, "one"}, "frames")
	len64 := b.op("Cast", []string{nm.xLen}, "x_len64", attrInt("to", int64(pb.Int64)))
	axis1 := b.i64("axis1", []int64{1}, 1)
	lenCol := b.op("Unsqueeze", []string{len64, axis1}, "x_len_col")
	past := b.op("GreaterOrEqual", []string{frames, lenCol}, "past_len")
	past = b.op("Unsqueeze", []string{past, b.i64("axis2", []int64{1}, 2)}, "past_len3")
	pad := b.floats("pad_row", []int64{k}, m.padRow)
	text = b.op("Where", []string{past, pad, text}, "text_frames")

	// Query frames: language, <|NEUTRAL|>, <|Speech|>, text norm.
	lang := b.op("Clip", []string{nm.lang, b.i32("lang_min", nil, 0), b.i32("lang_max", nil, 16)}, "lang_clipped")
	q0 := b.op("Gather", []string{b.floats("query_language", []int64{17, k}, m.qLang), lang}, "q_lang", attrInt("axis", 0))
	q0 = b.op("Unsqueeze", []string{q0, axis1}, "q_lang3")
	itn := b.op("Equal", []string{nm.textNorm, b.i32("with_itn", nil, WithITN)}, "is_itn")
	itn = b.op("Cast", []string{itn}, "itn_index", attrInt("to", int64(pb.Int32)))
	q3 := b.op("Gather", []string{b.floats("query_itn", []int64{2, k}, m.qITN), itn}, "q_itn", attrInt("axis", 0))
	q3 = b.op("Unsqueeze", []string{q3, axis1}, "q_itn3")
	nShape := b.op("Shape", []string{nm.lang}, "n_shape")
	midShape := b.op("Concat", []string{nShape, b.i64("mid_dims", []int64{2}, 2, k)}, "mid_shape", attrInt("axis", 0))
	q12 := b.op("Expand", []string{b.floats("query_emo_event", []int64{1, 2, k}, m.qMid), midShape}, "q_mid")
	queries := b.op("Concat", []string{q0, q12, q3}, "queries", attrInt("axis", 1))
	all := b.op("Concat", []string{queries, text}, "all_frames", attrInt("axis", 1))

	var outs []pb.ValueInfo
	if nm.funasr {
		raw := m.proj.spread(b, all, "raw_logits")
		b.op("LogSoftmax", []string{raw}, nm.logits, attrInt("axis", -1))
		b.op("Add", []string{nm.xLen, b.i32("four", nil, 4)}, nm.lens)
		outs = []pb.ValueInfo{pb.Value(nm.logits, pb.Float, nm.n, nm.tOut, SenseVoiceVocabSize), pb.Value(nm.lens, pb.Int32, nm.n)}
	} else {
		m.proj.spread(b, all, nm.logits)
		outs = []pb.ValueInfo{pb.Value(nm.logits, pb.Float, nm.n, nm.tOut, SenseVoiceVocabSize)}
	}
	ins := []pb.ValueInfo{
		pb.Value(nm.x, pb.Float, nm.n, nm.t, FeatureDim),
		pb.Value(nm.xLen, pb.Int32, nm.n),
		pb.Value(nm.lang, pb.Int32, nm.n),
		pb.Value(nm.textNorm, pb.Int32, nm.n),
	}
	return b, ins, outs
}

const contractDoc = "zhiyin contract model: the tensors, metadata and files of the real release with small pseudo-random weights; NOT a speech recogniser."

// SenseVoiceSherpa returns the sherpa-onnx SenseVoice release folder
// (model.onnx with the export script's metadata, tokens.txt): inputs x
// f32[N,T,560], x_length, language, text_norm i32[N]; output logits
// f32[N,T+4,25055], raw. It computes the folder (tens of milliseconds);
// the result is the caller's.
func SenseVoiceSherpa() Folder {
	m := newSenseVoice()
	// Dimension names as sherpa-onnx's export-onnx.py sets them (the
	// output's second axis is called T there too).
	b, ins, outs := m.graph(svNames{x: "x", xLen: "x_length", lang: "language", textNorm: "text_norm", logits: "logits", n: "N", t: "T", tOut: "T"})
	itoa := strconv.Itoa
	meta := []pb.KV{
		{Key: "lfr_window_size", Value: "7"},
		{Key: "lfr_window_shift", Value: "6"},
		{Key: "normalize_samples", Value: "0"},
		{Key: "neg_mean", Value: strings.Join(m.cmvn.negMean, ",")},
		{Key: "inv_stddev", Value: strings.Join(m.cmvn.invStddev, ",")},
		{Key: "model_type", Value: "sense_voice_ctc"},
		{Key: "version", Value: "2"},
		{Key: "model_author", Value: "zhiyin"},
		{Key: "maintainer", Value: Maintainer},
		{Key: "vocab_size", Value: itoa(SenseVoiceVocabSize)},
		{Key: "comment", Value: "iic/SenseVoiceSmall"},
		{Key: "lang_auto", Value: itoa(LangAuto)},
		{Key: "lang_zh", Value: itoa(LangZh)},
		{Key: "lang_en", Value: itoa(LangEn)},
		{Key: "lang_yue", Value: itoa(LangYue)},
		{Key: "lang_ja", Value: itoa(LangJa)},
		{Key: "lang_ko", Value: itoa(LangKo)},
		{Key: "lang_nospeech", Value: itoa(LangNoSpeech)},
		{Key: "with_itn", Value: itoa(WithITN)},
		{Key: "without_itn", Value: itoa(WithoutITN)},
		{Key: "url", Value: "https://huggingface.co/FunAudioLLM/SenseVoiceSmall"},
	}
	return Folder{Name: SenseVoiceSherpaName, Files: []File{
		{"model.onnx", b.model("sense_voice_contract", contractDoc, ins, outs, meta)},
		{"tokens.txt", tokensTxt(m.vocab.pieces)},
	}}
}

// SenseVoiceFunASR returns the FunASR SenseVoice export folder (model.onnx
// without metadata, tokens.json, am.mvn, config.yaml): inputs speech,
// speech_lengths, language, textnorm; outputs ctc_logits f32[N,T+4,25055]
// (log-softmax, as FunASR's export_meta.py writes it: same argmax as the
// sherpa-onnx file) and encoder_out_lens i32[N] = speech_lengths+4. Same
// weights and CMVN as SenseVoiceSherpa. The result is the caller's.
func SenseVoiceFunASR() Folder {
	m := newSenseVoice()
	// Dimension names as FunASR's export_meta.py sets them.
	b, ins, outs := m.graph(svNames{x: "speech", xLen: "speech_lengths", lang: "language", textNorm: "textnorm", logits: "ctc_logits", lens: "encoder_out_lens",
		n: "batch_size", t: "feats_length", tOut: "logits_length", funasr: true})
	return Folder{Name: SenseVoiceFunASRName, Files: []File{
		{"model.onnx", b.model("sense_voice_contract", contractDoc, ins, outs, nil)},
		{"tokens.json", tokensJSON(m.vocab.pieces)},
		{"am.mvn", m.cmvn.amMVN()},
		{"config.yaml", []byte(senseVoiceConfig)},
	}}
}
