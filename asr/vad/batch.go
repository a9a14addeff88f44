package vad

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zhiyin/zhiyin/inference"
)

// Batcher runs the windows of many detectors together. Silero VAD v5 takes
// a batch of windows with their states (input [N, W], state [2, N, 128]),
// so a hundred phone calls cost one model run per round instead of a
// hundred: the per-run overhead of ONNX Runtime dominates a 32 ms window.
// Give one Batcher to every Detector of a rate (New(b, cfg, rate)); each
// detector still owns its state, and its results are those of running
// alone.
//
// While windows come together (the last batch held more than one), a
// window waits at most maxWait for others; otherwise, or with maxWait 0, a
// batch is whatever queued while the previous one ran, so a lone call
// waits for nothing. If the model refuses a batch
// (not Silero v5, or a graph with a fixed batch of 1), the Batcher logs it
// once and runs windows one by one from then on. Run is safe for
// concurrent use; the goroutine that forms batches starts with the first
// window and ends after a second without any.
type Batcher struct {
	r        Runner
	maxBatch int
	maxWait  time.Duration
	log      *slog.Logger

	reqs   chan *batchReq
	mu     sync.Mutex
	active bool
	single atomic.Bool
}

type batchReq struct {
	inputs []inference.Tensor
	res    chan batchRes
}

type batchRes struct {
	outs []inference.Tensor
	err  error
}

// batcherIdle is how long the batching goroutine waits for a window before
// it ends.
const batcherIdle = time.Second

// NewBatcher returns a Batcher running r with at most maxBatch windows per
// run (at least 1), each waiting at most maxWait for company. log may be
// nil.
func NewBatcher(r Runner, maxBatch int, maxWait time.Duration, log *slog.Logger) *Batcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Batcher{r: r, maxBatch: max(1, maxBatch), maxWait: max(0, maxWait), log: log, reqs: make(chan *batchReq, 4*max(1, maxBatch))}
}

// Run implements Runner: it queues one detector's window and waits for its
// outputs.
func (b *Batcher) Run(ctx context.Context, inputs []inference.Tensor) ([]inference.Tensor, error) {
	if b.single.Load() || b.maxBatch == 1 || !batchable(inputs) {
		return b.r.Run(ctx, inputs)
	}
	req := &batchReq{inputs: inputs, res: make(chan batchRes, 1)}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	b.mu.Lock()
	if !b.active {
		b.active = true
		go b.loop()
	}
	b.mu.Unlock()
	select {
	case r := <-req.res:
		return r.outs, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// batchable reports whether inputs are one detector's window: x [1, W],
// state [2, 1, 128], sr scalar.
func batchable(in []inference.Tensor) bool {
	if len(in) != 3 || len(in[0].Shape) != 2 || in[0].Shape[0] != 1 || len(in[1].Shape) != 3 ||
		in[1].Shape[0] != 2 || in[1].Shape[1] != 1 || in[1].Shape[2] != 128 || len(in[2].Shape) != 0 {
		return false
	}
	_, ok0 := in[0].Data.([]float32)
	_, ok1 := in[1].Data.([]float32)
	_, ok2 := in[2].Data.([]int64)
	return ok0 && ok1 && ok2
}

// loop forms batches until no window came for batcherIdle.
func (b *Batcher) loop() {
	idle := time.NewTimer(batcherIdle)
	defer idle.Stop()
	wait := time.NewTimer(time.Hour)
	defer wait.Stop()
	batch := make([]*batchReq, 0, b.maxBatch)
	lastN := 0
	for {
		var first *batchReq
		select {
		case first = <-b.reqs:
		case <-idle.C:
			b.mu.Lock()
			if len(b.reqs) > 0 { // one arrived as the timer fired
				b.mu.Unlock()
				idle.Reset(batcherIdle)
				continue
			}
			b.active = false
			b.mu.Unlock()
			return
		}
		batch = append(batch[:0], first)
		if b.maxWait == 0 || lastN <= 1 {
			// Alone last time: take what queued, wait for nothing.
		drain:
			for len(batch) < b.maxBatch {
				select {
				case r := <-b.reqs:
					batch = append(batch, r)
				default:
					break drain
				}
			}
		} else {
			wait.Reset(b.maxWait)
		collect:
			for len(batch) < b.maxBatch {
				select {
				case r := <-b.reqs:
					batch = append(batch, r)
				case <-wait.C:
					break collect
				}
			}
			if !wait.Stop() {
				select {
				case <-wait.C:
				default:
				}
			}
		}
		lastN = len(batch)
		b.run(batch)
		idle.Reset(batcherIdle)
	}
}

// run runs one batch, grouped by window length and sample rate.
func (b *Batcher) run(batch []*batchReq) {
	type key struct{ w, sr int64 }
	groups := map[key][]*batchReq{}
	var order []key
	for _, r := range batch {
		k := key{r.inputs[0].Shape[1], r.inputs[2].Data.([]int64)[0]}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	for _, k := range order {
		b.runGroup(groups[k])
	}
}

// runGroup runs windows of one length and rate in one model run, or one by
// one when there is one or the model refuses batches.
func (b *Batcher) runGroup(g []*batchReq) {
	if len(g) > 1 && !b.single.Load() {
		outs, err := b.runBatch(g)
		if err == nil {
			for i, r := range g {
				r.res <- batchRes{outs: outs[i]}
			}
			return
		}
		b.single.Store(true)
		b.log.Warn("the VAD model does not take batches; windows run one by one", "err", err)
	}
	for _, r := range g {
		outs, err := b.r.Run(context.Background(), r.inputs)
		r.res <- batchRes{outs: outs, err: err}
	}
}

// runBatch stacks the windows and states, runs the model once and splits
// its outputs into each window's (output [1,1], stateN [2,1,128]).
func (b *Batcher) runBatch(g []*batchReq) ([][]inference.Tensor, error) {
	n := len(g)
	w := int(g[0].inputs[0].Shape[1])
	x := make([]float32, 0, n*w)
	st := make([]float32, 2*n*stateLen/2)
	half := stateLen / 2
	for i, r := range g {
		x = append(x, r.inputs[0].Data.([]float32)...)
		s := r.inputs[1].Data.([]float32)
		copy(st[i*half:], s[:half])
		copy(st[n*half+i*half:], s[half:])
	}
	in := []inference.Tensor{
		inference.NewTensor([]int64{int64(n), int64(w)}, x),
		inference.NewTensor([]int64{2, int64(n), int64(half)}, st),
		g[0].inputs[2],
	}
	outs, err := b.r.Run(context.Background(), in)
	if err != nil {
		return nil, err
	}
	if len(outs) < 2 {
		return nil, fmt.Errorf("%d outputs", len(outs))
	}
	prob, err := inference.Values[float32](outs[0])
	if err != nil || len(prob) != n {
		return nil, fmt.Errorf("output: %d values for a batch of %d (%v)", len(prob), n, err)
	}
	stN, err := inference.Values[float32](outs[1])
	if err != nil || len(stN) != 2*n*half {
		return nil, fmt.Errorf("stateN: %d values for a batch of %d (%v)", len(stN), n, err)
	}
	res := make([][]inference.Tensor, n)
	for i := range g {
		s := make([]float32, stateLen)
		copy(s[:half], stN[i*half:(i+1)*half])
		copy(s[half:], stN[n*half+i*half:n*half+(i+1)*half])
		res[i] = []inference.Tensor{
			inference.NewTensor([]int64{1, 1}, []float32{prob[i]}),
			inference.NewTensor([]int64{2, 1, int64(half)}, s),
		}
	}
	return res, nil
}
