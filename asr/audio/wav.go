package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// WAV format tags (the first field of the fmt chunk).
const (
	wavePCM        = 0x0001
	waveFloat      = 0x0003
	waveALaw       = 0x0006
	waveMuLaw      = 0x0007
	waveExtensible = 0xFFFE
)

// maxHeader bounds the bytes of chunks a WAV may have before its data
// chunk. Real files carry a few kilobytes of metadata; beyond this the
// file is garbage or an attempt to make the server read forever.
const maxHeader = 16 << 20

// maxFmt bounds the size of a fmt chunk (40 bytes for the extensible form;
// writers pad a little, never kilobytes).
const maxFmt = 4096

// guidTail is the last 12 bytes shared by the KSDATAFORMAT_SUBTYPE_* GUIDs
// of WAVE_FORMAT_EXTENSIBLE: xxxxxxxx-0000-0010-8000-00aa00389b71.
var guidTail = [12]byte{0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

// NewWAVReader parses a RIFF/WAVE header from r up to the start of the
// "data" chunk and returns a Reader of the samples. It reads r directly
// (wrap it in a bufio.Reader if small reads are costly) and never allocates
// in proportion to a size the header claims: unknown chunks (LIST, fact,
// cue, ...) are skipped by reading, at most 16 MiB of them. A data size of
// 0 or 0xFFFFFFFF, as streaming writers leave it, means "until EOF".
//
// Read: PCM 8-bit unsigned and 16/24/32-bit signed, IEEE float 32/64,
// µ-law and A-law, plain or WAVE_FORMAT_EXTENSIBLE, 1 to 64 channels,
// 1000 to 384000 Hz. The error wraps ErrUnsupported (RIFX, RF64, other
// codecs) or ErrMalformed (truncated or inconsistent header), or is a read
// error of r.
func NewWAVReader(r io.Reader) (*Reader, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, headerErr(err, "riff header")
	}
	return parseWAV(r, hdr)
}

// headerErr turns a short read of the header into ErrMalformed and wraps
// other read errors.
func headerErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("wav: file ends inside the %s: %w", what, ErrMalformed)
	}
	return fmt.Errorf("wav: read %s: %w", what, err)
}

// parseWAV continues NewWAVReader after the 12-byte RIFF header hdr.
func parseWAV(r io.Reader, hdr [12]byte) (*Reader, error) {
	switch string(hdr[0:4]) {
	case "RIFF":
	case "RIFX":
		return nil, fmt.Errorf("wav: big-endian RIFX files are not read, convert to a little-endian RIFF WAV: %w", ErrUnsupported)
	case "RF64", "BW64":
		return nil, fmt.Errorf("wav: %s (WAV over 4 GiB) is not read, split the audio or send it as a stream: %w", hdr[0:4], ErrUnsupported)
	default:
		return nil, fmt.Errorf("wav: no RIFF header (starts with %q): %w", hdr[0:4], ErrMalformed)
	}
	if string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("wav: RIFF form type is %q, not WAVE: %w", hdr[8:12], ErrUnsupported)
	}

	var (
		f       Format
		haveFmt bool
		skipped int64
	)
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if !haveFmt {
				return nil, headerErr(err, "header before a fmt chunk")
			}
			return nil, headerErr(err, "header before a data chunk")
		}
		id := ch[0:4]
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch string(id) {
		case "fmt ":
			if haveFmt {
				return nil, fmt.Errorf("wav: two fmt chunks: %w", ErrMalformed)
			}
			var err error
			if f, err = readFmt(r, size); err != nil {
				return nil, err
			}
			haveFmt = true
			skipped += size + size&1
			if err := skip(r, size&1); err != nil {
				return nil, headerErr(err, "fmt chunk")
			}
		case "data":
			if !haveFmt {
				return nil, fmt.Errorf("wav: data chunk before the fmt chunk: %w", ErrMalformed)
			}
			if size == 0 || size == 0xFFFFFFFF {
				size = -1
			}
			return newReader(r, f, size), nil
		default:
			pad := size + size&1
			if skipped+pad > maxHeader {
				return nil, fmt.Errorf("wav: over %d MiB of chunks before the audio (a %q chunk of %d bytes): %w", maxHeader>>20, id, size, ErrMalformed)
			}
			skipped += pad
			if err := skip(r, pad); err != nil {
				return nil, headerErr(err, fmt.Sprintf("%q chunk", id))
			}
		}
	}
}

