package features

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// MaxAMMVNSize is the largest am.mvn ParseAMMVN reads. Real files are about
// 11 KiB (560 dimensions).
const MaxAMMVNSize = 1 << 20

// CMVN holds global mean and variance normalisation statistics: a feature
// row x becomes (x + NegMean)·InvStddev, element by element. Both slices
// have Dim values. A CMVN is read-only after construction and safe for
// concurrent use.
type CMVN struct {
	NegMean, InvStddev []float32
}

// Dim is the row width the statistics apply to.
func (c *CMVN) Dim() int { return len(c.NegMean) }

// Apply normalises row in place. len(row) must be Dim; it panics otherwise.
// The arithmetic is done in float64, as FunASR's numpy front-end does.
func (c *CMVN) Apply(row []float32) {
	if len(row) != len(c.NegMean) || len(row) != len(c.InvStddev) {
		panic(fmt.Sprintf("features: CMVN.Apply: row has %d values, want %d", len(row), len(c.NegMean)))
	}
	mean, inv := c.NegMean[:len(row)], c.InvStddev[:len(row)]
	for i, x := range row {
		row[i] = float32((float64(x) + float64(mean[i])) * float64(inv[i]))
	}
}

func newCMVN(negMean, invStddev []float64) (*CMVN, error) {
	if len(negMean) == 0 {
		return nil, fmt.Errorf("%w: no mean values", ErrBadCMVN)
	}
	if len(negMean) != len(invStddev) {
		return nil, fmt.Errorf("%w: %d mean values but %d scale values", ErrBadCMVN, len(negMean), len(invStddev))
	}
	c := &CMVN{NegMean: make([]float32, len(negMean)), InvStddev: make([]float32, len(invStddev))}
	for i, v := range negMean {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
			return nil, fmt.Errorf("%w: mean value %d is %g", ErrBadCMVN, i, v)
		}
		c.NegMean[i] = float32(v)
	}
	for i, v := range invStddev {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
			return nil, fmt.Errorf("%w: scale value %d is %g", ErrBadCMVN, i, v)
		}
		c.InvStddev[i] = float32(v)
	}
	return c, nil
}

// ParseAMMVN reads a FunASR am.mvn file, a Kaldi nnet1 text model
//
//	<Nnet> <Splice> … <AddShift> D D <LearnRateCoef> 0 [ neg_mean… ]
//	<Rescale> D D <LearnRateCoef> 0 [ inv_stddev… ] </Nnet>
//
// taking the bracketed vector of <AddShift> as NegMean (already negated)
// and that of <Rescale> as InvStddev; other components are skipped. It
// reads at most MaxAMMVNSize bytes and does no other I/O. Errors wrap
// ErrBadCMVN, or are the reader's.
func ParseAMMVN(r io.Reader) (*CMVN, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxAMMVNSize+1))
	if err != nil {
		return nil, fmt.Errorf("read am.mvn: %w", err)
	}
	if len(data) > MaxAMMVNSize {
		return nil, fmt.Errorf("parse am.mvn: %w: larger than %d bytes; is this really an am.mvn file?", ErrBadCMVN, MaxAMMVNSize)
	}
	toks := strings.Fields(string(data))
	if len(toks) == 0 || toks[0] != "<Nnet>" {
		return nil, fmt.Errorf("parse am.mvn: %w: does not start with <Nnet>; use the am.mvn shipped with the FunASR model", ErrBadCMVN)
	}
	var shift, scale []float64
	for i := 1; i < len(toks); i++ {
		var dst *[]float64
		switch toks[i] {
		case "</Nnet>":
			i = len(toks)
			continue
		case "<AddShift>":
			dst = &shift
		case "<Rescale>":
			dst = &scale
		default:
			continue
		}
		name := toks[i]
		if *dst != nil {
			return nil, fmt.Errorf("parse am.mvn: %w: %s appears twice", ErrBadCMVN, name)
		}
		vec, end, err := parseComponent(toks, i)
		if err != nil {
			return nil, fmt.Errorf("parse am.mvn: %s: %w", name, err)
		}
		*dst = vec
		i = end
	}
	if shift == nil {
		return nil, fmt.Errorf("parse am.mvn: %w: no <AddShift> component", ErrBadCMVN)
	}
	if scale == nil {
		return nil, fmt.Errorf("parse am.mvn: %w: no <Rescale> component", ErrBadCMVN)
	}
	c, err := newCMVN(shift, scale)
	if err != nil {
		return nil, fmt.Errorf("parse am.mvn: %w", err)
	}
	return c, nil
}

