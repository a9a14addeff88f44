package audio

import (
	"fmt"
	"strconv"
)

// Encoding is how one sample is stored. The zero value is not an encoding.
type Encoding int

// The encodings the decoders read.
const (
	// PCM is linear integer PCM: 8-bit unsigned (offset 128), 16, 24 and
	// 32-bit signed.
	PCM Encoding = iota + 1
	// Float is IEEE 754 float, 32 or 64-bit, nominally in [-1, 1].
	Float
	// MuLaw is ITU-T G.711 µ-law, 8 bits.
	MuLaw
	// ALaw is ITU-T G.711 A-law, 8 bits.
	ALaw
)

// String returns "pcm", "float", "mulaw", "alaw" or "Encoding(n)".
func (e Encoding) String() string {
	switch e {
	case PCM:
		return "pcm"
	case Float:
		return "float"
	case MuLaw:
		return "mulaw"
	case ALaw:
		return "alaw"
	}
	return "Encoding(" + strconv.Itoa(int(e)) + ")"
}

// Limits of what the decoders and the resampler accept.
const (
	// MinSampleRate and MaxSampleRate bound every sample rate, in Hz.
	MinSampleRate = 1000
	MaxSampleRate = 384000
	// MaxChannels bounds the channel count of a stream.
	MaxChannels = 64
)

// Format describes stored audio. BitsPerSample is the container size: a
// 20-bit WAV stored in 24-bit words says 24.
type Format struct {
	Encoding      Encoding
	SampleRate    int // frames per second
	Channels      int
	BitsPerSample int
	// BigEndian is set for big-endian 16-bit PCM (audio/L16). Everything
	// else is little-endian.
	BigEndian bool
}

// String describes f for messages, like "pcm 16-bit 16000 Hz 1 ch".
func (f Format) String() string {
	s := fmt.Sprintf("%s %d-bit %d Hz %d ch", f.Encoding, f.BitsPerSample, f.SampleRate, f.Channels)
	if f.BigEndian {
		s += " big-endian"
	}
	return s
}

// frameSize is the size of one frame (a sample of every channel) in bytes.
func (f Format) frameSize() int { return f.Channels * f.BitsPerSample / 8 }

// check reports whether the decoder can read f; what names the source in
// the message ("wav", "raw"). Counts it rejects as nonsense wrap
// ErrMalformed, counts it could read in principle but does not wrap
// ErrUnsupported.
func (f Format) check(what string) error {
	if f.Encoding < PCM || f.Encoding > ALaw {
		return fmt.Errorf("%s: encoding %v: %w", what, f.Encoding, ErrUnsupported)
	}
	switch {
	case f.Channels <= 0:
		return fmt.Errorf("%s: %d channels: %w", what, f.Channels, ErrMalformed)
	case f.Channels > MaxChannels:
		return fmt.Errorf("%s: %d channels, at most %d are read: %w", what, f.Channels, MaxChannels, ErrUnsupported)
	case f.SampleRate <= 0:
		return fmt.Errorf("%s: sample rate %d: %w", what, f.SampleRate, ErrMalformed)
	case f.SampleRate < MinSampleRate || f.SampleRate > MaxSampleRate:
		return fmt.Errorf("%s: sample rate %d Hz: %w", what, f.SampleRate, ErrUnsupported)
	case f.BitsPerSample <= 0:
		return fmt.Errorf("%s: %d bits per sample: %w", what, f.BitsPerSample, ErrMalformed)
	}
	ok := false
	switch f.Encoding {
	case PCM:
		ok = f.BitsPerSample == 8 || f.BitsPerSample == 16 || f.BitsPerSample == 24 || f.BitsPerSample == 32
	case Float:
		ok = f.BitsPerSample == 32 || f.BitsPerSample == 64
	case MuLaw, ALaw:
		ok = f.BitsPerSample == 8
	}
	if !ok {
		return fmt.Errorf("%s: %d-bit %v: %w", what, f.BitsPerSample, f.Encoding, ErrUnsupported)
	}
	if f.BigEndian && (f.Encoding != PCM || f.BitsPerSample != 16) {
		return fmt.Errorf("%s: big-endian %d-bit %v (only 16-bit PCM may be big-endian): %w", what, f.BitsPerSample, f.Encoding, ErrUnsupported)
	}
	return nil
}
