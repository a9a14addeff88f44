package inference

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"
)

// Comparator decides whether a candidate version's outputs agree with the
// serving version's for one mirrored request (e.g. the asr package compares
// decoded text). It must not modify or keep the tensors.
type Comparator func(serving, candidate []Tensor) bool

// SetComparator replaces the manifest's comparison for model name's shadow
// evaluations started afterwards.
func (r *Registry) SetComparator(name string, c Comparator) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.compares[name] = c
}

// ShadowOptions override the configuration for one shadow evaluation.
type ShadowOptions struct {
	// Dir is the candidate's folder; empty means NAME.candidate in the
	// model dirs (what `zhiyin models install --candidate` creates).
	Dir string `json:"dir,omitempty"`
	// Fraction of requests mirrored; 0 means inference.shadow.fraction.
	Fraction float64 `json:"fraction,omitempty"`
	// Window is how long to mirror; 0 means inference.shadow.window.
	Window time.Duration `json:"window,omitempty"`
}

// ShadowReport is the outcome of a shadow evaluation so far. Latencies are
// milliseconds over the last 2048 mirrored requests.
type ShadowReport struct {
	Serving     string     `json:"serving_version"`
	Candidate   string     `json:"candidate_version"`
	CandidateEP string     `json:"candidate_ep"`
	Dir         string     `json:"dir"`
	Started     time.Time  `json:"started"`
	Until       *time.Time `json:"until,omitempty"`
	// Active is true while requests are being mirrored.
	Active   bool    `json:"active"`
	Fraction float64 `json:"fraction"`
	// Compare is argmax, exact, close or custom.
	Compare  string `json:"compare"`
	Mirrored int64  `json:"mirrored"`
	Agree    int64  `json:"agree"`
	Disagree int64  `json:"disagree"`
	Errors   int64  `json:"errors"`
	// Skipped counts sampled requests not mirrored because
	// shadow.max_inflight mirrored runs were already executing.
	Skipped int64 `json:"skipped"`
	// Agreement is Agree/(Agree+Disagree), 0 before any comparison.
	Agreement    float64 `json:"agreement"`
	ServingP50   float64 `json:"serving_p50_ms"`
	ServingP95   float64 `json:"serving_p95_ms"`
	CandidateP50 float64 `json:"candidate_p50_ms"`
	CandidateP95 float64 `json:"candidate_p95_ms"`
	LastError    string  `json:"last_error,omitempty"`
}

// shadow mirrors a share of a model's requests to a candidate version.
type shadow struct {
	r        *Registry
	name     string
	serving  string // serving version at start
	cand     *version
	dir      string
	fraction float64
	started  time.Time
	until    time.Time
	compare  Comparator
	mode     string
	sem      chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu                                   sync.Mutex
	stopped                              bool
	mirrored, agree, disagree, errs, skp int64
	lastErr                              string
	servLat, candLat                     latencies
}

// latencies keeps the last samples of a latency.
type latencies struct {
	buf  [2048]float64
	n    int
	next int
}

func (l *latencies) add(d time.Duration) {
	l.buf[l.next] = float64(d) / float64(time.Millisecond)
	l.next = (l.next + 1) % len(l.buf)
	l.n = min(l.n+1, len(l.buf))
}

func (l *latencies) quantile(q float64) float64 {
	if l.n == 0 {
		return 0
	}
	s := append([]float64(nil), l.buf[:l.n]...)
	sort.Float64s(s)
	i := int(math.Ceil(q*float64(l.n))) - 1
	return s[max(i, 0)]
}

// shadowing returns the active shadow of the entry, or nil.
func (e *entry) shadowing() *shadow {
	e.mu.Lock()
	s := e.shadow
	e.mu.Unlock()
	if s == nil || !s.active() {
		return nil
	}
	return s
}

func (s *shadow) active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.stopped && (s.until.IsZero() || s.r.now().Before(s.until))
}

