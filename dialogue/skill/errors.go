package skill

import "errors"

var (
	// ErrTimeout is returned (wrapped) by Webhook.Handle when the action
	// server did not answer within the per-attempt timeout on the last
	// attempt. Check that the server is up, or raise the action's timeout.
	ErrTimeout = errors.New("action server did not answer in time")

	// ErrBadResponse is returned (wrapped) by Webhook.Handle when the action
	// server answered 2xx with a body that is not the action-server JSON
	// ({"events": [...], "responses": [...]}) or is larger than 1 MiB. It
	// is not retried: fix the action.
	ErrBadResponse = errors.New("action server sent a malformed response")

	// ErrRejected is returned (wrapped) by Webhook.Handle when the action
	// server answered with a 4xx status other than 429 (unknown action,
	// rejected execution, bad signature). It is not retried.
	ErrRejected = errors.New("action server rejected the call")

	// ErrUnavailable is returned (wrapped) by Webhook.Handle when every
	// attempt failed with a network error, a 5xx or a 429.
	ErrUnavailable = errors.New("action server unavailable")

	// ErrDuplicate is returned (wrapped) by Registry.Register for a name
	// that is already registered.
	ErrDuplicate = errors.New("skill name already registered")

	// ErrBadSignature is returned (wrapped) by Verify when the timestamp is
	// not a number of seconds, the signature is missing or malformed, or no
	// signature matches the body.
	ErrBadSignature = errors.New("bad webhook signature")

	// ErrStaleTimestamp is returned (wrapped) by Verify when the signed
	// timestamp is further from now than the allowed skew: a replay, or a
	// clock that needs fixing (NTP).
	ErrStaleTimestamp = errors.New("webhook timestamp outside the allowed clock skew")
)
