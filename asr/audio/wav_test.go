package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// chunk is a RIFF chunk for building test files; size < 0 means len(data).
type chunk struct {
	id   string
	data []byte
	size int64
}

// riff returns a RIFF/WAVE file of the chunks, each padded to even length.
func riff(chunks ...chunk) []byte {
	var body []byte
	for _, c := range chunks {
		size := c.size
		if size < 0 {
			size = int64(len(c.data))
		}
		body = append(body, c.id...)
		body = binary.LittleEndian.AppendUint32(body, uint32(size))
		body = append(body, c.data...)
		if len(c.data)%2 == 1 {
			body = append(body, 0)
		}
	}
	b := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(body)))...)
	b = append(b, "WAVE"...)
	return append(b, body...)
}

// fmtChunk is a plain 16-byte fmt chunk with a consistent block size.
func fmtChunk(tag, channels, rate, bits int) chunk {
	le := binary.LittleEndian
	b := le.AppendUint16(nil, uint16(tag))
	b = le.AppendUint16(b, uint16(channels))
	b = le.AppendUint32(b, uint32(rate))
	b = le.AppendUint32(b, uint32(rate*channels*bits/8))
	b = le.AppendUint16(b, uint16(channels*bits/8))
	b = le.AppendUint16(b, uint16(bits))
	return chunk{id: "fmt ", data: b, size: -1}
}

// fmtExt is a 40-byte WAVE_FORMAT_EXTENSIBLE fmt chunk for sub-format sub.
func fmtExt(sub, channels, rate, bits, valid int) chunk {
	c := fmtChunk(waveExtensible, channels, rate, bits)
	le := binary.LittleEndian
	c.data = le.AppendUint16(c.data, 22)
	c.data = le.AppendUint16(c.data, uint16(valid))
	c.data = le.AppendUint32(c.data, 0x3) // channel mask FL|FR
	c.data = le.AppendUint32(c.data, uint32(sub))
	c.data = append(c.data, guidTail[:]...)
	return c
}

func dataChunk(b []byte) chunk { return chunk{id: "data", data: b, size: -1} }

func le16(v ...int16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint16(b, uint16(x))
	}
	return b
}

func le24(v ...int32) []byte {
	var b []byte
	for _, x := range v {
		b = append(b, byte(x), byte(x>>8), byte(x>>16))
	}
	return b
}

func le32(v ...int32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return b
}