// offer mirrors one served request to the candidate when it is sampled and
// a mirrored run may start; it copies the inputs and outputs and returns
// at once.
func (s *shadow) offer(inputs, outs []Tensor, servDur time.Duration) {
	if rand.Float64() >= s.fraction {
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.mu.Lock()
		s.skp++
		s.mu.Unlock()
		s.r.met.shadowResults.WithLabelValues(s.name, s.cand.model.Version(), "skipped").Inc()
		return
	}
	s.mu.Lock()
	if s.stopped || !s.cand.tryRef() {
		s.mu.Unlock()
		<-s.sem
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	in := make([]Tensor, len(inputs))
	for i, t := range inputs {
		in[i] = t.Clone()
	}
	served := make([]Tensor, len(outs))
	for i, t := range outs {
		served[i] = t.Clone()
	}
	go func() {
		defer s.wg.Done()
		defer func() { <-s.sem }()
		defer s.cand.release()
		t0 := time.Now()
		got, err := s.cand.model.Run(s.ctx, in)
		d := time.Since(t0)
		if s.ctx.Err() != nil {
			return // stopped: not a result
		}
		result := "agree"
		agree := false
		if err == nil {
			agree = s.compare(served, got)
			if !agree {
				result = "disagree"
			}
		} else {
			result = "error"
		}
		s.mu.Lock()
		s.mirrored++
		switch {
		case err != nil:
			s.errs++
			s.lastErr = err.Error()
		case agree:
			s.agree++
		default:
			s.disagree++
		}
		s.servLat.add(servDur)
		s.candLat.add(d)
		s.mu.Unlock()
		v := s.cand.model.Version()
		s.r.met.shadowResults.WithLabelValues(s.name, v, result).Inc()
		s.r.met.shadowDuration.WithLabelValues(s.name, v).Observe(d.Seconds())
	}()
}

// stop ends mirroring and waits for the mirrored runs.
func (s *shadow) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

func (s *shadow) report() ShadowReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := ShadowReport{
		Serving: s.serving, Candidate: s.cand.model.Version(), CandidateEP: s.cand.model.EP(), Dir: s.dir,
		Started: s.started, Active: !s.stopped && (s.until.IsZero() || s.r.now().Before(s.until)),
		Fraction: s.fraction, Compare: s.mode, Mirrored: s.mirrored, Agree: s.agree, Disagree: s.disagree,
		Errors: s.errs, Skipped: s.skp, LastError: s.lastErr,
		ServingP50: s.servLat.quantile(.5), ServingP95: s.servLat.quantile(.95),
		CandidateP50: s.candLat.quantile(.5), CandidateP95: s.candLat.quantile(.95),
	}
	if !s.until.IsZero() {
		u := s.until
		rep.Until = &u
	}
	if n := s.agree + s.disagree; n > 0 {
		rep.Agreement = float64(s.agree) / float64(n)
	}
	return rep
}

