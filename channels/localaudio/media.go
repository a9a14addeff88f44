package localaudio

import (
	"context"
	"sync"

	"github.com/zhiyin/zhiyin/channels/voice"
)

var _ voice.Media = (*call)(nil)

// call is one conversation's voice.Media: it queues the answerer's speech
// on the Line's player. Safe for concurrent use.
type call struct {
	p    *player
	rate int

	hung     chan struct{} // closed by Hangup
	hungOnce sync.Once
	mu       sync.Mutex
	why      string
	over     chan struct{} // closed by Hangup or end: Play and Drain give up
	overOnce sync.Once
}

func (c *call) overCh() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over == nil {
		c.over = make(chan struct{})
	}
	return c.over
}

// end marks the conversation over on the line's side.
func (c *call) end() {
	ch := c.overCh()
	c.overOnce.Do(func() { close(ch) })
}

func (c *call) reason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.why
}

// OutputRate is the Line's sample rate.
func (c *call) OutputRate() int { return c.rate }

// Play queues a copy of samples; it blocks while more than 100 ms is queued.
// It returns voice.ErrHungUp once the conversation ended.
func (c *call) Play(ctx context.Context, samples []float32) error {
	return c.p.play(ctx, samples, c.overCh())
}

// Drain waits until the queue has played out and the device has played it.
func (c *call) Drain(ctx context.Context) error {
	return c.p.drain(ctx, c.overCh())
}

// StopPlayback drops what is queued and what the device still holds.
func (c *call) StopPlayback() {
	select {
	case <-c.overCh():
	default:
		c.p.flush()
	}
}

// Hangup ends the conversation at once, dropping queued audio. Idempotent.
func (c *call) Hangup(reason string) {
	c.hungOnce.Do(func() {
		c.mu.Lock()
		c.why = reason
		c.mu.Unlock()
		c.end()
		c.p.flush()
		close(c.hung)
	})
}

// Transfer returns voice.ErrTransferUnsupported: there is no one at a sound
// card to hand the conversation to.
func (c *call) Transfer(ctx context.Context, target string) error {
	return voice.ErrTransferUnsupported
}

// The player's queue states after a frame.
const (
	dryNo    = iota // samples are queued
	dryWait         // empty: play silence a moment, then stop
	dryAbort        // StopPlayback: drop the device's buffer now
)

// player is the queue between Media.Play and the playback goroutine. The
// queue is bounded by Play's back-pressure: a producer waits while more
// than 100 ms is queued (one Play call may add more than that at once).
type player struct {
	rate, frameLen int
	limit          int // back-pressure threshold, in samples

	mu      sync.Mutex
	queue   []float32
	busy    bool // the playback goroutine has taken audio and not yet stopped the device
	abort   bool
	closed  bool
	changed chan struct{} // closed and replaced on every change
}

func newPlayer(rate, frameLen int) *player {
	return &player{rate: rate, frameLen: frameLen, limit: rate / 10, changed: make(chan struct{})}
}

// broadcast wakes every waiter; callers hold p.mu.
func (p *player) broadcast() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// wait blocks until cond holds (checked under p.mu), ctx is done, or over
// is closed.
func (p *player) wait(ctx context.Context, over <-chan struct{}, cond func() bool) error {
	for {
		p.mu.Lock()
		ok, ch := cond(), p.changed
		p.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-over:
			return voice.ErrHungUp
		case <-ch:
		}
	}
}

func (p *player) play(ctx context.Context, samples []float32, over <-chan struct{}) error {
	select {
	case <-over:
		return voice.ErrHungUp
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	p.queue = append(p.queue, samples...)
	p.broadcast()
	p.mu.Unlock()
	return p.wait(ctx, over, func() bool { return len(p.queue) <= p.limit || p.closed })
}

func (p *player) drain(ctx context.Context, over <-chan struct{}) error {
	return p.wait(ctx, over, func() bool { return (len(p.queue) == 0 && !p.busy) || p.closed })
}

// take blocks until audio is queued and copies one frame of it into frame
// (padded with silence); false when ctx is done or the player shut down.
func (p *player) take(ctx context.Context, frame []float32) bool {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return false
		}
		if len(p.queue) > 0 {
			k := copy(frame, p.queue)
			clear(frame[k:])
			p.queue = p.queue[:copy(p.queue, p.queue[k:])]
			p.busy = true
			p.abort = false
			p.broadcast()
			p.mu.Unlock()
			return true
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}

// dry says what the playback goroutine should do after a frame.
func (p *player) dry() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.abort || p.closed:
		return dryAbort
	case len(p.queue) > 0:
		return dryNo
	default:
		return dryWait
	}
}

// idle records that the device stopped with nothing left to play.
func (p *player) idle() {
	p.mu.Lock()
	p.busy, p.abort = false, false
	p.broadcast()
	p.mu.Unlock()
}

// flush drops the queue and asks the playback goroutine to drop the
// device's buffer too (barge-in, hang-up).
func (p *player) flush() {
	p.mu.Lock()
	p.queue = p.queue[:0]
	if p.busy {
		p.abort = true
	}
	p.broadcast()
	p.mu.Unlock()
}

// reset readies the player for a new conversation.
func (p *player) reset() {
	p.mu.Lock()
	p.queue = p.queue[:0]
	p.broadcast()
	p.mu.Unlock()
}

// shutdown wakes and ends every waiter: the line is stopping.
func (p *player) shutdown() {
	p.mu.Lock()
	p.closed = true
	p.broadcast()
	p.mu.Unlock()
}
