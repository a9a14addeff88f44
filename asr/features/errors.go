package features

import "errors"

var (
	// ErrInvalidOptions is returned (wrapped, with the field at fault) by
	// NewFbank, ComputeFbank, NewLFR and NewFrontend when an option is out of
	// range. Fix the configuration; DefaultFbankOptions gives FunASR's values.
	ErrInvalidOptions = errors.New("invalid feature options")

	// ErrBadCMVN is returned (wrapped) by ParseAMMVN and CMVNFromMetadata when
	// the CMVN statistics are missing, malformed or inconsistent. Use the
	// am.mvn shipped with the model, or a sherpa-onnx model whose metadata
	// has neg_mean and inv_stddev.
	ErrBadCMVN = errors.New("bad CMVN statistics")

	// ErrBadMatrix is returned (wrapped) by ReadMatrix when the input is not
	// a whole number of little-endian float32 values.
	ErrBadMatrix = errors.New("bad float32 matrix")
)