// skip reads and discards n bytes of r.
func skip(r io.Reader, n int64) error {
	if n == 0 {
		return nil
	}
	m, err := io.CopyN(io.Discard, r, n)
	if m < n && err == nil {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readFmt reads a fmt chunk of size bytes (not its pad byte) and checks it.
func readFmt(r io.Reader, size int64) (Format, error) {
	var f Format
	if size < 16 {
		return f, fmt.Errorf("wav: fmt chunk of %d bytes, at least 16 needed: %w", size, ErrMalformed)
	}
	if size > maxFmt {
		return f, fmt.Errorf("wav: fmt chunk of %d bytes: %w", size, ErrMalformed)
	}
	var b [40]byte
	n := min(size, int64(len(b)))
	if _, err := io.ReadFull(r, b[:n]); err != nil {
		return f, headerErr(err, "fmt chunk")
	}
	if err := skip(r, size-n); err != nil {
		return f, headerErr(err, "fmt chunk")
	}
	le := binary.LittleEndian
	tag := le.Uint16(b[0:])
	f.Channels = int(le.Uint16(b[2:]))
	f.SampleRate = int(le.Uint32(b[4:]))
	blockAlign := int(le.Uint16(b[12:]))
	f.BitsPerSample = int(le.Uint16(b[14:]))

	if tag == waveExtensible {
		if size < 40 {
			return f, fmt.Errorf("wav: extensible fmt chunk of %d bytes, 40 needed: %w", size, ErrMalformed)
		}
		if cb := le.Uint16(b[16:]); cb < 22 {
			return f, fmt.Errorf("wav: extensible fmt chunk with %d extra bytes, 22 needed: %w", cb, ErrMalformed)
		}
		if valid := int(le.Uint16(b[18:])); valid > f.BitsPerSample {
			return f, fmt.Errorf("wav: %d valid bits in a %d-bit sample: %w", valid, f.BitsPerSample, ErrMalformed)
		}
		sub := le.Uint32(b[24:])
		if !bytes.Equal(b[28:40], guidTail[:]) || sub > 0xFFFF {
			return f, fmt.Errorf("wav: extensible sub-format %x is not a WAVE format GUID: %w", b[24:40], ErrUnsupported)
		}
		tag = uint16(sub)
	}
	switch tag {
	case wavePCM:
		f.Encoding = PCM
	case waveFloat:
		f.Encoding = Float
	case waveMuLaw:
		f.Encoding = MuLaw
	case waveALaw:
		f.Encoding = ALaw
	default:
		return f, fmt.Errorf("wav: format tag 0x%04x%s: %w", tag, tagName(tag), ErrUnsupported)
	}
	if err := f.check("wav: fmt chunk says"); err != nil {
		return f, err
	}
	if blockAlign != f.frameSize() {
		return f, fmt.Errorf("wav: block size %d for %d channels of %d bits (want %d): %w", blockAlign, f.Channels, f.BitsPerSample, f.frameSize(), ErrMalformed)
	}
	return f, nil
}

// tagName names the common WAV codecs this package does not read, so that
// the error tells the user what the file is.
func tagName(tag uint16) string {
	switch tag {
	case 0x0002:
		return " (MS ADPCM)"
	case 0x0011:
		return " (IMA ADPCM)"
	case 0x0031:
		return " (GSM 6.10)"
	case 0x0050:
		return " (MPEG)"
	case 0x0055:
		return " (MP3)"
	case 0x00FF, 0x1610:
		return " (AAC)"
	case 0x0064, 0x0065:
		return " (G.726)"
	case 0xF1AC:
		return " (FLAC)"
	}
	return ""
}

// wavHeaderSize is the size of the header WriteWAV writes.
const wavHeaderSize = 44

// maxWAVSamples is the most 16-bit samples a RIFF size field can describe.
const maxWAVSamples = (math.MaxUint32 - (wavHeaderSize - 8)) / 2

// WriteWAV writes samples to w as a 16-bit PCM mono WAV at rate Hz.
// Samples are clipped to [-1, 1] and scaled by 32768 (1 becomes 32767), the
// inverse of Reader, so 16-bit audio survives a read and a write unchanged.
// It writes in pieces of 8 KiB and returns the first error of w.
func WriteWAV(w io.Writer, samples []float32, rate int) error {
	if rate < MinSampleRate || rate > MaxSampleRate {
		return fmt.Errorf("write wav: sample rate %d Hz: %w", rate, ErrUnsupported)
	}
	if len(samples) > maxWAVSamples {
		return fmt.Errorf("write wav: %d samples do not fit a WAV file: %w", len(samples), ErrUnsupported)
	}
	buf := make([]byte, 8<<10)
	h := wavHeader(buf[:0], len(samples), rate)
	if _, err := w.Write(h); err != nil {
		return fmt.Errorf("write wav: %w", err)
	}
	for len(samples) > 0 {
		n := min(len(samples), len(buf)/2)
		b := buf[:2*n]
		for i, v := range samples[:n] {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(toInt16(v)))
		}
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("write wav: %w", err)
		}
		samples = samples[n:]
	}
	return nil
}

// EncodeWAV returns samples as a 16-bit PCM mono WAV file at rate Hz, as
// WriteWAV writes it. The caller owns the result. It panics if rate is
// outside 1000..384000 or the audio does not fit a WAV file (over 2^31
// samples): both are programming errors.
func EncodeWAV(samples []float32, rate int) []byte {
	if rate < MinSampleRate || rate > MaxSampleRate || len(samples) > maxWAVSamples {
		panic(fmt.Sprintf("audio.EncodeWAV: %d samples at %d Hz", len(samples), rate))
	}
	b := wavHeader(make([]byte, 0, wavHeaderSize+2*len(samples)), len(samples), rate)
	b = b[:wavHeaderSize+2*len(samples)]
	for i, v := range samples {
		binary.LittleEndian.PutUint16(b[wavHeaderSize+2*i:], uint16(toInt16(v)))
	}
	return b
}

// wavHeader appends the 44-byte header of a 16-bit mono PCM WAV.
func wavHeader(b []byte, samples, rate int) []byte {
	le := binary.LittleEndian
	data := uint32(2 * samples)
	b = append(b, "RIFF"...)
	b = le.AppendUint32(b, 36+data)
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, wavePCM)
	b = le.AppendUint16(b, 1)            // channels
	b = le.AppendUint32(b, uint32(rate)) // frames per second
	b = le.AppendUint32(b, uint32(2*rate))
	b = le.AppendUint16(b, 2)  // block align
	b = le.AppendUint16(b, 16) // bits
	b = append(b, "data"...)
	return le.AppendUint32(b, data)
}

// toInt16 converts a sample in [-1, 1] to 16-bit PCM, rounding to nearest
// and clipping; NaN becomes 0.
func toInt16(v float32) int16 {
	x := float64(v) * 32768
	switch {
	case x != x:
		return 0
	case x >= 32767:
		return 32767
	case x <= -32768:
		return -32768
	}
	return int16(math.RoundToEven(x))
}
