package channels

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationComponent names this package's migrations in the version table.
const MigrationComponent = "channels"

// Migrations returns the inbox and outbox schema for a store.MigrationSet.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// Dialogue answers customers; cmd adapts dialogue.Engine to it.
type Dialogue interface {
	// Respond runs one turn of t's conversation. commit runs inside the
	// transaction that stores the turn (the hub marks its inbox row
	// answered and queues the replies there), so that the turn and its
	// replies are committed together or not at all. Errors wrapping
	// ErrInvalid are the message's fault and are not retried.
	Respond(ctx context.Context, t *Turn, commit func(tx *sql.Tx, a *Answer) error) error
}

// Turn is what the dialogue is asked to answer.
type Turn struct {
	Channel      string
	Conversation string
	User         string
	UserName     string
	Text         string
	Message      *Message
}

// Answer is the dialogue's response to a Turn.
type Answer struct {
	SessionID string
	Replies   []Reply
	// Handoff is true while a human has the conversation (the bot is
	// silent: Replies is empty).
	Handoff bool
}

// Reply is one bot answer; the hub splits it to the platform's limit.
type Reply struct {
	Text     string
	Markdown bool
	// Response is the domain response's name, when the text came from one
	// (voice calls play its recorded prompt).
	Response string
}

// Sealer encrypts rows at rest: *session.Keyring.
type Sealer interface {
	Seal(plain, aad []byte) (keyID string, blob []byte, err error)
	Open(keyID string, blob, aad []byte) ([]byte, error)
}

// Fetcher is an optional Adapter capability: download a media attachment.
// The caller closes the reader.
type Fetcher interface {
	Fetch(ctx context.Context, m Media) (io.ReadCloser, error)
}

// Transcriber turns a voice note into text (the ASR, when a model is
// installed). It returns ErrNoASR when none is.
type Transcriber interface {
	Transcribe(ctx context.Context, audio io.Reader, m Media) (string, error)
}

// ErrNoASR: Transcriber has no model. Returned by Transcribers.
var ErrNoASR = errors.New("no ASR model installed")

// Deps are what the hub uses but does not own.
type Deps struct {
	DB       *store.DB
	Dialogue Dialogue
	Sealer   Sealer
	// Transcriber may be nil: voice notes are then answered with
	// Texts.VoiceUnavailable.
	Transcriber Transcriber
	Log         *slog.Logger
	Metrics     prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Hub connects adapters to the dialogue through the durable inbox and
// outbox: every message is committed before its platform is acknowledged,
// answered once, in order per conversation, and its replies are sent with
// retries, pacing and a dead-letter state. Safe for concurrent use.
type Hub struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	m    *metrics
	now  func() time.Time

	mu      sync.Mutex
	entries []*entry
	byName  map[string]*entry
	started bool
	stopped bool

	shards   []chan *job
	inflight sync.Map // inbox id → struct{}: queued or being answered
	seed     maphash.Seed
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// entry is one registered adapter.
type entry struct {
	a      Adapter
	common Common
	limits Limits
	idem   bool
	sender *sender
	sink   *sink
}

// job is one committed inbox row to answer.
type job struct {
	id    int64
	conv  string
	msg   *Message // nil when recovered: read from the row
	entry *entry
	// recv is when the row was committed (unix ms).
	recv int64
}

// New returns a hub; it does no I/O.
func New(cfg Config, deps Deps) (*Hub, error) {
	if deps.DB == nil || deps.Dialogue == nil || deps.Sealer == nil {
		return nil, errors.New("channels hub: DB, Dialogue and Sealer are required")
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	return &Hub{cfg: cfg, deps: deps, log: deps.Log, m: m, now: deps.Now, byName: map[string]*entry{}, seed: maphash.MakeSeed()}, nil
}

// Register adds an adapter before Start. common is the adapter's section's
// shared part (groups policy).
func (h *Hub) Register(a Adapter, common Common) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return errors.New("channels hub: register before Start")
	}
	name := a.Name()
	if name == "" || len(name) > 64 {
		return fmt.Errorf("channels hub: adapter name %q must be 1-64 bytes", name)
	}
	if _, dup := h.byName[name]; dup {
		return fmt.Errorf("channels hub: adapter %q registered twice", name)
	}
	e := &entry{a: a, common: common}
	if l, ok := a.(Limited); ok {
		e.limits = l.Limits()
	}
	if i, ok := a.(Idempotent); ok {
		e.idem = i.IdempotentSend()
	}
	e.sink = &sink{h: h, e: e}
	e.sender = newSender(h, e)
	h.entries = append(h.entries, e)
	h.byName[name] = e
	return nil
}

