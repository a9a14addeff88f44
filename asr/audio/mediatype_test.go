package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func be16(v ...int16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint16(b, uint16(x))
	}
	return b
}

func TestNewReader(t *testing.T) {
	wav := riff(fmtChunk(1, 1, 22050, 16), dataChunk(le16(16384, -16384)))
	tests := []struct {
		name      string
		mediaType string
		rate      int
		body      []byte
		format    Format
		want      []float32
	}{
		{"wav", "audio/wav", 0, wav, Format{PCM, 22050, 1, 16, false}, []float32{.5, -.5}},
		{"x-wav with params, rate ignored", "AUDIO/X-WAV; codecs=1", 8000, wav, Format{PCM, 22050, 1, 16, false}, []float32{.5, -.5}},
		{"wave", "audio/wave", 0, wav, Format{PCM, 22050, 1, 16, false}, []float32{.5, -.5}},
		{"vnd.wave", "audio/vnd.wave", 0, wav, Format{PCM, 22050, 1, 16, false}, []float32{.5, -.5}},
		{"sniffed wav", "", 0, wav, Format{PCM, 22050, 1, 16, false}, []float32{.5, -.5}},
		{"L16 is big-endian", "audio/L16;rate=16000", 0, be16(16384, -16384), Format{PCM, 16000, 1, 16, true}, []float32{.5, -.5}},
		{"L16 stereo", "audio/l16; rate=8000; channels=2", 0, be16(16384, 0, -16384, 0), Format{PCM, 8000, 2, 16, true}, []float32{.25, -.25}},
		{"pcm rate from argument", "audio/pcm", 16000, le16(16384, -16384), Format{PCM, 16000, 1, 16, false}, []float32{.5, -.5}},
		{"x-pcm", "audio/x-pcm;rate=16000", 0, le16(16384), Format{PCM, 16000, 1, 16, false}, []float32{.5}},
		{"s16le same rate twice", "audio/s16le;rate=16000", 16000, le16(16384), Format{PCM, 16000, 1, 16, false}, []float32{.5}},
		{"basic is mulaw 8k", "audio/basic", 0, []byte{0xFF, 0x80}, Format{MuLaw, 8000, 1, 8, false}, []float32{0, 32124.0 / 32768}},
		{"PCMU", "audio/PCMU", 0, []byte{0x00}, Format{MuLaw, 8000, 1, 8, false}, []float32{-32124.0 / 32768}},
		{"PCMU wideband", "audio/PCMU;rate=16000", 0, []byte{0xFF}, Format{MuLaw, 16000, 1, 8, false}, []float32{0}},
		{"PCMA", "audio/pcma", 0, []byte{0xD5, 0x55}, Format{ALaw, 8000, 1, 8, false}, []float32{8.0 / 32768, -8.0 / 32768}},
		{"PCMA rate from argument", "audio/PCMA", 16000, []byte{0xD5}, Format{ALaw, 16000, 1, 8, false}, []float32{8.0 / 32768}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tt.body), tt.mediaType, tt.rate)
			if err != nil {
				t.Fatal(err)
			}
			if r.Format() != tt.format {
				t.Errorf("Format() = %v, want %v", r.Format(), tt.format)
			}
			got, err := ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			sameSamples(t, got, tt.want)
		})
	}
}