// StartShadow loads and warms the candidate version of model name next to
// the serving one and starts mirroring a share of its requests to it
// (results never reach callers). A shadow already running for the model is
// replaced. It blocks while the candidate loads. Errors wrap ErrNoCandidate
// or ErrContract (the candidate's inputs differ from the serving version's).
func (r *Registry) StartShadow(ctx context.Context, name string, opts ShadowOptions) (ShadowReport, error) {
	e, err := r.liveEntry(name)
	if err != nil {
		return ShadowReport{}, err
	}
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	dir := opts.Dir
	if dir == "" {
		if dir, err = FindModel(r.dirs, name, SlotCandidate); err != nil {
			return ShadowReport{}, fmt.Errorf("shadow %s: %w: install one with `zhiyin models install --candidate SRC` (%v)", name, ErrNoCandidate, err)
		}
	}
	m, err := r.loadDir(ctx, e, dir, "candidate")
	if err != nil {
		return ShadowReport{}, fmt.Errorf("shadow %s: %w", name, err)
	}
	cand := newVersion(m, dir)
	servingMan, servingVersion := r.servingManifest(e)
	if servingMan != nil {
		if err := sameInputs(&servingMan.Contract, &m.man.Contract); err != nil {
			_ = m.Close()
			return ShadowReport{}, fmt.Errorf("shadow %s: %w", name, err)
		}
	}
	frac := opts.Fraction
	if frac <= 0 || frac > 1 {
		frac = r.cfg.Shadow.Fraction
	}
	window := opts.Window
	if window <= 0 {
		window = r.cfg.Shadow.Window
	}
	s := &shadow{r: r, name: name, serving: servingVersion, cand: cand, dir: dir, fraction: frac, started: r.now(),
		sem: make(chan struct{}, r.cfg.Shadow.MaxInflight)}
	if window > 0 {
		s.until = s.started.Add(window)
	}
	s.ctx, s.cancel = context.WithCancel(r.ctx)
	r.mu.Lock()
	custom := r.compares[name]
	r.mu.Unlock()
	if custom != nil {
		s.compare, s.mode = custom, "custom"
	} else {
		mode, out, tol := m.man.compareMode()
		s.mode = mode
		s.compare = func(a, b []Tensor) bool { return compareOutputs(mode, out, tol, a, b) }
	}
	e.mu.Lock()
	old := e.shadow
	e.shadow = s
	e.mu.Unlock()
	if old != nil {
		old.stop()
		r.retireAndClose(ctx, old.cand, "shadow")
	}
	r.met.ready.WithLabelValues(name, m.Version(), m.EP(), "candidate").Set(1)
	r.log.Info("shadow evaluation started", logKeyModel, name, "candidate", m.Version(), "serving", servingVersion, "fraction", frac, "window", window)
	return s.report(), nil
}

// StopShadow stops mirroring and releases the candidate; its final report
// stays available in Report. The error wraps ErrNoCandidate when no shadow
// runs.
func (r *Registry) StopShadow(ctx context.Context, name string) (ShadowReport, error) {
	e, err := r.liveEntry(name)
	if err != nil {
		return ShadowReport{}, err
	}
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	e.mu.Lock()
	s := e.shadow
	e.shadow = nil
	e.mu.Unlock()
	if s == nil {
		return ShadowReport{}, fmt.Errorf("stop shadow %s: %w: no shadow evaluation is running", name, ErrNoCandidate)
	}
	s.stop()
	rep := s.report()
	e.mu.Lock()
	e.lastShadow = &rep
	e.mu.Unlock()
	r.retireAndClose(ctx, s.cand, "shadow")
	return rep, nil
}

func (r *Registry) liveEntry(name string) (*entry, error) {
	if !modelNameRe.MatchString(name) {
		return nil, fmt.Errorf("%w: %q is not a model name", ErrModelNotFound, name)
	}
	r.mu.Lock()
	stopped := r.stopped
	r.mu.Unlock()
	if stopped {
		return nil, fmt.Errorf("model %s: %w", name, ErrClosed)
	}
	return r.entry(name), nil
}

// servingManifest returns the serving version's manifest and version, from
// memory or disk (nil when none is installed).
func (r *Registry) servingManifest(e *entry) (*Manifest, string) {
	e.mu.Lock()
	v := e.cur
	e.mu.Unlock()
	if v != nil {
		return v.model.man, v.model.Version()
	}
	dir, err := r.findDir(e.name)
	if err != nil {
		return nil, ""
	}
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, ""
	}
	return m, m.Version
}

