package asr

import "errors"

// ErrNoModel is returned by Engine methods when no speech recognition model
// is installed (or the configured one is not); the message says how to
// install one. HTTP maps it to 503 asr_model_missing.
var ErrNoModel = errors.New("no speech recognition model installed")

// ErrTooLong is returned by Transcribe when the audio is longer than
// asr.max_duration. HTTP maps it to 413.
var ErrTooLong = errors.New("audio too long")

// ErrModelFiles is returned when a model folder's companion files (tokens,
// CMVN, metadata) are missing or malformed; the message names the file.
var ErrModelFiles = errors.New("invalid speech model files")

// ErrBusy is returned by NewStream when asr.max_streams streams are open.
var ErrBusy = errors.New("too many speech streams")

// ErrClosed is returned by Stream methods after Close, and by the Engine
// after Close.
var ErrClosed = errors.New("closed")
