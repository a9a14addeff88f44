package channels

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Adapter connects zhiyin to one platform account. Adapters are built by
// their package's New (no I/O) and registered with the Hub explicitly in
// cmd.
type Adapter interface {
	// Name is the instance name: the configuration key ("telegram"); the
	// Channel of every message it delivers.
	Name() string
	// Start connects (long polling, websocket, nothing for pure callbacks)
	// and returns; loops run in goroutines the adapter owns. A long
	// connection that drops reconnects with backoff by itself. Messages go
	// to sink; the platform is acknowledged only after sink.Deliver
	// returned nil.
	Start(ctx context.Context, sink Sink) error
	// Stop ends every goroutine Start began and waits for them.
	// Idempotent; safe after a failed Start or none.
	Stop(ctx context.Context) error
	// Send delivers one reply part. Errors: RetryAfter (429 and the like:
	// the hub waits at least that long), Permanent (never retried: dead
	// letter at once), anything else is retried with backoff. Send is
	// called concurrently for different conversations, one part at a time
	// per conversation, in order.
	Send(ctx context.Context, out *Outgoing) (Receipt, error)
}

// Sink is where an adapter hands inbound messages and reports refusals. The
// hub gives each adapter its own. Safe for concurrent use.
type Sink interface {
	// Deliver records m durably and returns once it is committed: then the
	// adapter acknowledges the platform. A duplicate (the same Channel and
	// Key) returns nil and is not answered again. Errors: ErrInvalid
	// (answer 400 and do not retry), anything else is a temporary failure
	// (answer 503 / do not ack, so the platform redelivers).
	Deliver(ctx context.Context, m *Message) error
	// Rejected counts an inbound request the adapter refused (see the
	// Reason constants): a metric, and the adapter's state.
	Rejected(reason Reason)
}

// Reason labels a refused inbound request.
type Reason string

// Reasons for Sink.Rejected.
const (
	// ReasonSignature: a forged, missing or malformed signature or token.
	ReasonSignature Reason = "signature"
	// ReasonStale: a timestamp outside the allowed window.
	ReasonStale Reason = "stale"
	// ReasonReplay: a nonce or signature seen before.
	ReasonReplay Reason = "replay"
	// ReasonMalformed: a body that does not parse or decrypt.
	ReasonMalformed Reason = "malformed"
	// ReasonTooLarge: a body over the size limit.
	ReasonTooLarge Reason = "too_large"
)

// Route is one HTTP endpoint of an adapter (a platform's event callback).
// The daemon mounts it without API-key auth: the handler must verify the
// platform's signature itself. Paths are absolute ("/channels/feishu/events").
type Route struct {
	Method  string
	Path    string
	Handler http.Handler
}

// Router is an optional Adapter capability: HTTP callback routes.
type Router interface {
	Routes() []Route
}

// Limits are a platform's outbound limits; the hub splits and paces sends
// by them. Zero fields mean no limit.
type Limits struct {
	// MaxText is the longest text one message may carry, in Unit.
	MaxText int
	Unit    LengthUnit
	// PerChat and Global pace sends: messages per interval. Sends over the
	// limit wait (queued, never dropped).
	PerChat Rate
	Global  Rate
}

// LengthUnit says how MaxText counts.
type LengthUnit int

// Length units.
const (
	Runes LengthUnit = iota
	Bytes
	// UTF16 counts UTF-16 code units (Telegram's 4096).
	UTF16
)

// Rate is N events per Per.
type Rate struct {
	N   int
	Per time.Duration
}

// Limited is an optional Adapter capability: the platform's outbound limits.
type Limited interface {
	Limits() Limits
}

// Idempotent is an optional Adapter capability: Send with the same
// Outgoing.Key is deduplicated by the platform (Feishu uuid, Matrix txnId,
// our webhook's Idempotency-Key), so a send whose outcome is unknown after
// a crash may be repeated safely. Adapters without it are never sent a part
// whose previous attempt may have reached the platform.
type Idempotent interface {
	IdempotentSend() bool
}

// State is an adapter's connection state for /readyz, doctor and metrics.
type State struct {
	// Connected is true while a long connection is up, or always for
	// callback-only adapters once started.
	Connected bool `json:"connected"`
	// Detail is a short human note ("long polling", "websocket to
	// wss://…").
	Detail string `json:"detail,omitempty"`
	// LastError is the last connection or send error, and when.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Stater is an optional Adapter capability: its connection state.
type Stater interface {
	State() State
}

// Errors.
var (
	// ErrInvalid: Sink.Deliver refused a message that can never be stored
	// (no id, no conversation, an over-long field). Returned by Deliver.
	ErrInvalid = errors.New("invalid message")
	// ErrStopped: the hub is stopping; returned by Deliver (not acked, the
	// platform redelivers later).
	ErrStopped = errors.New("channels hub stopped")
	// ErrPermanent marks a send error that retrying cannot fix (a 4xx, an
	// unknown chat). Wrap with Permanent.
	ErrPermanent = errors.New("permanent send failure")
)

// RetryAfterError is a send refused for now (429): try again after After.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("retry after %s: %v", e.After, e.Err)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err so that the hub waits at least d before the next
// attempt.
func RetryAfter(d time.Duration, err error) error {
	return &RetryAfterError{After: d, Err: err}
}

// Permanent wraps err so that the hub does not retry it.
func Permanent(err error) error {
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}
