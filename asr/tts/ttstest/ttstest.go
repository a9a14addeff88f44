// Package ttstest generates contract models of the TTS releases zhiyin
// supports, for tests in CI where no real weights exist:
//
//   - vits-icefall-zh-aishell3 (VITS, icefall layout, 8 kHz, 174 speakers):
//     model.onnx with inputs tokens i64[N,T], tokens_lens i64[N],
//     noise_scale, alpha, noise_scale_dur f32[1], speaker i64[N] and output
//     audio f32[N,S]; tokens.txt (with sil, eos, #0 and punctuation) and
//     lexicon.txt;
//   - matcha-icefall-zh-baker (Matcha, 22.05 kHz): model-steps-3.onnx with
//     inputs x i64[N,L], x_length i64[N], noise_scale, length_scale f32[1]
//     and output mel f32[N,80,F]; tokens.txt and lexicon.txt (with words of
//     several characters, for forward maximum matching);
//   - vocos-22khz-univ: vocos-22khz-univ.onnx with input mels f32[N,80,F]
//     and outputs mag, x, y f32[N,513,F].
//
// Tensor names, element types, dynamic axes and metadata_props are those of
// the real exports (../../shared/MODELS.md §5), so that `zhiyin models
// install` identifies each folder from models/catalog.yaml. The graphs
// behave in documented ways: VITS gives ModelSamplesPerToken samples per
// token, a tone whose pitch depends on the token, scaled by a per-speaker
// gain; Matcha gives MatchaFramesPerToken mel frames per token; vocos gives
// a non-zero magnitude and a phase from the mel frames. The lexicons map
// common characters to made-up phone tokens: they are not Mandarin.
//
// The output is reproducible byte for byte (fixed seeds, weights on a
// 2^-12 grid); the committed copies in models/testdata/tts are checked by
// a test (go test ./asr/tts/ttstest -update rewrites them). It does no I/O
// except Write; it must not be used by production code, and its models say
// maintainer=zhiyin-contract-model.
package ttstest

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	pb "github.com/zhiyin/zhiyin/inference/onnxpb"
)

// Release folder names (models/catalog.yaml release_names).
const (
	VITSAishell3Name = "vits-icefall-zh-aishell3"
	MatchaBakerName  = "matcha-icefall-zh-baker"
	VocosName        = "vocos-22khz-univ"
)

// Maintainer is the metadata maintainer of every generated model.
const Maintainer = "zhiyin-contract-model"

// Behaviour of the graphs.
const (
	// ModelSamplesPerToken is the VITS model's audio per input token.
	ModelSamplesPerToken = 256
	// MatchaFramesPerToken is the Matcha model's mel frames per token.
	MatchaFramesPerToken = 3
	// AishellSpeakers is n_speakers of the aishell3 model.
	AishellSpeakers = 174
	// MelBins is the Matcha mel dimension.
	MelBins = 80
	// VocosBins is n_fft/2+1 of the vocos vocoder.
	VocosBins = 513
)

// File is one generated file of a release folder.
type File struct {
	Name string
	Data []byte
}

// Folder is one generated release folder, named as the real release.
type Folder struct {
	Name  string
	Files []File
}

// All returns every contract model folder in a stable order; the result is
// the caller's.
func All() []Folder { return []Folder{VITSAishell3(), MatchaBaker(), Vocos()} }

// Write writes f's files into dir/f.Name (created as needed) and returns
// that folder's path.
func Write(dir string, f Folder) (string, error) {
	out := filepath.Join(dir, f.Name)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("write %s: %w", f.Name, err)
	}
	for _, file := range f.Files {
		p := filepath.Join(out, file.Name)
		if err := os.WriteFile(p+".tmp", file.Data, 0o644); err != nil {
			return "", fmt.Errorf("write %s: %w", f.Name, err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return "", fmt.Errorf("write %s: %w", f.Name, err)
		}
	}
	return out, nil
}

// Characters are the lexicon's words of one character: common in
// customer-service replies, digits read out included.
const Characters = "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联持组每济车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽推势参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止细愿千值仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普怕弹校苦创假久错承印晚兰试股拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财环排福纳欢雷警获模充负云停木游龙树疑层冷洲冲射略范竟句室异激汉村哈策演简卡罪判担州静退既衣您宗积余痛检差富灵协角占配征修皮挥胜降阶审沉坚善妈刘读啊超免压银买皇养伊怀执副乱抗犯追帮宣佛岁航优怪香著田铁控税左右份穿艺背阵草脚概恶块顿敢守酒岛托央户烈洋哥索胡款靠评版宝座释景顾弟登货互付伯慢欧换闻危忙核暗姐介坏讨丽良序升监临亮露永呼味野架域沙掉括舰鱼杂误湖钟奥婚址惠零"

