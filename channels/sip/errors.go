package sip

import "errors"

// ErrTransferFailed is returned by Media.Transfer when the peer refused the
// REFER, reported a failed transfer in a NOTIFY, or the agent did not answer
// a bridged call; the voice engine apologises and keeps the call.
var ErrTransferFailed = errors.New("transfer failed")

// ErrStopped is returned by Media.Transfer and Server.Start once the server
// is stopping.
var ErrStopped = errors.New("sip server stopped")

// ErrNotRegistered is what Status.LastError wraps while registration to
// register.registrar keeps failing.
var ErrNotRegistered = errors.New("not registered")
