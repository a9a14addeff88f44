package inference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ReadinessSink receives the readiness of each preloaded model under the
// name "model:<name>" (internal/health.Readiness satisfies it).
type ReadinessSink interface {
	Set(name string, ready bool, detail string)
}

// Model states in ModelStatus.State.
const (
	StateAbsent   = "absent"   // not installed
	StateUnloaded = "unloaded" // installed, not loaded (never used, or unloaded when idle)
	StateLoading  = "loading"
	StateReady    = "ready"
	StateFailed   = "failed" // the last load failed; see Error
)

// failRetry is how long a failed load's error is returned to callers
// before the next request tries loading again.
const failRetry = 10 * time.Second

// Registry is the daemon's set of models: it loads and warms the configured
// ones at Start, loads others on first use, unloads idle ones, mirrors
// traffic to candidate versions (shadow evaluation), promotes and rolls back
// versions without failing requests, and reports readiness, status and
// metrics. Create it with NewRegistry; methods are safe for concurrent use.
type Registry struct {
	rt    *Runtime
	cfg   Config
	dirs  []string
	store *Store
	log   *slog.Logger
	met   *Metrics
	mErr  error
	ready ReadinessSink
	ncpu  int
	now   func() time.Time

	// loadMu serialises loads so that each one's memory is measured alone
	// and warm-ups do not compete for the CPU.
	loadMu sync.Mutex

	mu       sync.Mutex
	entries  map[string]*entry
	started  bool
	stopped  bool
	ctx      context.Context // background work; cancelled by Stop
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	compares map[string]Comparator

	// Replaced versions still serving requests are released in the
	// background once drained (bg); Stop waits for them and, when its
	// context ends, closes bgKill to terminate what still runs.
	bg     sync.WaitGroup
	bgKill chan struct{}
}

