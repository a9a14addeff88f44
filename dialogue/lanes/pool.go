package lanes

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/internal/config"
)

// Task states: a worker moves a task from queued to running, a caller whose
// ctx ended moves it from queued to cancelled; whoever wins the CAS owns it.
const (
	stateQueued int32 = iota
	stateRunning
	stateCancelled
)

// task is one Do call.
type task struct {
	fn       func()
	lane     Lane
	enqueued time.Time
	state    atomic.Int32
	done     chan struct{} // closed by the worker after fn returned
	panicErr *PanicError   // set by the worker before done is closed
}

// Pool runs functions on the workers of three priority lanes. Create it with
// NewPool and Close it when done. Safe for concurrent use.
//
// Each lane has Config.<lane>.Workers goroutines and a queue bounded by
// Config.<lane>.QueueSize; when a lane's queue is full, Do fails at once.
// Urgent workers run only urgent tasks. Normal and batch workers take an
// urgent task whenever one is waiting, before their own lane's tasks, so
// urgent work gets every idle worker while normal and batch work can never
// occupy the urgent workers.
type Pool struct {
	queues [numLanes]chan *task
	depth  [numLanes]atomic.Int64 // tasks queued and not yet taken or cancelled
	m      *metrics

	// Do holds mu.RLock while it enqueues so that Close (mu.Lock) closes the
	// queues only when no send is in flight.
	mu        sync.RWMutex
	closed    bool
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// NewPool validates cfg, registers the lane metrics on reg (nil: no
// metrics) and starts the workers. It does no I/O. The caller owns the pool
// and must Close it.
func NewPool(cfg Config, reg prometheus.Registerer) (*Pool, error) {
	if err := config.Validate(&cfg); err != nil {
		return nil, fmt.Errorf("new lane pool: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("new lane pool: register metrics: %w", err)
	}
	p := &Pool{m: m}
	lcs := cfg.lanes()
	for l := range numLanes {
		p.queues[l] = make(chan *task, lcs[l].QueueSize)
	}
	for l := range numLanes {
		for range lcs[l].Workers {
			p.wg.Add(1)
			go p.worker(Lane(l))
		}
	}
	return p, nil
}

// Do runs fn on a worker of lane l and waits until it has returned.
//
// It fails at once, without queueing, with an error wrapping ErrQueueFull
// when the lane's queue is full, ErrClosed after Close began, or
// ErrUnknownLane for a bad l. When ctx ends while the task is still queued,
// Do returns an error wrapping ctx.Err() and fn never runs. Once a worker
// has started fn, Do waits for it to return even if ctx ends, because fn
// cannot be interrupted and may use the caller's data. If fn panics, the
// worker recovers and Do returns a *PanicError (ErrPanic).
func (p *Pool) Do(ctx context.Context, l Lane, fn func()) error {
	if !l.valid() {
		return fmt.Errorf("run on lane %d: %w", int(l), ErrUnknownLane)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("run on lane %s: %w", l, err)
	}
	t := &task{fn: fn, lane: l, enqueued: time.Now(), done: make(chan struct{})}
	if err := p.enqueue(t); err != nil {
		return err
	}
	select {
	case <-t.done:
	case <-ctx.Done():
		if t.state.CompareAndSwap(stateQueued, stateCancelled) {
			p.dequeued(l)
			return fmt.Errorf("run on lane %s: gave up waiting for a worker: %w", l, ctx.Err())
		}
		<-t.done // a worker already started fn
	}
	if t.panicErr != nil {
		return fmt.Errorf("run on lane %s: %w", l, t.panicErr)
	}
	return nil
}

// enqueue puts t on its lane's queue without blocking.
func (p *Pool) enqueue(t *task) error {
	l := t.lane
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return fmt.Errorf("run on lane %s: %w", l, ErrClosed)
	}
	// Count the task before a worker can take it, so depth never goes
	// negative.
	p.depth[l].Add(1)
	p.m.depth[l].Inc()
	select {
	case p.queues[l] <- t:
		return nil
	default:
		p.dequeued(l)
		p.m.rejected[l].Inc()
		return fmt.Errorf("run on lane %s (%d queued): %w", l, cap(p.queues[l]), ErrQueueFull)
	}
}

func (p *Pool) dequeued(l Lane) {
	p.depth[l].Add(-1)
	p.m.depth[l].Dec()
}

// Depth returns how many tasks are waiting in lane l's queue for a worker
// (tasks whose callers gave up are not counted). 0 for an unknown lane.
func (p *Pool) Depth(l Lane) int {
	if !l.valid() {
		return 0
	}
	return int(p.depth[l].Load())
}

// Close stops accepting tasks (Do then fails with ErrClosed), lets the
// workers run every task already queued, and waits for them to exit. It
// blocks as long as a running fn does. Idempotent; safe to call
// concurrently.
func (p *Pool) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		for _, q := range p.queues {
			close(q)
		}
		p.mu.Unlock()
	})
	p.wg.Wait()
}

// worker runs tasks for lane own until the queues it reads are closed and
// drained. Urgent workers read only the urgent queue; the others read the
// urgent queue first and their own when it is empty.
func (p *Pool) worker(own Lane) {
	defer p.wg.Done()
	urgent, mine := p.queues[Urgent], p.queues[own]
	if own == Urgent {
		for t := range urgent {
			p.run(t)
		}
		return
	}
	for urgent != nil || mine != nil {
		if urgent != nil {
			select {
			case t, ok := <-urgent:
				if !ok {
					urgent = nil
				} else {
					p.run(t)
				}
				continue
			default:
			}
		}
		// Nothing urgent is waiting: block on both, so an urgent task
		// arriving while this worker is idle is still taken at once.
		select {
		case t, ok := <-urgent:
			if !ok {
				urgent = nil
				continue
			}
			p.run(t)
		case t, ok := <-mine:
			if !ok {
				mine = nil
				continue
			}
			p.run(t)
		}
	}
}

// run executes t unless its caller already gave up on it.
func (p *Pool) run(t *task) {
	if !t.state.CompareAndSwap(stateQueued, stateRunning) {
		return // cancelled: the caller already uncounted it
	}
	l := t.lane
	p.dequeued(l)
	p.m.wait[l].Observe(time.Since(t.enqueued).Seconds())
	defer close(t.done)
	defer p.m.tasks[l].Inc()
	defer func() {
		if v := recover(); v != nil {
			t.panicErr = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	t.fn()
}
