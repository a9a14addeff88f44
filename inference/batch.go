package inference

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// batcher merges concurrent requests of one model into batched runs.
//
// Requests wait in a FIFO queue bounded by QueueSize (Run fails with
// ErrOverloaded when it is full). One collector goroutine waits for a free
// run slot, takes the oldest request, adds queued requests that can share
// its run (same non-batched inputs) up to MaxBatch rows, waiting at most
// MaxWait for more, and runs the batch on its own goroutine. A caller whose
// context ends leaves the queue at once; a batch whose callers have all gone
// is terminated. Inputs are padded along their dynamic dimensions with the
// contract's pad values, and outputs are split back and trimmed to each
// request's own sizes.
type batcher struct {
	m       *Model
	cfg     BatchConfig
	shared  []int         // inputs without a batch axis: must be equal to share a run
	notify  chan struct{} // a request was queued
	gone    chan struct{} // a caller gave up (it may sit in the forming batch)
	stopCh  chan struct{}
	started bool
	wg      sync.WaitGroup

	taken atomic.Int64 // requests moved from the queue into batches (tests)

	mu      sync.Mutex
	head    *batchReq
	tail    *batchReq
	n       int
	stopped bool
}

type batchReq struct {
	ctx        context.Context
	inputs     []Tensor
	vals       []int64
	rows       int64
	res        chan batchRes // buffered: the batch never blocks delivering
	prev, next *batchReq
	queued     bool
}

type batchRes struct {
	outs []Tensor
	err  error
}

func newBatcher(m *Model, cfg BatchConfig) *batcher {
	b := &batcher{m: m, cfg: cfg, notify: make(chan struct{}, 1), gone: make(chan struct{}, 1), stopCh: make(chan struct{})}
	if b.cfg.MaxBatch < 1 {
		b.cfg.MaxBatch = 1
	}
	if b.cfg.QueueSize < 1 {
		b.cfg.QueueSize = 1
	}
	for i, in := range m.cc.in {
		if in.batchAxis < 0 {
			b.shared = append(b.shared, i)
		}
	}
	return b
}

func (b *batcher) start() {
	b.started = true
	b.wg.Add(1)
	go b.loop()
}

// stop fails queued requests with ErrClosed and waits for running batches.
func (b *batcher) stop() {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return
	}
	b.stopped = true
	var failed []*batchReq
	for r := b.head; r != nil; r = r.next {
		failed = append(failed, r)
	}
	b.head, b.tail, b.n = nil, nil, 0
	for _, r := range failed {
		r.queued = false
	}
	b.mu.Unlock()
	b.m.met.queue.Sub(float64(len(failed)))
	for _, r := range failed {
		r.res <- batchRes{err: b.m.errf(ErrClosed)}
	}
	close(b.stopCh)
	b.wg.Wait()
}

// submit queues a checked request and waits for its result.
func (b *batcher) submit(ctx context.Context, inputs []Tensor, vals []int64) ([]Tensor, error) {
	m := b.m
	if err := ctx.Err(); err != nil {
		m.met.canceled.Inc()
		return nil, m.errf(err)
	}
	r := &batchReq{ctx: ctx, inputs: inputs, vals: vals, res: make(chan batchRes, 1)}
	if bs := m.cc.batchSym; bs >= 0 {
		r.rows = vals[bs]
	}
	b.mu.Lock()
	switch {
	case b.stopped:
		b.mu.Unlock()
		return nil, m.errf(ErrClosed)
	case b.n >= b.cfg.QueueSize:
		b.mu.Unlock()
		m.met.overloaded.Inc()
		return nil, m.errf(fmt.Errorf("%w: %d requests are already waiting (inference batching queue_size)", ErrOverloaded, b.n))
	}
	b.push(r)
	b.mu.Unlock()
	m.met.queue.Inc()
	select {
	case b.notify <- struct{}{}:
	default:
	}
	select {
	case res := <-r.res:
		return res.outs, res.err
	case <-ctx.Done():
		b.mu.Lock()
		wasQueued := r.queued
		if wasQueued {
			b.unlink(r)
		}
		b.mu.Unlock()
		if wasQueued {
			m.met.queue.Dec()
		} else {
			// It may sit in a forming batch: let the loop drop it.
			select {
			case b.gone <- struct{}{}:
			default:
			}
		}
		m.met.canceled.Inc()
		return nil, m.errf(ctx.Err())
	}
}

func (b *batcher) push(r *batchReq) {
	r.queued = true
	r.prev, r.next = b.tail, nil
	if b.tail != nil {
		b.tail.next = r
	} else {
		b.head = r
	}
	b.tail = r
	b.n++
}

