package asrtest

import (
	"strconv"
	"strings"
)

// LogFloor is the Kaldi fbank value of digital silence (log FLT_EPSILON);
// an LFR frame of it, after the model's CMVN, gives blank in SenseVoice.
const LogFloor = -15.942385

// cmvn is a model's CMVN: 560 values each, as decimal strings (what the
// metadata and am.mvn hold) and as the float32 a reader parses.
type cmvn struct {
	negMean, invStddev       []string
	negMeanF32, invStddevF32 []float32
}

// newCMVN makes plausible statistics: per mel bin, neg_mean between −8.5
// and −14 (rising to the middle bins, falling at the top, like the real
// ones) and inv_stddev between 0.2 and 0.35, tiled over the 7 LFR frames as
// FunASR's am.mvn is. The values are decimals with at most 4 (neg_mean) or
// 5 (inv_stddev) places, computed with integers.
func newCMVN(seed uint64, shift int) cmvn {
	r := &rng{seed}
	const bins = 80
	var nm, is [bins]int
	for b := 0; b < bins; b++ {
		var mag int // × 1e-4
		switch {
		case b < 40:
			mag = 85000 + b*50000/40
		case b < 70:
			mag = 135000
		default:
			mag = 135000 - (b-69)*2000
		}
		nm[b] = -(mag + shift + r.intn(4001) - 2000)
		is[b] = 21500 + b*150 + r.intn(3001) - 1500 // × 1e-5
	}
	var c cmvn
	for i := 0; i < FeatureDim; i++ {
		n, s := decimal(nm[i%bins], 4), decimal(is[i%bins], 5)
		c.negMean = append(c.negMean, n)
		c.invStddev = append(c.invStddev, s)
		c.negMeanF32 = append(c.negMeanF32, parse32(n))
		c.invStddevF32 = append(c.invStddevF32, parse32(s))
	}
	return c
}

// silence returns the model input for an LFR frame of LogFloor.
func (c cmvn) silence() []float32 {
	out := make([]float32, FeatureDim)
	for i := range out {
		out[i] = (float32(LogFloor) + c.negMeanF32[i]) * c.invStddevF32[i]
	}
	return out
}

// decimal formats v·10^-places without trailing zeros.
func decimal(v, places int) string {
	neg := v < 0
	if neg {
		v = -v
	}
	p := 1
	for i := 0; i < places; i++ {
		p *= 10
	}
	frac := strconv.Itoa(p + v%p)[1:]
	frac = strings.TrimRight(frac, "0")
	s := strconv.Itoa(v / p)
	if frac != "" {
		s += "." + frac
	}
	if neg {
		s = "-" + s
	}
	return s
}

func parse32(s string) float32 {
	f, err := strconv.ParseFloat(s, 32)
	if err != nil {
		panic("asrtest: " + err.Error())
	}
	return float32(f)
}

// senseVoiceCMVN and paraformerCMVN are the two models' statistics
// (different, like the real models': a recognizer must use its model's).
func senseVoiceCMVN() cmvn { return newCMVN(0xc5a1, 0) }
func paraformerCMVN() cmvn { return newCMVN(0x9c5a, 3000) }

// SenseVoiceCMVN returns the SenseVoice models' neg_mean and inv_stddev
// (560 each), as a reader of the metadata or am.mvn gets them. The slices
// are the caller's.
func SenseVoiceCMVN() (negMean, invStddev []float32) {
	c := senseVoiceCMVN()
	return c.negMeanF32, c.invStddevF32
}

// ParaformerCMVN returns the Paraformer models' neg_mean and inv_stddev.
// The slices are the caller's.
func ParaformerCMVN() (negMean, invStddev []float32) {
	c := paraformerCMVN()
	return c.negMeanF32, c.invStddevF32
}

// amMVN writes c in FunASR's am.mvn layout (a Kaldi nnet in text form:
// AddShift holds neg_mean, Rescale inv_stddev), with the spacing of the
// real files.
func (c cmvn) amMVN() []byte {
	var b strings.Builder
	b.WriteString("<Nnet> \n<Splice> 560 560\n[ 0 ]\n<AddShift> 560 560 \n<LearnRateCoef> 0 [ ")
	b.WriteString(strings.Join(c.negMean, " "))
	b.WriteString(" ]\n<Rescale> 560 560\n<LearnRateCoef> 0 [ ")
	b.WriteString(strings.Join(c.invStddev, " "))
	b.WriteString(" ]\n</Nnet> \n")
	return []byte(b.String())
}

// frontendConf is the frontend section shared by the FunASR configs.
const frontendConf = `frontend: WavFrontend
frontend_conf:
    fs: 16000
    window: hamming
    n_mels: 80
    frame_length: 25
    frame_shift: 10
    lfr_m: 7
    lfr_n: 6
`

const senseVoiceConfig = `# zhiyin contract model: FunASR-shaped configuration, not iic/SenseVoiceSmall's.
model: SenseVoiceSmall
` + frontendConf

const paraformerConfig = `# zhiyin contract model: FunASR-shaped configuration, not iic's Paraformer.
model: Paraformer
model_conf:
    predictor_bias: 1
` + frontendConf
