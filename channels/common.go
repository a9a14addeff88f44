package channels

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/internal/config"
)

// Common is the part of every adapter's configuration section that the hub
// reads; adapters embed it inline:
//
//	type Config struct {
//		channels.Common `yaml:",inline"`
//		…
//	}
type Common struct {
	// Enabled turns the adapter on; a disabled section is not validated
	// further.
	Enabled bool `yaml:"enabled"`
	// Groups is "mention" (default: in group chats answer only messages
	// that mention the bot) or "all".
	Groups string `yaml:"groups"`
}

// Validate implements config.Validatable.
func (c *Common) Validate(v *config.Validator) {
	switch c.Groups {
	case "", "mention", "all":
	default:
		v.Errorf("groups", `must be "mention" or "all", got %q`, c.Groups)
	}
}

// AnswerAll reports whether group messages that do not mention the bot are
// answered.
func (c Common) AnswerAll() bool { return c.Groups == "all" }

// DefaultMaxBody bounds callback bodies unless an adapter says otherwise.
const DefaultMaxBody = 1 << 20

// ReadBody reads r's body up to max bytes. On failure it has already
// answered (413 for an oversize body, 400 for a broken one), reported the
// refusal to sink, and returns ok false.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64, sink Sink) (body []byte, ok bool) {
	if r.ContentLength > max {
		sink.Rejected(ReasonTooLarge)
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		sink.Rejected(ReasonTooLarge)
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return nil, false
	case err != nil:
		sink.Rejected(ReasonMalformed)
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return nil, false
	}
	return body, true
}

// ReplayGuard remembers signatures or nonces seen within a window so that a
// captured request replayed later is refused. Bounded: at most max entries
// (the oldest are forgotten first once full, and anything older than the
// window is useless to an attacker anyway because the timestamp check
// refuses it). Safe for concurrent use.
type ReplayGuard struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	seen   map[string]time.Time
	order  []string
	now    func() time.Time
}

// NewReplayGuard returns a guard for the given timestamp window.
func NewReplayGuard(window time.Duration, max int) *ReplayGuard {
	if max < 1 {
		max = 1
	}
	return &ReplayGuard{window: window, max: max, seen: map[string]time.Time{}, now: time.Now}
}

// Seen records key and reports whether it was already recorded within the
// window.
func (g *ReplayGuard) Seen(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if t, ok := g.seen[key]; ok && now.Sub(t) <= g.window {
		return true
	}
	// Forget expired entries from the front, and the oldest when full.
	for len(g.order) > 0 {
		k := g.order[0]
		t, ok := g.seen[k]
		if ok && now.Sub(t) <= g.window && len(g.order) < g.max {
			break
		}
		g.order = g.order[1:]
		if ok && g.seen[k] == t {
			delete(g.seen, k)
		}
	}
	g.seen[key] = now
	g.order = append(g.order, key)
	return false
}

// Backoff computes reconnect and retry delays: exponential from Min to
// Max with full jitter.
type Backoff struct {
	Min, Max time.Duration
}

// Delay returns the wait before attempt n (from 1).
func (b Backoff) Delay(n int) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 500 * time.Millisecond
	}
	if hi < lo {
		hi = lo
	}
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	// Half fixed, half random: never zero, never in lockstep.
	return d/2 + rand.N(d/2+1)
}

// Sleep waits d or until ctx ends; it reports whether the full wait
// elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Loop owns an adapter's background goroutine (a sync loop, a websocket
// reader): it runs at most once and is stopped by cancelling it and
// waiting. The zero value is ready. Safe for concurrent use.
type Loop struct {
	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// Started reports whether Go was called.
func (l *Loop) Started() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.started
}

// Go runs fn in a goroutine whose context ignores ctx's cancellation (only
// Stop ends it) but keeps its values. It returns false when the loop was
// started before.
func (l *Loop) Go(ctx context.Context, fn func(ctx context.Context)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		return false
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.started, l.cancel, l.done = true, cancel, make(chan struct{})
	done := l.done
	go func() {
		defer close(done)
		fn(runCtx)
	}()
	return true
}

// Stop cancels the loop and waits for it to return or for ctx to end. It
// reports whether this call stopped a running loop; a second call is a
// no-op.
func (l *Loop) Stop(ctx context.Context) (bool, error) {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.cancel = nil
	l.mu.Unlock()
	if cancel == nil {
		return false, nil
	}
	cancel()
	select {
	case <-done:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}