// Adapters returns the registered adapters in registration order.
func (h *Hub) Adapters() []Adapter {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Adapter, len(h.entries))
	for i, e := range h.entries {
		out[i] = e.a
	}
	return out
}

// Start answers what the last run left committed but unanswered, starts the
// senders (which resume the outbox) and then every adapter in registration
// order. When an adapter fails to start, the ones started are stopped in
// reverse and the error returned.
func (h *Hub) Start(ctx context.Context) error {
	h.mu.Lock()
	if h.started {
		h.mu.Unlock()
		return errors.New("channels hub: started twice")
	}
	h.started = true
	entries := append([]*entry(nil), h.entries...)
	h.mu.Unlock()

	h.ctx, h.cancel = context.WithCancel(context.Background())
	n := h.cfg.Workers
	per := max(1, h.cfg.Queue/n)
	h.shards = make([]chan *job, n)
	for i := range h.shards {
		h.shards[i] = make(chan *job, per)
		h.wg.Add(1)
		go h.work(h.shards[i])
	}
	for _, e := range entries {
		e.sender.start(h.ctx)
	}
	h.wg.Add(1)
	go h.sweepLoop()

	for i, e := range entries {
		if err := e.a.Start(ctx, e.sink); err != nil {
			for j := i - 1; j >= 0; j-- {
				if serr := entries[j].a.Stop(ctx); serr != nil {
					h.log.Warn("stop channel", "channel", entries[j].a.Name(), "err", serr)
				}
			}
			h.stopWorkers()
			return fmt.Errorf("start channel %s: %w", e.a.Name(), err)
		}
		h.log.Info("channel started", "channel", e.a.Name())
	}
	return nil
}

// Stop stops the adapters (no new messages), then the workers and senders:
// a turn or send in progress is cancelled and stays committed as pending,
// to be finished by the next Start. Idempotent.
func (h *Hub) Stop(ctx context.Context) error {
	h.mu.Lock()
	if h.stopped || !h.started {
		h.stopped = true
		h.mu.Unlock()
		return nil
	}
	h.stopped = true
	entries := append([]*entry(nil), h.entries...)
	h.mu.Unlock()
	var errs []error
	for i := len(entries) - 1; i >= 0; i-- {
		if err := entries[i].a.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop channel %s: %w", entries[i].a.Name(), err))
		}
	}
	h.stopWorkers()
	return errors.Join(errs...)
}

func (h *Hub) stopWorkers() {
	if h.cancel != nil {
		h.cancel()
	}
	h.wg.Wait()
	for _, e := range h.entries {
		e.sender.wait()
	}
}

// Status is one adapter's state for /readyz, doctor and metrics.
type Status struct {
	Channel string `json:"channel"`
	State
	In  uint64 `json:"messages_in"`
	Out uint64 `json:"messages_out"`
	// Backlog is the reply parts waiting in memory; Dead the dead letters
	// of this run.
	Backlog int    `json:"backlog"`
	Dead    uint64 `json:"dead"`
}

// Statuses returns every adapter's state, in registration order.
func (h *Hub) Statuses() []Status {
	h.mu.Lock()
	entries := append([]*entry(nil), h.entries...)
	started := h.started && !h.stopped
	h.mu.Unlock()
	out := make([]Status, 0, len(entries))
	for _, e := range entries {
		st := State{Connected: started}
		if s, ok := e.a.(Stater); ok {
			st = s.State()
		}
		in, outN, dead := e.sender.counts()
		out = append(out, Status{Channel: e.a.Name(), State: st, In: in, Out: outN, Backlog: e.sender.backlog(), Dead: dead})
	}
	return out
}

