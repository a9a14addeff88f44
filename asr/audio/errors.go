package audio

import "errors"

// Sentinels of the decoders. Match them with errors.Is; the returned errors
// wrap them with what was wrong ("wav: fmt chunk says 0 channels").
var (
	// ErrUnsupported is returned (wrapped) by NewReader, NewWAVReader,
	// NewRawReader and NewResampler for audio this package cannot decode
	// or a rate it does not handle. The message says what is supported so
	// that a user can convert the file.
	ErrUnsupported = errors.New("unsupported audio format: send WAV (PCM 8/16/24/32-bit, IEEE float 32/64, µ-law or A-law; 1 to 64 channels; 1000 to 384000 Hz), " +
		"raw 16-bit little-endian PCM with a declared sample rate, or raw G.711 µ-law/A-law")

	// ErrMalformed is returned (wrapped) by NewReader, NewWAVReader and
	// NewRawReader when the bytes or the declared format are truncated or
	// inconsistent: a WAV header cut short, a fmt chunk whose block size
	// does not match its channels and bits, a data chunk before the fmt
	// chunk, an empty input.
	ErrMalformed = errors.New("malformed audio")
)