// sameInputs checks that a candidate takes what the serving version takes.
func sameInputs(serving, cand *Contract) error {
	if len(serving.Inputs) != len(cand.Inputs) {
		return fmt.Errorf("%w: the candidate has %d inputs, the serving version %d", ErrContract, len(cand.Inputs), len(serving.Inputs))
	}
	for i, a := range serving.Inputs {
		b := cand.Inputs[i]
		same := a.DType == b.DType && len(a.Shape) == len(b.Shape)
		for j := 0; same && j < len(a.Shape); j++ {
			same = a.Shape[j].Fixed() == b.Shape[j].Fixed() && (!a.Shape[j].Fixed() || a.Shape[j].Size == b.Shape[j].Size)
		}
		if !same {
			return fmt.Errorf("%w: candidate input %d (%s) is %s%s, the serving version's (%s) is %s%s", ErrContract,
				i, b.Name, b.DType, shapeString(b.Shape), a.Name, a.DType, shapeString(a.Shape))
		}
	}
	if len(serving.Outputs) != len(cand.Outputs) {
		return fmt.Errorf("%w: the candidate has %d outputs, the serving version %d", ErrContract, len(cand.Outputs), len(serving.Outputs))
	}
	return nil
}

// compareOutputs is the built-in comparison of output out.
func compareOutputs(mode string, out int, tol float64, a, b []Tensor) bool {
	if out >= len(a) || out >= len(b) {
		return false
	}
	x, y := a[out], b[out]
	if !slices.Equal(x.Shape, y.Shape) || x.Len() != y.Len() {
		return false
	}
	switch mode {
	case "argmax":
		if len(x.Shape) == 0 {
			return x.float64At(0) == y.float64At(0)
		}
		k := int(x.Shape[len(x.Shape)-1])
		if k == 0 {
			return true
		}
		for row := 0; row*k < x.Len(); row++ {
			if argmax(x, row*k, k) != argmax(y, row*k, k) {
				return false
			}
		}
		return true
	case "close":
		for i := 0; i < x.Len(); i++ {
			if math.Abs(x.float64At(i)-y.float64At(i)) > tol {
				return false
			}
		}
		return true
	default:
		for i := 0; i < x.Len(); i++ {
			if x.float64At(i) != y.float64At(i) {
				return false
			}
		}
		return true
	}
}

func argmax(t Tensor, off, n int) int {
	best, bi := math.Inf(-1), 0
	for i := 0; i < n; i++ {
		if v := t.float64At(off + i); v > best {
			best, bi = v, i
		}
	}
	return bi
}

// Promote makes the candidate the serving version: the candidate being
// shadowed, else NAME.candidate loaded and warmed now. On disk the
// candidate becomes NAME and the old version NAME.previous; in memory new
// requests go to the candidate at once, requests running on the old version
// finish there (none fails), and the old version is released when they are
// done (waiting up to ctx, then in the background). Errors wrap
// ErrNoCandidate.
func (r *Registry) Promote(ctx context.Context, name string) (SwapEvent, error) {
	e, err := r.liveEntry(name)
	if err != nil {
		return SwapEvent{}, err
	}
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	e.mu.Lock()
	s := e.shadow
	e.mu.Unlock()
	var cand *version
	var shadowRep *ShadowReport
	if s != nil {
		s.stop()
		rep := s.report()
		shadowRep, cand = &rep, s.cand
	} else {
		dir, err := FindModel(r.dirs, name, SlotCandidate)
		if err != nil {
			return SwapEvent{}, fmt.Errorf("promote %s: %w: install one with `zhiyin models install --candidate SRC` (%v)", name, ErrNoCandidate, err)
		}
		m, err := r.loadDir(ctx, e, dir, "candidate")
		if err != nil {
			return SwapEvent{}, fmt.Errorf("promote %s: %w", name, err)
		}
		cand = newVersion(m, dir)
	}
	inStore := r.store != nil && filepath.Dir(cand.dir) == filepath.Clean(r.store.Dir) && filepath.Base(cand.dir) == slotName(name, SlotCandidate)
	if inStore {
		if err := r.store.Promote(name); err != nil {
			if s != nil {
				// Keep the shadow's candidate loaded but idle; the operator
				// can retry.
				e.mu.Lock()
				e.shadow, e.lastShadow = nil, shadowRep
				e.mu.Unlock()
			}
			r.retireAndClose(ctx, cand, "swap")
			return SwapEvent{}, err
		}
		cand.dir = filepath.Join(r.store.Dir, name)
	} else {
		r.log.Warn("candidate is outside the models folder; promoted in memory only (the next start serves the installed version)", logKeyModel, name, logKeyPath, cand.dir)
	}
	return r.swap(ctx, e, cand, "promote", shadowRep), nil
}

