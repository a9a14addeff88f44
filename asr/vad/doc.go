// Package vad finds speech in a stream of audio with Silero VAD v5: it
// feeds the model fixed windows, carries the model's state between them,
// and turns the per-window speech probabilities into segments, as events
// while the audio arrives (Detector) or for a whole buffer (Segments).
//
// # Model
//
// Samples are float32 in [-1,1] (not scaled to int16) at 16 kHz or 8 kHz,
// mono. Each run sees 512 new samples after the previous window's last 64
// (256 after 32 at 8 kHz), zeros before the first window, as the silero
// Python wrapper does; the state f32[2,1,128] starts at zeros and is
// carried from stateN; sr is an int64 scalar. Samples of a partial window
// wait for the next Accept; a partial window at the end of the stream is
// not run. Window i covers new samples [i·W, (i+1)·W) (W = 512 or 256) and
// gives one probability p_i.
//
// # Segmenting
//
// The rules are snakers4/silero-vad's get_speech_timestamps (utils_vad.py
// @0dd45f0) as a streaming state machine, with thr = Threshold, neg =
// NegThreshold (default max(thr-0.15, 0.01)) and durations in samples:
//
//   - Not in a segment: p_i >= thr opens one with raw start i·W.
//   - In a segment: p_i >= thr cancels a tentative end. p_i < neg sets the
//     tentative end to i·W when there is none, and when i·W minus the
//     tentative end is >= MinSilence the segment ends there. A p_i in
//     [neg, thr) changes nothing: it neither cancels nor starts the
//     silence, nor confirms it (silero checks the silence only on windows
//     below neg).
//   - A segment is kept only when raw end - raw start > MinSpeech; shorter
//     ones leave no events.
//   - Padding: a kept segment's start moves SpeechPad earlier (not before
//     0), its end SpeechPad later (not past the end of the stream); where
//     the gap between two kept segments is under 2·SpeechPad, the gap is
//     split instead: the end moves gap/2 later, the next start gap/2
//     earlier (integer halves, as silero does).
//   - MaxSpeech (not silero's rule): when window i makes (i+1)·W - raw
//     start exceed MaxSpeech - 2·SpeechPad - W, the segment is cut. If a
//     tentative end is set, the segment ends there. Otherwise it is cut in
//     the middle of the window with the lowest probability among those
//     starting in the second half of that length (the latest of equals, so
//     steady speech is cut at the limit), and a new segment, not yet
//     confirmed, starts at the same sample (gap 0: no audio is lost). A
//     padded segment is never longer than MaxSpeech.
//   - End of stream (Flush): an open segment ends at its tentative end, or
//     at the last sample fed when there is none, and is kept by the
//     MinSpeech rule. (Silero ends it at the end of the audio even during a
//     tentative silence; here trailing silence is not included.)
//
// # Streaming
//
// Accept returns an event as soon as it is certain, so the events of a
// stream do not depend on how it was chunked and equal Segments on the
// whole buffer:
//
//   - SpeechStart when the open segment must be kept: its tentative end, or
//     the next window's start when there is none, is more than MinSpeech
//     after its raw start. Its sample includes the padding (or the half
//     gap) and is never before the previous SpeechEnd.
//   - SpeechEnd of a kept segment when the next kept segment is confirmed
//     (the gap rule then applies), or when no later segment can start
//     within 2·SpeechPad of its raw end: no open segment starts there and
//     the audio run reaches raw end + 2·SpeechPad. With MinSilence >=
//     2·SpeechPad (the defaults) that is when the silence is confirmed;
//     otherwise it can wait up to 2·SpeechPad + MinSpeech longer. After a
//     MaxSpeech cut the End waits for the new segment's confirmation.
//
// Events alternate Start, End, Start, … with non-decreasing samples; a
// SpeechEnd is never past the samples fed.
//
// It must not: read files, resample, decode audio or run anything but the
// Runner it is given; keep package-level state; or log audio. It knows
// nothing of recognizers: callers cut the audio at the events.
package vad
