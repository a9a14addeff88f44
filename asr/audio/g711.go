package audio

import "fmt"

// MuLawToLinear expands a G.711 µ-law code to 16-bit linear PCM
// (0xFF → 0, 0x00 → -32124).
func MuLawToLinear(b byte) int16 { return muLawTable[b] }

// ALawToLinear expands a G.711 A-law code, as sent on the wire (even bits
// inverted), to 16-bit linear PCM (0xD5 → 8, 0x55 → -8).
func ALawToLinear(b byte) int16 { return aLawTable[b] }

// LinearToMuLaw compresses 16-bit linear PCM to G.711 µ-law, as ITU-T
// G.711 and Sun's reference g711.c do: values beyond ±32635 clip.
func LinearToMuLaw(v int16) byte {
	const (
		bias = 0x84 >> 2
		clip = 8159 // 32635 >> 2
	)
	x := int(v) >> 2
	mask := byte(0xFF)
	if x < 0 {
		x = -x
		mask = 0x7F
	}
	x = min(x, clip) + bias
	// seg is the position of the highest set bit above bit 5 (x >= 0x21).
	seg := 0
	for t := x >> 6; t != 0; t >>= 1 {
		seg++
	}
	if seg >= 8 { // only x == 0x2000: full scale
		return 0x7F ^ mask
	}
	return (byte(seg<<4) | byte(x>>(seg+1))&0x0F) ^ mask
}

// LinearToALaw compresses 16-bit linear PCM to G.711 A-law with the even
// bits inverted, as sent on the wire.
func LinearToALaw(v int16) byte {
	x := int(v) >> 3
	mask := byte(0xD5)
	if x < 0 {
		mask = 0x55
		x = -x - 1
	}
	// seg: 0 for x < 32, then one more per doubling up to 7 (x < 4096).
	seg := 0
	for t := x >> 5; t != 0; t >>= 1 {
		seg++
	}
	var a byte
	if seg < 2 {
		a = byte(seg<<4) | byte(x>>1)&0x0F
	} else {
		a = byte(seg<<4) | byte(x>>seg)&0x0F
	}
	return a ^ mask
}

// DecodeMuLaw expands len(src) µ-law codes into dst as samples in [-1, 1)
// (linear value / 32768). dst must hold len(src) samples: it panics if it
// is shorter, since that is a bug of the caller.
func DecodeMuLaw(dst []float32, src []byte) {
	checkLen(len(dst), len(src), "DecodeMuLaw")
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = float32(muLawTable[b]) * (1.0 / 32768)
	}
}

// DecodeALaw expands len(src) A-law codes into dst as samples in [-1, 1)
// (linear value / 32768). dst must hold len(src) samples: it panics if it
// is shorter.
func DecodeALaw(dst []float32, src []byte) {
	checkLen(len(dst), len(src), "DecodeALaw")
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = float32(aLawTable[b]) * (1.0 / 32768)
	}
}

// EncodeMuLaw compresses len(src) samples in [-1, 1] (clipped; NaN is 0)
// into µ-law codes in dst, for RTP payload type 0 (PCMU). dst must hold
// len(src) bytes: it panics if it is shorter.
func EncodeMuLaw(dst []byte, src []float32) {
	checkLen(len(dst), len(src), "EncodeMuLaw")
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = LinearToMuLaw(toInt16(v))
	}
}

// EncodeALaw compresses len(src) samples in [-1, 1] (clipped; NaN is 0)
// into A-law codes in dst, for RTP payload type 8 (PCMA). dst must hold
// len(src) bytes: it panics if it is shorter.
func EncodeALaw(dst []byte, src []float32) {
	checkLen(len(dst), len(src), "EncodeALaw")
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = LinearToALaw(toInt16(v))
	}
}

func checkLen(dst, src int, fn string) {
	if dst < src {
		panic(fmt.Sprintf("audio.%s: dst holds %d, src has %d", fn, dst, src))
	}
}
