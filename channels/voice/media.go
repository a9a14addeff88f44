package voice

import (
	"context"
	"errors"
	"time"
)

// ErrTransferUnsupported is returned by Media.Transfer when the transport
// cannot hand a call to a person (a local sound card).
var ErrTransferUnsupported = errors.New("this line cannot transfer calls")

// ErrHungUp is returned by Media.Play once the call has ended.
var ErrHungUp = errors.New("call ended")

// CallInfo describes one call for the session, the call record and logs.
type CallInfo struct {
	// Channel is the adapter instance's name ("sip", "localaudio"): the
	// session's channel.
	Channel string
	// ID identifies the call (the SIP Call-ID; for a sound card a fresh
	// id per conversation): the session's conversation key, so a call
	// keeps one dialogue session from its first turn to its last.
	ID string
	// From and To are the caller and the called party (SIP URIs or
	// device names); From is the session's user.
	From, To string
	// Remote is the peer's address ("203.0.113.5:5060"), for the record.
	Remote string
	// Started is when the call was offered (the INVITE arrived).
	Started time.Time
	// Setup is how long answering took (INVITE to 200 OK sent).
	Setup time.Duration
}

// Media is the transport's half of a call: the voice engine speaks through
// it. The transport feeds the caller's side into Call.Audio and Call.DTMF.
// Every method is safe for concurrent use.
type Media interface {
	// OutputRate is the sample rate Play takes (8000 for G.711 telephony).
	OutputRate() int
	// Play queues mono samples in [-1,1] for playback and returns once
	// they are queued. It blocks while more than about 100 ms is queued
	// ahead of the line, so a producer naturally runs in real time and
	// StopPlayback can silence the line at once. It returns ErrHungUp once
	// the call ended, or ctx's error.
	Play(ctx context.Context, samples []float32) error
	// Drain waits until everything queued has gone out on the line.
	Drain(ctx context.Context) error
	// StopPlayback discards everything queued and not yet sent (barge-in):
	// the line carries silence from the next frame on.
	StopPlayback()
	// Hangup ends the call from our side (a SIP BYE) at once; queued
	// audio is dropped (Drain first to let it out). Idempotent.
	Hangup(reason string)
	// Transfer hands the call to a person: target is a SIP URI, or empty
	// for the line's configured agent. On success the call leaves the
	// voice engine (the transport then calls Call.End). It returns
	// ErrTransferUnsupported when the line cannot.
	Transfer(ctx context.Context, target string) error
}

// RTPStats are a call's receive-side network figures, for the call record
// and the metrics.
type RTPStats struct {
	Received, Lost uint64
	// Jitter is RFC 3550's interarrival jitter estimate.
	Jitter time.Duration
	// Late counts packets that arrived after their playout time (dropped
	// by the jitter buffer); Concealed counts 20 ms frames filled by
	// packet-loss concealment.
	Late, Concealed uint64
}

// Answerer takes calls: the voice engine (*Engine) in production, anything
// that talks back in a transport's tests.
type Answerer interface {
	// Start answers a call whose caller audio arrives at inputRate (8000
	// for G.711, the capture rate for a sound card). ctx bounds the start
	// only; the call lives until Handler.End or Media.Hangup. An error
	// (full, no speech model) means the transport refuses the call.
	Start(ctx context.Context, info CallInfo, m Media, inputRate int) (Handler, error)
}

// Handler is one answered call's input side; the transport feeds it from
// its receive goroutine. Audio and DTMF never block for long.
type Handler interface {
	// Audio takes the caller's next samples (mono, [-1,1], inputRate; 20 ms
	// frames from a jitter buffer, gaps already concealed). The handler
	// owns samples from then on: the transport passes a fresh slice each
	// time and never writes to it again.
	Audio(samples []float32)
	// DTMF takes one keypad digit (0-9, *, #, A-D) once, at its end.
	DTMF(digit rune)
	// Hold tells that the caller put the call on hold (true) or resumed it.
	Hold(on bool)
	// Stats reports the receive side's figures (called now and then, and
	// once before End).
	Stats(s RTPStats)
	// End says the call is over on the transport's side (caller hung up,
	// transferred, shut down); it returns once the call's work stopped and
	// its record is saved. Idempotent.
	End(reason string)
	// Done is closed when the call is over on the engine's side too
	// (after Media.Hangup or End).
	Done() <-chan struct{}
}