// NewRegistry returns a registry over the models found in dirs (see
// SearchDirs; dirs[0] is the writable folder promotions and rollbacks
// update). It registers the zhiyin_inference_* metrics on reg (nil: not
// exported) and reports preloaded models to ready (nil: nowhere). It does
// no other I/O.
func NewRegistry(rt *Runtime, cfg Config, dirs []string, log *slog.Logger, reg prometheus.Registerer, ready ReadinessSink) *Registry {
	met, err := NewMetrics(reg)
	if err != nil {
		met, _ = NewMetrics(nil)
	}
	if ready == nil {
		ready = nopReadiness{}
	}
	r := &Registry{
		rt: rt, cfg: cfg, dirs: dirs, log: log, met: met, mErr: err, ready: ready,
		ncpu: runtime.GOMAXPROCS(0), now: time.Now, entries: map[string]*entry{}, compares: map[string]Comparator{},
		bgKill: make(chan struct{}),
	}
	if len(dirs) > 0 {
		r.store = NewStore(dirs[0], nil)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

type nopReadiness struct{}

func (nopReadiness) Set(string, bool, string) {}

// Metrics returns the registry's metrics.
func (r *Registry) Metrics() *Metrics { return r.met }

// preloaded returns the models loaded at start, required ones first.
func (r *Registry) preloaded() []string {
	out := append([]string(nil), r.cfg.Required...)
	for _, n := range r.cfg.Preload {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Start loads and warms the preloaded models, one after the other,
// reporting each to the readiness sink as "loading" and then ready with
// the execution provider and timings. A preloaded model that is not
// installed or fails to load is reported ready with the reason and the fix
// (the daemon runs without it), unless it is required: then Start returns
// the error. Start also starts the idle-unload janitor and, with
// shadow.auto_start, shadow evaluation of installed candidates. It blocks
// until the loads finish; ctx cancels them.
func (r *Registry) Start(ctx context.Context) error {
	if r.mErr != nil {
		return fmt.Errorf("inference metrics: %w", r.mErr)
	}
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return nil
	}
	if r.stopped {
		r.mu.Unlock()
		return fmt.Errorf("start model registry: %w", ErrClosed)
	}
	r.started = true
	r.mu.Unlock()
	names := r.preloaded()
	for _, n := range names {
		r.ready.Set(readyName(n), false, StateLoading)
		r.entry(n).preload = true
	}
	for _, n := range names {
		e := r.entry(n)
		required := slices.Contains(r.cfg.Required, n)
		_, err := e.ensure(ctx)
		switch {
		case err == nil:
		case required:
			r.ready.Set(readyName(n), false, "failed: "+err.Error())
			return fmt.Errorf("load required model %s: %w", n, err)
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			// ensure reported the reason and the fix to readiness.
			r.log.Warn("optional model not loaded; continuing without it", logKeyModel, n, logKeyErr, err)
		}
	}
	r.wg.Add(1)
	go r.janitor()
	if r.cfg.Shadow.AutoStart {
		for _, im := range ListInstalled(r.dirs) {
			if im.Slot == SlotCandidate && !im.Hidden && im.Err == nil {
				if _, err := r.StartShadow(ctx, im.Name, ShadowOptions{}); err != nil {
					r.log.Warn("shadow evaluation not started", logKeyModel, im.Name, logKeyErr, err)
				}
			}
		}
	}
	return nil
}

func readyName(model string) string { return "model:" + model }

// Stop stops background work and shadow evaluation, waits for running
// requests (terminating them when ctx ends first) and releases every model.
// Idempotent; safe after a failed Start.
func (r *Registry) Stop(ctx context.Context) error {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	entries := make([]*entry, 0, len(r.entries))
	for _, e := range r.entries {
		entries = append(entries, e)
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	var errs []error
	for _, e := range entries {
		if err := e.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// Versions replaced earlier and still draining.
	done := make(chan struct{})
	go func() { r.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		close(r.bgKill)
		<-done
	}
	return errors.Join(errs...)
}

// Close is Stop without a deadline. Nil-safe and idempotent.
func (r *Registry) Close() error {
	if r == nil {
		return nil
	}
	return r.Stop(context.Background())
}

// entry returns (creating) the entry of a model.
func (r *Registry) entry(name string) *entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[name]
	if !ok {
		e = &entry{r: r, name: name, set: r.cfg.settingsFor(name, r.ncpu), state: StateUnloaded}
		r.entries[name] = e
	}
	return e
}

// Handle returns a handle on model name, which must be installed (or
// configured with a dir). It does not load the model: the first Run does,
// unless it was preloaded. The error wraps ErrModelNotFound.
func (r *Registry) Handle(name string) (*Handle, error) {
	if !modelNameRe.MatchString(name) {
		return nil, fmt.Errorf("%w: %q is not a model name", ErrModelNotFound, name)
	}
	r.mu.Lock()
	e, ok := r.entries[name]
	stopped := r.stopped
	r.mu.Unlock()
	if stopped {
		return nil, fmt.Errorf("model %s: %w", name, ErrClosed)
	}
	if !ok {
		if _, err := r.findDir(name); err != nil {
			return nil, err
		}
		e = r.entry(name)
	}
	return &Handle{e: e}, nil
}

// findDir resolves the serving folder of a model.
func (r *Registry) findDir(name string) (string, error) {
	if d := r.cfg.Models[name].Dir; d != "" {
		return d, nil
	}
	return FindModel(r.dirs, name, SlotServing)
}

// Handle is a model as callers see it: Run goes to the version currently
// serving, loading it on first use or after an idle unload, mirroring a
// share of requests to a candidate version during shadow evaluation. Safe
// for concurrent use; cheap to copy.
type Handle struct{ e *entry }

// Name returns the model's name.
func (h *Handle) Name() string { return h.e.name }

// Run runs the serving version of the model (see Model.Run). It blocks
// while the model loads when it is not loaded. A request is never failed by
// a promotion, rollback or idle unload happening at the same time. Errors
// also wrap ErrModelNotFound and load errors.
func (h *Handle) Run(ctx context.Context, inputs []Tensor) ([]Tensor, error) {
	e := h.e
	v, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	e.lastUsed.Store(e.r.now().UnixNano())
	sh := e.shadowing()
	var t0 time.Time
	if sh != nil {
		t0 = time.Now()
	}
	outs, err := v.model.Run(ctx, inputs)
	if sh != nil && err == nil {
		sh.offer(inputs, outs, time.Since(t0))
	}
	v.release()
	return outs, err
}

// Model returns the loaded serving version, loading it if needed. The
// returned model stays valid until the next promotion, rollback or unload;
// use it only to read its contract and status, and run through the Handle.
func (h *Handle) Model(ctx context.Context) (*Model, error) {
	v, err := h.e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer v.release()
	return v.model, nil
}

// entry is one model name's state.
type entry struct {
	r    *Registry
	name string
	set  modelSettings

	lastUsed atomic.Int64 // unix nanoseconds of the last Run

	mu         sync.Mutex
	preload    bool
	cur        *version
	state      string
	lastErr    error
	lastErrAt  time.Time
	loading    chan struct{} // closed when the running load ends
	shadow     *shadow
	lastShadow *ShadowReport // the last finished shadow evaluation
	prevDir    string        // the folder the last swap replaced
	history    []SwapEvent

	// swapMu serialises shadow starts, promotions and rollbacks.
	swapMu sync.Mutex
}

// version is one loaded Model with a count of the requests using it, so
// that a replaced version is released only once they are done.
type version struct {
	model   *Model
	dir     string
	mu      sync.Mutex
	refs    int
	retired bool
	drained chan struct{}
}

func newVersion(m *Model, dir string) *version {
	return &version{model: m, dir: dir, drained: make(chan struct{})}
}

func (v *version) tryRef() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.retired {
		return false
	}
	v.refs++
	return true
}

func (v *version) release() {
	v.mu.Lock()
	v.refs--
	done := v.retired && v.refs == 0
	v.mu.Unlock()
	if done {
		close(v.drained)
	}
}

// retire stops new requests from using v; drained closes when the last
// one finishes.
func (v *version) retire() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.retired {
		return
	}
	v.retired = true
	if v.refs == 0 {
		close(v.drained)
	}
}

// retireAndClose retires v and releases it once drained, waiting up to ctx
// (after which it is released in the background when drained, without
// failing the requests still on it).
func (r *Registry) retireAndClose(ctx context.Context, v *version, reason string) {
	v.retire()
	r.met.ready.WithLabelValues(v.model.Name(), v.model.Version(), v.model.EP(), "serving").Set(0)
	r.met.ready.WithLabelValues(v.model.Name(), v.model.Version(), v.model.EP(), "candidate").Set(0)
	r.met.memory.DeleteLabelValues(v.model.Name(), v.model.Version(), "host")
	r.met.memory.DeleteLabelValues(v.model.Name(), v.model.Version(), "gpu")
	r.met.unloads.WithLabelValues(v.model.Name(), reason).Inc()
	closeIt := func(ctx context.Context) {
		if err := v.model.Shutdown(ctx); err != nil {
			r.log.Warn("release model", logKeyModel, v.model.Name(), logKeyErr, err)
		}
	}
	select {
	case <-v.drained:
		closeIt(context.Background())
		return
	case <-ctx.Done():
	}
	// Still serving requests: release it when they are done, or when Stop
	// gives up waiting (then what still runs is terminated). Once Stop has
	// begun, release it here, within the caller's (Stop's) deadline.
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		closeIt(ctx)
		return
	}
	r.bg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.bg.Done()
		select {
		case <-v.drained:
			closeIt(context.Background())
		case <-r.bgKill:
			expired, cancel := context.WithCancel(context.Background())
			cancel()
			closeIt(expired)
		}
	}()
}