// parseComponent reads "<Name> OUT IN [<LearnRateCoef> x] [ v… ]" starting
// at toks[i] (the name) and returns the vector and the index of "]".
func parseComponent(toks []string, i int) ([]float64, int, error) {
	if i+2 >= len(toks) {
		return nil, 0, fmt.Errorf("%w: truncated", ErrBadCMVN)
	}
	out, err1 := strconv.Atoi(toks[i+1])
	in, err2 := strconv.Atoi(toks[i+2])
	if err1 != nil || err2 != nil || out < 1 || out != in || out > MaxAMMVNSize {
		return nil, 0, fmt.Errorf("%w: dimensions %q %q: want two equal positive integers", ErrBadCMVN, toks[i+1], toks[i+2])
	}
	i += 3
	if i < len(toks) && toks[i] == "<LearnRateCoef>" {
		if i+1 >= len(toks) {
			return nil, 0, fmt.Errorf("%w: truncated after <LearnRateCoef>", ErrBadCMVN)
		}
		i += 2
	}
	if i >= len(toks) || toks[i] != "[" {
		return nil, 0, fmt.Errorf("%w: want \"[\" before the values", ErrBadCMVN)
	}
	i++
	vec := make([]float64, 0, min(out, len(toks)-i))
	for ; i < len(toks) && toks[i] != "]"; i++ {
		v, err := strconv.ParseFloat(toks[i], 64)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: value %d %q is not a number", ErrBadCMVN, len(vec), toks[i])
		}
		if len(vec) == out {
			return nil, 0, fmt.Errorf("%w: more than the %d values declared", ErrBadCMVN, out)
		}
		vec = append(vec, v)
	}
	if i >= len(toks) {
		return nil, 0, fmt.Errorf("%w: no \"]\" after the values", ErrBadCMVN)
	}
	if len(vec) != out {
		return nil, 0, fmt.Errorf("%w: %d values, %d declared", ErrBadCMVN, len(vec), out)
	}
	return vec, i, nil
}

// CMVNFromMetadata builds CMVN from sherpa-onnx model metadata: neg_mean and
// inv_stddev, each a comma-separated list of floats. Errors wrap ErrBadCMVN.
func CMVNFromMetadata(md map[string]string) (*CMVN, error) {
	var vecs [2][]float64
	for k, key := range []string{"neg_mean", "inv_stddev"} {
		s, ok := md[key]
		if !ok {
			return nil, fmt.Errorf("cmvn from model metadata: %w: no %s key; export the model with sherpa-onnx's script or use FunASR's am.mvn", ErrBadCMVN, key)
		}
		parts := strings.Split(s, ",")
		v := make([]float64, 0, len(parts))
		for i, p := range parts {
			p = strings.TrimSpace(p)
			if p == "" && i == len(parts)-1 && i > 0 {
				break // a trailing comma
			}
			f, err := strconv.ParseFloat(p, 64)
			if err != nil {
				return nil, fmt.Errorf("cmvn from model metadata: %w: %s value %d %q is not a number", ErrBadCMVN, key, i, p)
			}
			v = append(v, f)
		}
		vecs[k] = v
	}
	c, err := newCMVN(vecs[0], vecs[1])
	if err != nil {
		return nil, fmt.Errorf("cmvn from model metadata: %w", err)
	}
	return c, nil
}
