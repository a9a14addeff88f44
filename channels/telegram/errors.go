package telegram

import (
	"errors"
	"fmt"
	"time"
)

// Errors of the adapter.
var (
	// ErrNotStarted: the webhook was called before Start or after Stop
	// (answered 503).
	ErrNotStarted = errors.New("telegram adapter not started")
	// ErrStarted: Start was called on a running adapter.
	ErrStarted = errors.New("telegram adapter already started")
	// ErrEmptyText: Send was given a part with no text (Telegram refuses
	// it); returned wrapped in channels.Permanent.
	ErrEmptyText = errors.New("empty message text")
)

// APIError is a Bot API call that Telegram answered with ok: false (or a
// non-200 status without a JSON body). Returned by the adapter's calls,
// wrapped by Send in channels.RetryAfter or channels.Permanent.
type APIError struct {
	Method string
	// Code is error_code, or the HTTP status when the body had none.
	Code        int
	Description string
	// RetryAfter is parameters.retry_after (429).
	RetryAfter time.Duration
	// MigrateTo is parameters.migrate_to_chat_id: the group became a
	// supergroup with this id.
	MigrateTo int64
}

func (e *APIError) Error() string {
	if e.Description == "" {
		return fmt.Sprintf("telegram %s: error %d", e.Method, e.Code)
	}
	return fmt.Sprintf("telegram %s: %d %s", e.Method, e.Code, e.Description)
}