// Words are the Matcha lexicon's words of several characters.
var Words = []string{"您好", "订单", "客服", "发货", "查询", "谢谢", "请问", "退款", "物流", "地址", "电话", "号码", "欢迎致电", "知音客服"}

// Punctuation are the marks listed in tokens.txt (and, for aishell3, in
// the punctuation metadata).
var Punctuation = []string{"，", "。", "！", "？", "、", "；", "：", ",", ".", "!", "?"}

// rng is splitmix64: stable across Go releases and architectures.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform returns a value in [-scale, scale) on a 2^-12 grid.
func (r *rng) uniform(scale float64) float32 {
	u := float64(r.next()>>11) / (1 << 53)
	return float32(math.Round((u*2-1)*scale*4096) / 4096)
}

// grid rounds to 2^-12 so that bytes do not depend on math library details.
func grid(v float64) float32 { return float32(math.Round(v*4096) / 4096) }

// phones returns the made-up phone tokens of character i: an initial and
// a final.
func phones(i int) []string {
	return []string{"i" + strconv.Itoa(i%23), "f" + strconv.Itoa(i%37) + strconv.Itoa(1+i%5)}
}

// vocabulary returns tokens.txt's tokens in id order, with the given
// specials first.
func vocabulary(specials []string) []string {
	toks := append([]string(nil), specials...)
	for i := 0; i < 23; i++ {
		toks = append(toks, "i"+strconv.Itoa(i))
	}
	for i := 0; i < 37; i++ {
		for t := 1; t <= 5; t++ {
			toks = append(toks, "f"+strconv.Itoa(i)+strconv.Itoa(t))
		}
	}
	return append(toks, Punctuation...)
}

func tokensTxt(toks []string) []byte {
	var b strings.Builder
	for i, t := range toks {
		if t == " " {
			fmt.Fprintf(&b, "%d\n", i) // sherpa-onnx writes the space token as a bare id
			continue
		}
		fmt.Fprintf(&b, "%s %d\n", t, i)
	}
	return []byte(b.String())
}

func lexiconTxt(words bool) []byte {
	var b strings.Builder
	chars := []rune(Characters)
	index := map[rune]int{}
	for i, c := range chars {
		index[c] = i
		fmt.Fprintf(&b, "%c %s\n", c, strings.Join(phones(i), " "))
	}
	if words {
		for _, w := range Words {
			var ps []string
			for _, c := range w {
				ps = append(ps, phones(index[c])...)
			}
			fmt.Fprintf(&b, "%s %s\n", w, strings.Join(ps, " "))
		}
	}
	return []byte(b.String())
}

// builder accumulates an ONNX graph.
type builder struct {
	nodes []pb.Node
	inits []pb.Tensor
}

func (b *builder) op(op string, in []string, out string, attrs ...pb.Attr) string {
	b.nodes = append(b.nodes, pb.Node{Name: fmt.Sprintf("%s_%d", op, len(b.nodes)), OpType: op, Inputs: in, Outputs: []string{out}, Attrs: attrs})
	return out
}

func (b *builder) floats(name string, dims []int64, v []float32) string {
	b.inits = append(b.inits, pb.FloatTensor(name, dims, v))
	return name
}

func (b *builder) i64(name string, dims []int64, v ...int64) string {
	b.inits = append(b.inits, pb.Int64Tensor(name, dims, v))
	return name
}

func perm(p ...int64) pb.Attr { return pb.Attr{Name: "perm", Type: pb.AttrInts, Ints: p} }

func (b *builder) model(name string, in, out []pb.ValueInfo, meta []pb.KV) []byte {
	m := &pb.Model{
		IRVersion:    8,
		Opsets:       []pb.Opset{{Version: 17}},
		ProducerName: "zhiyin-ttstest",
		DocString:    "zhiyin TTS contract model: tensor names, types and metadata of the real export, small pseudo-random weights; it does not speak Mandarin.",
		Graph:        pb.Graph{Name: name, Nodes: b.nodes, Initializers: b.inits, Inputs: in, Outputs: out},
		Metadata:     meta,
	}
	return m.Marshal()
}

