package matrix

import (
	"errors"
	"fmt"
)

// Errors.
var (
	// ErrStarted is returned by Start when the adapter is already running.
	ErrStarted = errors.New("matrix: adapter already started")
	// ErrTokenRejected is returned (wrapped) by Start and Send, and
	// recorded in State, when the homeserver refuses the access token
	// (M_UNKNOWN_TOKEN, M_MISSING_TOKEN, 401).
	ErrTokenRejected = errors.New("matrix: access token rejected (check channels.matrix.access_token: log the bot in and copy its access token)")
	// ErrNoStore is returned by New when neither a TokenStore nor
	// since_file is given.
	ErrNoStore = errors.New("matrix: no sync token store (set channels.matrix.since_file or pass a TokenStore)")
)

// apiError is a homeserver's error answer: {"errcode", "error",
// "retry_after_ms"}. Returned wrapped by the API calls.
type apiError struct {
	Status       int    `json:"-"`
	Errcode      string `json:"errcode"`
	Message      string `json:"error"`
	RetryAfterMS int64  `json:"retry_after_ms"`
}

func (e *apiError) Error() string {
	if e.Errcode == "" {
		return fmt.Sprintf("http %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("http %d: %s: %s", e.Status, e.Errcode, e.Message)
}
