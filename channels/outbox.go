package channels

import (
	"container/heap"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zhiyin/zhiyin/internal/ratelimit"
)

// sender sends one channel's outbox. It keeps at most Outbox.Window parts
// in memory, read from the database in id order (a cursor: the single
// writer commits rows in id order, so every row below the cursor has been
// seen); the rest wait on disk. Parts of one conversation go one at a time,
// in order; conversations go in parallel up to Outbox.Concurrency.
type sender struct {
	h *Hub
	e *entry

	wakeCh chan struct{} // capacity 1
	// needLoad is set when rows were committed (or at start): the loop
	// reads past its cursor only then, or when its poll timer fires.
	needLoad atomic.Bool
	// marks carries sent parts to the flusher, which records them in
	// batches (one transaction for many sends). Bounded: a full queue
	// holds the senders back.
	marks     chan sentMark
	flushDone chan struct{}
	started   atomic.Bool

	mu       sync.Mutex
	cursor   int64
	loaded   int
	chats    map[string]*chatQ
	ready    []*chatQ
	delayed  delayHeap
	inflight int
	// fails counts consecutive failed sends of the channel; past a few the
	// channel is paused (a platform that is down) so that parts do not burn
	// their attempts in parallel.
	fails       int
	pausedUntil time.Time

	perChat *ratelimit.Limiter
	global  *ratelimit.Limiter

	in, out, dead atomic.Uint64
}

// chatQ is one conversation's parts in memory, oldest first.
type chatQ struct {
	conv      string
	rows      []*outRow
	busy      bool
	notBefore time.Time
	queued    bool // in ready or delayed
	idx       int  // heap index
}

// outRow is one outbox row in memory.
type outRow struct {
	id          int64
	key         string
	conv        string
	part, parts int
	attempts    int
	state       string
	nextAt      time.Time
	body        outBody
}

func newSender(h *Hub, e *entry) *sender {
	s := &sender{h: h, e: e, wakeCh: make(chan struct{}, 1), chats: map[string]*chatQ{},
		marks: make(chan sentMark, 4096), flushDone: make(chan struct{})}
	s.needLoad.Store(true)
	if r := e.limits.PerChat; r.N > 0 && r.Per > 0 {
		s.perChat = ratelimit.New(ratelimit.Rate{PerSecond: float64(r.N) / r.Per.Seconds(), Burst: r.N}, 100_000)
	}
	if r := e.limits.Global; r.N > 0 && r.Per > 0 {
		s.global = ratelimit.New(ratelimit.Rate{PerSecond: float64(r.N) / r.Per.Seconds(), Burst: r.N}, 1)
	}
	return s
}

// notify tells the sender that rows were committed for it.
func (s *sender) notify() {
	s.needLoad.Store(true)
	s.wake()
}

func (s *sender) wake() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

func (s *sender) counts() (in, out, dead uint64) { return s.in.Load(), s.out.Load(), s.dead.Load() }

func (s *sender) backlog() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loaded
}

func (s *sender) start(ctx context.Context) {
	s.started.Store(true)
	go s.flush()
	s.h.wg.Add(1)
	go func() {
		defer s.h.wg.Done()
		s.loop(ctx)
	}()
}

// wait waits for the sends in flight after the loop ended, then for their
// outcomes to be recorded.
func (s *sender) wait() {
	if !s.started.Load() {
		return
	}
	for {
		s.mu.Lock()
		n := s.inflight
		s.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-s.flushDone:
	default:
		close(s.marks)
		<-s.flushDone
	}
}

// sentMark is a part the platform accepted.
type sentMark struct {
	id         int64
	attempts   int
	platformID string
	at         int64
}

// flush records sent parts, as many per transaction as are waiting. It
// ends when marks is closed (after the last send).
func (s *sender) flush() {
	defer close(s.flushDone)
	batch := make([]sentMark, 0, 512)
	for m := range s.marks {
		batch = append(batch[:0], m)
	more:
		for len(batch) < cap(batch) {
			select {
			case m, ok := <-s.marks:
				if !ok {
					break more
				}
				batch = append(batch, m)
			default:
				break more
			}
		}
		if err := s.recordSent(batch); err != nil {
			s.h.log.Error("record sent replies (a restart may send them again where the platform deduplicates, or list them as dead letters)", "channel", s.e.a.Name(), "parts", len(batch), "err", err)
		}
	}
}

