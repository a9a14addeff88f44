package lanes

import (
	"errors"
	"fmt"
)

var (
	// ErrQueueFull is returned (wrapped) by Pool.Do when the lane's queue
	// already holds its configured queue_size tasks. Nothing was queued;
	// retry later or raise lanes.<lane>.queue_size.
	ErrQueueFull = errors.New("lane queue is full: retry later or raise the lane's queue_size")

	// ErrClosed is returned (wrapped) by Pool.Do after Close began.
	ErrClosed = errors.New("lane pool is closed")

	// ErrUnknownLane is returned by ParseLane and Pool.Do for a lane that
	// is not Urgent, Normal or Batch.
	ErrUnknownLane = errors.New("unknown lane: use urgent, normal or batch")

	// ErrPanic is returned (wrapped in a *PanicError) by Pool.Do when the
	// task's fn panicked on the worker. The worker survives.
	ErrPanic = errors.New("lane task panicked")
)

// PanicError is what Pool.Do returns when fn panicked: the recovered value
// and the worker's stack at the panic. errors.Is(err, ErrPanic) holds.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("lane task panicked: %v", e.Value) }

// Unwrap makes errors.Is(err, ErrPanic) true.
func (e *PanicError) Unwrap() error { return ErrPanic }
