package feishu

import "errors"

// Errors returned by the inbound parsers; the callback maps them to HTTP
// statuses and reject reasons.
var (
	// errMalformed: a body, ciphertext, event or frame that does not parse
	// (decrypt, parseEvent, decodeFrame).
	errMalformed = errors.New("malformed")
	// errToken: the event's verification token does not match
	// (checkToken).
	errToken = errors.New("verification token mismatch")
)
