package tts

import "errors"

// ErrEspeakMissing is returned by NewEspeak (and by Voice when it falls
// back to espeak-ng) when the espeak-ng binary cannot be found; the message
// says how to install it.
var ErrEspeakMissing = errors.New("espeak-ng not found")

// ErrSynthesis is returned by a Synthesizer when the engine fails on a
// sentence (espeak-ng exits with an error, a model run fails or returns
// unusable audio); the message carries espeak-ng's stderr or the model's
// error.
var ErrSynthesis = errors.New("speech synthesis failed")

// ErrBadName is returned by Prompts.Load for a domain or response name that
// is not a plain file name (path separators, "..", control characters).
var ErrBadName = errors.New("invalid prompt name")

// ErrNoPrompt is returned by Prompts.Load when no recording exists for the
// response.
var ErrNoPrompt = errors.New("no recorded prompt")

// ErrBadPrompt is returned by Prompts.Load when a recording exists but is
// not a WAV file asr/audio can read; the message names the file.
var ErrBadPrompt = errors.New("unreadable recorded prompt")

// ErrModelFiles is returned when a TTS model folder's companion files
// (tokens.txt, lexicon.txt, ONNX metadata) are missing or malformed; the
// message names the file.
var ErrModelFiles = errors.New("invalid TTS model files")

// ErrNoModel is returned by Voice when tts.engine names a model that is
// not installed; the message says how to install it.
var ErrNoModel = errors.New("TTS model not installed")
