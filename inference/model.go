package inference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/zhiyin/zhiyin/inference/onnxpb"
)

// LoadOptions say how Runtime.Load opens a model.
type LoadOptions struct {
	// Provider is cpu, cuda or auto; empty means the runtime's
	// configuration.
	Provider string
	// Concurrency is how many runs may execute at once; 0 means one per
	// CPU without batching and 1 with it.
	Concurrency int
	// Batch configures micro-batching; the zero value (Mode "") is off.
	// Manifest hints are not applied here (the Registry applies them).
	Batch BatchConfig
	// Metrics receives the model's metrics; nil creates unregistered ones.
	Metrics *Metrics
	// SkipVerify does not check the files' sha256 (the caller just did).
	SkipVerify bool
	// SkipWarmup leaves the model cold (benchmarks measuring cold start).
	SkipWarmup bool
	// Log receives the model's log lines; nil means the runtime's logger.
	Log *slog.Logger
}

// Model is one loaded version of a model: an ONNX Runtime session on one
// execution provider, warmed up, with its run slots and, when enabled, its
// micro-batcher. Run is safe for concurrent use; Close releases everything.
type Model struct {
	man        *Manifest
	cc         *compiled
	rt         *Runtime
	log        *slog.Logger
	met        *modelMetrics
	ep         string
	fall       string // fallback reason, "" when none
	fallDetail string

	sess     *ort.DynamicAdvancedSession
	slots    chan *runSlot
	allSlots []*runSlot
	batch    *batcher
	// prealloc: some outputs' shapes follow from the inputs, so they are
	// allocated in Go and written in place; preallocOff turns that off when
	// the model's outputs turn out not to match the contract.
	prealloc    bool
	preallocOff atomic.Bool

	loadDur, warmDur time.Duration
	hostMem, gpuMem  int64
	loadedAt         time.Time

	closed   atomic.Bool
	done     chan struct{} // closed by Close: waiting runs give up
	closeMu  sync.Mutex
	closeErr error
	released bool
}

// runSlot is one permission to run, with the ORT run options used to
// terminate that run.
type runSlot struct {
	ro       *ort.RunOptions
	ins      []ort.Value
	outs     []ort.Value
	termDone chan struct{} // the context.AfterFunc that terminated the run has finished
	// Small tensors go through ORT values the slot owns, reused while
	// their shape repeats: copying a few kilobytes is cheaper than
	// creating and destroying an ORT value (two cgo calls) per run.
	inCache, outCache []cachedValue
	ownIn             []bool // ins[i] was created for this run and is destroyed after it
}

// smallTensor is the largest tensor (in elements) that goes through a
// slot-owned ORT value and is copied; larger ones are wrapped (inputs) or
// written in place (outputs).
const smallTensor = 4096

// cachedValue is an ORT value over slot-owned Go memory.
type cachedValue struct {
	v     ort.Value
	t     Tensor // the Go memory ORT reads or writes
	dtype DType
}

// get returns the cached value for dtype and shape, replacing it when they
// differ.
func (c *cachedValue) get(dt DType, shape []int64) (ort.Value, error) {
	if c.v != nil && c.dtype == dt && slices.Equal(c.t.Shape, shape) {
		return c.v, nil
	}
	c.release()
	t, err := newZero(dt, slices.Clone(shape))
	if err != nil {
		return nil, err
	}
	v, err := toORT(t)
	if err != nil {
		return nil, err
	}
	c.v, c.t, c.dtype = v, t, dt
	return v, nil
}

func (c *cachedValue) release() {
	if c.v != nil {
		_ = c.v.Destroy()
	}
	*c = cachedValue{}
}

