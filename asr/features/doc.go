// Package features is the ASR front-end of the FunASR models (SenseVoice,
// Paraformer): Kaldi-compatible log-mel filter banks, low frame rate (LFR)
// stacking and global CMVN, batch and streaming.
//
// The fbank matches torchaudio.compliance.kaldi.fbank (and kaldi-native-fbank)
// with FunASR's runtime settings: 80 mel bins, 25 ms windows every 10 ms at
// 16 kHz, Hamming window, dither 0, snip_edges, samples scaled to the int16
// range, DC removal, pre-emphasis 0.97, 512-point power spectrum, log with a
// FLT_EPSILON floor and no energy column. LFR stacks 7 frames every 6 with
// FunASR's padding rule and CMVN computes (x + neg_mean)·inv_stddev, the
// numbers coming from an am.mvn file or from sherpa-onnx model metadata.
//
// Streaming and batch give the same numbers for any chunking of the audio.
// The streaming types keep only what the next output needs (one partial
// window of samples, at most m fbank frames) and allocate nothing per call
// in steady state.
//
// The package does pure computation: it does no I/O of its own (the parsers
// and WriteMatrix/ReadMatrix take an io.Reader/io.Writer), keeps no
// package-level state and does not log. It does not decode or resample audio
// (package asr/audio does), does not run models and does not apply dither.
package features
