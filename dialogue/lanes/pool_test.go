package lanes

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func newPool(t testing.TB, cfg Config, reg prometheus.Registerer) *Pool {
	t.Helper()
	p, err := NewPool(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func small(u, uq, n, nq, b, bq int) Config {
	return Config{Urgent: LaneConfig{u, uq}, Normal: LaneConfig{n, nq}, Batch: LaneConfig{b, bq}}
}

// waitFor polls cond until it holds. It synchronises with goroutines the
// test started (a Do that has queued its task); it asserts no timing.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(100 * time.Microsecond)
	}
}

// gate is a task that reports when it started and blocks until released.
type gate struct {
	started chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{started: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) fn() {
	close(g.started)
	<-g.release
}

// occupy runs g on lane l in the background and waits until a worker runs it.
// Any idle normal or batch worker may take urgent work, so to pin the urgent
// workers, occupy the other lanes first.
func occupy(t *testing.T, p *Pool, l Lane, g *gate) chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- p.Do(context.Background(), l, g.fn) }()
	<-g.started
	return errc
}

// recorder records the order tasks ran in.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) task(name string) func() {
	return func() {
		r.mu.Lock()
		r.seen = append(r.seen, name)
		r.mu.Unlock()
	}
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

func TestDoRunsAndWaits(t *testing.T) {
	p := newPool(t, small(1, 1, 1, 1, 1, 1), nil)
	for _, l := range []Lane{Urgent, Normal, Batch} {
		ran := false
		if err := p.Do(context.Background(), l, func() { ran = true }); err != nil {
			t.Fatalf("%v: %v", l, err)
		}
		if !ran { // no synchronisation needed: Do waits for fn
			t.Fatalf("%v: fn did not run before Do returned", l)
		}
	}
	if err := p.Do(context.Background(), Lane(5), func() {}); !errors.Is(err, ErrUnknownLane) {
		t.Fatalf("unknown lane: %v", err)
	}
	if p.Depth(Lane(5)) != 0 {
		t.Fatal("depth of unknown lane")
	}
}

