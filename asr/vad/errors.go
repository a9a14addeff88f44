package vad

import "errors"

// ErrConfig is returned (wrapped, with the field names and what to change)
// by Config.Validate, and so by New, Segments and Probabilities, for an
// invalid Config.
var ErrConfig = errors.New("invalid vad config")

// ErrSampleRate is returned by New, Segments and Probabilities for a sample
// rate Silero VAD does not support (only 16000 and 8000 Hz).
var ErrSampleRate = errors.New("unsupported vad sample rate")

// ErrModelOutput is returned by Detector.Accept (and so Segments and
// Probabilities) when the Runner's outputs are not Silero VAD v5's: a
// float32 probability and a float32 state of 2×1×128. The model folder
// holds some other model.
var ErrModelOutput = errors.New("unexpected vad model output")

// ErrBroken is returned by Detector.Accept after an earlier Accept on the
// same detector failed (a run error or a cancelled context): the stream has
// a hole, so the detector refuses more audio until Reset.
var ErrBroken = errors.New("vad detector failed earlier")
