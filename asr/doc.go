// Package asr is zhiyin's audio path: codecs (PCM, WAV, G.711), resampling,
// Kaldi-compatible fbank features, LFR/CMVN, Silero VAD, the SenseVoice and
// Paraformer recognizers, VAD-segmented streaming, and speech out (TTS).
//
// It runs models only through package inference and knows nothing of
// dialogue or channels.
package asr