func (s *sender) recordSent(batch []sentMark) error {
	var err error
	for i := 1; i <= 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = s.h.deps.DB.Write(ctx, func(tx *sql.Tx) error {
			for _, m := range batch {
				if _, err := tx.Exec(`UPDATE channel_outbox SET state = 'sent', attempts = ?, platform_id = ?, sent_at = ?, last_error = '', key_id = NULL, body = NULL WHERE id = ?`,
					m.attempts, m.platformID, m.at, m.id); err != nil {
					return err
				}
			}
			return nil
		})
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(time.Duration(i) * 100 * time.Millisecond)
	}
	return err
}

// pollEvery bounds how long a row queued by another process (zhiyin outbox
// retry) waits to be noticed.
const pollEvery = 2 * time.Second

func (s *sender) loop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	poll := true
	for {
		if s.needLoad.Swap(false) || poll {
			if err := s.load(ctx); err != nil && ctx.Err() == nil {
				s.h.log.Warn("read outbox", "channel", s.e.a.Name(), "err", err)
			}
		}
		poll = false
		next := s.schedule(ctx)
		d := pollEvery
		if !next.IsZero() {
			d = min(d, max(time.Until(next), time.Millisecond))
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return
		case <-s.wakeCh:
		case <-timer.C:
			poll = true
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// load reads queued rows past the cursor while the window has room.
func (s *sender) load(ctx context.Context) error {
	s.mu.Lock()
	room := s.h.cfg.Outbox.Window - s.loaded
	cursor := s.cursor
	s.mu.Unlock()
	if room <= 0 {
		return nil
	}
	rows, err := s.h.deps.DB.Read().QueryContext(ctx, `SELECT id, key, conversation, part, parts, attempts, state, next_at, COALESCE(key_id, ''), body
		FROM channel_outbox WHERE channel = ? AND id > ? AND state IN ('queued', 'sending') ORDER BY id LIMIT ?`,
		s.e.a.Name(), cursor, room)
	if err != nil {
		return err
	}
	var got []*outRow
	var unknown []*outRow
	for rows.Next() {
		r := &outRow{}
		var next int64
		var keyID string
		var blob []byte
		if err := rows.Scan(&r.id, &r.key, &r.conv, &r.part, &r.parts, &r.attempts, &r.state, &next, &keyID, &blob); err != nil {
			rows.Close()
			return err
		}
		cursor = r.id
		r.nextAt = time.UnixMilli(next)
		plain, err := s.h.deps.Sealer.Open(keyID, blob, outboxAAD(r.key))
		if err == nil {
			err = json.Unmarshal(plain, &r.body)
		}
		if err != nil {
			s.h.log.Error("outbox row unreadable; left queued", "channel", s.e.a.Name(), "outbox_id", r.id, "err", err)
			continue
		}
		if r.state == "sending" && !s.e.idem {
			// The previous run may have delivered it: the platform cannot
			// tell a repeat, so it is never sent again on our own.
			unknown = append(unknown, r)
			continue
		}
		got = append(got, r)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, r := range unknown {
		if err := s.kill(ctx, r, "the previous run stopped while sending this part and the platform does not deduplicate; it was not sent again to avoid a duplicate (`zhiyin outbox retry` sends it)"); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursor = cursor
	for _, r := range got {
		c := s.chats[r.conv]
		if c == nil {
			c = &chatQ{conv: r.conv, idx: -1}
			s.chats[r.conv] = c
		}
		c.rows = append(c.rows, r)
		s.loaded++
		if !c.busy && !c.queued {
			s.queueLocked(c, r.nextAt)
		}
	}
	s.h.m.backlog.WithLabelValues(s.e.a.Name()).Set(float64(s.loaded))
	return nil
}

// queueLocked puts c in the ready list or, if not before at, the heap.
func (s *sender) queueLocked(c *chatQ, at time.Time) {
	c.queued = true
	if at.After(s.h.now()) {
		c.notBefore = at
		heap.Push(&s.delayed, c)
		return
	}
	s.ready = append(s.ready, c)
}

// schedule starts sends for ready conversations and returns when the next
// delayed one is due (zero if none).
func (s *sender) schedule(ctx context.Context) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.h.now()
	for s.delayed.Len() > 0 && !s.delayed[0].notBefore.After(now) {
		c := heap.Pop(&s.delayed).(*chatQ)
		s.ready = append(s.ready, c)
	}
	limit := s.h.cfg.Outbox.Concurrency
	var wakeAt time.Time
	if now.Before(s.pausedUntil) {
		limit = 0
		wakeAt = s.pausedUntil
	} else if s.fails >= pauseAfter {
		limit = 1 // probing a platform that was down
	}
	for len(s.ready) > 0 && s.inflight < limit {
		c := s.ready[0]
		if len(c.rows) == 0 {
			s.ready = s.ready[1:]
			c.queued = false
			continue
		}
		r := c.rows[0]
		if r.nextAt.After(now) {
			s.ready = s.ready[1:]
			c.notBefore = r.nextAt
			heap.Push(&s.delayed, c)
			continue
		}
		if s.perChat != nil {
			if ok, wait := s.perChat.Allow(c.conv); !ok {
				s.ready = s.ready[1:]
				c.notBefore = now.Add(wait)
				heap.Push(&s.delayed, c)
				s.h.m.paced.WithLabelValues(s.e.a.Name()).Inc()
				continue
			}
		}
		if s.global != nil {
			if ok, wait := s.global.Allow(""); !ok {
				s.h.m.paced.WithLabelValues(s.e.a.Name()).Inc()
				if at := now.Add(wait); wakeAt.IsZero() || at.Before(wakeAt) {
					wakeAt = at
				}
				break
			}
		}
		s.ready = s.ready[1:]
		c.queued = false
		c.busy = true
		s.inflight++
		go s.send(ctx, c, r)
	}
	if s.delayed.Len() > 0 && (wakeAt.IsZero() || s.delayed[0].notBefore.Before(wakeAt)) {
		wakeAt = s.delayed[0].notBefore
	}
	return wakeAt
}

// pauseAfter consecutive failures pause the channel.
const pauseAfter = 5

// send makes one attempt and records its outcome.
func (s *sender) send(ctx context.Context, c *chatQ, r *outRow) {
	name := s.e.a.Name()
	err := s.attempt(ctx, r)
	s.mu.Lock()
	defer func() {
		s.inflight--
		c.busy = false
		if len(c.rows) > 0 && !c.queued {
			s.queueLocked(c, c.rows[0].nextAt)
		}
		s.h.m.backlog.WithLabelValues(name).Set(float64(s.loaded))
		s.mu.Unlock()
		s.wake()
	}()
	if err != nil && ctx.Err() != nil {
		return // stopping: the row stays as it is for the next run
	}
	if r.state == "sent" || r.state == "dead" {
		c.rows = c.rows[1:]
		s.loaded--
		if len(c.rows) == 0 && !c.queued {
			delete(s.chats, c.conv)
		}
	}
	if err == nil {
		s.fails = 0
		s.pausedUntil = time.Time{}
		return
	}
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return // flow control, not a failure of the platform
	}
	s.fails++
	if s.fails >= pauseAfter {
		s.pausedUntil = s.h.now().Add(Backoff{Min: s.h.cfg.Outbox.BackoffMin, Max: s.h.cfg.Outbox.BackoffMax}.Delay(s.fails - pauseAfter + 1))
	}
}

// attempt sends r once and commits the outcome; r.state and r.attempts
// follow.
func (s *sender) attempt(ctx context.Context, r *outRow) error {
	name := s.e.a.Name()
	cfg := s.h.cfg.Outbox
	if !s.e.idem && r.state != "sending" {
		err := s.h.deps.DB.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE channel_outbox SET state = 'sending', attempts = attempts + 1 WHERE id = ? AND state = 'queued'`, r.id)
			return err
		})
		if err != nil {
			r.nextAt = s.h.now().Add(time.Second)
			return err
		}
		r.state = "sending"
	}
	out := &Outgoing{
		Key: r.key, Channel: name, Conversation: r.conv, ConversationType: r.body.ConversationType,
		Thread: r.body.Thread, ReplyTo: r.body.ReplyTo, Recipient: r.body.Recipient, Text: r.body.Text,
		Markdown: r.body.Markdown, Part: r.part, Parts: r.parts, Handle: r.body.Handle, Attempt: r.attempts + 1,
	}
	sctx, cancel := context.WithTimeout(ctx, cfg.SendTimeout)
	rec, err := s.e.a.Send(sctx, out)
	cancel()
	if err != nil && ctx.Err() != nil {
		return err
	}
	now := s.h.now()
	r.attempts++
	if err == nil {
		r.state = "sent"
		s.marks <- sentMark{id: r.id, attempts: r.attempts, platformID: truncate(rec.PlatformID, 256), at: now.UnixMilli()}
		s.out.Add(1)
		s.h.m.out.WithLabelValues(name, "sent").Inc()
		if r.part == 1 && r.body.ReceivedAt > 0 {
			s.h.m.replySeconds.WithLabelValues(name).Observe(float64(now.UnixMilli()-r.body.ReceivedAt) / 1000)
		}
		return nil
	}
	msg := truncate(err.Error(), 500)
	if errors.Is(err, ErrPermanent) || r.attempts >= cfg.MaxAttempts {
		if kerr := s.kill(ctx, r, msg); kerr != nil {
			s.h.log.Error("record dead letter", "channel", name, "outbox_id", r.id, "err", kerr)
		}
		r.state = "dead"
		s.h.log.Warn("reply is a dead letter", "channel", name, "outbox_id", r.id, "attempts", r.attempts, "err", msg)
		return err
	}
	wait := Backoff{Min: cfg.BackoffMin, Max: cfg.BackoffMax}.Delay(r.attempts)
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > wait {
		wait = ra.After
	}
	r.nextAt = now.Add(wait)
	r.state = "queued"
	if werr := s.commitOutcome(ctx, `UPDATE channel_outbox SET state = 'queued', attempts = ?, next_at = ?, last_error = ? WHERE id = ?`,
		r.attempts, r.nextAt.UnixMilli(), msg, r.id); werr != nil {
		s.h.log.Error("record send failure", "channel", name, "outbox_id", r.id, "err", werr)
	}
	s.h.m.out.WithLabelValues(name, "retry").Inc()
	s.h.log.Info("reply send failed; will retry", "channel", name, "outbox_id", r.id, "attempt", r.attempts, "in", wait.Round(time.Millisecond), "err", msg)
	return err
}

// kill makes r a dead letter.
func (s *sender) kill(ctx context.Context, r *outRow, why string) error {
	s.dead.Add(1)
	s.h.m.out.WithLabelValues(s.e.a.Name(), "dead").Inc()
	return s.commitOutcome(ctx, `UPDATE channel_outbox SET state = 'dead', attempts = ?, last_error = ? WHERE id = ?`, r.attempts, truncate(why, 500), r.id)
}

// commitOutcome records what happened to a send. The send has happened, so
// the record must not be lost to a cancelled context; a busy database is
// retried briefly.
func (s *sender) commitOutcome(ctx context.Context, q string, args ...any) error {
	var err error
	for i := 1; i <= 5; i++ {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err = s.h.deps.DB.Write(wctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(q, args...)
			return err
		})
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(time.Duration(i) * 100 * time.Millisecond)
	}
	return fmt.Errorf("after 5 tries: %w", err)
}

// delayHeap orders delayed conversations by notBefore.
type delayHeap []*chatQ

func (d delayHeap) Len() int           { return len(d) }
func (d delayHeap) Less(i, j int) bool { return d[i].notBefore.Before(d[j].notBefore) }
func (d delayHeap) Swap(i, j int) {
	d[i], d[j] = d[j], d[i]
	d[i].idx, d[j].idx = i, j
}
func (d *delayHeap) Push(x any) {
	c := x.(*chatQ)
	c.idx = len(*d)
	*d = append(*d, c)
}
func (d *delayHeap) Pop() any {
	old := *d
	n := len(old)
	c := old[n-1]
	old[n-1] = nil
	c.idx = -1
	*d = old[:n-1]
	return c
}