// sink is one adapter's Sink.
type sink struct {
	h *Hub
	e *entry
}

// maxIDBytes bounds ids from platforms.
const maxIDBytes = 512

// maxTextBytes bounds the text kept in the inbox; the dialogue refuses
// longer turns with a polite answer anyway.
const maxTextBytes = 64 << 10

func (s *sink) Rejected(r Reason) {
	s.h.m.rejected.WithLabelValues(s.e.a.Name(), string(r)).Inc()
}

// Deliver implements Sink: validate, apply the group policy, commit to the
// inbox (unique on channel + dedup key), then queue for an answer.
func (s *sink) Deliver(ctx context.Context, m *Message) error {
	h, e := s.h, s.e
	name := e.a.Name()
	m.Channel = name
	if m.Platform == "" {
		m.Platform = name
	}
	if err := checkInbound(m); err != nil {
		h.m.in.WithLabelValues(name, "invalid").Inc()
		return err
	}
	if m.Sender.IsBot {
		h.m.in.WithLabelValues(name, "ignored").Inc()
		return nil
	}
	if m.ConversationType != Direct && !m.Mentioned && !e.common.AnswerAll() {
		h.m.in.WithLabelValues(name, "ignored").Inc()
		return nil
	}
	h.mu.Lock()
	stopped := h.stopped
	h.mu.Unlock()
	if stopped {
		return ErrStopped
	}
	now := h.now()
	if m.Time.IsZero() {
		m.Time = now
	}
	m.Time = m.Time.UTC()
	plain, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	key := m.Key()
	keyID, blob, err := h.deps.Sealer.Seal(plain, inboxAAD(name, key))
	if err != nil {
		return fmt.Errorf("seal message: %w", err)
	}
	var id int64
	err = h.deps.DB.Write(ctx, func(tx *sql.Tx) error {
		r, err := tx.Exec(`INSERT INTO channel_inbox (channel, dedup_key, conversation, state, key_id, body, received_at)
			VALUES (?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (channel, dedup_key) DO NOTHING`,
			name, key, m.Conversation, keyID, blob, now.UnixMilli())
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil || n == 0 {
			return err // a duplicate: id stays 0
		}
		if id, err = r.LastInsertId(); err != nil {
			return err
		}
		// Marked before the commit so that the sweeper, which reads only
		// committed rows, never queues it a second time.
		h.inflight.Store(id, struct{}{})
		return nil
	})
	if err != nil {
		if id != 0 {
			h.inflight.Delete(id)
		}
		return fmt.Errorf("commit message to the inbox: %w", err)
	}
	if id == 0 {
		h.m.in.WithLabelValues(name, "duplicate").Inc()
		return nil
	}
	h.m.in.WithLabelValues(name, "accepted").Inc()
	e.sender.in.Add(1)
	h.enqueue(ctx, &job{id: id, conv: m.Conversation, msg: m, entry: e, recv: now.UnixMilli()})
	return nil
}

// enqueue hands a committed row to its conversation's worker. It waits while
// the worker's queue is full; if ctx or the hub ends first the row stays
// pending for the sweeper.
func (h *Hub) enqueue(ctx context.Context, j *job) {
	shard := h.shards[maphash.String(h.seed, j.entry.a.Name()+"\x00"+j.conv)%uint64(len(h.shards))]
	select {
	case shard <- j:
	case <-ctx.Done():
		h.inflight.Delete(j.id)
	case <-h.ctx.Done():
		h.inflight.Delete(j.id)
	}
}