func (b *batcher) unlink(r *batchReq) {
	if r.prev != nil {
		r.prev.next = r.next
	} else {
		b.head = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	} else {
		b.tail = r.prev
	}
	r.prev, r.next, r.queued = nil, nil, false
	b.n--
}

// take moves requests that can join batch (up to max rows) out of the
// queue, oldest first; with an empty batch it takes the oldest request.
func (b *batcher) take(batch []*batchReq, rows int64) ([]*batchReq, int64) {
	b.mu.Lock()
	taken := 0
	for r := b.head; r != nil && rows < int64(b.cfg.MaxBatch); {
		next := r.next
		if len(batch) == 0 || (rows+r.rows <= int64(b.cfg.MaxBatch) && b.compatible(batch[0], r) && b.sameBucket(batch, r)) {
			b.unlink(r)
			batch = append(batch, r)
			rows += r.rows
			taken++
		}
		r = next
	}
	b.mu.Unlock()
	if taken > 0 {
		b.m.met.queue.Sub(float64(taken))
		b.taken.Add(int64(taken))
	}
	return batch, rows
}

// compatible reports whether two requests may share a run: equal inputs
// where the contract has no batch axis.
func (b *batcher) compatible(x, y *batchReq) bool {
	for _, i := range b.shared {
		if !tensorsEqual(x.inputs[i], y.inputs[i]) {
			return false
		}
	}
	return true
}

// sameBucket reports whether r's lengths (every bound symbol but the
// batch one) are within LengthRatio of the longest and shortest request
// already in the batch, so that short requests are not padded to long ones.
func (b *batcher) sameBucket(batch []*batchReq, r *batchReq) bool {
	ratio := b.cfg.LengthRatio
	if ratio <= 0 {
		return true
	}
	for s, v := range r.vals {
		if s == b.m.cc.batchSym || v < 0 {
			continue
		}
		lo, hi := v, v
		for _, q := range batch {
			if w := q.vals[s]; w >= 0 {
				lo, hi = min(lo, w), max(hi, w)
			}
		}
		if float64(max(hi, 1)) > ratio*float64(max(lo, 1)) {
			return false
		}
	}
	return true
}

