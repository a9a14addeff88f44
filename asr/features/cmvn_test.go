package features

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAMMVNShared(t *testing.T) {
	needData(t)
	c := loadAMMVN(t)
	if c.Dim() != 560 || len(c.InvStddev) != 560 {
		t.Fatalf("dim %d/%d, want 560", c.Dim(), len(c.InvStddev))
	}
	// First and last values of the file.
	for _, tc := range []struct {
		name      string
		got, want float32
	}{
		{"NegMean[0]", c.NegMean[0], -8.311879},
		{"NegMean[559]", c.NegMean[559], -11.71208},
		{"InvStddev[0]", c.InvStddev[0], 0.155775},
		{"InvStddev[559]", c.InvStddev[559], 0.1509654},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

const tinyMVN = `<Nnet>
<Splice> 2 2
[ 0 ]
<AddShift> 2 2
<LearnRateCoef> 0 [ -1 -2.5 ]
<Rescale> 2 2
<LearnRateCoef> 0 [ 0.5 2 ]
</Nnet>
`

func TestParseAMMVN(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"tiny", tinyMVN, true},
		{"one line", strings.Join(strings.Fields(tinyMVN), " "), true},
		{"no learn rate", "<Nnet> <AddShift> 1 1 [ 1 ] <Rescale> 1 1 [ 2 ] </Nnet>", true},
		{"no closing tag", "<Nnet> <AddShift> 1 1 [ 1 ] <Rescale> 1 1 [ 2 ]", true},
		{"empty", "", false},
		{"not nnet", "hello", false},
		{"no rescale", "<Nnet> <AddShift> 1 1 [ 1 ] </Nnet>", false},
		{"no shift", "<Nnet> <Rescale> 1 1 [ 1 ] </Nnet>", false},
		{"rescale after end", "<Nnet> <AddShift> 1 1 [ 1 ] </Nnet> <Rescale> 1 1 [ 2 ]", false},
		{"twice", "<Nnet> <AddShift> 1 1 [ 1 ] <AddShift> 1 1 [ 1 ] <Rescale> 1 1 [ 2 ] </Nnet>", false},
		{"dims differ", "<Nnet> <AddShift> 2 2 [ 1 2 ] <Rescale> 1 1 [ 2 ] </Nnet>", false},
		{"declared dims differ", "<Nnet> <AddShift> 2 1 [ 1 2 ] <Rescale> 2 2 [ 2 3 ] </Nnet>", false},
		{"too few values", "<Nnet> <AddShift> 2 2 [ 1 ] <Rescale> 2 2 [ 2 3 ] </Nnet>", false},
		{"too many values", "<Nnet> <AddShift> 1 1 [ 1 2 ] <Rescale> 1 1 [ 2 ] </Nnet>", false},
		{"zero dim", "<Nnet> <AddShift> 0 0 [ ] <Rescale> 0 0 [ ] </Nnet>", false},
		{"negative dim", "<Nnet> <AddShift> -1 -1 [ ] <Rescale> 1 1 [ 2 ] </Nnet>", false},
		{"NaN", "<Nnet> <AddShift> 1 1 [ NaN ] <Rescale> 1 1 [ 2 ] </Nnet>", false},
		{"Inf", "<Nnet> <AddShift> 1 1 [ 1 ] <Rescale> 1 1 [ +Inf ] </Nnet>", false},
		{"huge", "<Nnet> <AddShift> 1 1 [ 1e300 ] <Rescale> 1 1 [ 2 ] </Nnet>", false},
		{"word", "<Nnet> <AddShift> 1 1 [ one ] <Rescale> 1 1 [ 2 ] </Nnet>", false},
		{"no bracket", "<Nnet> <AddShift> 1 1 1 <Rescale> 1 1 [ 2 ] </Nnet>", false},
		{"unclosed", "<Nnet> <AddShift> 1 1 [ 1 <Rescale> 1 1 [ 2 ] </Nnet>", false},
		{"truncated", "<Nnet> <AddShift> 1", false},
		{"truncated coef", "<Nnet> <AddShift> 1 1 <LearnRateCoef>", false},
		{"too big", "<Nnet> " + strings.Repeat(" ", MaxAMMVNSize), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseAMMVN(strings.NewReader(tc.in))
			if !tc.ok {
				if !errors.Is(err, ErrBadCMVN) {
					t.Fatalf("error %v, want ErrBadCMVN", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Dim() < 1 || len(c.InvStddev) != c.Dim() {
				t.Fatalf("dims %d/%d", c.Dim(), len(c.InvStddev))
			}
		})
	}
}

func TestCMVNApply(t *testing.T) {
	c, err := ParseAMMVN(strings.NewReader(tinyMVN))
	if err != nil {
		t.Fatal(err)
	}
	row := []float32{3, 4.5}
	c.Apply(row)
	if row[0] != 1 || row[1] != 4 {
		t.Fatalf("Apply = %v, want [1 4]", row)
	}
	defer func() {
		if recover() == nil {
			t.Error("Apply on a short row did not panic")
		}
	}()
	c.Apply(row[:1])
}

func TestCMVNFromMetadata(t *testing.T) {
	for _, tc := range []struct {
		name string
		md   map[string]string
		want *CMVN
	}{
		{"plain", map[string]string{"neg_mean": "-1,-2.5", "inv_stddev": "0.5,2"}, &CMVN{[]float32{-1, -2.5}, []float32{0.5, 2}}},
		{"spaces and trailing comma", map[string]string{"neg_mean": " -1, -2.5,", "inv_stddev": "0.5 ,2 "}, &CMVN{[]float32{-1, -2.5}, []float32{0.5, 2}}},
		{"missing mean", map[string]string{"inv_stddev": "1"}, nil},
		{"missing stddev", map[string]string{"neg_mean": "1"}, nil},
		{"empty", map[string]string{"neg_mean": "", "inv_stddev": ""}, nil},
		{"lengths differ", map[string]string{"neg_mean": "1,2", "inv_stddev": "1"}, nil},
		{"double comma", map[string]string{"neg_mean": "1,,2", "inv_stddev": "1,2,3"}, nil},
		{"NaN", map[string]string{"neg_mean": "nan", "inv_stddev": "1"}, nil},
		{"word", map[string]string{"neg_mean": "1", "inv_stddev": "x"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := CMVNFromMetadata(tc.md)
			if tc.want == nil {
				if !errors.Is(err, ErrBadCMVN) {
					t.Fatalf("error %v, want ErrBadCMVN", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.NegMean) != len(tc.want.NegMean) || len(c.InvStddev) != len(tc.want.InvStddev) {
				t.Fatalf("got %+v, want %+v", c, tc.want)
			}
			for i := range c.NegMean {
				if c.NegMean[i] != tc.want.NegMean[i] || c.InvStddev[i] != tc.want.InvStddev[i] {
					t.Fatalf("got %+v, want %+v", c, tc.want)
				}
			}
		})
	}
}

// FuzzAMMVN checks that ParseAMMVN never panics and that whatever it
// accepts is usable: equal, positive dimensions and finite values.
func FuzzAMMVN(f *testing.F) {
	f.Add(tinyMVN)
	f.Add("<Nnet> <AddShift> 1 1 [ 1 ] <Rescale> 1 1 [ 2 ] </Nnet>")
	f.Add("<Nnet> <AddShift> 2 2 <LearnRateCoef> 0 [ 1e38 -1e-45 ] <Rescale> 2 2 [ 0x1p-3 2 ] </Nnet>")
	f.Add("<Nnet> <AddShift> 9999999 9999999 [ 1 ] </Nnet>")
	f.Add("<Nnet> <Rescale> 1 1 [ ] <AddShift> 1 1 [")
	if b, err := os.ReadFile(filepath.Join(sharedData, "frontend", "am.mvn")); err == nil {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseAMMVN(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadCMVN) {
				t.Fatalf("error %v does not wrap ErrBadCMVN", err)
			}
			return
		}
		if c.Dim() < 1 || len(c.InvStddev) != c.Dim() {
			t.Fatalf("accepted dims %d/%d", c.Dim(), len(c.InvStddev))
		}
		row := make([]float32, c.Dim())
		c.Apply(row)
	})
}