func checkInbound(m *Message) error {
	for _, f := range []struct{ name, v string }{
		{"id", m.ID}, {"dedup_key", m.DedupKey}, {"conversation", m.Conversation}, {"thread", m.Thread},
		{"reply_to", m.ReplyTo}, {"sender.id", m.Sender.ID}, {"bot", m.Bot}, {"platform", m.Platform},
	} {
		if len(f.v) > maxIDBytes {
			return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, f.name, maxIDBytes)
		}
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, f.name)
		}
	}
	if m.ID == "" && m.DedupKey == "" {
		return fmt.Errorf("%w: the message has no id", ErrInvalid)
	}
	if m.Conversation == "" {
		return fmt.Errorf("%w: the message has no conversation", ErrInvalid)
	}
	if m.Sender.ID == "" {
		return fmt.Errorf("%w: the message has no sender", ErrInvalid)
	}
	switch m.ConversationType {
	case Direct, Group, Channel:
	case "":
		m.ConversationType = Direct
	default:
		return fmt.Errorf("%w: conversation type %q is not direct, group or channel", ErrInvalid, m.ConversationType)
	}
	if len(m.Text) > maxTextBytes {
		return fmt.Errorf("%w: the text is longer than %d bytes", ErrInvalid, maxTextBytes)
	}
	if !utf8.ValidString(m.Text) || !utf8.ValidString(m.Sender.Name) {
		return fmt.Errorf("%w: the text is not valid UTF-8", ErrInvalid)
	}
	if len(m.Media) > 32 {
		return fmt.Errorf("%w: more than 32 attachments", ErrInvalid)
	}
	return nil
}

func inboxAAD(channel, key string) []byte {
	return []byte("channel_inbox\x00" + channel + "\x00" + key)
}

func outboxAAD(key string) []byte { return []byte("channel_outbox\x00" + key) }

// work answers the jobs of one shard, in order.
func (h *Hub) work(q chan *job) {
	defer h.wg.Done()
	for {
		select {
		case j := <-q:
			h.process(j)
			h.inflight.Delete(j.id)
		case <-h.ctx.Done():
			return
		}
	}
}

// errAnswered: the row was answered by someone else (a second queueing of
// the same row); the turn that found it rolls back.
var errAnswered = errors.New("inbox row already answered")

// process answers one inbox row. Temporary failures are retried a few times
// here (keeping the conversation's order), then left pending for the
// sweeper.
func (h *Hub) process(j *job) {
	name := j.entry.a.Name()
	if j.msg == nil {
		m, err := h.loadInbox(h.ctx, j)
		if err != nil {
			if !errors.Is(err, errAnswered) && h.ctx.Err() == nil {
				h.log.Error("read inbox row", "channel", name, "inbox_id", j.id, "err", err)
			}
			return
		}
		j.msg = m
	}
	for attempt := 1; ; attempt++ {
		err := h.answer(h.ctx, j)
		switch {
		case err == nil || errors.Is(err, errAnswered):
			return
		case h.ctx.Err() != nil:
			return
		case errors.Is(err, ErrInvalid):
			h.log.Info("message refused by the dialogue", "channel", name, "inbox_id", j.id, "err", err)
			if err := h.finish(h.ctx, j, "rejected", err.Error(), h.cfg.Texts.Invalid); err != nil && !errors.Is(err, errAnswered) {
				h.log.Error("answer refused message", "channel", name, "inbox_id", j.id, "err", err)
			}
			return
		}
		h.m.turnErrors.WithLabelValues(name).Inc()
		if attempt >= 3 {
			h.log.Warn("message not answered yet; will retry", "channel", name, "inbox_id", j.id, "err", err)
			_ = h.deps.DB.Write(h.ctx, func(tx *sql.Tx) error {
				_, err2 := tx.Exec(`UPDATE channel_inbox SET attempts = attempts + ?, error = ? WHERE id = ? AND state = 'pending'`, attempt, truncate(err.Error(), 500), j.id)
				return err2
			})
			return
		}
		if !Sleep(h.ctx, Backoff{Min: 500 * time.Millisecond, Max: 4 * time.Second}.Delay(attempt)) {
			return
		}
	}
}