// TestUrgentNotBehindNormal fills normal with blocked work and a full queue;
// an urgent task still completes while normal stays saturated.
func TestUrgentNotBehindNormal(t *testing.T) {
	p := newPool(t, small(1, 10, 2, 10, 1, 10), nil)
	gates := []*gate{newGate(), newGate()}
	var errcs []chan error
	for _, g := range gates {
		errcs = append(errcs, occupy(t, p, Normal, g))
	}
	queued := newGate()
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Do(context.Background(), Normal, func() { <-queued.release })
		}()
	}
	waitFor(t, "normal queue full", func() bool { return p.Depth(Normal) == 10 })
	if err := p.Do(context.Background(), Normal, func() {}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("normal should be full: %v", err)
	}

	done := false
	if err := p.Do(context.Background(), Urgent, func() { done = true }); err != nil || !done {
		t.Fatalf("urgent Do = %v, ran %v", err, done)
	}
	if d := p.Depth(Normal); d != 10 {
		t.Fatalf("normal depth after urgent = %d, want 10 (still saturated)", d)
	}

	for _, g := range gates {
		close(g.release)
	}
	close(queued.release)
	for _, c := range errcs {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// TestIdleNormalWorkersTakeUrgent: with the only urgent worker busy, an idle
// normal (or batch) worker runs urgent work.
func TestIdleNormalWorkersTakeUrgent(t *testing.T) {
	for _, helper := range []Lane{Normal, Batch} {
		t.Run(helper.String(), func(t *testing.T) {
			p := newPool(t, small(1, 10, 1, 10, 1, 10), nil)
			other := Batch
			if helper == Batch {
				other = Normal
			}
			// Occupy the non-urgent workers first, so that the urgent gate
			// can only go to the urgent worker; then free the helper.
			hg, og, ug := newGate(), newGate(), newGate()
			herr := occupy(t, p, helper, hg)
			oerr := occupy(t, p, other, og)
			uerr := occupy(t, p, Urgent, ug)
			close(hg.release)
			if err := <-herr; err != nil {
				t.Fatal(err)
			}

			ran := false
			if err := p.Do(context.Background(), Urgent, func() { ran = true }); err != nil || !ran {
				t.Fatalf("urgent while urgent worker busy: %v %v", err, ran)
			}
			close(ug.release)
			close(og.release)
			for _, c := range []chan error{uerr, oerr} {
				if err := <-c; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestNormalWorkerPrefersUrgent: a normal worker freed with both urgent and
// normal work waiting takes the urgent task first.
func TestNormalWorkerPrefersUrgent(t *testing.T) {
	p := newPool(t, small(1, 10, 1, 10, 1, 10), nil)
	// Occupy the non-urgent workers first so that the urgent gate can only
	// go to the urgent worker.
	ug, ng, bg := newGate(), newGate(), newGate()
	nerr := occupy(t, p, Normal, ng)
	berr := occupy(t, p, Batch, bg)
	uerr := occupy(t, p, Urgent, ug)

	var rec recorder
	var wg sync.WaitGroup
	for _, name := range []string{"n1", "n2", "n3"} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.Do(context.Background(), Normal, rec.task(name)) }()
		waitFor(t, name+" queued", func() bool { return p.Depth(Normal) == int(name[1]-'0') })
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = p.Do(context.Background(), Urgent, rec.task("u1")) }()
	waitFor(t, "u1 queued", func() bool { return p.Depth(Urgent) == 1 })

	close(ng.release) // only the normal worker is free now
	waitFor(t, "normal work done", func() bool { return len(rec.list()) == 4 })
	if got := rec.list(); !slices.Equal(got, []string{"u1", "n1", "n2", "n3"}) {
		t.Fatalf("order = %v, want urgent first", got)
	}
	close(ug.release)
	close(bg.release)
	for _, c := range []chan error{uerr, nerr, berr} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

func TestQueueFull(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := newPool(t, small(1, 1, 1, 2, 1, 1), reg)
	g := newGate()
	errc := occupy(t, p, Normal, g)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.Do(context.Background(), Normal, func() {}) }()
	}
	waitFor(t, "queue full", func() bool { return p.Depth(Normal) == 2 })
	ran := false
	err := p.Do(context.Background(), Normal, func() { ran = true })
	if !errors.Is(err, ErrQueueFull) || !strings.Contains(err.Error(), "normal") {
		t.Fatalf("Do on full queue = %v", err)
	}
	if got := value(t, reg, "zhiyin_lane_rejected_total", "normal"); got != 1 {
		t.Fatalf("rejected_total = %v", got)
	}
	if got := value(t, reg, "zhiyin_lane_queue_depth", "normal"); got != 2 {
		t.Fatalf("queue_depth = %v", got)
	}
	close(g.release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if ran {
		t.Fatal("rejected fn ran")
	}
	if got := value(t, reg, "zhiyin_lane_tasks_total", "normal"); got != 3 {
		t.Fatalf("tasks_total = %v, want 3", got)
	}
	if got := value(t, reg, "zhiyin_lane_queue_depth", "normal"); got != 0 {
		t.Fatalf("queue_depth after = %v", got)
	}
	if n := histCount(t, reg, "zhiyin_lane_queue_wait_seconds", "normal"); n != 3 {
		t.Fatalf("queue wait observations = %d, want 3", n)
	}
}

// metric returns the series name{lane} from reg.
func metric(t *testing.T, reg *prometheus.Registry, name, lane string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "lane" && lp.GetValue() == lane {
					return m
				}
			}
		}
	}
	t.Fatalf("no series %s{lane=%q}", name, lane)
	return nil
}

// value reads a counter or gauge series.
func value(t *testing.T, reg *prometheus.Registry, name, lane string) float64 {
	m := metric(t, reg, name, lane)
	return m.GetCounter().GetValue() + m.GetGauge().GetValue()
}

// histCount reads a histogram series' observation count.
func histCount(t *testing.T, reg *prometheus.Registry, name, lane string) uint64 {
	return metric(t, reg, name, lane).GetHistogram().GetSampleCount()
}

func TestCancelWhileQueued(t *testing.T) {
	p := newPool(t, small(1, 1, 1, 5, 1, 1), nil)
	g := newGate()
	errc := occupy(t, p, Normal, g)

	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{}, 1)
	doErr := make(chan error, 1)
	go func() { doErr <- p.Do(ctx, Normal, func() { ran <- struct{}{} }) }()
	waitFor(t, "task queued", func() bool { return p.Depth(Normal) == 1 })
	cancel()
	err := <-doErr
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Do after cancel = %v", err)
	}
	if d := p.Depth(Normal); d != 0 {
		t.Fatalf("depth after cancel = %d", d)
	}
	close(g.release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// The worker reaches the cancelled task only after this marker, which
	// is queued behind it.
	if err := p.Do(context.Background(), Normal, func() {}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	select {
	case <-ran:
		t.Fatal("cancelled task ran")
	default:
	}

	// An already-ended ctx never queues.
	p2 := newPool(t, small(1, 1, 1, 1, 1, 1), nil)
	if err := p2.Do(ctx, Urgent, func() { t.Error("ran") }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do with ended ctx = %v", err)
	}
}

func TestCancelWhileRunningWaits(t *testing.T) {
	p := newPool(t, small(1, 1, 1, 1, 1, 1), nil)
	ctx, cancel := context.WithCancel(context.Background())
	started, release := make(chan struct{}), make(chan struct{})
	finished := false
	doErr := make(chan error, 1)
	go func() {
		doErr <- p.Do(ctx, Urgent, func() { close(started); <-release; finished = true })
	}()
	<-started
	cancel()
	select {
	case err := <-doErr:
		t.Fatalf("Do returned while fn ran: %v", err)
	default:
	}
	close(release)
	if err := <-doErr; err != nil {
		t.Fatalf("Do = %v, want nil (fn completed)", err)
	}
	if !finished {
		t.Fatal("fn not finished when Do returned")
	}
}

func TestCloseDrains(t *testing.T) {
	// Queues of 3, filled below, so that the probe for "closed" is refused
	// at once (ErrQueueFull, then ErrClosed) instead of queueing.
	p, err := NewPool(small(1, 3, 1, 3, 1, 3), nil)
	if err != nil {
		t.Fatal(err)
	}
	gates := map[Lane]*gate{Urgent: newGate(), Normal: newGate(), Batch: newGate()}
	var errcs []chan error
	for _, l := range []Lane{Normal, Batch, Urgent} { // urgent last: see occupy
		errcs = append(errcs, occupy(t, p, l, gates[l]))
	}
	var rec recorder
	var wg sync.WaitGroup
	want := 0
	for _, l := range []Lane{Urgent, Normal, Batch} {
		for i := range 3 {
			wg.Add(1)
			want++
			go func() {
				defer wg.Done()
				if err := p.Do(context.Background(), l, rec.task(l.String()+string(rune('0'+i)))); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	waitFor(t, "all queued", func() bool { return p.Depth(Urgent)+p.Depth(Normal)+p.Depth(Batch) == want })

	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	waitFor(t, "closed to new work", func() bool {
		return errors.Is(p.Do(context.Background(), Normal, func() {}), ErrClosed)
	})
	select {
	case <-closed:
		t.Fatal("Close returned while tasks were running")
	default:
	}
	for _, g := range gates {
		close(g.release)
	}
	<-closed
	wg.Wait()
	if got := len(rec.list()); got != want {
		t.Fatalf("ran %d queued tasks, want %d", got, want)
	}
	for _, c := range errcs {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	p.Close() // idempotent
	if err := p.Do(context.Background(), Urgent, func() {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close = %v", err)
	}
}

func TestPanicRecovered(t *testing.T) {
	p := newPool(t, small(1, 1, 1, 1, 1, 1), nil)
	err := p.Do(context.Background(), Normal, func() { panic("boom") })
	var pe *PanicError
	if !errors.Is(err, ErrPanic) || !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Fatalf("Do(panic) = %v", err)
	}
	if err := p.Do(context.Background(), Normal, func() {}); err != nil {
		t.Fatalf("worker did not survive the panic: %v", err)
	}
}

func TestNewPoolErrors(t *testing.T) {
	if _, err := NewPool(Config{}, nil); err == nil || !strings.Contains(err.Error(), "urgent.workers") {
		t.Fatalf("NewPool(zero) = %v", err)
	}
	reg := prometheus.NewRegistry()
	// A second pool on the same registry shares the collectors.
	a := newPool(t, small(1, 1, 1, 1, 1, 1), reg)
	b := newPool(t, small(1, 1, 1, 1, 1, 1), reg)
	_ = a.Do(context.Background(), Urgent, func() {})
	_ = b.Do(context.Background(), Urgent, func() {})
	if got := value(t, reg, "zhiyin_lane_tasks_total", "urgent"); got != 2 {
		t.Fatalf("shared tasks_total = %v", got)
	}
	// A clashing collector under the same name is an error.
	reg2 := prometheus.NewRegistry()
	reg2.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "zhiyin_lane_tasks_total", Help: "x"}))
	if _, err := NewPool(small(1, 1, 1, 1, 1, 1), reg2); err == nil {
		t.Fatal("NewPool with clashing metric succeeded")
	}
}

func TestConcurrentDo(t *testing.T) {
	p := newPool(t, small(2, 100, 2, 100, 1, 100), nil)
	var mu sync.Mutex
	count := 0
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := p.Do(context.Background(), Lane(i%3), func() { mu.Lock(); count++; mu.Unlock() })
				if !errors.Is(err, ErrQueueFull) {
					if err != nil {
						t.Error(err)
					}
					return
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	if count != 300 {
		t.Fatalf("ran %d, want 300", count)
	}
	for _, l := range []Lane{Urgent, Normal, Batch} {
		if d := p.Depth(l); d != 0 {
			t.Fatalf("%v depth %d", l, d)
		}
	}
}

func BenchmarkDo(b *testing.B) {
	for _, l := range []Lane{Urgent, Normal} {
		b.Run(l.String(), func(b *testing.B) {
			p := newPool(b, DefaultConfig(), prometheus.NewRegistry())
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := p.Do(ctx, l, func() {}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Run("serial", func(b *testing.B) {
		p := newPool(b, DefaultConfig(), nil)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_ = p.Do(ctx, Normal, func() {})
		}
	})
}