func f32(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func f64(v ...float64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

func sameSamples(t *testing.T, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d samples %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > 1e-7 {
			t.Fatalf("sample %d = %v, want %v (all: %v)", i, got[i], want[i], got)
		}
	}
}

func TestWAVDecode(t *testing.T) {
	nan := float32(math.NaN())
	pcm16 := le16(0, 16384, -16384, 32767, -32768)
	want16 := []float32{0, .5, -.5, 32767.0 / 32768, -1}
	list := chunk{id: "LIST", data: []byte("INFOISFT\x05\x00\x00\x00zhiy\x00"), size: -1} // odd size 17
	tests := []struct {
		name    string
		file    []byte
		format  Format
		samples int64
		want    []float32
	}{
		{"pcm16", riff(fmtChunk(1, 1, 16000, 16), dataChunk(pcm16)),
			Format{PCM, 16000, 1, 16, false}, 5, want16},
		{"pcm8 unsigned", riff(fmtChunk(1, 1, 8000, 8), dataChunk([]byte{128, 192, 64, 255, 0})),
			Format{PCM, 8000, 1, 8, false}, 5, []float32{0, .5, -.5, 127.0 / 128, -1}},
		{"pcm24", riff(fmtChunk(1, 1, 48000, 24), dataChunk(le24(0, 1<<22, -(1<<22), 1<<23-1, -(1<<23)))),
			Format{PCM, 48000, 1, 24, false}, 5, []float32{0, .5, -.5, float32((1<<23 - 1) / float64(1<<23)), -1}},
		{"pcm32", riff(fmtChunk(1, 1, 44100, 32), dataChunk(le32(0, 1<<30, -(1<<30), math.MaxInt32, math.MinInt32))),
			Format{PCM, 44100, 1, 32, false}, 5, []float32{0, .5, -.5, 1, -1}},
		{"float32 clipped, NaN zero", riff(fmtChunk(3, 1, 16000, 32), dataChunk(f32(0, .5, -.5, 1.5, nan))),
			Format{Float, 16000, 1, 32, false}, 5, []float32{0, .5, -.5, 1, 0}},
		{"float64", riff(fmtChunk(3, 1, 16000, 64), dataChunk(f64(0, .25, -1, -3))),
			Format{Float, 16000, 1, 64, false}, 4, []float32{0, .25, -1, -1}},
		{"mulaw", riff(fmtChunk(7, 1, 8000, 8), dataChunk([]byte{0xFF, 0x00, 0x80})),
			Format{MuLaw, 8000, 1, 8, false}, 3, []float32{0, -32124.0 / 32768, 32124.0 / 32768}},
		{"alaw", riff(fmtChunk(6, 1, 8000, 8), dataChunk([]byte{0xD5, 0x55})),
			Format{ALaw, 8000, 1, 8, false}, 2, []float32{8.0 / 32768, -8.0 / 32768}},
		{"stereo averaged", riff(fmtChunk(1, 2, 16000, 16), dataChunk(le16(16384, -16384, 16384, 16384, 32767, 32767))),
			Format{PCM, 16000, 2, 16, false}, 3, []float32{0, .5, 32767.0 / 32768}},
		{"six channels", riff(fmtChunk(1, 6, 48000, 16), dataChunk(le16(6*1024, 0, 0, 0, 0, 0, -6*1024, 0, 0, 0, 0, 0))),
			Format{PCM, 48000, 6, 16, false}, 2, []float32{1024.0 / 32768, -1024.0 / 32768}},
		{"extensible pcm24 in 24 valid 20", riff(fmtExt(1, 2, 96000, 24, 20), dataChunk(le24(1<<22, 1<<22))),
			Format{PCM, 96000, 2, 24, false}, 1, []float32{.5}},
		{"extensible float", riff(fmtExt(3, 1, 16000, 32, 32), dataChunk(f32(.25))),
			Format{Float, 16000, 1, 32, false}, 1, []float32{.25}},
		{"extensible mulaw", riff(fmtExt(7, 1, 8000, 8, 8), dataChunk([]byte{0xFF})),
			Format{MuLaw, 8000, 1, 8, false}, 1, []float32{0}},
		{"extensible alaw", riff(fmtExt(6, 1, 8000, 8, 8), dataChunk([]byte{0xD5})),
			Format{ALaw, 8000, 1, 8, false}, 1, []float32{8.0 / 32768}},
		{"odd LIST before fmt and fact after", riff(list, fmtChunk(1, 1, 16000, 16), chunk{id: "fact", data: le32(5), size: -1}, dataChunk(pcm16)),
			Format{PCM, 16000, 1, 16, false}, 5, want16},
		{"odd unknown chunk between fmt and data", riff(fmtChunk(1, 1, 16000, 16), chunk{id: "junk", data: []byte{1, 2, 3}, size: -1}, dataChunk(pcm16)),
			Format{PCM, 16000, 1, 16, false}, 5, want16},
		{"chunk after data not read", riff(fmtChunk(1, 1, 16000, 16), dataChunk(pcm16), list),
			Format{PCM, 16000, 1, 16, false}, 5, want16},
		{"fmt chunk longer than 16", riff(chunk{id: "fmt ", data: append(fmtChunk(1, 1, 16000, 16).data, 0, 0), size: -1}, dataChunk(pcm16)),
			Format{PCM, 16000, 1, 16, false}, 5, want16},
		{"streaming size 0xFFFFFFFF", riff(fmtChunk(1, 1, 16000, 16), chunk{id: "data", data: pcm16, size: 0xFFFFFFFF}),
			Format{PCM, 16000, 1, 16, false}, -1, want16},
		{"streaming size 0", riff(fmtChunk(1, 1, 16000, 16), chunk{id: "data", data: pcm16, size: 0}),
			Format{PCM, 16000, 1, 16, false}, -1, want16},
		{"truncated final frame dropped", riff(fmtChunk(1, 2, 16000, 16), dataChunk(le16(16384, 16384, 100))),
			Format{PCM, 16000, 2, 16, false}, 1, []float32{.5}},
		{"file shorter than data size", riff(fmtChunk(1, 1, 16000, 16), chunk{id: "data", data: le16(16384), size: 1000}),
			Format{PCM, 16000, 1, 16, false}, 500, []float32{.5}},
		{"empty data", riff(fmtChunk(1, 1, 16000, 16), dataChunk(nil)),
			Format{PCM, 16000, 1, 16, false}, -1, []float32{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewWAVReader(bytes.NewReader(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if r.Format() != tt.format {
				t.Errorf("Format() = %v, want %v", r.Format(), tt.format)
			}
			if r.Samples() != tt.samples {
				t.Errorf("Samples() = %d, want %d", r.Samples(), tt.samples)
			}
			got, err := ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			sameSamples(t, got, tt.want)
			if n, err := r.Read(make([]float32, 4)); n != 0 || err != io.EOF {
				t.Errorf("Read after the end = %d, %v; want 0, io.EOF", n, err)
			}

			// Byte by byte, one sample per Read: the same samples.
			r, err = NewWAVReader(iotest.OneByteReader(bytes.NewReader(tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			var one []float32
			buf := make([]float32, 1)
			for {
				n, err := r.Read(buf)
				one = append(one, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			sameSamples(t, one, tt.want)
		})
	}
}

func TestWAVErrors(t *testing.T) {
	pcm := dataChunk(le16(1, 2))
	withFmt := func(mutate func(b []byte)) chunk {
		c := fmtChunk(1, 1, 16000, 16)
		mutate(c.data)
		return c
	}
	badGUID := fmtExt(1, 1, 16000, 16, 16)
	badGUID.data[39] = 0
	valid := riff(fmtChunk(1, 1, 16000, 16), pcm)
	tests := []struct {
		name string
		file []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrMalformed, "riff header"},
		{"cut in RIFF header", valid[:7], ErrMalformed, "riff header"},
		{"not RIFF", []byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00"), ErrMalformed, "no RIFF header"},
		{"RIFX", append([]byte("RIFX"), valid[4:]...), ErrUnsupported, "RIFX"},
		{"RF64", append([]byte("RF64"), valid[4:]...), ErrUnsupported, "RF64"},
		{"not WAVE", append(append([]byte{}, valid[:8]...), "AVI "...), ErrUnsupported, "not WAVE"},
		{"header only", valid[:12], ErrMalformed, "before a fmt chunk"},
		{"data before fmt", riff(pcm, fmtChunk(1, 1, 16000, 16)), ErrMalformed, "data chunk before the fmt chunk"},
		{"no data chunk", riff(fmtChunk(1, 1, 16000, 16)), ErrMalformed, "before a data chunk"},
		{"fmt too short", riff(chunk{id: "fmt ", data: make([]byte, 14), size: -1}, pcm), ErrMalformed, "fmt chunk of 14 bytes"},
		{"fmt huge", riff(chunk{id: "fmt ", data: make([]byte, 16), size: 1 << 30}, pcm), ErrMalformed, "fmt chunk of"},
		{"fmt cut short", valid[:30], ErrMalformed, "fmt chunk"},
		{"two fmt", riff(fmtChunk(1, 1, 16000, 16), fmtChunk(1, 1, 16000, 16), pcm), ErrMalformed, "two fmt"},
		{"zero channels", riff(withFmt(func(b []byte) { b[2] = 0 }), pcm), ErrMalformed, "0 channels"},
		{"65 channels", riff(fmtChunk(1, 65, 16000, 16), pcm), ErrUnsupported, "65 channels"},
		{"rate 0", riff(fmtChunk(1, 1, 0, 16), pcm), ErrMalformed, "sample rate 0"},
		{"rate 500", riff(fmtChunk(1, 1, 500, 16), pcm), ErrUnsupported, "500 Hz"},
		{"rate 400000", riff(fmtChunk(1, 1, 400000, 16), pcm), ErrUnsupported, "400000 Hz"},
		{"0 bits", riff(withFmt(func(b []byte) { b[14] = 0 }), pcm), ErrMalformed, "0 bits"},
		{"pcm 12-bit", riff(withFmt(func(b []byte) { b[14] = 12 }), pcm), ErrUnsupported, "12-bit pcm"},
		{"float 16-bit", riff(fmtChunk(3, 1, 16000, 16), pcm), ErrUnsupported, "16-bit float"},
		{"mulaw 16-bit", riff(fmtChunk(7, 1, 16000, 16), pcm), ErrUnsupported, "16-bit mulaw"},
		{"block align wrong", riff(withFmt(func(b []byte) { b[12] = 4 }), pcm), ErrMalformed, "block size 4"},
		{"mp3 in wav", riff(fmtChunk(0x55, 1, 16000, 16), pcm), ErrUnsupported, "0x0055 (MP3)"},
		{"adpcm", riff(fmtChunk(0x11, 1, 16000, 4), pcm), ErrUnsupported, "IMA ADPCM"},
		{"extensible too short", riff(chunk{id: "fmt ", data: fmtExt(1, 1, 16000, 16, 16).data[:24], size: -1}, pcm), ErrMalformed, "40 needed"},
		{"extensible cbSize", riff(func() chunk { c := fmtExt(1, 1, 16000, 16, 16); c.data[16] = 2; return c }(), pcm), ErrMalformed, "22 needed"},
		{"extensible valid bits", riff(fmtExt(1, 1, 16000, 16, 24), pcm), ErrMalformed, "24 valid bits"},
		{"extensible unknown GUID", riff(badGUID, pcm), ErrUnsupported, "sub-format"},
		{"extensible ADPCM GUID", riff(fmtExt(2, 1, 16000, 16, 16), pcm), ErrUnsupported, "MS ADPCM"},
		{"huge chunk before data", riff(fmtChunk(1, 1, 16000, 16), chunk{id: "LIST", data: []byte("INFO"), size: 0xFFFFFFF0}, pcm), ErrMalformed, "16 MiB"},
		{"chunk cut short", riff(fmtChunk(1, 1, 16000, 16), chunk{id: "LIST", data: []byte("INFO"), size: 1 << 20}), ErrMalformed, `"LIST" chunk`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewWAVReader(bytes.NewReader(tt.file))
			if err == nil {
				t.Fatalf("no error; format %v", r.Format())
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %q does not wrap %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "wav: ") {
				t.Errorf("error %q lacks the wav: prefix", err)
			}
		})
	}
}

// A header claiming gigabytes, with a file of a few bytes, costs neither
// memory nor time.
func TestWAVClaimedSizeNotAllocated(t *testing.T) {
	files := map[string][]byte{
		"4 GiB data":        riff(fmtChunk(1, 64, 384000, 32), chunk{id: "data", data: le32(1, 2, 3), size: 0xFFFFFFFE}),
		"15 MiB LIST chunk": riff(fmtChunk(1, 1, 16000, 16), chunk{id: "LIST", data: []byte("INFO"), size: 15 << 20}),
	}
	for name, file := range files {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if r, err := NewWAVReader(bytes.NewReader(file)); err == nil {
				if _, err := ReadAll(r); err != nil {
					t.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("decoding a %d-byte file allocated %d bytes", len(file), n)
			}
		})
	}
}

// Errors of the source reach the caller wrapped; a source that returns
// nothing forever ends with io.ErrNoProgress rather than a busy loop.
func TestReaderSourceErrors(t *testing.T) {
	boom := errors.New("connection reset")
	file := riff(fmtChunk(1, 1, 16000, 16), dataChunk(le16(1, 2, 3, 4)))

	r, err := NewWAVReader(io.MultiReader(bytes.NewReader(file[:len(file)-4]), iotest.ErrReader(boom)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadAll(r)
	if !errors.Is(err, boom) {
		t.Errorf("ReadAll error = %v, want %v", err, boom)
	}
	if len(got) != 2 {
		t.Errorf("got %d samples before the error, want 2", len(got))
	}
	if _, err2 := r.Read(make([]float32, 1)); !errors.Is(err2, boom) {
		t.Errorf("error not sticky: %v", err2)
	}

	if _, err := NewWAVReader(iotest.ErrReader(boom)); !errors.Is(err, boom) || errors.Is(err, ErrMalformed) {
		t.Errorf("header read error = %v, want %v", err, boom)
	}

	r, err = NewRawReader(emptyReader{}, Format{Encoding: PCM, SampleRate: 16000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]float32, 1)); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("endless empty reads: %v, want io.ErrNoProgress", err)
	}
	if n, err := r.Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v; want 0, nil", n, err)
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestWriteWAV(t *testing.T) {
	nan := float32(math.NaN())
	in := []float32{0, .5, -.5, 1, -1, 2, -2, nan, 1.0 / 32768, 0.7 / 32768}
	want := []float32{0, .5, -.5, 32767.0 / 32768, -1, 32767.0 / 32768, -1, 0, 1.0 / 32768, 1.0 / 32768}

	b := EncodeWAV(in, 16000)
	if len(b) != 44+2*len(in) {
		t.Fatalf("EncodeWAV gave %d bytes, want %d", len(b), 44+2*len(in))
	}
	var w bytes.Buffer
	if err := WriteWAV(&w, in, 16000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Bytes(), b) {
		t.Error("WriteWAV and EncodeWAV differ")
	}
	if got := binary.LittleEndian.Uint32(b[4:]); got != uint32(len(b)-8) {
		t.Errorf("RIFF size %d, want %d", got, len(b)-8)
	}
	r, err := NewWAVReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if f := r.Format(); f != (Format{PCM, 16000, 1, 16, false}) {
		t.Errorf("format %v", f)
	}
	got, err := ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	sameSamples(t, got, want)

	// 16-bit audio survives a read and a write unchanged.
	again := EncodeWAV(got, 16000)
	if !bytes.Equal(again[44:], b[44:]) {
		t.Error("decoded 16-bit audio changed when written again")
	}

	// Larger than WriteWAV's buffer, to a writer that fails.
	long := tone(8000, 300, .3, 10000)
	var lw bytes.Buffer
	if err := WriteWAV(&lw, long, 8000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(lw.Bytes(), EncodeWAV(long, 8000)) {
		t.Error("WriteWAV in pieces differs from EncodeWAV")
	}
	boom := errors.New("disk full")
	if err := WriteWAV(failAfter{n: 100, err: boom}, long, 8000); !errors.Is(err, boom) {
		t.Errorf("WriteWAV to a failing writer: %v", err)
	}
	if err := WriteWAV(io.Discard, in, 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("WriteWAV at 0 Hz: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("EncodeWAV at 0 Hz did not panic")
		}
	}()
	EncodeWAV(in, 0)
}

// failAfter accepts one write of at most n bytes, then fails.
type failAfter struct {
	n   int
	err error
}

func (f failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, f.err
	}
	return len(p), nil
}
