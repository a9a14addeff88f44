package localaudio

import "errors"

// ErrConfig is wrapped by New's error when the config is invalid (with the
// config.Errors naming each key).
var ErrConfig = errors.New("invalid localaudio config")

// ErrDeviceNotFound is wrapped by Line.Run's error when channels.localaudio.input or
// channels.localaudio.output names no device (or no device of that direction), or
// when there is no default device; the message lists the devices there are
// and the config key to set.
var ErrDeviceNotFound = errors.New("audio device not found")

// ErrAmbiguousDevice is wrapped by Line.Run's error when a configured name
// is a substring of several devices' names and none matches exactly; the
// message lists them.
var ErrAmbiguousDevice = errors.New("audio device name is ambiguous")
