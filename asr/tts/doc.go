// Package tts turns reply text into speech for the phone line and the
// local sound card: a Mandarin text normaliser and sentence splitter,
// recorded prompts (a WAV per domain response), the espeak-ng binary as the
// always-available offline voice, and ONNX TTS models in the sherpa-onnx
// layouts (VITS icefall aishell3 and Melo, Matcha icefall baker with a
// vocos or HiFi-GAN vocoder) run through package inference. Voice picks
// among them (prompt > model > espeak-ng), resamples to the line's rate and
// streams: the first sentence's audio is handed on while the rest is still
// being synthesised.
//
// It must not: log customer text or audio (only lengths and timings), keep
// package-level mutable state, call the network, pass reply text on a
// command line (espeak-ng reads it on stdin), or read files outside the
// prompts folder and the model folders it is given.
package tts