// Load opens the model described by m: verifies its files' sha256, checks
// the ONNX graph against the contract, creates the session on the chosen
// execution provider (falling back to the CPU when CUDA is unusable),
// and runs the warm-up inputs. It blocks for all of that; ctx cancels the
// warm-up. The caller owns the returned model and must Close it.
func (r *Runtime) Load(ctx context.Context, m *Manifest, opts LoadOptions) (*Model, error) {
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if !started {
		return nil, fmt.Errorf("load %s: %w", m.Name, ErrNotStarted)
	}
	start := time.Now()
	if !opts.SkipVerify {
		if err := m.Verify(); err != nil {
			return nil, fmt.Errorf("load %s: %w", m.Name, err)
		}
	}
	info, err := onnxpb.ReadInfoFile(m.GraphPath())
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", m.Name, err)
	}
	if info.ExternalData {
		// ORT resolves external data relative to the model file; nothing
		// to do, but the files must be listed to be verified.
		r.log.Debug("model uses external data", logKeyModel, m.Name)
	}
	if err := compileContract(&m.Contract).checkGraph(info); err != nil {
		return nil, fmt.Errorf("load %s %s: %s: %w", m.Name, m.Version, m.GraphPath(), err)
	}
	// Run with the graph's types where the contract allows alternatives.
	resolved := *m
	resolved.Contract = adoptGraphDTypes(m.Contract, info)
	m = &resolved
	cc := compileContract(&m.Contract)
	batching, err := batchDecision(cc, opts.Batch.Mode)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", m.Name, err)
	}
	provider := opts.Provider
	if provider == "" {
		provider = r.cfg.Provider
	}
	if opts.Metrics == nil {
		opts.Metrics, _ = NewMetrics(nil)
	}
	concurrency := opts.Concurrency
	switch {
	case concurrency > 0:
	case batching:
		concurrency = 1
	default:
		concurrency = runtime.GOMAXPROCS(0)
	}

	rss0 := processRSS()
	gpu0, gpuOK := uint64(0), false
	if provider != "cpu" {
		gpu0, gpuOK = r.gpuUsed()
	}
	lg := opts.Log
	if lg == nil {
		lg = r.log
	}
	mod := &Model{man: m, cc: cc, rt: r, log: lg.With(logKeyModel, m.Name, logKeyVersion, m.Version), done: make(chan struct{})}
	inNames := make([]string, len(info.Inputs))
	for i, in := range info.Inputs {
		inNames[i] = in.Name
	}
	outNames := make([]string, len(info.Outputs))
	for i, o := range info.Outputs {
		outNames[i] = o.Name
	}
	so, ep, reason, detail, err := r.sessionOptions(provider)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", m.Name, err)
	}
	sess, err := ort.NewDynamicAdvancedSession(m.GraphPath(), inNames, outNames, so)
	_ = so.Destroy()
	if err != nil && ep == "cuda" {
		reason, detail = FallbackSessionError, err.Error()
		so, err = r.cpuOptions()
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", m.Name, err)
		}
		ep = "cpu"
		sess, err = ort.NewDynamicAdvancedSession(m.GraphPath(), inNames, outNames, so)
		_ = so.Destroy()
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: create ONNX Runtime session for %s: %w", m.Name, m.GraphPath(), err)
	}
	mod.sess, mod.ep, mod.fall, mod.fallDetail = sess, ep, reason, detail
	mod.met = opts.Metrics.forModel(m.Name, m.Version, ep)
	if reason != "" {
		opts.Metrics.fallbacks.WithLabelValues(m.Name, reason).Inc()
		// One line per model: a warning when CUDA was required, for auto
		// (CPU is an expected outcome) information.
		level := slog.LevelWarn
		if provider == "auto" {
			level = slog.LevelInfo
		}
		mod.log.Log(ctx, level, "CUDA requested but not usable; running on CPU", logKeyProvider, provider, logKeyReason, reason, logKeyDetail, firstLine(detail))
	}
	for _, o := range cc.out {
		mod.prealloc = mod.prealloc || o.predictable
	}
	mod.slots = make(chan *runSlot, concurrency)
	for i := 0; i < concurrency; i++ {
		ro, err := ort.NewRunOptions()
		if err != nil {
			mod.release()
			return nil, fmt.Errorf("load %s: run options: %w", m.Name, err)
		}
		s := &runSlot{ro: ro, ins: make([]ort.Value, len(inNames)), outs: make([]ort.Value, len(outNames)), termDone: make(chan struct{}, 1),
			inCache: make([]cachedValue, len(inNames)), outCache: make([]cachedValue, len(outNames)), ownIn: make([]bool, len(inNames))}
		mod.allSlots = append(mod.allSlots, s)
		mod.slots <- s
	}
	mod.loadDur = time.Since(start)
	opts.Metrics.loadDuration.WithLabelValues(m.Name, m.Version, ep).Observe(mod.loadDur.Seconds())

	maxBatch := opts.Batch.MaxBatch
	if batching {
		mod.batch = newBatcher(mod, opts.Batch)
	}
	if !opts.SkipWarmup {
		ws := time.Now()
		if err := mod.warmup(ctx, batching, maxBatch); err != nil {
			_ = mod.Close()
			return nil, fmt.Errorf("load %s %s: warm-up: %w", m.Name, m.Version, err)
		}
		mod.warmDur = time.Since(ws)
		opts.Metrics.warmupDuration.WithLabelValues(m.Name, m.Version, ep).Observe(mod.warmDur.Seconds())
	}
	if d := processRSS() - rss0; rss0 > 0 && d > 0 {
		mod.hostMem = d
	}
	if gpuOK && ep == "cuda" {
		if g1, ok := r.gpuUsed(); ok && g1 > gpu0 {
			mod.gpuMem = int64(g1 - gpu0)
		}
	}
	opts.Metrics.memory.WithLabelValues(m.Name, m.Version, "host").Set(float64(mod.hostMem))
	if ep == "cuda" {
		opts.Metrics.memory.WithLabelValues(m.Name, m.Version, "gpu").Set(float64(mod.gpuMem))
	}
	if mod.batch != nil {
		mod.batch.start()
	}
	mod.loadedAt = time.Now()
	return mod, nil
}

