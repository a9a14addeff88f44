package dingtalk

import "errors"

// Errors.
var (
	// ErrMalformed: an inbound body or frame that does not parse, or a robot
	// message without msgId or conversationId. Returned by the parsers; the
	// callback handler answers 400.
	ErrMalformed = errors.New("dingtalk: malformed message")
	// ErrNoRoute: Send has neither a usable sessionWebhook nor what the
	// robot OpenAPI needs (credentials, a staff id or a conversation id).
	// Always wrapped with channels.Permanent.
	ErrNoRoute = errors.New("dingtalk: no way to send this reply")
)

// errIgnore marks an inbound message that is acknowledged but not delivered
// (an unsupported msgtype, the bot's own message).
var errIgnore = errors.New("dingtalk: ignored message")

// errFallback marks a sessionWebhook refusal that the robot OpenAPI may
// succeed at (an expired or unknown session).
var errFallback = errors.New("dingtalk: session webhook refused")
