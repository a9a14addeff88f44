package media

import (
	"errors"
	"fmt"

	"github.com/zhiyin/zhiyin/channels/voice"
)

var (
	// ErrSDP is wrapped by ParseSDP for a body that is not valid SDP (or
	// lacks what an RTP audio stream needs, such as its c= address). The
	// signalling answers 400 or 488.
	ErrSDP = errors.New("media: malformed SDP")
	// ErrNoAudio is wrapped by ParseSDP when the body has no plain RTP
	// audio stream (none at all, or only SRTP: RTP/SAVP is not supported,
	// turn SRTP off for this trunk), and by Accept when the peer refused
	// our audio stream (port 0). The signalling answers 488.
	ErrNoAudio = errors.New("media: no RTP/AVP audio stream")
	// ErrNoCodec is wrapped by ParseSDP, Answer and Accept when the audio
	// stream has no codec in common with us (we speak PCMU and PCMA; enable
	// G.711 on the PBX or gateway). The signalling answers 488.
	ErrNoCodec = errors.New("media: no common audio codec (enable PCMU or PCMA on the peer)")
	// ErrNoPorts is wrapped by Listen when no RTP/RTCP port pair in the
	// range is free: widen sip.rtp_ports or lower the concurrent calls.
	ErrNoPorts = errors.New("media: no free RTP port pair in the configured range")
	// ErrClosed is returned by Start, Play, Drain and SendDTMF after Close.
	// It wraps voice.ErrHungUp, so errors.Is(err, voice.ErrHungUp) holds.
	ErrClosed = fmt.Errorf("media: stream closed: %w", voice.ErrHungUp)
	// ErrStarted is returned by Start when called a second time.
	ErrStarted = errors.New("media: stream already started")
	// ErrNotStarted is returned by SendDTMF before Start.
	ErrNotStarted = errors.New("media: stream not started")
	// ErrNoDTMF is returned by SendDTMF when the call negotiated no
	// telephone-event payload type.
	ErrNoDTMF = errors.New("media: the peer did not negotiate telephone-event (RFC 4733)")
	// ErrDigit is returned by SendDTMF for a rune that is not 0-9, *, #,
	// A-D.
	ErrDigit = errors.New("media: not a DTMF digit (0-9, *, #, A-D)")
	// ErrDTMFBusy is returned by SendDTMF when dtmfQueue digits are
	// already waiting to be sent.
	ErrDTMFBusy = errors.New("media: too many DTMF digits queued")
)