// acquire returns the serving version with a reference held, loading it
// when needed.
func (e *entry) acquire(ctx context.Context) (*version, error) {
	for {
		e.mu.Lock()
		if v := e.cur; v != nil && v.tryRef() {
			e.mu.Unlock()
			return v, nil
		}
		e.mu.Unlock()
		if _, err := e.ensure(ctx); err != nil {
			return nil, err
		}
	}
}

// ensure loads the serving version unless it is loaded, sharing one load
// between concurrent callers; each caller waits with its own ctx while the
// load runs under the registry's.
func (e *entry) ensure(ctx context.Context) (*version, error) {
	r := e.r
	e.mu.Lock()
	for {
		if e.cur != nil {
			v := e.cur
			e.mu.Unlock()
			return v, nil
		}
		if e.state == StateFailed && r.now().Sub(e.lastErrAt) < failRetry && e.lastErr != nil {
			err := e.lastErr
			e.mu.Unlock()
			return nil, err
		}
		if e.loading == nil {
			break
		}
		ch := e.loading
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("load %s: %w", e.name, ctx.Err())
		}
		e.mu.Lock()
		if e.cur == nil && e.lastErr != nil && e.state == StateFailed {
			err := e.lastErr
			e.mu.Unlock()
			return nil, err
		}
	}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		e.mu.Unlock()
		return nil, fmt.Errorf("load %s: %w", e.name, ErrClosed)
	}
	r.wg.Add(1)
	r.mu.Unlock()
	ch := make(chan struct{})
	e.loading, e.state = ch, StateLoading
	e.mu.Unlock()
	go func() {
		defer r.wg.Done()
		e.load(ch)
	}()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, fmt.Errorf("load %s: %w", e.name, ctx.Err())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur == nil {
		if e.lastErr == nil {
			return nil, fmt.Errorf("load %s: %w", e.name, ErrClosed)
		}
		return nil, e.lastErr
	}
	return e.cur, nil
}