func TestNewReaderErrors(t *testing.T) {
	tests := []struct {
		name      string
		mediaType string
		rate      int
		body      string
		want      error
		msg       string
	}{
		{"pcm without rate", "audio/pcm", 0, "", ErrUnsupported, "declare the sample rate"},
		{"L16 without rate", "audio/L16", 0, "", ErrUnsupported, "declare the sample rate"},
		{"rates disagree", "audio/s16le;rate=16000", 8000, "", ErrMalformed, "declare one rate"},
		{"rate not a number", "audio/pcm;rate=fast", 0, "", ErrMalformed, `rate="fast"`},
		{"rate too low", "audio/pcm;rate=100", 0, "", ErrUnsupported, "100 Hz"},
		{"negative rate argument", "audio/pcm", -1, "", ErrMalformed, "-1"},
		{"zero channels", "audio/L16;rate=16000;channels=0", 0, "", ErrMalformed, `channels="0"`},
		{"100 channels", "audio/L16;rate=16000;channels=100", 0, "", ErrUnsupported, "100 channels"},
		{"mp3", "audio/mpeg", 16000, "ID3", ErrUnsupported, "audio/mpeg"},
		{"ogg", "audio/ogg; codecs=opus", 0, "", ErrUnsupported, "audio/ogg"},
		{"webm", "audio/webm", 0, "", ErrUnsupported, "audio/webm"},
		{"flac", "audio/flac", 0, "", ErrUnsupported, "audio/flac"},
		{"octet-stream is ambiguous", "application/octet-stream", 16000, "", ErrUnsupported, "application/octet-stream"},
		{"unparsable media type", "audio/", 0, "", ErrUnsupported, "media type"},
		{"sniffed mp3", "", 0, "ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00", ErrUnsupported, "MP3"},
		{"sniffed mp3 frame", "", 0, "\xFF\xFB\x90\x00", ErrUnsupported, "MP3"},
		{"sniffed ogg", "", 0, "OggS\x00\x02\x00\x00\x00\x00\x00\x00", ErrUnsupported, "Ogg"},
		{"sniffed flac", "", 0, "fLaC\x00\x00\x00\x22", ErrUnsupported, "FLAC"},
		{"sniffed webm", "", 0, "\x1A\x45\xDF\xA3\x01\x00\x00\x00", ErrUnsupported, "WebM"},
		{"sniffed m4a", "", 0, "\x00\x00\x00\x20ftypM4A ", ErrUnsupported, "MP4"},
		{"sniffed text", "", 0, "hello", ErrUnsupported, "unknown format"},
		{"sniffed RIFF AVI", "", 0, "RIFF\x00\x00\x00\x00AVI ", ErrUnsupported, "not WAVE"},
		{"sniffed RIFX", "", 0, "RIFX\x00\x00\x00\x00WAVE", ErrUnsupported, "RIFX"},
		{"sniffed empty", "", 0, "", ErrMalformed, "empty"},
		{"declared wav, is not", "audio/wav", 0, "OggS\x00\x02\x00\x00\x00\x00\x00\x00", ErrMalformed, "no RIFF header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tt.body), tt.mediaType, tt.rate)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v does not wrap %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestNewRawReader(t *testing.T) {
	tests := []struct {
		name   string
		f      Format
		body   []byte
		format Format
		want   []float32
	}{
		{"defaults: 16-bit mono", Format{Encoding: PCM, SampleRate: 16000}, le16(16384, -32768),
			Format{PCM, 16000, 1, 16, false}, []float32{.5, -1}},
		{"big-endian", Format{Encoding: PCM, SampleRate: 16000, BigEndian: true}, be16(16384),
			Format{PCM, 16000, 1, 16, true}, []float32{.5}},
		{"float32", Format{Encoding: Float, SampleRate: 48000}, f32(.25, -.75),
			Format{Float, 48000, 1, 32, false}, []float32{.25, -.75}},
		{"float64 stereo", Format{Encoding: Float, SampleRate: 48000, Channels: 2, BitsPerSample: 64}, f64(.5, 0, 1, 1),
			Format{Float, 48000, 2, 64, false}, []float32{.25, 1}},
		{"24-bit", Format{Encoding: PCM, SampleRate: 48000, BitsPerSample: 24}, le24(1 << 22),
			Format{PCM, 48000, 1, 24, false}, []float32{.5}},
		{"mulaw", Format{Encoding: MuLaw, SampleRate: 8000}, []byte{0xFF},
			Format{MuLaw, 8000, 1, 8, false}, []float32{0}},
		{"alaw", Format{Encoding: ALaw, SampleRate: 8000}, []byte{0xD5, 0xD5},
			Format{ALaw, 8000, 1, 8, false}, []float32{8.0 / 32768, 8.0 / 32768}},
		{"odd byte dropped", Format{Encoding: PCM, SampleRate: 16000}, []byte{0, 0x40, 7},
			Format{PCM, 16000, 1, 16, false}, []float32{.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRawReader(bytes.NewReader(tt.body), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if r.Format() != tt.format {
				t.Errorf("Format() = %v, want %v", r.Format(), tt.format)
			}
			if r.Samples() != -1 {
				t.Errorf("Samples() = %d, want -1 for raw audio", r.Samples())
			}
			got, err := ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			sameSamples(t, got, tt.want)
		})
	}

	bad := []struct {
		name string
		f    Format
		want error
		msg  string
	}{
		{"no rate", Format{Encoding: PCM}, ErrUnsupported, "declare the sample rate"},
		{"no encoding", Format{SampleRate: 16000}, ErrUnsupported, "Encoding(0)"},
		{"big-endian mulaw", Format{Encoding: MuLaw, SampleRate: 8000, BigEndian: true}, ErrUnsupported, "big-endian"},
		{"12-bit", Format{Encoding: PCM, SampleRate: 8000, BitsPerSample: 12}, ErrUnsupported, "12-bit"},
		{"negative channels", Format{Encoding: PCM, SampleRate: 8000, Channels: -1}, ErrMalformed, "-1 channels"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRawReader(bytes.NewReader(nil), tt.f)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %v, want %v saying %q", err, tt.want, tt.msg)
			}
		})
	}
}

func TestEncodingString(t *testing.T) {
	for e, want := range map[Encoding]string{PCM: "pcm", Float: "float", MuLaw: "mulaw", ALaw: "alaw", 0: "Encoding(0)"} {
		if got := e.String(); got != want {
			t.Errorf("Encoding(%d).String() = %q, want %q", int(e), got, want)
		}
	}
	if got := (Format{PCM, 16000, 1, 16, true}).String(); got != "pcm 16-bit 16000 Hz 1 ch big-endian" {
		t.Errorf("Format.String() = %q", got)
	}
}
