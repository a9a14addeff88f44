// Package audio turns the bytes callers send into samples the recognizer can
// use: it decodes WAV (PCM 8/16/24/32-bit, IEEE float, µ-law, A-law) and raw
// streams (16-bit PCM, G.711) to mono float32 in [-1, 1], encodes and decodes
// G.711 for telephony, resamples between any two rates with a windowed-sinc
// polyphase filter, and writes 16-bit WAV for tests and speech out.
//
// Decoding is streaming: a Reader holds 16 KiB whatever the size of the
// input or what its header claims, so a hostile or huge upload cannot make
// it allocate. Errors wrap ErrUnsupported (a format it cannot decode:
// the message lists what it can) or ErrMalformed (bytes that contradict
// themselves); errors of the underlying io.Reader are returned wrapped as
// they are.
//
// It must not: limit how much audio a caller may send (the caller knows its
// limits and owns ErrTooLarge), compute features, detect speech, log, or keep
// package-level mutable state (its G.711 tables are read-only). It uses the
// standard library only.
package audio
