package inference

import "errors"

// ErrNoLibrary is returned by ResolveLibrary (and Runtime.Start) when no
// ONNX Runtime library file can be found.
var ErrNoLibrary = errors.New("ONNX Runtime library not found")

// ErrAPIVersion is returned by Runtime.Start when the library is too old.
var ErrAPIVersion = errors.New("ONNX Runtime library too old")

// ErrNotStarted is returned by Runtime methods called before Start or after
// Close.
var ErrNotStarted = errors.New("ONNX Runtime not started")

// ErrModelNotFound is returned by ReadManifest, Registry.Handle and loads
// when no folder holding the model's model.yaml exists in the model dirs.
var ErrModelNotFound = errors.New("model not installed")

// ErrManifest is returned by ParseManifest/ReadManifest for an invalid
// model.yaml.
var ErrManifest = errors.New("invalid model manifest")

// ErrMissingFile is returned by Manifest.Verify and loads when a file the
// manifest lists does not exist; the message names it and its sha256.
var ErrMissingFile = errors.New("model file missing")

// ErrChecksum is returned by Manifest.Verify and loads when a file's sha256
// differs from the manifest's; the message names the file and both sums.
var ErrChecksum = errors.New("model file checksum mismatch")

// ErrContract is returned by loads when the ONNX graph does not match the
// manifest's contract (the message names the tensor and the field), and by
// Run when a model returns outputs that break it.
var ErrContract = errors.New("model does not match its contract")

// ErrBadInput is returned by Run when the inputs do not match the contract
// (count, dtype, rank, a fixed dimension, or a symbol with two values); the
// message names the tensor and the field.
var ErrBadInput = errors.New("invalid model input")

// ErrRun is returned by Run when ONNX Runtime fails while running the
// model; only that call fails and the model stays usable.
var ErrRun = errors.New("model run failed")

// ErrOverloaded is returned by Run when the model's batch queue is full.
var ErrOverloaded = errors.New("model overloaded")

// ErrClosed is returned by Run and Load after the model or registry was
// closed.
var ErrClosed = errors.New("closed")

// ErrNoCandidate is returned by Registry.StartShadow and Promote when no
// candidate version of the model is installed or loaded.
var ErrNoCandidate = errors.New("no candidate version")

// ErrNoPrevious is returned by Registry.Rollback when there is no previous
// version to return to.
var ErrNoPrevious = errors.New("no previous version")

// ErrInstall is returned by Install for a source that is not a usable model
// folder or archive.
var ErrInstall = errors.New("cannot install model")
