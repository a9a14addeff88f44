package voice

import "errors"

// ErrBusy is returned by Engine.Start when voice.max_calls calls are
// already up: the transport refuses the call (SIP 486 Busy Here).
var ErrBusy = errors.New("too many calls at once (voice.max_calls reached)")

// ErrStopped is returned by Engine.Start once Stop was called.
var ErrStopped = errors.New("voice engine stopped")

// ErrNoSuchCall is returned by GetCall for an unknown call id.
var ErrNoSuchCall = errors.New("no such call")

// ErrRecording is wrapped by OpenRecording when a recording file is
// malformed, truncated or does not open with the keyring given.
var ErrRecording = errors.New("unreadable call recording")