// answer runs the turn (or the hub's own answer for media) and commits the
// inbox row's end with the replies.
func (h *Hub) answer(ctx context.Context, j *job) error {
	m := j.msg
	text := strings.TrimSpace(m.Text)
	if text == "" {
		return h.answerMedia(ctx, j)
	}
	t := &Turn{Channel: m.Channel, Conversation: m.Conversation, User: m.Sender.ID, UserName: m.Sender.Name, Text: text, Message: m}
	start := h.now()
	var queued []int64
	err := h.deps.Dialogue.Respond(ctx, t, func(tx *sql.Tx, a *Answer) error {
		var err error
		queued, err = h.commitAnswer(tx, j, "done", "", a.SessionID, a.Replies)
		return err
	})
	if err != nil {
		return err
	}
	h.m.turnSeconds.WithLabelValues(m.Channel).Observe(h.now().Sub(start).Seconds())
	if len(queued) > 0 {
		j.entry.sender.notify()
	}
	return nil
}

// answerMedia answers a message without text: a voice note goes to the ASR
// when one is installed; anything else gets the hub's own answer.
func (h *Hub) answerMedia(ctx context.Context, j *job) error {
	m := j.msg
	if len(m.Media) == 0 {
		return h.finish(ctx, j, "ignored", "no text and no media", "")
	}
	media := m.Media[0]
	if media.Kind == Voice {
		if text, ok := h.transcribe(ctx, j, media); ok {
			c := *m
			c.Text = text
			j2 := *j
			j2.msg = &c
			return h.answer(ctx, &j2)
		}
		return h.finish(ctx, j, "done", "voice note: no ASR", h.cfg.Texts.VoiceUnavailable)
	}
	return h.finish(ctx, j, "done", "media without text", h.cfg.Texts.MediaUnsupported)
}

// transcribe returns the voice note's text when an ASR is installed and the
// adapter can fetch the audio.
func (h *Hub) transcribe(ctx context.Context, j *job, media Media) (string, bool) {
	f, ok := j.entry.a.(Fetcher)
	if h.deps.Transcriber == nil || !ok {
		return "", false
	}
	rc, err := f.Fetch(ctx, media)
	if err != nil {
		h.log.Warn("fetch voice note", "channel", j.entry.a.Name(), "err", err)
		return "", false
	}
	defer rc.Close()
	text, err := h.deps.Transcriber.Transcribe(ctx, io.LimitReader(rc, 50<<20), media)
	if err != nil {
		if !errors.Is(err, ErrNoASR) {
			h.log.Warn("transcribe voice note", "channel", j.entry.a.Name(), "err", err)
		}
		return "", false
	}
	text = strings.TrimSpace(text)
	return text, text != ""
}

// finish ends an inbox row without a turn, answering with text if any.
func (h *Hub) finish(ctx context.Context, j *job, state, why, text string) error {
	var replies []Reply
	if text != "" {
		replies = []Reply{{Text: text}}
	}
	var queued []int64
	err := h.deps.DB.Write(ctx, func(tx *sql.Tx) error {
		var err error
		queued, err = h.commitAnswer(tx, j, state, why, "", replies)
		return err
	})
	if err != nil {
		return err
	}
	if len(queued) > 0 {
		j.entry.sender.notify()
	}
	return nil
}

// outBody is an outbox row's sealed body.
type outBody struct {
	Text             string           `json:"text"`
	Markdown         bool             `json:"markdown,omitempty"`
	ConversationType ConversationType `json:"conversation_type"`
	Thread           string           `json:"thread,omitempty"`
	ReplyTo          string           `json:"reply_to,omitempty"`
	Recipient        string           `json:"recipient,omitempty"`
	Handle           Handle           `json:"handle,omitzero"`
	// ReceivedAt is when the message it answers was committed (unix ms),
	// for the receipt-to-reply metric.
	ReceivedAt int64 `json:"received_at"`
}

