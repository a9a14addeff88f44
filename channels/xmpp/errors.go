package xmpp

import (
	"errors"
	"fmt"
)

var (
	// ErrNotConnected is returned by Send while no stream is up; the hub
	// retries.
	ErrNotConnected = errors.New("xmpp: not connected")
	// ErrStanzaTooLarge is returned by the stream reader (and ends the
	// connection, which then reconnects) when a stanza exceeds max_stanza.
	ErrStanzaTooLarge = errors.New("xmpp: stanza exceeds max_stanza")
	// ErrRestrictedXML is returned by the stream reader for XML that XMPP
	// forbids: a DOCTYPE, a processing instruction, a comment, or text
	// between stanzas.
	ErrRestrictedXML = errors.New("xmpp: restricted XML (DOCTYPE, processing instruction or comment)")
	// ErrTooDeep is returned by the stream reader for a stanza nested deeper
	// than maxDepth or with more than maxElements elements.
	ErrTooDeep = errors.New("xmpp: stanza nested too deep or too many elements")
	// ErrStreamClosed is returned by the stream reader when the server ends
	// the stream (</stream:stream>).
	ErrStreamClosed = errors.New("xmpp: stream closed by the server")
	// ErrInsecure is returned while connecting when the password would have
	// to travel without TLS (the server offers no STARTTLS and the server
	// is not loopback with allow_plain).
	ErrInsecure = errors.New("xmpp: refusing to authenticate without TLS")
	// ErrAuth is returned while connecting when the server refuses the
	// credentials (SASL failure or component handshake refused).
	ErrAuth = errors.New("xmpp: authentication failed")
)

// StreamError is a <stream:error/> the server sent before closing the
// stream (returned by the stream reader and while connecting).
type StreamError struct {
	Condition string // "conflict", "policy-violation", …
	Text      string
}

func (e *StreamError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("xmpp: stream error %s: %s", e.Condition, e.Text)
	}
	return "xmpp: stream error " + e.Condition
}
