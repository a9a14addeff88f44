package audio

import (
	"math"
	"testing"
)

// Reference G.711 arithmetic, after Sun Microsystems' public-domain g711.c,
// which implements ITU-T G.711. The package's tables and encoders must agree
// with it everywhere.

func refULawToLinear(u byte) int16 {
	u = ^u
	t := (int(u&0x0F) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

func refALawToLinear(a byte) int16 {
	a ^= 0x55
	t := int(a&0x0F) << 4
	switch seg := (a & 0x70) >> 4; seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

func refSearch(v int, table []int) int {
	for i, e := range table {
		if v <= e {
			return i
		}
	}
	return len(table)
}

func refLinearToULaw(pcm int16) byte {
	segUEnd := []int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
	v := int(pcm) >> 2
	mask := 0xFF
	if v < 0 {
		v = -v
		mask = 0x7F
	}
	if v > 8159 {
		v = 8159
	}
	v += 0x84 >> 2
	seg := refSearch(v, segUEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	return byte(((seg << 4) | ((v >> (seg + 1)) & 0xF)) ^ mask)
}

func refLinearToALaw(pcm int16) byte {
	segAEnd := []int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
	v := int(pcm) >> 3
	mask := 0xD5
	if v < 0 {
		mask = 0x55
		v = -v - 1
	}
	seg := refSearch(v, segAEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	a := seg << 4
	if seg < 2 {
		a |= (v >> 1) & 0xF
	} else {
		a |= (v >> seg) & 0xF
	}
	return byte(a ^ mask)
}

func TestG711Tables(t *testing.T) {
	for c := range 256 {
		b := byte(c)
		if got, want := MuLawToLinear(b), refULawToLinear(b); got != want {
			t.Errorf("MuLawToLinear(0x%02X) = %d, want %d", b, got, want)
		}
		if got, want := ALawToLinear(b), refALawToLinear(b); got != want {
			t.Errorf("ALawToLinear(0x%02X) = %d, want %d", b, got, want)
		}
	}
}

func TestG711KnownValues(t *testing.T) {
	tests := []struct {
		name string
		fn   func(byte) int16
		code byte
		want int16
	}{
		{"mulaw zero", MuLawToLinear, 0xFF, 0},
		{"mulaw negative zero", MuLawToLinear, 0x7F, 0},
		{"mulaw most negative", MuLawToLinear, 0x00, -32124},
		{"mulaw most positive", MuLawToLinear, 0x80, 32124},
		{"mulaw smallest step", MuLawToLinear, 0xFE, 8},
		{"alaw smallest positive", ALawToLinear, 0xD5, 8},
		{"alaw smallest negative", ALawToLinear, 0x55, -8},
		{"alaw most positive", ALawToLinear, 0xAA, 32256},
		{"alaw most negative", ALawToLinear, 0x2A, -32256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fn(tt.code); got != tt.want {
				t.Errorf("code 0x%02X = %d, want %d", tt.code, got, tt.want)
			}
		})
	}
}

func TestG711EncodeMatchesReference(t *testing.T) {
	for v := math.MinInt16; v <= math.MaxInt16; v++ {
		x := int16(v)
		if got, want := LinearToMuLaw(x), refLinearToULaw(x); got != want {
			t.Fatalf("LinearToMuLaw(%d) = 0x%02X, want 0x%02X", x, got, want)
		}
		if got, want := LinearToALaw(x), refLinearToALaw(x); got != want {
			t.Fatalf("LinearToALaw(%d) = 0x%02X, want 0x%02X", x, got, want)
		}
	}
	// Spot values of the standard: silence and full scale.
	if got := LinearToMuLaw(0); got != 0xFF {
		t.Errorf("LinearToMuLaw(0) = 0x%02X, want 0xFF", got)
	}
	if got := LinearToALaw(0); got != 0xD5 {
		t.Errorf("LinearToALaw(0) = 0x%02X, want 0xD5", got)
	}
	if got := LinearToMuLaw(math.MaxInt16); got != 0x80 {
		t.Errorf("LinearToMuLaw(32767) = 0x%02X, want 0x80", got)
	}
	if got := LinearToMuLaw(math.MinInt16); got != 0x00 {
		t.Errorf("LinearToMuLaw(-32768) = 0x%02X, want 0x00", got)
	}
}

// Every code decodes to a value that encodes back to it; µ-law 0x7F is
// "negative zero", which decodes to 0 and so comes back as 0xFF.
func TestG711RoundTrip(t *testing.T) {
	for c := range 256 {
		b := byte(c)
		wantMu := b
		if b == 0x7F {
			wantMu = 0xFF
		}
		if got := LinearToMuLaw(MuLawToLinear(b)); got != wantMu {
			t.Errorf("mu-law 0x%02X -> %d -> 0x%02X", b, MuLawToLinear(b), got)
		}
		if got := LinearToALaw(ALawToLinear(b)); got != b {
			t.Errorf("A-law 0x%02X -> %d -> 0x%02X", b, ALawToLinear(b), got)
		}
	}

	// The same through the float32 slice functions used for RTP.
	codes := make([]byte, 256)
	for i := range codes {
		codes[i] = byte(i)
	}
	f := make([]float32, 256)
	back := make([]byte, 256)
	DecodeMuLaw(f, codes)
	EncodeMuLaw(back, f)
	for i, b := range back {
		want := byte(i)
		if want == 0x7F {
			want = 0xFF
		}
		if b != want {
			t.Errorf("EncodeMuLaw(DecodeMuLaw(0x%02X)) = 0x%02X", i, b)
		}
		if f[i] < -1 || f[i] >= 1 {
			t.Errorf("DecodeMuLaw(0x%02X) = %v, outside [-1, 1)", i, f[i])
		}
	}
	DecodeALaw(f, codes)
	EncodeALaw(back, f)
	for i, b := range back {
		if b != byte(i) {
			t.Errorf("EncodeALaw(DecodeALaw(0x%02X)) = 0x%02X", i, b)
		}
	}
}

// Encoding clips out-of-range floats and NaN instead of wrapping around.
func TestG711EncodeClips(t *testing.T) {
	src := []float32{2, -2, float32(math.NaN()), float32(math.Inf(1)), 0}
	mu := make([]byte, len(src))
	a := make([]byte, len(src))
	EncodeMuLaw(mu, src)
	EncodeALaw(a, src)
	wantMu := []byte{0x80, 0x00, 0xFF, 0x80, 0xFF}
	wantA := []byte{0xAA, 0x2A, 0xD5, 0xAA, 0xD5}
	for i := range src {
		if mu[i] != wantMu[i] || a[i] != wantA[i] {
			t.Errorf("sample %v: mu-law 0x%02X A-law 0x%02X, want 0x%02X 0x%02X", src[i], mu[i], a[i], wantMu[i], wantA[i])
		}
	}
}

func TestG711ShortDstPanics(t *testing.T) {
	tests := map[string]func(){
		"DecodeMuLaw": func() { DecodeMuLaw(make([]float32, 1), make([]byte, 2)) },
		"DecodeALaw":  func() { DecodeALaw(make([]float32, 1), make([]byte, 2)) },
		"EncodeMuLaw": func() { EncodeMuLaw(make([]byte, 1), make([]float32, 2)) },
		"EncodeALaw":  func() { EncodeALaw(make([]byte, 1), make([]float32, 2)) },
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic with a short dst")
				}
			}()
			fn()
		})
	}
}
