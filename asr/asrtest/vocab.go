package asrtest

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Vocabulary sizes of the real models.
const (
	SenseVoiceVocabSize = 25055
	ParaformerVocabSize = 8404
)

// SenseVoice special and tag token ids (MODELS.md §1).
const (
	SenseVoiceBlankID = 0 // <unk>, also the CTC blank
	SenseVoiceSOSID   = 1
	SenseVoiceEOSID   = 2

	TagZh       = 24884
	TagEn       = 24885
	TagYue      = 24888
	TagJa       = 24892
	TagKo       = 24896
	TagNoSpeech = 24992
	TagSpeech   = 24993
	TagNeutral  = 25004
	TagWithITN  = 25016
	TagWoITN    = 25017
)

// Paraformer special token ids.
const (
	ParaformerBlankID = 0
	ParaformerSOSID   = 1
	ParaformerEOSID   = 2
	ParaformerUnkID   = ParaformerVocabSize - 1
)

// SenseVoice language and text-normalisation input values (MODELS.md §1,
// also in the sherpa-onnx metadata).
const (
	LangAuto     = 0
	LangZh       = 3
	LangEn       = 4
	LangYue      = 7
	LangJa       = 11
	LangKo       = 12
	LangNoSpeech = 13
	WithITN      = 14
	WithoutITN   = 15
)

// PadMarker is the piece the models emit where a decoder must not read:
// SenseVoice frames past x_length and Paraformer rows past token_num. The
// text projection never produces it.
const PadMarker = "呃"

// textCount is how many text ids each vocabulary has.
const textCount = 300

// serviceHanzi are common characters of customer-service calls; the first
// textCount distinct ones are the text pieces the models emit.
const serviceHanzi = "我的快递到哪了查询订单号码退货换款客服人工转帮你好请问什么时候发能不可以是有没在这个那些要想给把被让取消修改地址电话手机费账户余额充值套餐流量宽带网络信号投诉建议问题谢谢您再见天月日年点分钟今明昨上下午早晚周星期一二三四五六七八九十百千万元块钱多少几还已经正常处理中心会员积分优惠券活动价格支付宝微信银行卡密码登录注册验证码开通关闭办理业务营业厅门店物流包裹签收派送配送员件运单寄收姓名联系方式身份证实名认证票具报销维修保安装预约上门服务时间等待一稍后回复确提交成功失败错误异系统升级更新版本载软设置打折扣满减红包现金退款原路返到账快速加急慢延迟丢损坏破质量差好评差评满意意见反馈记录历史信息详情状态进度跟踪查看显示页面首商品购物车结算买卖家店铺官方自营品牌型号颜色尺码大小重轻长短新旧正品假冒发货仓库库存缺货预售定金尾款分期免息利率年费额度申请审核通过驳回资料材料上传照片视频语音文字消息通知提醒短邮箱"

// textChars returns the textCount text pieces.
func textChars() []string {
	var out []string
	seen := map[rune]bool{}
	for _, c := range serviceHanzi {
		if !seen[c] && len(out) < textCount {
			seen[c] = true
			out = append(out, string(c))
		}
	}
	if len(out) != textCount || slices.Contains(out, PadMarker) {
		panic("asrtest: serviceHanzi must hold " + strconv.Itoa(textCount) + " distinct characters other than the pad marker")
	}
	return out
}

// senseVoiceTags are the tag pieces of MODELS.md's table at their ids.
var senseVoiceTags = []struct {
	id    int
	piece string
}{
	{TagZh, "<|zh|>"}, {TagEn, "<|en|>"}, {TagYue, "<|yue|>"}, {TagJa, "<|ja|>"}, {TagKo, "<|ko|>"}, {TagNoSpeech, "<|nospeech|>"},
	{25001, "<|HAPPY|>"}, {25002, "<|SAD|>"}, {25003, "<|ANGRY|>"}, {TagNeutral, "<|NEUTRAL|>"}, {25005, "<|FEARFUL|>"},
	{25006, "<|DISGUSTED|>"}, {25007, "<|SURPRISED|>"}, {25009, "<|EMO_UNKNOWN|>"},
	{TagSpeech, "<|Speech|>"}, {24995, "<|BGM|>"}, {24997, "<|Laughter|>"}, {24999, "<|Applause|>"}, {25010, "<|Cry|>"},
	{25011, "<|Sneeze|>"}, {25012, "<|Breath|>"}, {25013, "<|Cough|>"},
	{TagWithITN, "<|withitn|>"}, {TagWoITN, "<|woitn|>"},
}

// senseVoiceEnglish are SentencePiece pieces at ids 3…, never emitted.
var senseVoiceEnglish = []string{"▁the", "▁ok", "▁hello", "▁yes", "▁no", "▁order", "▁refund", "▁thank", "▁you", "▁please", "▁app", "▁vip", "s", "ing", "ed"}

// paraformerEnglish are BPE pieces (@@ continues a word) at the top of the
// Paraformer vocabulary, never emitted.
var paraformerEnglish = []string{"hel@@", "lo", "wor@@", "ld", "ok", "the", "yes", "no", "or@@", "der", "re@@", "fund", "thank", "you", "a@@", "pp"}

// vocab is a generated vocabulary.
type vocab struct {
	pieces []string
	text   []int32 // ids of textChars(), in that order
	pad    int32   // id of PadMarker
	space  int32   // id of the space token (SenseVoice), -1 when none
}