// batchDecision resolves a batch mode for a contract.
func batchDecision(cc *compiled, mode string) (bool, error) {
	why := cc.batchable()
	switch mode {
	case "on":
		if why != "" {
			return false, fmt.Errorf("%w: batching is on but %s", ErrContract, why)
		}
		return true, nil
	case "auto":
		return why == "", nil
	}
	return false, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Name returns the model's name.
func (m *Model) Name() string { return m.man.Name }

// Version returns the manifest's version.
func (m *Model) Version() string { return m.man.Version }

// EP returns the execution provider the model actually runs on: "cpu" or
// "cuda".
func (m *Model) EP() string { return m.ep }

// Fallback returns why the model runs on the CPU although CUDA was asked
// for (a Fallback* reason and a detail), or empty strings.
func (m *Model) Fallback() (reason, detail string) { return m.fall, m.fallDetail }

// Manifest returns the manifest the model was loaded from. The caller must
// not modify it.
func (m *Model) Manifest() *Manifest { return m.man }

// Contract returns the model's tensor contract. The caller must not modify
// it.
func (m *Model) Contract() *Contract { return &m.man.Contract }

// Batching reports whether requests are micro-batched, and the batch limit.
func (m *Model) Batching() (bool, int) {
	if m.batch == nil {
		return false, 0
	}
	return true, m.batch.cfg.MaxBatch
}

// LoadStats are the costs of loading a model.
type LoadStats struct {
	Load   time.Duration // verify + session creation
	Warmup time.Duration
	// HostMemory is the process RSS growth over load and warm-up (bytes;
	// approximate when other work runs at the same time).
	HostMemory int64
	// GPUMemory is the device memory growth (bytes; 0 on the CPU).
	GPUMemory int64
	LoadedAt  time.Time
}

// Stats returns the model's load costs.
func (m *Model) Stats() LoadStats {
	return LoadStats{Load: m.loadDur, Warmup: m.warmDur, HostMemory: m.hostMem, GPUMemory: m.gpuMem, LoadedAt: m.loadedAt}
}

// Run runs the model on inputs, bound by position to the contract's inputs,
// and returns the outputs in the contract's order. It blocks until a run
// slot (or a batch) is free and the run finishes. Cancelling ctx returns
// ctx's error at once, frees the caller's queue or batch place and
// terminates the ONNX Runtime run when no one else needs it. The inputs are
// not modified or retained; the outputs belong to the caller. Errors wrap
// ErrBadInput, ErrRun, ErrContract, ErrOverloaded, ErrClosed or ctx's error.
// Safe for concurrent use.
func (m *Model) Run(ctx context.Context, inputs []Tensor) ([]Tensor, error) {
	if m == nil || m.closed.Load() {
		return nil, fmt.Errorf("run: %w", ErrClosed)
	}
	if m.batch != nil {
		vals := symVals(nil, len(m.cc.syms))
		if err := m.cc.bindInputs(inputs, vals); err != nil {
			m.met.badInput.Inc()
			return nil, m.errf(err)
		}
		return m.batch.submit(ctx, inputs, vals)
	}
	// The symbol values stay on the stack on the unbatched path.
	var buf [8]int64
	vals := symVals(buf[:0], len(m.cc.syms))
	if err := m.cc.bindInputs(inputs, vals); err != nil {
		m.met.badInput.Inc()
		return nil, m.errf(err)
	}
	return m.runOne(ctx, inputs, vals)
}

func symVals(buf []int64, n int) []int64 {
	var v []int64
	if n <= cap(buf) {
		v = buf[:n]
	} else {
		v = make([]int64, n)
	}
	for i := range v {
		v[i] = -1
	}
	return v
}

func (m *Model) errf(err error) error {
	return fmt.Errorf("run %s %s: %w", m.man.Name, m.man.Version, err)
}

// runOne runs already-checked inputs on a slot of their own.
func (m *Model) runOne(ctx context.Context, inputs []Tensor, vals []int64) ([]Tensor, error) {
	slot, err := m.acquire(ctx)
	if err != nil {
		return nil, err
	}
	outs, err := m.exec(ctx, slot, inputs, vals)
	m.slots <- slot
	if err != nil {
		return nil, err
	}
	if err := m.cc.checkOutputs(outs, vals); err != nil {
		m.met.contractEr.Inc()
		return nil, m.errf(err)
	}
	return outs, nil
}

// acquire takes a run slot, waiting for one unless ctx ends or the model
// closes.
func (m *Model) acquire(ctx context.Context) (*runSlot, error) {
	var s *runSlot
	select {
	case s = <-m.slots:
	default:
		m.met.queue.Inc()
		select {
		case s = <-m.slots:
		case <-ctx.Done():
			m.met.queue.Dec()
			m.met.canceled.Inc()
			return nil, m.errf(ctx.Err())
		case <-m.done:
			m.met.queue.Dec()
			return nil, m.errf(ErrClosed)
		}
		m.met.queue.Dec()
	}
	if m.closed.Load() {
		m.slots <- s
		return nil, m.errf(ErrClosed)
	}
	return s, nil
}

// exec runs inputs on the session with slot's run options; cancelling ctx
// terminates the run. vals are the inputs' symbol values: outputs whose
// shapes they determine are allocated here and written by ONNX Runtime in
// place (no copy); the others are allocated by ONNX Runtime and copied.
func (m *Model) exec(ctx context.Context, slot *runSlot, inputs []Tensor, vals []int64) ([]Tensor, error) {
	if err := ctx.Err(); err != nil {
		m.met.canceled.Inc()
		return nil, m.errf(err)
	}
	defer slot.releaseInputs()
	for i, t := range inputs {
		var v ort.Value
		var err error
		if n := t.Len(); n > 0 && n <= smallTensor && len(t.Shape) > 0 {
			if v, err = slot.inCache[i].get(t.DType(), t.Shape); err == nil {
				copyData(slot.inCache[i].t.Data, t.Data)
			}
		} else {
			v, err = toORT(t)
			slot.ownIn[i] = err == nil
		}
		if err != nil {
			m.met.badInput.Inc()
			return nil, m.errf(fmt.Errorf("%w: input %d (%s): %v", ErrBadInput, i, m.cc.in[i].name, err))
		}
		slot.ins[i] = v
	}
	pre := vals != nil && m.prealloc && !m.preallocOff.Load()
	outs, err := m.run(ctx, slot, vals, pre)
	if err != nil && pre && errors.Is(err, ErrRun) && strings.Contains(strings.ToLower(err.Error()), "shape") {
		// The outputs' shapes were not what the contract says: run again
		// letting ONNX Runtime allocate them, and stop preallocating.
		if outs2, err2 := m.run(ctx, slot, vals, false); err2 == nil {
			if m.preallocOff.CompareAndSwap(false, true) {
				m.log.Warn("output shapes differ from the contract's; outputs are copied from now on", logKeyErr, err)
			}
			outs, err = outs2, nil
		}
	}
	return outs, err
}

// run executes the session once; with pre, outputs the contract sizes are
// allocated in Go first.
func (m *Model) run(ctx context.Context, slot *runSlot, vals []int64, pre bool) ([]Tensor, error) {
	outs := make([]Tensor, len(slot.outs))
	var cachedBuf [8]bool
	cached := cachedBuf[:0]
	if len(outs) <= len(cachedBuf) {
		cached = cachedBuf[:len(outs)]
	} else {
		cached = make([]bool, len(outs))
	}
	defer clear(slot.outs)
	for i := range m.cc.out {
		o := &m.cc.out[i]
		var v ort.Value
		var err error
		switch {
		case len(o.dims) == 0:
			v, err = newScalar(o.dtype)
		case pre && o.predictable:
			shape := make([]int64, len(o.dims))
			for j, d := range o.dims {
				shape[j] = d.size
				if d.sym >= 0 {
					shape[j] = vals[d.sym] + d.off
				}
			}
			if n := shapeSize(shape); n > 0 && n <= smallTensor {
				// Written into the slot's buffer, copied out after the run.
				v, err = slot.outCache[i].get(o.dtype, shape)
				outs[i].Shape = shape
				cached[i] = true
			} else if outs[i], err = newZero(o.dtype, shape); err == nil {
				v, err = toORT(outs[i])
			}
		default:
			continue
		}
		if err != nil {
			slot.releaseOutputs(cached)
			return nil, m.errf(err)
		}
		slot.outs[i] = v
	}
	var stop func() bool
	if ctx.Done() != nil {
		ro, done := slot.ro, slot.termDone
		stop = context.AfterFunc(ctx, func() {
			_ = ro.Terminate()
			done <- struct{}{}
		})
	}
	t0 := time.Now()
	err := m.sess.RunWithOptions(slot.ins, slot.outs, slot.ro)
	m.met.run.Observe(time.Since(t0).Seconds())
	if stop != nil && !stop() {
		<-slot.termDone
		_ = slot.ro.UnsetTerminate()
	}
	if err != nil {
		slot.releaseOutputs(cached)
		if cerr := ctx.Err(); cerr != nil {
			m.met.canceled.Inc()
			return nil, m.errf(cerr)
		}
		if m.closed.Load() {
			return nil, m.errf(ErrClosed)
		}
		m.met.runErr.Inc()
		return nil, m.errf(fmt.Errorf("%w: %v", ErrRun, strings.TrimPrefix(err.Error(), "Error running network: ")))
	}
	var cerr error
	for i, v := range slot.outs {
		if v == nil {
			cerr = fmt.Errorf("%w: output %d missing", ErrRun, i)
			continue
		}
		switch {
		case cached[i]:
			outs[i].Data = cloneData(slot.outCache[i].t.Data)
			continue // the slot keeps the value
		case outs[i].Data == nil:
			t, err := fromORT(v)
			if err != nil && cerr == nil {
				cerr = fmt.Errorf("%w: output %d (%s): %v", ErrContract, i, m.cc.out[i].name, err)
			}
			outs[i] = t
		}
		_ = v.Destroy()
	}
	if cerr != nil {
		m.met.contractEr.Inc()
		return nil, m.errf(cerr)
	}
	return outs, nil
}

// newZero allocates a zeroed tensor.
func newZero(dt DType, shape []int64) (Tensor, error) {
	n := shapeSize(shape)
	if n < 0 || n > 1<<33 {
		return Tensor{}, fmt.Errorf("invalid output shape %v", shape)
	}
	switch dt {
	case Float32:
		return Tensor{Shape: shape, Data: make([]float32, n)}, nil
	case Float64:
		return Tensor{Shape: shape, Data: make([]float64, n)}, nil
	case Int8:
		return Tensor{Shape: shape, Data: make([]int8, n)}, nil
	case Uint8:
		return Tensor{Shape: shape, Data: make([]uint8, n)}, nil
	case Int16:
		return Tensor{Shape: shape, Data: make([]int16, n)}, nil
	case Uint16:
		return Tensor{Shape: shape, Data: make([]uint16, n)}, nil
	case Int32:
		return Tensor{Shape: shape, Data: make([]int32, n)}, nil
	case Uint32:
		return Tensor{Shape: shape, Data: make([]uint32, n)}, nil
	case Int64:
		return Tensor{Shape: shape, Data: make([]int64, n)}, nil
	case Uint64:
		return Tensor{Shape: shape, Data: make([]uint64, n)}, nil
	case Bool:
		return Tensor{Shape: shape, Data: make([]bool, n)}, nil
	}
	return Tensor{}, fmt.Errorf("unsupported dtype %s", dt)
}

// releaseInputs destroys the ORT values created for one run's inputs and
// forgets the slot's references.
func (s *runSlot) releaseInputs() {
	for i, v := range s.ins {
		if s.ownIn[i] && v != nil {
			_ = v.Destroy()
		}
		s.ins[i], s.ownIn[i] = nil, false
	}
}

// releaseOutputs destroys the ORT values created for one run's outputs
// (not the slot's cached ones) after a failure.
func (s *runSlot) releaseOutputs(cached []bool) {
	for i, v := range s.outs {
		if v != nil && !cached[i] {
			_ = v.Destroy()
		}
		s.outs[i] = nil
	}
}

// close destroys the slot's ORT objects.
func (s *runSlot) close() error {
	for i := range s.inCache {
		s.inCache[i].release()
	}
	for i := range s.outCache {
		s.outCache[i].release()
	}
	return s.ro.Destroy()
}

// toORT wraps a tensor's Go memory in an ORT value (no copy, except for
// scalars).
func toORT(t Tensor) (ort.Value, error) {
	if len(t.Shape) == 0 {
		switch d := t.Data.(type) {
		case []float32:
			return ort.NewScalar(d[0])
		case []float64:
			return ort.NewScalar(d[0])
		case []int8:
			return ort.NewScalar(d[0])
		case []uint8:
			return ort.NewScalar(d[0])
		case []int16:
			return ort.NewScalar(d[0])
		case []uint16:
			return ort.NewScalar(d[0])
		case []int32:
			return ort.NewScalar(d[0])
		case []uint32:
			return ort.NewScalar(d[0])
		case []int64:
			return ort.NewScalar(d[0])
		case []uint64:
			return ort.NewScalar(d[0])
		case []bool:
			return ort.NewScalar(d[0])
		}
		return nil, fmt.Errorf("unsupported data %T", t.Data)
	}
	s := ort.Shape(t.Shape)
	switch d := t.Data.(type) {
	case []float32:
		return ort.NewTensor(s, d)
	case []float64:
		return ort.NewTensor(s, d)
	case []int8:
		return ort.NewTensor(s, d)
	case []uint8:
		return ort.NewTensor(s, d)
	case []int16:
		return ort.NewTensor(s, d)
	case []uint16:
		return ort.NewTensor(s, d)
	case []int32:
		return ort.NewTensor(s, d)
	case []uint32:
		return ort.NewTensor(s, d)
	case []int64:
		return ort.NewTensor(s, d)
	case []uint64:
		return ort.NewTensor(s, d)
	case []bool:
		return ort.NewTensor(s, d)
	}
	return nil, fmt.Errorf("unsupported data %T", t.Data)
}

func newScalar(dt DType) (ort.Value, error) {
	switch dt {
	case Float32:
		return ort.NewEmptyScalar[float32]()
	case Float64:
		return ort.NewEmptyScalar[float64]()
	case Int8:
		return ort.NewEmptyScalar[int8]()
	case Uint8:
		return ort.NewEmptyScalar[uint8]()
	case Int16:
		return ort.NewEmptyScalar[int16]()
	case Uint16:
		return ort.NewEmptyScalar[uint16]()
	case Int32:
		return ort.NewEmptyScalar[int32]()
	case Uint32:
		return ort.NewEmptyScalar[uint32]()
	case Int64:
		return ort.NewEmptyScalar[int64]()
	case Uint64:
		return ort.NewEmptyScalar[uint64]()
	case Bool:
		return ort.NewEmptyScalar[bool]()
	}
	return nil, fmt.Errorf("unsupported scalar type %s", dt)
}

// fromORT copies nothing: ORT outputs are already copied into Go memory by
// onnxruntime_go; the returned tensor shares that slice.
func fromORT(v ort.Value) (Tensor, error) {
	switch t := v.(type) {
	case *ort.Tensor[float32]:
		return Tensor{Shape: t.GetShape(), Data: t.GetData()}, nil
	case *ort.Tensor[float64]:
		return Tensor{Shape: t.GetShape(), Data: t.GetData()}, nil
	case *ort.Tensor[int8]:
		return Tensor{Shape: t.GetShape(), Data: t.GetData()}, nil
	case *ort.Tensor[uint8]:
		return Tensor{Shape: t.GetShape(), Data: t.GetData()}, nil
	case *ort.Tensor[int16]:
		return Tensor{Shape: t.GetShape(), Data: t.GetData()}, nil
	case *ort.Tensor[uint16]:
		return Tensor{Shape: t.GetShape(), Data: t.GetData()}, nil
	case *ort.Tensor[int32]:
		return Tensor{Shape: t.GetShape(), Data: t.GetData()}, nil
	case *ort.Tensor[uint32]:
		return Tensor{Shape: t.GetShape(), Data: t.GetData()}, nil
	case *ort.Tensor[int64]:
		return Tensor{Shape: t.GetShape(), Data: t.GetData()}, nil
	case *ort.Tensor[uint64]:
		return Tensor{Shape: t.GetShape(), Data: t.GetData()}, nil
	case *ort.Tensor[bool]:
		return Tensor{Shape: t.GetShape(), Data: t.GetData()}, nil
	case *ort.Scalar[float32]:
		return Tensor{Shape: []int64{}, Data: []float32{t.GetData()}}, nil
	case *ort.Scalar[float64]:
		return Tensor{Shape: []int64{}, Data: []float64{t.GetData()}}, nil
	case *ort.Scalar[int8]:
		return Tensor{Shape: []int64{}, Data: []int8{t.GetData()}}, nil
	case *ort.Scalar[uint8]:
		return Tensor{Shape: []int64{}, Data: []uint8{t.GetData()}}, nil
	case *ort.Scalar[int16]:
		return Tensor{Shape: []int64{}, Data: []int16{t.GetData()}}, nil
	case *ort.Scalar[uint16]:
		return Tensor{Shape: []int64{}, Data: []uint16{t.GetData()}}, nil
	case *ort.Scalar[int32]:
		return Tensor{Shape: []int64{}, Data: []int32{t.GetData()}}, nil
	case *ort.Scalar[uint32]:
		return Tensor{Shape: []int64{}, Data: []uint32{t.GetData()}}, nil
	case *ort.Scalar[int64]:
		return Tensor{Shape: []int64{}, Data: []int64{t.GetData()}}, nil
	case *ort.Scalar[uint64]:
		return Tensor{Shape: []int64{}, Data: []uint64{t.GetData()}}, nil
	case *ort.Scalar[bool]:
		return Tensor{Shape: []int64{}, Data: []bool{t.GetData()}}, nil
	}
	return Tensor{}, fmt.Errorf("unsupported output value %T", v)
}

// warmupCases returns the manifest's warm-up inputs, or one derived from
// the contract (dynamic dimensions 1), plus, for a batched model, the first
// case at the full batch size.
func (m *Model) warmupCases(batching bool, maxBatch int) ([][]Tensor, error) {
	cases := m.man.Warmup
	if len(cases) == 0 {
		c := WarmupCase{Shapes: map[string][]int64{}}
		for _, in := range m.man.Contract.Inputs {
			shape := make([]int64, len(in.Shape))
			for j, d := range in.Shape {
				shape[j] = 1
				if d.Fixed() {
					shape[j] = d.Size
				} else if d.Offset > 0 {
					shape[j] = 1 + d.Offset
				}
			}
			c.Shapes[in.Name] = shape
		}
		cases = []WarmupCase{c}
	}
	if batching && maxBatch > 1 {
		c := WarmupCase{Shapes: map[string][]int64{}, Fill: cases[0].Fill}
		for i, in := range m.man.Contract.Inputs {
			s := append([]int64(nil), cases[0].Shapes[in.Name]...)
			if ax := m.cc.in[i].batchAxis; ax >= 0 && ax < len(s) {
				s[ax] = int64(maxBatch)
			}
			c.Shapes[in.Name] = s
		}
		cases = append(cases, c)
	}
	var out [][]Tensor
	for ci, c := range cases {
		var ins []Tensor
		for _, in := range m.man.Contract.Inputs {
			v, ok := c.Fill[in.Name]
			if !ok {
				v = in.Pad
			}
			t, err := Filled(in.DType, c.Shapes[in.Name], v)
			if err != nil {
				return nil, fmt.Errorf("case %d: input %s: %w", ci, in.Name, err)
			}
			ins = append(ins, t)
		}
		out = append(out, ins)
	}
	return out, nil
}

// warmupRuns is how often each warm-up case runs: the first run allocates
// and plans memory, the second confirms the steady state.
//
// Each case runs on one slot (the first free one); with concurrency above
// 1 the other slots' small-tensor caches fill on their first request,
// which costs two cgo calls per tensor, not a cold start.
const warmupRuns = 2

func (m *Model) warmup(ctx context.Context, batching bool, maxBatch int) error {
	cases, err := m.warmupCases(batching, maxBatch)
	if err != nil {
		return err
	}
	// The first case (the most common shape, by convention) runs again
	// last, so that the caches of the slot it ran on hold its shapes.
	cases = append(cases, cases[0])
	for ci, ins := range cases {
		for r := 0; r < warmupRuns; r++ {
			vals := symVals(nil, len(m.cc.syms))
			if err := m.cc.bindInputs(ins, vals); err != nil {
				return fmt.Errorf("case %d: %w", ci, err)
			}
			if _, err := m.runOne(ctx, ins, vals); err != nil {
				return fmt.Errorf("case %d: %w", ci, err)
			}
		}
	}
	return nil
}

// Close stops accepting runs, waits for the running ones, and destroys the
// session, run options and tensors; the memory is returned (for CUDA the
// session's device arena is freed with it). Nil-safe and idempotent.
func (m *Model) Close() error { return m.Shutdown(context.Background()) }

// Shutdown is Close with a deadline: when ctx ends before the running
// requests finish, their ONNX Runtime runs are terminated (they fail with
// ErrClosed) and the model is released as soon as they return.
func (m *Model) Shutdown(ctx context.Context) error {
	if m == nil {
		return nil
	}
	m.closeMu.Lock()
	defer m.closeMu.Unlock()
	if m.released {
		return m.closeErr
	}
	if m.closed.CompareAndSwap(false, true) {
		close(m.done)
	}
	// When ctx ends, terminate whatever still runs; wait for that
	// function before the run options are destroyed.
	termDone := make(chan struct{})
	stopTerm := context.AfterFunc(ctx, func() {
		defer close(termDone)
		for _, s := range m.allSlots {
			_ = s.ro.Terminate()
		}
	})
	if m.batch != nil {
		m.batch.stop()
	}
	for range m.allSlots {
		<-m.slots
	}
	if !stopTerm() {
		<-termDone
	}
	m.release()
	return m.closeErr
}

// release destroys the C objects; every slot must be back.
func (m *Model) release() {
	if m.released {
		return
	}
	m.released = true
	if m.closed.CompareAndSwap(false, true) {
		close(m.done)
	}
	var errs []error
	for _, s := range m.allSlots {
		if err := s.close(); err != nil {
			errs = append(errs, err)
		}
	}
	m.allSlots = nil
	if m.sess != nil {
		if err := m.sess.Destroy(); err != nil {
			errs = append(errs, err)
		}
		m.sess = nil
	}
	if len(errs) > 0 {
		m.closeErr = fmt.Errorf("close %s: %w", m.man.Name, errors.Join(errs...))
	}
}
