package audio

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
)

// NewReader returns a Reader for audio of the given media type (a
// Content-Type value; case-insensitive, parameters allowed):
//
//   - audio/wav, audio/x-wav, audio/wave, audio/vnd.wave: WAV, as
//     NewWAVReader; rate is ignored, the header says it.
//   - audio/L16: raw 16-bit big-endian PCM (RFC 2586), with the rate= and
//     channels= parameters.
//   - audio/pcm, audio/x-pcm, audio/s16le: raw 16-bit little-endian PCM,
//     with the rate= and channels= parameters.
//   - audio/basic, audio/PCMU: raw G.711 µ-law; audio/PCMA: raw A-law; at
//     8000 Hz unless a rate is given.
//   - "": sniffed: a RIFF/WAVE header is read as WAV, anything else is
//     refused with ErrUnsupported.
//
// For raw audio the sample rate is the media type's rate= parameter or else
// the rate argument; both given and different is an error, and raw PCM with
// neither is refused with a message asking to declare the sample rate.
// application/octet-stream is refused: it says nothing about the audio.
// Other types (mp3, ogg, webm, flac, ...) are refused with ErrUnsupported
// naming them. The error wraps ErrUnsupported or ErrMalformed, or is a read
// error of r. NewReader reads r only for WAV and sniffing.
func NewReader(r io.Reader, mediaType string, rate int) (*Reader, error) {
	if strings.TrimSpace(mediaType) == "" {
		return sniff(r)
	}
	mt, params, err := mime.ParseMediaType(mediaType)
	if err != nil {
		return nil, fmt.Errorf("media type %q: %v: %w", mediaType, err, ErrUnsupported)
	}
	f := Format{Channels: 1}
	switch mt {
	case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave":
		return NewWAVReader(r)
	case "audio/l16":
		f.Encoding, f.BitsPerSample, f.BigEndian = PCM, 16, true
	case "audio/pcm", "audio/x-pcm", "audio/s16le":
		f.Encoding, f.BitsPerSample = PCM, 16
	case "audio/basic", "audio/pcmu":
		f.Encoding, f.BitsPerSample = MuLaw, 8
	case "audio/pcma":
		f.Encoding, f.BitsPerSample = ALaw, 8
	default:
		return nil, fmt.Errorf("media type %s: %w", mt, ErrUnsupported)
	}
	if f.SampleRate, err = rateOf(mt, params, rate); err != nil {
		return nil, err
	}
	if f.SampleRate == 0 {
		if f.Encoding != MuLaw && f.Encoding != ALaw {
			return nil, fmt.Errorf("%s: declare the sample rate (a rate= parameter, e.g. %s;rate=16000): %w", mt, mt, ErrUnsupported)
		}
		f.SampleRate = 8000
	}
	if s, ok := params["channels"]; ok {
		if f.Channels, err = strconv.Atoi(s); err != nil || f.Channels <= 0 {
			return nil, fmt.Errorf("%s: channels=%q: %w", mt, s, ErrMalformed)
		}
	}
	if err := f.check(mt); err != nil {
		return nil, err
	}
	return newReader(r, f, -1), nil
}

// rateOf returns the sample rate declared by the rate= parameter or the
// rate argument, 0 when neither declares one.
func rateOf(mt string, params map[string]string, rate int) (int, error) {
	s, ok := params["rate"]
	if !ok {
		if rate < 0 {
			return 0, fmt.Errorf("%s: sample rate %d: %w", mt, rate, ErrMalformed)
		}
		return rate, nil
	}
	p, err := strconv.Atoi(s)
	if err != nil || p <= 0 {
		return 0, fmt.Errorf("%s: rate=%q is not a sample rate in Hz: %w", mt, s, ErrMalformed)
	}
	if rate != 0 && rate != p {
		return 0, fmt.Errorf("%s: media type says rate=%d but %d Hz was declared, declare one rate: %w", mt, p, rate, ErrMalformed)
	}
	return p, nil
}

// sniff reads the first 12 bytes of r and decodes a WAV; it names the
// common compressed formats it refuses.
func sniff(r io.Reader) (*Reader, error) {
	var hdr [12]byte
	n, err := io.ReadFull(r, hdr[:])
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return nil, fmt.Errorf("audio: empty input: %w", ErrMalformed)
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("audio: read header: %w", err)
	}
	b := hdr[:n]
	if n == 12 {
		switch string(b[0:4]) {
		case "RIFF", "RIFX", "RF64", "BW64":
			if string(b[8:12]) == "WAVE" {
				return parseWAV(r, hdr)
			}
		}
	}
	return nil, fmt.Errorf("audio: cannot read %s (no media type was given): %w", sniffName(b), ErrUnsupported)
}

// sniffName guesses what a refused input is from its first bytes.
func sniffName(b []byte) string {
	has := func(p string) bool { return strings.HasPrefix(string(b), p) }
	switch {
	case has("ID3"), len(b) >= 2 && b[0] == 0xFF && b[1]&0xE0 == 0xE0 && b[1]&0x06 != 0:
		return "MP3"
	case len(b) >= 2 && b[0] == 0xFF && b[1]&0xF6 == 0xF0:
		return "AAC (ADTS)"
	case has("OggS"):
		return "Ogg (Vorbis or Opus)"
	case has("fLaC"):
		return "FLAC"
	case has("\x1A\x45\xDF\xA3"):
		return "WebM/Matroska"
	case len(b) >= 8 && string(b[4:8]) == "ftyp":
		return "MP4/M4A"
	case has("#!AMR"):
		return "AMR"
	case has("RIFF"):
		return "a RIFF file that is not WAVE"
	}
	return "audio of unknown format"
}