// load loads the serving version and publishes it (or the error).
func (e *entry) load(done chan struct{}) {
	r := e.r
	defer close(done)
	if e.preload {
		r.ready.Set(readyName(e.name), false, StateLoading)
	}
	dir, err := r.findDir(e.name)
	var m *Model
	if err == nil {
		m, err = r.loadDir(r.ctx, e, dir, "serving")
	}
	e.mu.Lock()
	e.loading = nil
	if err != nil {
		e.state, e.lastErr, e.lastErrAt = StateFailed, err, r.now()
		if errors.Is(err, ErrModelNotFound) {
			e.state = StateAbsent
		}
		e.mu.Unlock()
		if e.preload {
			r.ready.Set(readyName(e.name), true, notLoadedDetail(e.name, err))
		}
		r.log.Error("model load failed", logKeyModel, e.name, logKeyErr, err)
		return
	}
	e.cur, e.state, e.lastErr = newVersion(m, dir), StateReady, nil
	e.lastUsed.Store(r.now().UnixNano())
	e.mu.Unlock()
	r.met.ready.WithLabelValues(m.Name(), m.Version(), m.EP(), "serving").Set(1)
	if e.preload {
		r.ready.Set(readyName(e.name), true, readyDetail(m, ""))
	}
}

// notLoadedDetail is the readiness detail of an optional model that did not
// load: what happened and what to do.
func notLoadedDetail(name string, err error) string {
	if errors.Is(err, ErrModelNotFound) {
		fix := fmt.Sprintf("copy the %s model folder to /var/lib/zhiyin/models/%s (the zhiyin package ships it in %s) and restart", name, name, SystemModelDir)
		if name == VADModel {
			fix += "; in a source tree run scripts/fetch-deps.sh"
		}
		return "not installed (optional, running without it): " + fix
	}
	return "failed (optional, running without it): " + err.Error()
}

func readyDetail(m *Model, how string) string {
	st := m.Stats()
	d := fmt.Sprintf("%s %s warmed on %s in %s (load %s)", m.Name(), m.Version(), m.EP(), st.Warmup.Round(time.Millisecond), st.Load.Round(time.Millisecond))
	if reason, _ := m.Fallback(); reason != "" {
		d += "; CUDA not used: " + reason
	}
	if how != "" {
		d += "; " + how
	}
	return d
}

// loadDir loads the model folder dir with e's settings (serialised with
// other loads).
func (r *Registry) loadDir(ctx context.Context, e *entry, dir, role string) (*Model, error) {
	man, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if man.Name != e.name {
		return nil, fmt.Errorf("%w: %s names model %q, expected %q", ErrManifest, dir, man.Name, e.name)
	}
	bc := e.set.batch
	if !e.set.batchModeSet && man.Runtime.Batching != "" {
		bc.Mode = man.Runtime.Batching
	}
	if !e.set.maxBatchSet && man.Runtime.MaxBatch > 0 {
		bc.MaxBatch = man.Runtime.MaxBatch
	}
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := r.rt.Load(ctx, man, LoadOptions{Provider: e.set.provider, Concurrency: e.set.concurrency, Batch: bc, Metrics: r.met, Log: r.log})
	if err != nil {
		return nil, err
	}
	st := m.Stats()
	r.log.Info("model ready", logKeyModel, m.Name(), logKeyVersion, m.Version(), logKeyEP, m.EP(), "role", role,
		"load", st.Load.Round(time.Millisecond), "warmup", st.Warmup.Round(time.Millisecond), "host_memory", st.HostMemory, logKeyPath, dir)
	return m, nil
}

// janitor unloads models idle longer than their idle_unload.
func (r *Registry) janitor() {
	defer r.wg.Done()
	tick := time.NewTicker(r.janitorPeriod())
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
			r.unloadIdle()
		}
	}
}