// commitAnswer, inside tx, ends the inbox row (only if still pending) and
// queues the replies, split to the adapter's limit.
func (h *Hub) commitAnswer(tx *sql.Tx, j *job, state, why, sessionID string, replies []Reply) ([]int64, error) {
	now := h.now().UnixMilli()
	r, err := tx.Exec(`UPDATE channel_inbox SET state = ?, error = ?, session_id = ?, key_id = NULL, body = NULL, done_at = ?
		WHERE id = ? AND state = 'pending'`, state, truncate(why, 500), sessionID, now, j.id)
	if err != nil {
		return nil, err
	}
	if n, err := r.RowsAffected(); err != nil {
		return nil, err
	} else if n == 0 {
		return nil, errAnswered
	}
	m, e := j.msg, j.entry
	var ids []int64
	for ri, rep := range replies {
		parts := Split(rep.Text, e.limits.MaxText, e.limits.Unit)
		for pi, p := range parts {
			key := strconv.FormatInt(j.id, 36) + "-" + strconv.Itoa(ri) + "-" + strconv.Itoa(pi)
			body := outBody{Text: p, Markdown: rep.Markdown, ConversationType: m.ConversationType, Thread: m.Thread,
				ReplyTo: m.ID, Recipient: m.Sender.ID, Handle: m.Handle, ReceivedAt: j.recv}
			plain, err := json.Marshal(body)
			if err != nil {
				return nil, err
			}
			keyID, blob, err := h.deps.Sealer.Seal(plain, outboxAAD(key))
			if err != nil {
				return nil, err
			}
			res, err := tx.Exec(`INSERT INTO channel_outbox (key, channel, conversation, inbox_id, part, parts, state, next_at, created_at, key_id, body)
				VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)`,
				key, e.a.Name(), m.Conversation, j.id, pi+1, len(parts), now, now, keyID, blob)
			if err != nil {
				return nil, err
			}
			id, err := res.LastInsertId()
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// loadInbox reads a recovered row's message.
func (h *Hub) loadInbox(ctx context.Context, j *job) (*Message, error) {
	var (
		state, keyID, key string
		blob              []byte
	)
	err := h.deps.DB.Read().QueryRowContext(ctx, `SELECT state, COALESCE(key_id, ''), body, received_at, dedup_key FROM channel_inbox WHERE id = ?`, j.id).
		Scan(&state, &keyID, &blob, &j.recv, &key)
	if err != nil {
		return nil, err
	}
	if state != "pending" {
		return nil, errAnswered
	}
	plain, err := h.deps.Sealer.Open(keyID, blob, inboxAAD(j.entry.a.Name(), key))
	if err != nil {
		return nil, err
	}
	var m Message
	if err := json.Unmarshal(plain, &m); err != nil {
		return nil, fmt.Errorf("decode inbox row %d: %w", j.id, err)
	}
	return &m, nil
}

// sweepLoop queues pending inbox rows nobody is answering: at start (what
// a crash left) and every 30 s (rows whose answer failed for a while).
func (h *Hub) sweepLoop() {
	defer h.wg.Done()
	for {
		if err := h.sweep(h.ctx); err != nil && h.ctx.Err() == nil {
			h.log.Warn("inbox sweep", "err", err)
		}
		if !Sleep(h.ctx, 30*time.Second) {
			return
		}
	}
}

func (h *Hub) sweep(ctx context.Context) error {
	var last int64
	for {
		rows, err := h.deps.DB.Read().QueryContext(ctx, `SELECT id, channel, conversation FROM channel_inbox
			WHERE state = 'pending' AND id > ? ORDER BY id LIMIT 500`, last)
		if err != nil {
			return err
		}
		var jobs []*job
		for rows.Next() {
			j := &job{}
			var ch string
			if err := rows.Scan(&j.id, &ch, &j.conv); err != nil {
				rows.Close()
				return err
			}
			last = j.id
			h.mu.Lock()
			j.entry = h.byName[ch]
			h.mu.Unlock()
			if j.entry == nil {
				continue // a channel no longer configured: left pending
			}
			jobs = append(jobs, j)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, j := range jobs {
			if _, busy := h.inflight.LoadOrStore(j.id, struct{}{}); busy {
				continue
			}
			h.m.recovered.WithLabelValues(j.entry.a.Name()).Inc()
			h.enqueue(ctx, j)
		}
		if len(jobs) == 0 {
			return nil
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