func tensorsEqual(a, b Tensor) bool {
	if len(a.Shape) != len(b.Shape) || a.DType() != b.DType() || a.Len() != b.Len() {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	for i := 0; i < a.Len(); i++ {
		if a.float64At(i) != b.float64At(i) {
			return false
		}
	}
	return true
}

func (b *batcher) loop() {
	defer b.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	maxRows := int64(b.cfg.MaxBatch)
	for {
		// The oldest request starts a batch.
		var batch []*batchReq
		var rows int64
		for len(batch) == 0 {
			if batch, rows = b.take(nil, 0); len(batch) > 0 {
				break
			}
			select {
			case <-b.notify:
			case <-b.stopCh:
				return
			}
		}
		deadline := time.Now().Add(b.cfg.MaxWait)
		// While every run slot is busy, keep filling the batch, so that
		// under load a full batch is ready the moment a slot frees.
		var slot *runSlot
		for slot == nil && len(batch) > 0 {
			if rows >= maxRows {
				// Full: wait for a slot; a caller giving up wakes the
				// loop (notify) so that its place is given to another.
				select {
				case slot = <-b.m.slots:
				case <-b.gone:
					batch, rows = prune(batch, rows)
				case <-b.stopCh:
					b.fail(batch)
					return
				}
				continue
			}
			select {
			case slot = <-b.m.slots:
			case <-b.notify:
				batch, rows = b.take(batch, rows)
			case <-b.gone:
				batch, rows = prune(batch, rows)
			case <-b.stopCh:
				b.fail(batch)
				return
			}
		}
		if slot == nil {
			continue // everyone in the forming batch gave up
		}
		// A slot is free: add what is queued, then wait for more until
		// MaxWait after the first request.
		batch, rows = b.take(batch, rows)
		for rows < maxRows && b.cfg.MaxWait > 0 {
			d := time.Until(deadline)
			if d <= 0 {
				break
			}
			timer.Reset(d)
			select {
			case <-b.notify:
				timer.Stop()
				batch, rows = b.take(batch, rows)
				continue
			case <-timer.C:
			case <-b.stopCh:
				timer.Stop()
			}
			break
		}
		// Callers that gave up while the batch formed do not run.
		if batch, rows = prune(batch, rows); len(batch) == 0 {
			b.m.slots <- slot
			continue
		}
		b.wg.Add(1)
		go b.run(slot, batch, rows)
	}
}

// prune drops the requests whose callers gave up.
func prune(batch []*batchReq, rows int64) ([]*batchReq, int64) {
	live := batch[:0]
	for _, r := range batch {
		if r.ctx.Err() == nil {
			live = append(live, r)
		} else {
			rows -= r.rows
		}
	}
	clear(batch[len(live):])
	return live, rows
}

// fail answers requests taken from the queue with ErrClosed.
func (b *batcher) fail(batch []*batchReq) {
	for _, r := range batch {
		r.res <- batchRes{err: b.m.errf(ErrClosed)}
	}
}

// run executes one batch on slot and delivers every request's result.
func (b *batcher) run(slot *runSlot, batch []*batchReq, rows int64) {
	defer b.wg.Done()
	m := b.m
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var alive atomic.Int32
	alive.Store(int32(len(batch)))
	stops := make([]func() bool, 0, len(batch))
	for _, r := range batch {
		if r.ctx.Done() != nil {
			stops = append(stops, context.AfterFunc(r.ctx, func() {
				if alive.Add(-1) == 0 {
					cancel()
				}
			}))
		}
	}
	m.met.batch.Observe(float64(len(batch)))
	results := b.exec(ctx, slot, batch, rows)
	if len(batch) > 1 && results[0].err != nil && errors.Is(results[0].err, ErrRun) && ctx.Err() == nil {
		// One request may have poisoned the batch (an ONNX Runtime error
		// such as an index out of range): run each alone so that only its
		// caller gets the error.
		for i, r := range batch {
			if r.ctx.Err() != nil {
				continue
			}
			outs, err := m.exec(r.ctx, slot, r.inputs, r.vals)
			if err == nil {
				if err = m.cc.checkOutputs(outs, r.vals); err != nil {
					err = m.errf(err)
				}
			}
			results[i] = batchRes{outs: outs, err: err}
		}
	}
	m.slots <- slot
	for _, stop := range stops {
		stop()
	}
	for i, r := range batch {
		r.res <- results[i]
	}
}

// exec runs a batch; every request gets the same error when it fails.
func (b *batcher) exec(ctx context.Context, slot *runSlot, batch []*batchReq, rows int64) []batchRes {
	m := b.m
	results := make([]batchRes, len(batch))
	fail := func(err error) []batchRes {
		for i := range results {
			results[i].err = err
		}
		return results
	}
	if len(batch) == 1 {
		outs, err := m.exec(ctx, slot, batch[0].inputs, batch[0].vals)
		if err == nil {
			if cerr := m.cc.checkOutputs(outs, batch[0].vals); cerr != nil {
				m.met.contractEr.Inc()
				err = m.errf(cerr)
			}
		}
		results[0] = batchRes{outs: outs, err: err}
		return results
	}
	merged, mvals, err := b.merge(batch, rows)
	if err != nil {
		return fail(m.errf(err))
	}
	outs, err := m.exec(ctx, slot, merged, mvals)
	if err != nil {
		return fail(err)
	}
	if err := m.cc.checkOutputs(outs, mvals); err != nil {
		m.met.contractEr.Inc()
		return fail(m.errf(err))
	}
	var off int64
	for i, r := range batch {
		res := make([]Tensor, len(outs))
		for j, o := range outs {
			t, err := b.split(j, o, r, off)
			if err != nil {
				return fail(m.errf(err))
			}
			res[j] = t
		}
		results[i].outs = res
		off += r.rows
	}
	return results
}

// merge builds the batch's inputs: batched tensors concatenated along the
// batch axis and padded to the longest request in every other dynamic
// dimension; shared inputs taken from the first request.
func (b *batcher) merge(batch []*batchReq, rows int64) ([]Tensor, []int64, error) {
	cc := b.m.cc
	mvals := make([]int64, len(cc.syms))
	for s := range mvals {
		mvals[s] = -1
		for _, r := range batch {
			mvals[s] = max(mvals[s], r.vals[s])
		}
	}
	mvals[cc.batchSym] = rows
	merged := make([]Tensor, len(cc.in))
	for i, spec := range cc.in {
		if spec.batchAxis < 0 {
			merged[i] = batch[0].inputs[i]
			continue
		}
		shape := make([]int64, len(spec.dims))
		for j, d := range spec.dims {
			if d.sym < 0 {
				shape[j] = d.size
			} else {
				shape[j] = mvals[d.sym] + d.off
			}
		}
		if spec.batchAxis == 0 && samePastFirst(batch, i, shape) {
			// Rows of equal shape: concatenate.
			t, err := newZero(spec.dtype, shape)
			if err != nil {
				return nil, nil, fmt.Errorf("merge input %s: %w", spec.name, err)
			}
			at := 0
			for _, r := range batch {
				at += copyAt(t.Data, at, r.inputs[i].Data)
			}
			merged[i] = t
			continue
		}
		t, err := Filled(spec.dtype, shape, spec.pad)
		if err != nil {
			return nil, nil, fmt.Errorf("merge input %s: %w", spec.name, err)
		}
		offs := make([]int64, len(shape))
		zero := make([]int64, len(shape))
		for _, r := range batch {
			src := r.inputs[i]
			copyBlock(t, offs, src, zero, src.Shape)
			offs[spec.batchAxis] += src.Shape[spec.batchAxis]
		}
		merged[i] = t
	}
	return merged, mvals, nil
}

// split cuts request r's part (rows starting at off) out of batched output
// j, trimmed to r's own sizes of the symbols it bound.
func (b *batcher) split(j int, o Tensor, r *batchReq, off int64) (Tensor, error) {
	spec := b.m.cc.out[j]
	shape := append([]int64(nil), o.Shape...)
	srcOff := make([]int64, len(shape))
	for k, d := range spec.dims {
		switch {
		case k == spec.batchAxis:
			shape[k] = r.rows
			srcOff[k] = off
		case d.sym >= 0 && r.vals[d.sym] >= 0:
			if v := r.vals[d.sym] + d.off; v <= shape[k] {
				shape[k] = v
			}
		}
	}
	if spec.batchAxis == 0 && slices.Equal(shape[1:], o.Shape[1:]) {
		// Whole rows: one contiguous slice.
		inner := shapeSize(shape[1:])
		return Tensor{Shape: shape, Data: sliceClone(o.Data, int(off*inner), int((off+r.rows)*inner))}, nil
	}
	t, err := Filled(o.DType(), shape, 0)
	if err != nil {
		return Tensor{}, fmt.Errorf("split output %s: %w", spec.name, err)
	}
	copyBlock(t, make([]int64, len(shape)), o, srcOff, shape)
	return t, nil
}

// samePastFirst reports whether every request's input i has the merged
// shape past the batch axis (axis 0): no padding is needed.
func samePastFirst(batch []*batchReq, i int, shape []int64) bool {
	for _, r := range batch {
		if !slices.Equal(r.inputs[i].Shape[1:], shape[1:]) {
			return false
		}
	}
	return true
}

// copyBlock copies the block of the given size starting at srcOff in src to
// dstOff in dst (same element type, same rank).
func copyBlock(dst Tensor, dstOff []int64, src Tensor, srcOff []int64, size []int64) {
	switch d := dst.Data.(type) {
	case []float32:
		copyBlockT(d, dst.Shape, dstOff, src.Data.([]float32), src.Shape, srcOff, size)
	case []float64:
		copyBlockT(d, dst.Shape, dstOff, src.Data.([]float64), src.Shape, srcOff, size)
	case []int8:
		copyBlockT(d, dst.Shape, dstOff, src.Data.([]int8), src.Shape, srcOff, size)
	case []uint8:
		copyBlockT(d, dst.Shape, dstOff, src.Data.([]uint8), src.Shape, srcOff, size)
	case []int16:
		copyBlockT(d, dst.Shape, dstOff, src.Data.([]int16), src.Shape, srcOff, size)
	case []uint16:
		copyBlockT(d, dst.Shape, dstOff, src.Data.([]uint16), src.Shape, srcOff, size)
	case []int32:
		copyBlockT(d, dst.Shape, dstOff, src.Data.([]int32), src.Shape, srcOff, size)
	case []uint32:
		copyBlockT(d, dst.Shape, dstOff, src.Data.([]uint32), src.Shape, srcOff, size)
	case []int64:
		copyBlockT(d, dst.Shape, dstOff, src.Data.([]int64), src.Shape, srcOff, size)
	case []uint64:
		copyBlockT(d, dst.Shape, dstOff, src.Data.([]uint64), src.Shape, srcOff, size)
	case []bool:
		copyBlockT(d, dst.Shape, dstOff, src.Data.([]bool), src.Shape, srcOff, size)
	}
}

func copyBlockT[T Element](dst []T, dshape, doff []int64, src []T, sshape, soff []int64, size []int64) {
	r := len(size)
	if r == 0 {
		dst[0] = src[0]
		return
	}
	for _, s := range size {
		if s == 0 {
			return
		}
	}
	dstr, sstr := strides(dshape), strides(sshape)
	idx := make([]int64, r-1)
	inner := size[r-1]
	for {
		var di, si int64
		for k := 0; k < r-1; k++ {
			di += (idx[k] + doff[k]) * dstr[k]
			si += (idx[k] + soff[k]) * sstr[k]
		}
		di += doff[r-1]
		si += soff[r-1]
		copy(dst[di:di+inner], src[si:si+inner])
		k := r - 2
		for ; k >= 0; k-- {
			idx[k]++
			if idx[k] < size[k] {
				break
			}
			idx[k] = 0
		}
		if k < 0 {
			return
		}
	}
}

func strides(shape []int64) []int64 {
	s := make([]int64, len(shape))
	acc := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}
