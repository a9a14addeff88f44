package slack

import (
	"errors"
	"fmt"
)

// Errors.
var (
	// ErrAlreadyStarted is returned by Start when the adapter runs already.
	ErrAlreadyStarted = errors.New("slack: already started")
	// errMalformed marks an inbound payload that does not parse; the
	// handlers answer 400 / drop it and count a malformed refusal.
	errMalformed = errors.New("malformed payload")
)

// APIError is an "ok": false answer of a Slack Web API method. Send and
// Start return it wrapped (in channels.Permanent or channels.RetryAfter
// where the code says so); find it with errors.As.
type APIError struct {
	// Method is the Web API method ("chat.postMessage").
	Method string
	// Code is Slack's error code ("channel_not_found").
	Code string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("slack %s: %s", e.Method, e.Code)
}
