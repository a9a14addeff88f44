// Package media carries the audio of a SIP call: it reads and writes the SDP
// that negotiates it (RFC 3264 offer/answer for PCMU, PCMA and RFC 4733
// telephone-event) and runs one RTP/RTCP stream per call (Stream): a
// receive path with a jitter buffer and packet-loss concealment, a 20 ms
// send clock paced on an absolute schedule, RFC 4733 DTMF both ways, and
// RTCP sender/receiver reports.
//
// A Stream is the transport half of a call for the voice engine: it
// implements the playback side of voice.Media (OutputRate, Play, Drain,
// StopPlayback) and feeds the caller's audio and digits to a Sink
// (voice.Handler satisfies it).
//
// It must not: do SIP signalling (channels/sip does), hang up or transfer a
// call, decide anything about the dialogue, log customer audio or digits,
// or keep package-level mutable state. SRTP is not supported: an offer
// with only RTP/SAVP audio is refused with ErrNoAudio.
package media