func (r *Registry) janitorPeriod() time.Duration {
	p := 30 * time.Second
	r.mu.Lock()
	defer r.mu.Unlock()
	consider := func(d time.Duration) {
		if d > 0 && d/4 < p {
			p = max(d/4, 250*time.Millisecond)
		}
	}
	consider(r.cfg.IdleUnload)
	for _, mc := range r.cfg.Models {
		consider(mc.IdleUnload)
	}
	return p
}

// unloadIdle releases every serving version idle for longer than its
// model's idle_unload (shadowing models are kept).
func (r *Registry) unloadIdle() {
	r.mu.Lock()
	entries := make([]*entry, 0, len(r.entries))
	for _, e := range r.entries {
		entries = append(entries, e)
	}
	r.mu.Unlock()
	now := r.now()
	for _, e := range entries {
		idle := e.set.idleUnload
		if idle <= 0 {
			continue
		}
		e.mu.Lock()
		v := e.cur
		if v == nil || e.shadow != nil || now.Sub(time.Unix(0, e.lastUsed.Load())) < idle {
			e.mu.Unlock()
			continue
		}
		e.cur, e.state = nil, StateUnloaded
		preload := e.preload
		e.mu.Unlock()
		r.log.Info("model unloaded after idle time", logKeyModel, e.name, "idle", idle)
		if preload {
			r.ready.Set(readyName(e.name), true, fmt.Sprintf("unloaded after %s idle; loads again (with warm-up) on the next request", idle))
		}
		r.retireAndClose(r.ctx, v, "idle")
	}
}

// close releases the entry's versions.
func (e *entry) close(ctx context.Context) error {
	e.mu.Lock()
	v, sh := e.cur, e.shadow
	e.cur, e.shadow, e.state = nil, nil, StateUnloaded
	e.mu.Unlock()
	if sh != nil {
		sh.stop()
		e.r.retireAndClose(ctx, sh.cand, "stop")
	}
	if v != nil {
		v.retire()
		select {
		case <-v.drained:
		case <-ctx.Done():
		}
		e.r.met.ready.WithLabelValues(v.model.Name(), v.model.Version(), v.model.EP(), "serving").Set(0)
		e.r.met.unloads.WithLabelValues(e.name, "stop").Inc()
		// Shutdown terminates what still runs when ctx has ended.
		return v.model.Shutdown(ctx)
	}
	return nil
}

// ModelStatus is one model's state, for `zhiyin models list`, /readyz
// details and the admin API. It is JSON-encodable.
type ModelStatus struct {
	Name    string `json:"name"`
	Kind    string `json:"kind,omitempty"`
	Version string `json:"version,omitempty"`
	// State is absent, unloaded, loading, ready or failed.
	State string `json:"state"`
	// EP is the execution provider the loaded version runs on (cpu, cuda).
	EP string `json:"ep,omitempty"`
	// Provider is what the configuration asked for (cpu, cuda, auto).
	Provider string `json:"provider"`
	// Fallback says why CUDA is not used when it was asked for.
	Fallback       string     `json:"fallback,omitempty"`
	Dir            string     `json:"dir,omitempty"`
	Preload        bool       `json:"preload"`
	Batching       bool       `json:"batching"`
	MaxBatch       int        `json:"max_batch,omitempty"`
	Concurrency    int        `json:"concurrency"`
	IdleUnload     string     `json:"idle_unload,omitempty"`
	HostMemory     int64      `json:"host_memory_bytes"`
	GPUMemory      int64      `json:"gpu_memory_bytes"`
	LoadSeconds    float64    `json:"load_seconds,omitempty"`
	WarmupSeconds  float64    `json:"warmup_seconds,omitempty"`
	LoadedAt       *time.Time `json:"loaded_at,omitempty"`
	LastUsed       *time.Time `json:"last_used,omitempty"`
	Error          string     `json:"error,omitempty"`
	Candidate      string     `json:"candidate,omitempty"`       // version installed or loaded as candidate
	Shadowing      bool       `json:"shadowing"`                 // a candidate is loaded and mirrored to
	PreviousFolder string     `json:"previous_folder,omitempty"` // what a rollback returns to
}

