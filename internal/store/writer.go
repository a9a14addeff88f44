package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// States of a queued write. Only the writer moves queued → started; the
// caller's Write moves queued → cancelled when its ctx ends (the writer does
// too when it sees the ctx done first).
const (
	stateQueued int32 = iota
	stateStarted
	stateCancelled
)

// writeReq is one queued Write.
type writeReq struct {
	ctx   context.Context
	fn    func(tx *sql.Tx) error
	state atomic.Int32
	// done receives the result exactly once, from the writer; capacity 1
	// so the writer never blocks on a caller that gave up.
	done chan error
}

// panicError carries a panic in fn back to the caller's goroutine, where
// Write panics again: the writer goroutine survives a bad fn.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string {
	return fmt.Sprintf("panic in write fn: %v\n%s", p.value, p.stack)
}

// Write runs fn inside a transaction on the single writer and returns once
// that transaction is durably committed (per storage.synchronous), or with
// the error that prevented it. It blocks; it is safe for concurrent use.
//
// Group commit: the writer takes up to group_commit.max_batch queued writes
// (waiting up to max_wait for more), runs each fn in its own SAVEPOINT of one
// transaction and commits once. A fn that returns an error has only its own
// savepoint rolled back and gets that error back; the others commit. If the
// commit fails every write of the batch gets the error. fn must therefore
// return every error it gets from tx, must not call Commit/Rollback, must not
// keep tx, and should not use a context on tx that can be cancelled (an
// interrupted statement can roll back the whole batch; the other writes of
// the batch then fail with a "retry" error rather than committing partially).
// fn must not call Write (deadlock). A panic in fn is re-raised in the
// caller's goroutine. fn runs at most once, serially with every other fn,
// and sees the writes of the fns before it in the batch; anything it does
// outside tx (a RowsAffected it records) counts only if Write returns nil.
//
// The queue is bounded (group_commit.queue_size): when it is full Write
// blocks until there is room or ctx ends. If ctx ends before the writer
// starts fn, Write returns ctx.Err() and fn never runs; once fn started the
// result is the real one (fn is not interrupted).
//
// Errors wrap ErrBusy or ErrFull when SQLite was busy or the disk full (the
// write did not happen; answer 503 with Retry-After), ErrClosed after Close.
func (d *DB) Write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if d == nil {
		return ErrClosed
	}
	if fn == nil {
		return errors.New("store write: fn is nil")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	d.mu.RLock()
	if d.closed || d.queue == nil {
		d.mu.RUnlock()
		return ErrClosed
	}
	d.m.queueDepth.Inc() // before the send: the writer's Dec may come first
	select {
	case d.queue <- req:
	case <-ctx.Done():
		d.mu.RUnlock()
		d.m.queueDepth.Dec()
		return ctx.Err()
	case <-d.closing:
		d.mu.RUnlock()
		d.m.queueDepth.Dec()
		return ErrClosed
	}
	d.mu.RUnlock()

	var err error
	select {
	case err = <-req.done:
	case <-ctx.Done():
		if req.state.CompareAndSwap(stateQueued, stateCancelled) {
			return ctx.Err() // the writer will skip it
		}
		err = <-req.done // started: wait for the real result
	}
	var pe *panicError
	if errors.As(err, &pe) {
		panic(pe.value)
	}
	return err
}

// runWriter is the single writer goroutine, owned by the DB: started by
// Open, ended by Close (which closes the queue and waits for writerDone).
// It runs every queued write, including those queued before Close.
func (d *DB) runWriter() {
	defer close(d.writerDone)
	var carry []*writeReq
	for {
		batch := carry
		if len(batch) == 0 {
			req, ok := <-d.queue
			if !ok {
				return
			}
			d.m.queueDepth.Dec()
			batch = append(batch, req)
		}
		batch = d.fill(batch)
		carry = d.runBatch(batch)
	}
}

// fill adds queued writes to batch up to max_batch, lingering up to max_wait
// for more when the queue runs dry.
func (d *DB) fill(batch []*writeReq) []*writeReq {
	maxBatch := d.cfg.GroupCommit.MaxBatch
	var linger <-chan time.Time
	for len(batch) < maxBatch {
		select {
		case req, ok := <-d.queue:
			if !ok {
				return batch
			}
			d.m.queueDepth.Dec()
			batch = append(batch, req)
			continue
		default:
		}
		if d.cfg.GroupCommit.MaxWait <= 0 {
			return batch
		}
		if linger == nil {
			t := time.NewTimer(d.cfg.GroupCommit.MaxWait)
			defer t.Stop()
			linger = t.C
		}
		select {
		case req, ok := <-d.queue:
			if !ok {
				return batch
			}
			d.m.queueDepth.Dec()
			batch = append(batch, req)
		case <-linger:
			return batch
		}
	}
	return batch
}