// fillers yields distinct characters for the ids nothing else claims: the
// CJK block from U+4E00, then Hangul syllables from U+AC00, skipping the
// text characters and the pad marker.
type fillers struct {
	next  rune
	taken map[string]bool
}

func newFillers(taken []string) *fillers {
	f := &fillers{next: 0x4E00, taken: map[string]bool{}}
	for _, t := range taken {
		f.taken[t] = true
	}
	return f
}

func (f *fillers) piece() string {
	for {
		c := f.next
		f.next++
		if f.next == 0x9FFF+1 {
			f.next = 0xAC00
		}
		if s := string(c); !f.taken[s] {
			return s
		}
	}
}

// place puts the text characters and the pad marker at distinct random
// free ids in [lo, hi).
func place(r *rng, pieces []string, lo, hi int) (text []int32, pad int32) {
	pick := func() int32 {
		for {
			id := lo + r.intn(hi-lo)
			if pieces[id] == "" {
				return int32(id)
			}
		}
	}
	for _, c := range textChars() {
		id := pick()
		pieces[id] = c
		text = append(text, id)
	}
	pad = pick()
	pieces[pad] = PadMarker
	return text, pad
}

// senseVoiceVocab builds the SenseVoice vocabulary (a few milliseconds).
func senseVoiceVocab() vocab {
	v := vocab{pieces: make([]string, SenseVoiceVocabSize)}
	v.pieces[0], v.pieces[1], v.pieces[2] = "<unk>", "<s>", "</s>"
	id := 3
	for _, p := range senseVoiceEnglish {
		v.pieces[id] = p
		id++
	}
	v.space = int32(id)
	v.pieces[id] = " "
	for _, t := range senseVoiceTags {
		v.pieces[t.id] = t.piece
	}
	v.text, v.pad = place(&rng{0x5e45e}, v.pieces, 64, TagZh)
	fill := newFillers(append(textChars(), PadMarker))
	for i, p := range v.pieces {
		if p == "" {
			v.pieces[i] = fill.piece()
		}
	}
	return v
}

// paraformerVocab builds the Paraformer vocabulary.
func paraformerVocab() vocab {
	v := vocab{pieces: make([]string, ParaformerVocabSize), space: -1}
	v.pieces[ParaformerBlankID], v.pieces[ParaformerSOSID], v.pieces[ParaformerEOSID] = "<blank>", "<s>", "</s>"
	v.pieces[ParaformerUnkID] = "<unk>"
	top := ParaformerUnkID - len(paraformerEnglish)
	for i, p := range paraformerEnglish {
		v.pieces[top+i] = p
	}
	v.text, v.pad = place(&rng{0x9a4af}, v.pieces, 3, top)
	fill := newFillers(append(textChars(), PadMarker))
	for i, p := range v.pieces {
		if p == "" {
			v.pieces[i] = fill.piece()
		}
	}
	return v
}

// SenseVoiceTokens returns the SenseVoice pieces, indexed by id (what
// tokens.txt and tokens.json hold; the space token is " "). It computes them
// (milliseconds); the slice is the caller's.
func SenseVoiceTokens() []string { return senseVoiceVocab().pieces }

// ParaformerTokens returns the Paraformer pieces, indexed by id. The slice is the
// caller's.
func ParaformerTokens() []string { return paraformerVocab().pieces }

// SenseVoiceTextIDs returns the ids the SenseVoice text frames can emit
// besides blank: 300 single CJK characters. The slice is the caller's.
func SenseVoiceTextIDs() []int32 { return senseVoiceVocab().text }

// ParaformerTextIDs returns the ids the Paraformer rows before token_num−1
// can emit: 300 single CJK characters. The slice is the caller's.
func ParaformerTextIDs() []int32 { return paraformerVocab().text }

// SenseVoicePadID returns the id of PadMarker in the SenseVoice vocabulary.
func SenseVoicePadID() int32 { return senseVoiceVocab().pad }

// ParaformerPadID returns the id of PadMarker in the Paraformer vocabulary.
func ParaformerPadID() int32 { return paraformerVocab().pad }

// SenseVoiceSpaceID returns the id whose tokens.txt line has no piece (a
// space token); the models never emit it.
func SenseVoiceSpaceID() int32 { return senseVoiceVocab().space }

// LanguageTag returns the tag id SenseVoice frame 0 holds for a language
// input value.
func LanguageTag(language int32) int {
	switch language {
	case LangEn:
		return TagEn
	case LangYue:
		return TagYue
	case LangJa:
		return TagJa
	case LangKo:
		return TagKo
	case LangNoSpeech:
		return TagNoSpeech
	}
	return TagZh
}

// ParaformerTokenNum is the token_num the Paraformer models return for a
// sequence of length frames in a batch padded to t frames.
func ParaformerTokenNum(length, t int32) int32 { return min(length/4+1, t) }

// tokensTxt writes pieces in sherpa-onnx's format: "piece id" per line; the
// space token's line holds only its id.
func tokensTxt(pieces []string) []byte {
	var b strings.Builder
	for i, p := range pieces {
		if p != " " {
			b.WriteString(p)
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// tokensJSON writes pieces as FunASR's tokens.json: a JSON array of
// strings, index = id, one per line as FunASR's json.dump(indent=4) does.
func tokensJSON(pieces []string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteString("[\n")
	for i, p := range pieces {
		b.WriteString("    ")
		_ = enc.Encode(p) // a string always encodes
		b.Truncate(b.Len() - 1)
		if i < len(pieces)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]")
	return b.Bytes()
}
