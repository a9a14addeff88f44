package bert

import "errors"

// ErrModel is returned by Load for a folder that is not a usable BERT model
// (wrong kind or task, bad vocabulary or labels, a contract that is not
// BERT's), and by Classify and Tag when the logits do not fit the labels.
var ErrModel = errors.New("not a usable BERT model")

// ErrTask is returned by Classify on a token model and by Tag on a sequence
// model.
var ErrTask = errors.New("wrong task for this model")