// VITSAishell3 returns the vits-icefall-zh-aishell3 release folder. The
// result is the caller's.
func VITSAishell3() Folder {
	toks := vocabulary([]string{" ", "sil", "eos", "#0"})
	v := len(toks)
	r := &rng{0x7175}
	// Each token's chunk: a decaying tone whose pitch depends on the token.
	table := make([]float32, v*ModelSamplesPerToken)
	for id := 0; id < v; id++ {
		f := 150 + float64(id%40)*12 // Hz at 8 kHz
		amp := 0.3 + float64(r.uniform(0.1))
		if id == 0 {
			amp = 0.05
		}
		for i := 0; i < ModelSamplesPerToken; i++ {
			env := math.Sin(math.Pi * float64(i) / ModelSamplesPerToken)
			table[id*ModelSamplesPerToken+i] = grid(amp * env * math.Sin(2*math.Pi*f*float64(i)/8000))
		}
	}
	gains := make([]float32, AishellSpeakers)
	for i := range gains {
		gains[i] = grid(0.6 + 0.4*float64(i)/AishellSpeakers)
	}
	b := &builder{}
	emb := b.op("Gather", []string{b.floats("token_wave", []int64{int64(v), ModelSamplesPerToken}, table), "tokens"}, "token_chunks", pb.Attr{Name: "axis", Type: pb.AttrInt, I: 0})
	flat := b.op("Reshape", []string{emb, b.i64("flat_shape", []int64{2}, 0, -1)}, "wave")
	g := b.op("Gather", []string{b.floats("speaker_gain", []int64{AishellSpeakers}, gains), "speaker"}, "gain", pb.Attr{Name: "axis", Type: pb.AttrInt, I: 0})
	g = b.op("Unsqueeze", []string{g, b.i64("axis1", []int64{1}, 1)}, "gain_col")
	b.op("Mul", []string{flat, g}, "audio")
	ins := []pb.ValueInfo{
		pb.Value("tokens", pb.Int64, "N", "T"),
		pb.Value("tokens_lens", pb.Int64, "N"),
		pb.Value("noise_scale", pb.Float, 1),
		pb.Value("alpha", pb.Float, 1),
		pb.Value("noise_scale_dur", pb.Float, 1),
		pb.Value("speaker", pb.Int64, "N"),
	}
	outs := []pb.ValueInfo{pb.Value("audio", pb.Float, "N", "S")}
	meta := []pb.KV{
		{Key: "model_type", Value: "vits"},
		{Key: "comment", Value: "icefall"},
		{Key: "language", Value: "Chinese"},
		{Key: "add_blank", Value: "0"},
		{Key: "n_speakers", Value: strconv.Itoa(AishellSpeakers)},
		{Key: "sample_rate", Value: "8000"},
		{Key: "punctuation", Value: strings.Join(Punctuation, " ")},
		{Key: "maintainer", Value: Maintainer},
	}
	return Folder{Name: VITSAishell3Name, Files: []File{
		{"lexicon.txt", lexiconTxt(false)},
		{"model.onnx", b.model("vits_aishell3_contract", ins, outs, meta)},
		{"tokens.txt", tokensTxt(toks)},
	}}
}