// List returns the status of every model the registry knows or finds
// installed, sorted by name. It reads the manifests in the model dirs.
func (r *Registry) List() []ModelStatus {
	names := map[string]bool{}
	cands := map[string]string{}
	for _, im := range ListInstalled(r.dirs) {
		if im.Hidden {
			continue
		}
		switch im.Slot {
		case SlotServing:
			names[im.Name] = true
		case SlotCandidate:
			if im.Manifest != nil {
				cands[im.Name] = im.Manifest.Version
			}
		}
	}
	r.mu.Lock()
	for n := range r.entries {
		names[n] = true
	}
	for _, n := range r.preloaded() {
		names[n] = true
	}
	r.mu.Unlock()
	out := make([]ModelStatus, 0, len(names))
	for n := range names {
		st := r.status(n)
		if st.Candidate == "" {
			st.Candidate = cands[n]
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Status returns one model's status; the error wraps ErrModelNotFound when
// the model is neither known nor installed.
func (r *Registry) Status(name string) (ModelStatus, error) {
	r.mu.Lock()
	_, known := r.entries[name]
	r.mu.Unlock()
	if !known {
		if _, err := r.findDir(name); err != nil {
			return ModelStatus{}, err
		}
	}
	st := r.status(name)
	if st.Candidate == "" {
		if d, err := FindModel(r.dirs, name, SlotCandidate); err == nil {
			if m, err := ReadManifest(d); err == nil {
				st.Candidate = m.Version
			}
		}
	}
	return st, nil
}

func (r *Registry) status(name string) ModelStatus {
	r.mu.Lock()
	e, ok := r.entries[name]
	r.mu.Unlock()
	set := r.cfg.settingsFor(name, r.ncpu)
	st := ModelStatus{Name: name, State: StateUnloaded, Provider: set.provider, Concurrency: set.concurrency,
		Preload: slices.Contains(r.cfg.Preload, name) || slices.Contains(r.cfg.Required, name)}
	if set.idleUnload > 0 {
		st.IdleUnload = set.idleUnload.String()
	}
	if dir, err := r.findDir(name); err == nil {
		st.Dir = dir
		if m, err := ReadManifest(dir); err == nil {
			st.Kind, st.Version = m.Kind, m.Version
		} else {
			st.Error = err.Error()
		}
	} else {
		st.State = StateAbsent
	}
	if !ok {
		return st
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != "" && !(st.State == StateAbsent && e.state == StateUnloaded) {
		st.State = e.state
	}
	if e.lastErr != nil && e.cur == nil {
		st.Error = e.lastErr.Error()
	}
	if lu := e.lastUsed.Load(); lu > 0 {
		t := time.Unix(0, lu)
		st.LastUsed = &t
	}
	st.PreviousFolder = e.prevDir
	if v := e.cur; v != nil {
		m := v.model
		ls := m.Stats()
		st.Version, st.Kind, st.Dir, st.EP = m.Version(), m.man.Kind, v.dir, m.EP()
		st.Fallback, _ = m.Fallback()
		st.Batching, st.MaxBatch = m.Batching()
		st.HostMemory, st.GPUMemory = ls.HostMemory, ls.GPUMemory
		st.LoadSeconds, st.WarmupSeconds = ls.Load.Seconds(), ls.Warmup.Seconds()
		t := ls.LoadedAt
		st.LoadedAt = &t
		st.Concurrency = cap(m.slots)
	}
	if e.shadow != nil {
		st.Shadowing = true
		st.Candidate = e.shadow.cand.model.Version()
	}
	return st
}

// SwapEvent records a promotion or rollback.
type SwapEvent struct {
	At     time.Time `json:"at"`
	Action string    `json:"action"` // promote or rollback
	From   string    `json:"from"`   // version
	To     string    `json:"to"`
}

// ModelReport is what GET /v1/admin/models/{name} returns: the model's
// status, its shadow evaluation and its recent swaps.
type ModelReport struct {
	ModelStatus
	Shadow  *ShadowReport `json:"shadow,omitempty"`
	History []SwapEvent   `json:"history,omitempty"`
}

// Report returns the model's report; the error wraps ErrModelNotFound.
func (r *Registry) Report(name string) (ModelReport, error) {
	st, err := r.Status(name)
	if err != nil {
		return ModelReport{}, err
	}
	rep := ModelReport{ModelStatus: st}
	r.mu.Lock()
	e := r.entries[name]
	r.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		if e.shadow != nil {
			sr := e.shadow.report()
			rep.Shadow = &sr
		} else if e.lastShadow != nil {
			sr := *e.lastShadow
			rep.Shadow = &sr
		}
		rep.History = append([]SwapEvent(nil), e.history...)
		e.mu.Unlock()
	}
	return rep, nil
}
