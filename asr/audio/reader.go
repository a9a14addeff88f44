package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// readBufSize is how many bytes of encoded audio a Reader buffers. It bounds
// a Reader's memory whatever the input's size.
const readBufSize = 16 << 10

// maxEmptyReads is how many (0, nil) reads in a row a Reader tolerates from
// its source before it gives up with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// Reader decodes audio to mono float32 samples in [-1, 1] at the source
// rate: channels are averaged, NaN becomes 0 and floats outside [-1, 1] are
// clipped. It reads its source in pieces of at most 16 KiB and holds no more
// than that, whatever the size of the input or what its header claims.
// Not safe for concurrent use.
type Reader struct {
	src     io.Reader
	f       Format
	frame   int   // bytes per frame
	remain  int64 // bytes of audio data left to read; -1: until EOF
	samples int64 // from the header, or -1
	buf     []byte
	start   int   // first unread byte in buf
	end     int   // end of the buffered bytes
	err     error // sticky: io.EOF or a read error
}

// NewRawReader returns a Reader of headerless audio in format f: 16-bit PCM
// (little-endian, or big-endian when f.BigEndian), µ-law, A-law, 32 or
// 64-bit float (little-endian); 8, 24 and 32-bit PCM are read as in WAV.
// f.Channels 0 means 1 and f.BitsPerSample 0 means the encoding's usual
// size (16 for PCM, 32 for Float, 8 for G.711). f.SampleRate must be given:
// raw audio does not say its rate. It reads nothing from r yet. The error
// wraps ErrUnsupported or ErrMalformed.
func NewRawReader(r io.Reader, f Format) (*Reader, error) {
	if f.Channels == 0 {
		f.Channels = 1
	}
	if f.BitsPerSample == 0 {
		switch f.Encoding {
		case PCM:
			f.BitsPerSample = 16
		case Float:
			f.BitsPerSample = 32
		case MuLaw, ALaw:
			f.BitsPerSample = 8
		}
	}
	if f.SampleRate == 0 {
		return nil, fmt.Errorf("raw %v audio: declare the sample rate: %w", f.Encoding, ErrUnsupported)
	}
	if err := f.check("raw"); err != nil {
		return nil, err
	}
	return newReader(r, f, -1), nil
}

// newReader returns a Reader of data bytes of audio in the checked format f;
// size < 0 means until EOF.
func newReader(r io.Reader, f Format, size int64) *Reader {
	rd := &Reader{src: r, f: f, frame: f.frameSize(), remain: size, samples: -1}
	if size >= 0 {
		rd.samples = size / int64(rd.frame)
	}
	rd.buf = make([]byte, readBufSize)
	return rd
}

// Format returns the format of the source: its encoding, rate, channels and
// sample size (the samples Read returns are always mono float32).
func (r *Reader) Format() Format { return r.f }

// Samples is the number of mono samples when the header says so (WAV data
// chunk size), else -1 (raw streams, data size 0/0xFFFFFFFF streaming WAVs).
// A file shorter than its header claims yields fewer samples.
func (r *Reader) Samples() int64 { return r.samples }

// Read decodes up to len(dst) samples into dst and returns how many. It
// blocks on the source only when no whole frame is buffered. At the end of
// the audio it returns 0, io.EOF: a truncated final frame is dropped, not an
// error, and so is audio that ends before the size its header declared.
// Other errors of the source are returned wrapped; every later call returns
// the same error.
func (r *Reader) Read(dst []float32) (int, error) {
	if len(dst) == 0 {
		return 0, nil
	}
	empty := 0
	for {
		if n := (r.end - r.start) / r.frame; n > 0 {
			n = min(n, len(dst))
			nb := n * r.frame
			r.decode(dst[:n], r.buf[r.start:r.start+nb])
			r.start += nb
			return n, nil
		}
		if r.err != nil {
			return 0, r.err
		}
		if r.fill() == 0 && r.err == nil {
			if empty++; empty >= maxEmptyReads {
				r.err = fmt.Errorf("read audio: %w", io.ErrNoProgress)
			}
		}
	}
}

