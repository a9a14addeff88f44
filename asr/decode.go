package asr

import (
	"context"
	"fmt"
	"strings"

	"github.com/zhiyin/zhiyin/inference"
)

// Token is one recognised token with its time in seconds from the start of
// the audio.
type Token struct {
	Text  string  `json:"text"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
}

// hypothesis is one segment's decoded output.
type hypothesis struct {
	text    string
	lang    string
	emotion string
	event   string
	tokens  []Token // times relative to the segment start
}

// senseVoiceFrame is the duration of one LFR frame: 6 × 10 ms.
const senseVoiceFrame = 0.06

// runner runs the recognition model (an *inference.Handle).
type runner interface {
	Run(ctx context.Context, inputs []inference.Tensor) ([]inference.Tensor, error)
}

// recognize runs one segment's features (rows × dim, row-major) through
// the model and decodes the output.
func recognize(ctx context.Context, r runner, info *modelInfo, feats []float32, rows int, lang string, itn bool) (hypothesis, error) {
	if rows == 0 {
		return hypothesis{}, nil
	}
	dim := len(feats) / rows
	x := inference.NewTensor([]int64{1, int64(rows), int64(dim)}, feats)
	lens := inference.NewTensor([]int64{1}, []int32{int32(rows)})
	switch info.kind {
	case SenseVoice:
		lid, ok := info.langIDs[lang]
		if !ok {
			lid = info.langIDs["auto"]
		}
		tn := info.withoutIT
		if itn {
			tn = info.withITN
		}
		outs, err := r.Run(ctx, []inference.Tensor{x, lens,
			inference.NewTensor([]int64{1}, []int32{lid}), inference.NewTensor([]int64{1}, []int32{tn})})
		if err != nil {
			return hypothesis{}, err
		}
		limit := -1
		if info.outLens >= 0 && info.outLens < len(outs) {
			if n, ok := firstInt(outs[info.outLens]); ok {
				limit = n
			}
		}
		return decodeSenseVoice(info, outs[0], limit)
	default:
		outs, err := r.Run(ctx, []inference.Tensor{x, lens})
		if err != nil {
			return hypothesis{}, err
		}
		if len(outs) < 2 {
			return hypothesis{}, fmt.Errorf("paraformer: %d outputs, want logits and token_num", len(outs))
		}
		n, ok := firstInt(outs[1])
		if !ok {
			return hypothesis{}, fmt.Errorf("paraformer: token_num is empty")
		}
		var peaks []float32
		if info.peaks >= 0 && info.peaks < len(outs) {
			peaks, _ = inference.Values[float32](outs[info.peaks])
		}
		return decodeParaformer(info, outs[0], n, peaks)
	}
}

// firstInt reads element 0 of an int32 or int64 tensor.
func firstInt(t inference.Tensor) (int, bool) {
	if v, err := inference.Values[int32](t); err == nil && len(v) > 0 {
		return int(v[0]), true
	}
	if v, err := inference.Values[int64](t); err == nil && len(v) > 0 {
		return int(v[0]), true
	}
	return 0, false
}

// logitRows returns a [1, rows, V] float32 output's data and its sizes.
func logitRows(t inference.Tensor, vocab int) ([]float32, int, int, error) {
	data, err := inference.Values[float32](t)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("logits: %w", err)
	}
	if len(t.Shape) != 3 || t.Shape[0] != 1 {
		return nil, 0, 0, fmt.Errorf("logits: shape %v, want [1, frames, vocab]", t.Shape)
	}
	rows, v := int(t.Shape[1]), int(t.Shape[2])
	if v != vocab {
		return nil, 0, 0, fmt.Errorf("%w: the model scores %d tokens but the token file lists %d", ErrModelFiles, v, vocab)
	}
	return data, rows, v, nil
}

// argmax returns the index of the largest value (the first of equals).
// Four independent running maxima let the CPU overlap the compares: the
// vocabulary scan is most of decoding's time (25055 scores per frame).
func argmax(row []float32) int {
	n := len(row)
	if n < 8 {
		best, bi := row[0], 0
		for i := 1; i < n; i++ {
			if row[i] > best {
				best, bi = row[i], i
			}
		}
		return bi
	}
	var m [4]float32
	var at [4]int
	for k := range m {
		m[k], at[k] = row[k], k
	}
	i := 4
	for ; i+4 <= n; i += 4 {
		r := row[i : i+4 : i+4]
		if r[0] > m[0] {
			m[0], at[0] = r[0], i
		}
		if r[1] > m[1] {
			m[1], at[1] = r[1], i+1
		}
		if r[2] > m[2] {
			m[2], at[2] = r[2], i+2
		}
		if r[3] > m[3] {
			m[3], at[3] = r[3], i+3
		}
	}
	for ; i < n; i++ {
		if k := i & 3; row[i] > m[k] {
			m[k], at[k] = row[i], i
		}
	}
	best, bi := m[0], at[0]
	for k := 1; k < 4; k++ {
		if m[k] > best || (m[k] == best && at[k] < bi) {
			best, bi = m[k], at[k]
		}
	}
	return bi
}

// decodeSenseVoice is greedy CTC over the T+4 frames (or encoder_out_lens):
// argmax, collapse repeats, drop blanks; the leading tags become fields.
func decodeSenseVoice(info *modelInfo, logits inference.Tensor, limit int) (hypothesis, error) {
	data, rows, v, err := logitRows(logits, len(info.tokens))
	if err != nil {
		return hypothesis{}, err
	}
	if limit >= 0 && limit < rows {
		rows = limit
	}
	var h hypothesis
	prev := -1
	type tok struct{ id, frame int }
	var seq []tok
	for t := 0; t < rows; t++ {
		id := argmax(data[t*v : (t+1)*v])
		if id != prev && id != info.blank {
			seq = append(seq, tok{id, t})
		}
		prev = id
	}
	// Leading tags: language, emotion, event, ITN (in that order in the
	// real model; classified by their spelling here, so a model that skips
	// one still decodes).
	i := 0
	for ; i < len(seq) && i < 4 && isTag(info.tokens[seq[i].id]); i++ {
		tag := strings.TrimSuffix(strings.TrimPrefix(info.tokens[seq[i].id], "<|"), "|>")
		switch {
		case isLangTag(tag):
			h.lang = tag
		case isEmotionTag(tag):
			h.emotion = strings.ToLower(tag)
		case tag == "withitn" || tag == "woitn":
		default:
			h.event = strings.ToLower(tag)
		}
	}
	var pieces []string
	for j, s := range seq[i:] {
		p := info.tokens[s.id]
		if isSpecial(p) {
			continue
		}
		pieces = append(pieces, p)
		start := senseVoiceFrame * float64(s.frame-4)
		end := start + senseVoiceFrame
		if k := i + j + 1; k < len(seq) {
			end = max(end, senseVoiceFrame*float64(seq[k].frame-4))
		}
		h.tokens = append(h.tokens, Token{Text: strings.TrimSpace(strings.ReplaceAll(p, "\u2581", " ")), Start: max(start, 0), End: max(end, 0)})
	}
	h.text = joinSentencePiece(pieces)
	if h.lang == "nospeech" {
		h.text, h.tokens = "", nil
	}
	return h, nil
}

func isLangTag(t string) bool {
	switch t {
	case "zh", "en", "yue", "ja", "ko", "nospeech":
		return true
	}
	return len(t) <= 3 && strings.ToLower(t) == t
}

func isEmotionTag(t string) bool {
	switch t {
	case "HAPPY", "SAD", "ANGRY", "NEUTRAL", "FEARFUL", "DISGUSTED", "SURPRISED", "EMO_UNKNOWN":
		return true
	}
	return false
}

// paraformerFrame is the CIF peak frame duration (us_cif_peak has three
// values per 60 ms LFR frame).
const paraformerFrame = 0.02

// decodeParaformer takes the argmax of the first token_num − predictor_bias
// rows, stopping at </s> and dropping blanks (FunASR paraformer_bin.py and
// sherpa-onnx's greedy decoder agree on this for well-formed output).
func decodeParaformer(info *modelInfo, logits inference.Tensor, tokenNum int, peaks []float32) (hypothesis, error) {
	data, rows, v, err := logitRows(logits, len(info.tokens))
	if err != nil {
		return hypothesis{}, err
	}
	n := min(rows, tokenNum-info.predictorBias)
	var ids []int
	for u := 0; u < n; u++ {
		id := argmax(data[u*v : (u+1)*v])
		if id == info.eos {
			break
		}
		if id == info.blank || id == 2 {
			continue
		}
		ids = append(ids, id)
	}
	var h hypothesis
	pieces := make([]string, 0, len(ids))
	for _, id := range ids {
		pieces = append(pieces, info.tokens[id])
	}
	h.text = joinParaformer(pieces)
	// Timestamps: frames whose CIF peak reaches 1, the last one dropped;
	// used only when they match the tokens one to one.
	if len(peaks) > 0 {
		var at []float64
		for k, p := range peaks {
			if p > 1-1e-4 {
				at = append(at, float64(k)*paraformerFrame)
			}
		}
		if len(at) > 0 {
			at = at[:len(at)-1]
		}
		var shown []string
		for _, p := range pieces {
			if !isSpecial(p) {
				shown = append(shown, strings.TrimSuffix(p, "@@"))
			}
		}
		if len(at) == len(shown) {
			for k, p := range shown {
				end := at[k] + paraformerFrame*3
				if k+1 < len(at) {
					end = at[k+1]
				}
				h.tokens = append(h.tokens, Token{Text: p, Start: at[k], End: end})
			}
		}
	}
	return h, nil
}
