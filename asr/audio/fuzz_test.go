package audio

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// checkDecode reads everything from r and checks the invariants every
// decode must keep, whatever the input: no error but EOF from an in-memory
// source, at most one sample per input byte, at most what the header
// claims, every sample a number in [-1, 1].
func checkDecode(t *testing.T, r *Reader, inputLen int) {
	t.Helper()
	samples, err := ReadAll(r)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if len(samples) > inputLen {
		t.Fatalf("%d samples from %d bytes", len(samples), inputLen)
	}
	if n := r.Samples(); n >= 0 && int64(len(samples)) > n {
		t.Fatalf("%d samples, header said %d", len(samples), n)
	}
	for i, v := range samples {
		if math.IsNaN(float64(v)) || v < -1 || v > 1 {
			t.Fatalf("sample %d = %v", i, v)
		}
	}
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %q wraps neither ErrUnsupported nor ErrMalformed", err)
	}
}

func FuzzWAV(f *testing.F) {
	nan := float32(math.NaN())
	valid := riff(fmtChunk(1, 1, 16000, 16), dataChunk(le16(0, 1000, -1000, 32767)))
	f.Add(valid)
	f.Add(riff(fmtChunk(3, 2, 48000, 32), dataChunk(f32(.5, -.5, nan, 2))))
	f.Add(riff(fmtExt(1, 2, 96000, 24, 20), dataChunk(le24(1, 2, 3, 4))))
	f.Add(riff(fmtExt(3, 1, 16000, 64, 64), dataChunk(f64(.1))))
	f.Add(riff(fmtChunk(7, 1, 8000, 8), dataChunk([]byte{0xFF, 0x00, 0x7F})))
	f.Add(riff(fmtChunk(6, 1, 8000, 8), dataChunk([]byte{0xD5, 0x55})))
	f.Add(valid[:30]) // truncated header
	// An odd-sized chunk before fmt, with its pad byte.
	f.Add(riff(chunk{id: "LIST", data: []byte("INFOabc"), size: -1}, fmtChunk(1, 1, 16000, 16), dataChunk(le16(1, 2, 3))))
	f.Add(riff(fmtChunk(1, 1, 16000, 16), chunk{id: "data", data: le16(5, 6), size: 0xFFFFFFFF}))
	f.Add(riff(fmtChunk(1, 1, 16000, 16), chunk{id: "LIST", data: nil, size: 0xFFFFFFF0}))
	f.Add(append([]byte("RIFX"), valid[4:]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewWAVReader(bytes.NewReader(data))
		if err != nil {
			checkErr(t, err)
		} else {
			checkDecode(t, r, len(data))
		}
		// Sniffing takes the same path for anything that looks like WAV.
		r2, err2 := NewReader(bytes.NewReader(data), "", 0)
		if err2 != nil {
			checkErr(t, err2)
		} else {
			if err != nil {
				t.Fatalf("sniffed WAV decodes but NewWAVReader said %v", err)
			}
			checkDecode(t, r2, len(data))
		}
	})
}

// FuzzMediaType feeds arbitrary Content-Type values and bodies to NewReader.
func FuzzMediaType(f *testing.F) {
	f.Add("audio/L16;rate=16000;channels=2", 0, []byte{1, 2, 3, 4, 5})
	f.Add("audio/pcm", 16000, []byte{1, 2, 3})
	f.Add("audio/PCMU;rate=8000", 0, []byte{0xFF, 0x00})
	f.Add("audio/pcma", 8000, []byte{0xD5})
	f.Add("audio/wav", 0, riff(fmtChunk(1, 1, 16000, 16), dataChunk(le16(1))))
	f.Add("audio/mpeg", 0, []byte("ID3"))
	f.Add("audio/s16le;rate=99999999999999999999", 0, []byte{})
	f.Add("", 0, []byte("OggS"))
	f.Fuzz(func(t *testing.T, mediaType string, rate int, body []byte) {
		r, err := NewReader(bytes.NewReader(body), mediaType, rate)
		if err != nil {
			checkErr(t, err)
			return
		}
		if f := r.Format(); f.SampleRate < MinSampleRate || f.SampleRate > MaxSampleRate || f.Channels < 1 || f.Channels > MaxChannels {
			t.Fatalf("accepted format %v", f)
		}
		checkDecode(t, r, len(body))
	})
}

// FuzzResampler checks that any split of any input gives the one-shot
// output, for a few ratios.
func FuzzResampler(f *testing.F) {
	f.Add(uint8(0), uint16(7), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add(uint8(3), uint16(1), []byte{0xFF, 0x00, 0x80})
	f.Fuzz(func(t *testing.T, ratio uint8, chunk uint16, data []byte) {
		rt := ratios[int(ratio)%len(ratios)]
		src := make([]float32, len(data))
		DecodeMuLaw(src, data)
		want, err := Resample(src, rt[0], rt[1])
		if err != nil {
			t.Fatal(err)
		}
		r, _ := NewResampler(rt[0], rt[1])
		c := int(chunk)%512 + 1
		var got []float32
		for s := src; len(s) > 0; {
			n := min(c, len(s))
			got = r.Process(got, s[:n])
			s = s[n:]
		}
		got = r.Flush(got)
		if len(got) != len(want) {
			t.Fatalf("%d samples in chunks of %d, %d in one", len(got), c, len(want))
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("sample %d differs: %v vs %v", i, got[i], want[i])
			}
		}
	})
}