// Rollback returns to the version the last promotion replaced
// (NAME.previous, or the package's copy when the store's version is the
// only one promoted), loading and warming it before switching, exactly like
// Promote. The version rolled back from becomes NAME.candidate on disk.
// Errors wrap ErrNoPrevious.
func (r *Registry) Rollback(ctx context.Context, name string) (SwapEvent, error) {
	e, err := r.liveEntry(name)
	if err != nil {
		return SwapEvent{}, err
	}
	e.swapMu.Lock()
	defer e.swapMu.Unlock()
	if r.store == nil {
		return SwapEvent{}, fmt.Errorf("rollback %s: %w: no models folder", name, ErrNoPrevious)
	}
	prevDir, err := FindModel([]string{r.store.Dir}, name, SlotPrevious)
	if err != nil {
		if _, serr := FindModel([]string{r.store.Dir}, name, SlotServing); serr != nil {
			return SwapEvent{}, fmt.Errorf("rollback %s: %w", name, ErrNoPrevious)
		}
		if prevDir, err = FindModel(r.dirs[1:], name, SlotServing); err != nil {
			return SwapEvent{}, fmt.Errorf("rollback %s: %w: nothing was promoted and no other copy is installed", name, ErrNoPrevious)
		}
	}
	m, err := r.loadDir(ctx, e, prevDir, "previous")
	if err != nil {
		return SwapEvent{}, fmt.Errorf("rollback %s: %w", name, err)
	}
	prev := newVersion(m, prevDir)
	if err := r.store.Rollback(name, r.dirs[1:]); err != nil {
		r.retireAndClose(ctx, prev, "swap")
		return SwapEvent{}, err
	}
	if d, err := r.findDir(name); err == nil {
		prev.dir = d
	}
	e.mu.Lock()
	s := e.shadow
	e.mu.Unlock()
	var rep *ShadowReport
	if s != nil {
		s.stop()
		sr := s.report()
		rep = &sr
		defer r.retireAndClose(ctx, s.cand, "shadow")
	}
	return r.swap(ctx, e, prev, "rollback", rep), nil
}

// swap makes next the serving version and releases the old one.
func (r *Registry) swap(ctx context.Context, e *entry, next *version, action string, rep *ShadowReport) SwapEvent {
	m := next.model
	e.mu.Lock()
	old := e.cur
	ev := SwapEvent{At: r.now(), Action: action, To: m.Version()}
	if old != nil {
		ev.From = old.model.Version()
		e.prevDir = old.dir
	}
	e.cur, e.state, e.lastErr, e.shadow = next, StateReady, nil, nil
	if rep != nil {
		e.lastShadow = rep
	}
	e.history = append(e.history, ev)
	if len(e.history) > 20 {
		e.history = e.history[len(e.history)-20:]
	}
	preload := e.preload
	e.mu.Unlock()
	e.lastUsed.Store(r.now().UnixNano())
	r.met.ready.WithLabelValues(m.Name(), m.Version(), m.EP(), "candidate").Set(0)
	r.met.ready.WithLabelValues(m.Name(), m.Version(), m.EP(), "serving").Set(1)
	r.log.Info("model version switched", logKeyModel, e.name, "action", action, "from", ev.From, "to", ev.To, logKeyEP, m.EP())
	if preload {
		past := map[string]string{"promote": "promoted", "rollback": "rolled back"}[action]
		r.ready.Set(readyName(e.name), true, readyDetail(m, past+" from "+ev.From))
	}
	if old != nil {
		r.retireAndClose(ctx, old, "swap")
	}
	return ev
}
