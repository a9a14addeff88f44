package rules

import "errors"

// ErrInvalidConfig is returned (wrapped) by New when a Config field is
// wrong: a pattern that does not compile, an unknown time zone, an empty
// lookup value, an unknown name in Disable. The message names the field.
var ErrInvalidConfig = errors.New("invalid nlu rules config")