// MatchaBaker returns the matcha-icefall-zh-baker release folder. The
// result is the caller's.
func MatchaBaker() Folder {
	toks := vocabulary([]string{"_"})
	v := len(toks)
	r := &rng{0xbacc}
	table := make([]float32, v*MatchaFramesPerToken*MelBins)
	for i := range table {
		table[i] = grid(-2 + float64(r.uniform(1.5)))
	}
	b := &builder{}
	emb := b.op("Gather", []string{b.floats("token_mel", []int64{int64(v), MatchaFramesPerToken, MelBins}, table), "x"}, "token_frames", pb.Attr{Name: "axis", Type: pb.AttrInt, I: 0})
	fr := b.op("Reshape", []string{emb, b.i64("frames_shape", []int64{3}, 0, -1, MelBins)}, "frames")
	b.op("Transpose", []string{fr}, "mel", perm(0, 2, 1))
	ins := []pb.ValueInfo{
		pb.Value("x", pb.Int64, "N", "L"),
		pb.Value("x_length", pb.Int64, "N"),
		pb.Value("noise_scale", pb.Float, 1),
		pb.Value("length_scale", pb.Float, 1),
	}
	outs := []pb.ValueInfo{pb.Value("mel", pb.Float, "N", MelBins, "F")}
	meta := []pb.KV{
		{Key: "model_type", Value: "matcha-tts"},
		{Key: "language", Value: "Chinese"},
		{Key: "voice", Value: "zh"},
		{Key: "has_espeak", Value: "0"},
		{Key: "jieba", Value: "1"},
		{Key: "n_speakers", Value: "1"},
		{Key: "sample_rate", Value: "22050"},
		{Key: "version", Value: "1"},
		{Key: "pad_id", Value: "0"},
		{Key: "use_eos_bos", Value: "0"},
		{Key: "num_ode_steps", Value: "3"},
		{Key: "maintainer", Value: Maintainer},
	}
	return Folder{Name: MatchaBakerName, Files: []File{
		{"lexicon.txt", lexiconTxt(true)},
		{"model-steps-3.onnx", b.model("matcha_baker_contract", ins, outs, meta)},
		{"tokens.txt", tokensTxt(toks)},
	}}
}

// Vocos returns the vocos-22khz-univ folder (the release is the single
// file vocos-22khz-univ.onnx; put it in a folder of that name). The result
// is the caller's.
func Vocos() Folder {
	const rank = 4
	r := &rng{0x70c05}
	lowA := make([]float32, MelBins*rank)
	for i := range lowA {
		lowA[i] = r.uniform(0.05)
	}
	magB := make([]float32, rank*VocosBins)
	phB := make([]float32, rank*VocosBins)
	for i := range magB {
		magB[i] = r.uniform(0.3)
		phB[i] = r.uniform(3)
	}
	bias := make([]float32, VocosBins)
	for k := range bias {
		// Louder at speech frequencies (bins under ~4 kHz).
		bias[k] = grid(-1.0)
		if k > 4 && k < 190 {
			bias[k] = grid(1.2)
		}
	}
	b := &builder{}
	mt := b.op("Transpose", []string{"mels"}, "mels_t", perm(0, 2, 1))
	h := b.op("MatMul", []string{mt, b.floats("low_a", []int64{MelBins, rank}, lowA)}, "hidden")
	m := b.op("MatMul", []string{h, b.floats("mag_b", []int64{rank, VocosBins}, magB)}, "mag_mm")
	m = b.op("Add", []string{m, b.floats("mag_bias", []int64{VocosBins}, bias)}, "mag_log")
	m = b.op("Exp", []string{m}, "mag_t")
	b.op("Transpose", []string{m}, "mag", perm(0, 2, 1))
	p := b.op("MatMul", []string{h, b.floats("phase_b", []int64{rank, VocosBins}, phB)}, "phase_t")
	c := b.op("Cos", []string{p}, "cos_t")
	s := b.op("Sin", []string{p}, "sin_t")
	b.op("Transpose", []string{c}, "x", perm(0, 2, 1))
	b.op("Transpose", []string{s}, "y", perm(0, 2, 1))
	ins := []pb.ValueInfo{pb.Value("mels", pb.Float, "batch_size", MelBins, "time")}
	outs := []pb.ValueInfo{
		pb.Value("mag", pb.Float, "batch_size", VocosBins, "time"),
		pb.Value("x", pb.Float, "batch_size", VocosBins, "time"),
		pb.Value("y", pb.Float, "batch_size", VocosBins, "time"),
	}
	meta := []pb.KV{
		{Key: "model_type", Value: "vocos"},
		{Key: "model_filename", Value: "mel_spec_22khz_univ.onnx"},
		{Key: "sample_rate", Value: "22050"},
		{Key: "version", Value: "1"},
		{Key: "n_fft", Value: "1024"},
		{Key: "hop_length", Value: "256"},
		{Key: "win_length", Value: "1024"},
		{Key: "window_type", Value: "hann"},
		{Key: "center", Value: "1"},
		{Key: "pad_mode", Value: "reflect"},
		{Key: "normalized", Value: "0"},
		{Key: "maintainer", Value: Maintainer},
	}
	return Folder{Name: VocosName, Files: []File{{"vocos-22khz-univ.onnx", b.model("vocos_contract", ins, outs, meta)}}}
}