// claim marks req started unless its caller gave up, in which case it
// answers it with the context error and reports false.
func claim(req *writeReq) bool {
	if err := req.ctx.Err(); err != nil {
		req.state.CompareAndSwap(stateQueued, stateCancelled)
		req.done <- err
		return false
	}
	if !req.state.CompareAndSwap(stateQueued, stateStarted) {
		req.done <- context.Canceled // nobody reads it: the caller returned
		return false
	}
	return true
}

// runBatch runs batch in one transaction and answers every write in it. It
// returns the writes it did not start because the transaction broke before
// their turn; they are still queued and go first into the next batch.
func (d *DB) runBatch(batch []*writeReq) (carry []*writeReq) {
	start := time.Now()
	tx, err := d.w.Begin()
	if err != nil {
		err = fmt.Errorf("begin write: %w", mapErr(err))
		for _, req := range batch {
			if claim(req) {
				d.fail(req, errKindCommit, err)
			}
		}
		return nil
	}

	var succeeded []*writeReq // fn returned nil, waiting for the commit
	ran := 0
	// abort rolls the transaction back after it broke (SQLite may already
	// have rolled it back itself after SQLITE_FULL, IOERR or INTERRUPT)
	// and fails the writes that had succeeded in it.
	abort := func(cause error) {
		_ = tx.Rollback() // may fail with "no transaction is active"
		err := fmt.Errorf("write batch rolled back by an error in the same transaction, retry: %w", mapErr(cause))
		for _, req := range succeeded {
			d.fail(req, errKindCommit, err)
		}
	}
	for i, req := range batch {
		if !claim(req) {
			continue
		}
		ran++
		if _, err := tx.Exec(`SAVEPOINT w`); err != nil {
			// The transaction is unusable: fail this write too (so that a
			// persistent error cannot loop) and carry the rest.
			abort(err)
			d.fail(req, errKindCommit, fmt.Errorf("savepoint: %w", mapErr(err)))
			return unstarted(batch[i+1:])
		}
		fnErr := callFn(req.fn, tx)
		if fnErr == nil {
			if _, err := tx.Exec(`RELEASE w`); err != nil {
				// fn swallowed an error that ended the transaction.
				abort(err)
				d.fail(req, errKindFn, fmt.Errorf("release savepoint: %w", mapErr(err)))
				return unstarted(batch[i+1:])
			}
			succeeded = append(succeeded, req)
			continue
		}
		_, rbErr := tx.Exec(`ROLLBACK TO w`)
		if rbErr == nil {
			_, rbErr = tx.Exec(`RELEASE w`)
		}
		d.fail(req, errKindFn, fnErr)
		if rbErr != nil {
			abort(fnErr)
			return unstarted(batch[i+1:])
		}
	}

	if ran > 0 {
		d.m.batchSize.Observe(float64(ran))
	}
	if len(succeeded) == 0 {
		_ = tx.Rollback() // nothing to keep; skips a needless sync
		return nil
	}
	if err := tx.Commit(); err != nil {
		err = fmt.Errorf("commit: %w", mapErr(err))
		for _, req := range succeeded {
			d.fail(req, errKindCommit, err)
		}
		return nil
	}
	d.m.commitDuration.Observe(time.Since(start).Seconds())
	for _, req := range succeeded {
		req.done <- nil
	}
	return nil
}

// fail answers a started write with err and counts it under kind, or under
// busy/full when err says so.
func (d *DB) fail(req *writeReq, kind string, err error) {
	switch {
	case errors.Is(err, ErrBusy):
		kind = errKindBusy
	case errors.Is(err, ErrFull):
		kind = errKindFull
	}
	d.m.writeErrors.WithLabelValues(kind).Inc()
	req.done <- err
}

// unstarted copies the writes that never started, for the next batch.
func unstarted(reqs []*writeReq) []*writeReq {
	if len(reqs) == 0 {
		return nil
	}
	out := make([]*writeReq, len(reqs))
	copy(out, reqs)
	return out
}

// callFn runs fn, turning a panic into a *panicError.
func callFn(fn func(*sql.Tx) error, tx *sql.Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return mapErr(fn(tx))
}