// fill moves the unread bytes to the front of buf and reads once from the
// source, at most to the end of the data.
func (r *Reader) fill() int {
	if r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	want := len(r.buf) - r.end
	if r.remain >= 0 && int64(want) > r.remain {
		want = int(r.remain)
	}
	if want == 0 {
		r.err = io.EOF
		return 0
	}
	n, err := r.src.Read(r.buf[r.end : r.end+want])
	r.end += n
	if r.remain >= 0 {
		r.remain -= int64(n)
	}
	switch {
	case err == io.EOF: // io.EOF is returned unwrapped by contract
		r.err = io.EOF
	case err != nil:
		r.err = fmt.Errorf("read audio: %w", err)
	}
	return n
}

// ReadAll reads r to the end and returns its samples; memory grows with the
// audio actually read, not with what a header claims. The caller owns the
// result. A nil error means r reached io.EOF.
func ReadAll(r *Reader) ([]float32, error) {
	c := int64(4096)
	if n := r.Samples(); n > 0 {
		c = min(n, 1<<16) // a header's claim is a hint, never an allocation
	}
	out := make([]float32, 0, c)
	for {
		if len(out) == cap(out) {
			out = append(out, 0)[:len(out)]
		}
		n, err := r.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// decode converts len(dst) frames from src (exactly len(dst)*frame bytes).
func (r *Reader) decode(dst []float32, src []byte) {
	ch := r.f.Channels
	if ch == 1 {
		decodeMono(dst, src, r.f)
		return
	}
	// Several channels: decode frame by frame into a small stack buffer of
	// one frame's samples, then average.
	var one [MaxChannels]float32
	scale := 1 / float32(ch)
	fb := r.frame
	for i := range dst {
		decodeMono(one[:ch], src[i*fb:(i+1)*fb], r.f)
		var s float32
		for _, v := range one[:ch] {
			s += v
		}
		dst[i] = s * scale
	}
}

// decodeMono converts len(dst) samples of format f (ignoring its channel
// count) from src.
func decodeMono(dst []float32, src []byte, f Format) {
	switch {
	case f.Encoding == PCM && f.BitsPerSample == 16 && !f.BigEndian:
		src = src[:2*len(dst)]
		for i := range dst {
			dst[i] = float32(int16(binary.LittleEndian.Uint16(src[2*i:]))) * (1.0 / 32768)
		}
	case f.Encoding == PCM && f.BitsPerSample == 16:
		src = src[:2*len(dst)]
		for i := range dst {
			dst[i] = float32(int16(binary.BigEndian.Uint16(src[2*i:]))) * (1.0 / 32768)
		}
	case f.Encoding == PCM && f.BitsPerSample == 8:
		src = src[:len(dst)]
		for i := range dst {
			dst[i] = float32(int(src[i])-128) * (1.0 / 128)
		}
	case f.Encoding == PCM && f.BitsPerSample == 24:
		src = src[:3*len(dst)]
		for i := range dst {
			b := src[3*i : 3*i+3]
			v := int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24) >> 8
			dst[i] = float32(v) * (1.0 / (1 << 23))
		}
	case f.Encoding == PCM && f.BitsPerSample == 32:
		src = src[:4*len(dst)]
		for i := range dst {
			v := int32(binary.LittleEndian.Uint32(src[4*i:]))
			dst[i] = float32(float64(v) * (1.0 / (1 << 31)))
		}
	case f.Encoding == Float && f.BitsPerSample == 32:
		src = src[:4*len(dst)]
		for i := range dst {
			dst[i] = clip(math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:])))
		}
	case f.Encoding == Float && f.BitsPerSample == 64:
		src = src[:8*len(dst)]
		for i := range dst {
			dst[i] = clip(float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:]))))
		}
	case f.Encoding == MuLaw:
		DecodeMuLaw(dst, src[:len(dst)])
	case f.Encoding == ALaw:
		DecodeALaw(dst, src[:len(dst)])
	default:
		// check() admits nothing else.
		panic("audio: decode of unchecked format " + f.String())
	}
}

// clip maps NaN to 0 and clamps v to [-1, 1].
func clip(v float32) float32 {
	switch {
	case v != v:
		return 0
	case v > 1:
		return 1
	case v < -1:
		return -1
	}
	return v
}
