package nlu

import "errors"

// Errors returned by Parser.Parse for bad input (the HTTP layer maps them
// to 400 and 413) and by Load for a folder it refuses.
var (
	// ErrEmpty: the text is empty or only whitespace.
	ErrEmpty = errors.New("text is empty")
	// ErrTooLong: the text has more characters than the configured maximum.
	ErrTooLong = errors.New("text is too long")
	// ErrInvalidUTF8: the text is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("text is not valid UTF-8")
	// ErrBadModel: Load refused the folder (manifest, checksum or data
	// hash mismatch).
	ErrBadModel = errors.New("invalid NLU model folder")
)
