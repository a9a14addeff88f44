package dialogue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zhiyin/zhiyin/dialogue/domain"
	"github.com/zhiyin/zhiyin/dialogue/faq"
	"github.com/zhiyin/zhiyin/dialogue/lanes"
	"github.com/zhiyin/zhiyin/dialogue/nlu"
	"github.com/zhiyin/zhiyin/dialogue/session"
	"github.com/zhiyin/zhiyin/dialogue/skill"
	"github.com/zhiyin/zhiyin/internal/store"
)

// maxIDLen bounds identifiers from outside.
const maxIDLen = 256

// Errors.
var (
	// ErrNoNLU: no NLU model is loaded.
	ErrNoNLU = errors.New("no NLU model is loaded")
	// ErrBadMessage: a message field is missing or malformed (a client
	// mistake: 400).
	ErrBadMessage = errors.New("invalid message")
	// ErrNotFound: no such session.
	ErrNotFound = session.ErrNotFound
	// ErrNotInHandoff: the session is not with a human.
	ErrNotInHandoff = errors.New("the session is not handed off")
)

// Parser is what the engine needs of the NLU: *nlu.Parser.
type Parser interface {
	CheckText(text string) error
	Parse(ctx context.Context, text string) (*nlu.Result, error)
}

// Message is one customer message.
type Message struct {
	// SessionID continues a known session; empty, or an id the engine does
	// not know (or that belongs to another client or user), starts or
	// continues the conversation by key.
	SessionID string
	// Channel, Conversation and User key the session; Conversation
	// defaults to User and Channel to "api".
	Channel, Conversation, User string
	// Client is the subject of the credential that sent it: sessions
	// remember it, and only it (or an admin) may read them.
	Client string
	Text   string
	// Commit, when set, runs inside the transaction that stores the turn,
	// after the session is saved, with the turn's result: the channels hub
	// marks its inbox row answered and queues the replies in its outbox
	// there, so that a turn and its replies are committed together or not
	// at all. An error from Commit fails the turn (nothing is stored). It
	// must follow store.DB.Write's rules for fns.
	Commit func(tx *sql.Tx, res *Result) error
}

// Reply is one bot answer.
type Reply struct {
	Text     string `json:"text"`
	Markdown bool   `json:"markdown,omitempty"`
	// Response names the domain response (or built-in answer) the text was
	// rendered from; empty for FAQ answers and skill replies. A voice call
	// plays the recorded prompt of that name when there is one.
	Response string `json:"response,omitempty"`
}

// Result is the outcome of one turn.
type Result struct {
	SessionID string            `json:"session_id"`
	Replies   []Reply           `json:"replies"`
	Intent    nlu.Intent        `json:"intent"`
	Entities  []nlu.Entity      `json:"entities"`
	Slots     map[string]string `json:"slots"`
	Lane      string            `json:"lane"`
	// Handoff is true while a human has the conversation: the bot is
	// silent until an agent releases it.
	Handoff bool `json:"handoff"`
	// Stack lists the open forms, outermost first.
	Stack []string `json:"stack,omitempty"`
	// NewSession is true when this turn started the session.
	NewSession bool `json:"new_session,omitempty"`
}

// Deps are what the engine uses but does not own.
type Deps struct {
	DB    *store.DB
	Store *session.Store
	// NLU returns the current parser (nil while none is loaded).
	NLU    func() Parser
	Skills *skill.Registry
	Pool   *lanes.Pool
	Log    *slog.Logger
	// Metrics may be nil.
	Metrics prometheus.Registerer
	// Pick chooses a response variant: an index in [0, n). Default
	// rand.IntN.
	Pick func(n int) int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Engine holds conversations: it runs every turn through NLU, the policy of
// the loaded domain and the session store. Safe for concurrent use; turns of
// one conversation run one at a time, in arrival order.
type Engine struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	m     *metrics
	dom   atomic.Pointer[loaded]
	locks *keyLocks
	cache *cache
}

// loaded is a domain with what is derived from it.
type loaded struct {
	dom   *domain.Domain
	lanes *lanes.Classifier
	faq   *faq.Index
	// slotsFor maps an entity type to the slots it fills.
	slotsFor map[string][]*domain.Slot
}

// New returns an engine serving dom. It fails when dom names a skill that is
// not registered, or metrics cannot be registered.
func New(cfg Config, dom *domain.Domain, deps Deps) (*Engine, error) {
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Pick == nil {
		deps.Pick = rand.IntN
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Skills == nil {
		deps.Skills = skill.NewRegistry()
	}
	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, deps: deps, log: deps.Log, m: m, locks: newKeyLocks(), cache: newCache(cfg.CacheSessions)}
	if err := e.SetDomain(dom); err != nil {
		return nil, err
	}
	return e, nil
}

// SetDomain switches to another domain (a SIGHUP reload). Turns already
// running finish with the old one; sessions keep their slots, and forms the
// new domain no longer has are dropped from their stacks at their next turn.
func (e *Engine) SetDomain(dom *domain.Domain) error {
	if err := dom.CheckSkills(e.deps.Skills.Has); err != nil {
		return fmt.Errorf("domain %s: %w (configure the action under dialogue.actions or remove the reference)", dom.Source, err)
	}
	ld := &loaded{dom: dom, slotsFor: slotsByEntity(dom)}
	// An intent's own lane: adds to the lanes: lists.
	urgent, batch := slices.Clone(dom.Lanes.Urgent.Intents), slices.Clone(dom.Lanes.Batch.Intents)
	for _, name := range dom.IntentNames() {
		switch dom.Intents[name].Lane {
		case "urgent":
			urgent = append(urgent, name)
		case "batch":
			batch = append(batch, name)
		}
	}
	ld.lanes = lanes.NewClassifier(dom.Lanes.Urgent.Keywords, urgent, dom.Lanes.Batch.Keywords, batch)
	entries := make([]faq.Entry, len(dom.FAQ))
	for i, f := range dom.FAQ {
		entries[i] = faq.Entry{ID: f.ID, Intent: f.Intent, Questions: f.Questions, Answer: f.Answer}
	}
	ld.faq = faq.Build(entries)
	e.dom.Store(ld)
	return nil
}

// Domain returns the domain being served.
func (e *Engine) Domain() *domain.Domain { return e.dom.Load().dom }

// Handle runs one turn: the message goes to its priority lane, is parsed,
// the policy answers, and session and turn are committed in one
// transaction before Handle returns. Errors: nlu.ErrEmpty, ErrTooLong and
// ErrInvalidUTF8, ErrBadMessage (client mistakes); ErrNoNLU; lanes'
// ErrQueueFull and store.ErrBusy/ErrFull (retry later). On an error nothing
// of the turn is stored.
func (e *Engine) Handle(ctx context.Context, m Message) (*Result, error) {
	start := time.Now()
	if err := checkMessage(&m); err != nil {
		return nil, err
	}
	p := e.deps.NLU()
	if p == nil {
		return nil, ErrNoNLU
	}
	if err := p.CheckText(m.Text); err != nil {
		return nil, err
	}
	ld := e.dom.Load()
	lane := ld.lanes.ByText(normText(m.Text))
	var res *Result
	var err error
	if perr := e.deps.Pool.Do(ctx, lane, func() { res, err = e.parseAndApply(ctx, m, p, ld, lane) }); perr != nil {
		e.m.turnErrors.WithLabelValues(lane.String(), "lane").Inc()
		return nil, perr
	}
	if err != nil {
		e.m.turnErrors.WithLabelValues(lane.String(), "turn").Inc()
		return nil, err
	}
	e.m.turns.WithLabelValues(res.Lane).Inc()
	e.m.turnDuration.WithLabelValues(res.Lane).Observe(time.Since(start).Seconds())
	return res, nil
}

// parseAndApply runs on a lane worker. When the intent belongs to a higher
// lane than the keywords chose, the rest of the turn moves there.
func (e *Engine) parseAndApply(ctx context.Context, m Message, p Parser, ld *loaded, lane lanes.Lane) (*Result, error) {
	parse, err := p.Parse(ctx, m.Text)
	if err != nil {
		return nil, err
	}
	if up := ld.lanes.ByIntent(parse.Intent.Name, lane); up != lane {
		var res *Result
		if perr := e.deps.Pool.Do(ctx, up, func() { res, err = e.apply(ctx, m, parse, ld, up) }); perr != nil {
			return nil, perr
		}
		return res, err
	}
	return e.apply(ctx, m, parse, ld, lane)
}

func checkMessage(m *Message) error {
	if strings.TrimSpace(m.User) == "" {
		return fmt.Errorf("%w: user_id is required", ErrBadMessage)
	}
	if m.Channel == "" {
		m.Channel = "api"
	}
	if m.Conversation == "" {
		m.Conversation = m.User
	}
	for _, f := range []struct{ name, v string }{{"user_id", m.User}, {"channel", m.Channel}, {"conversation", m.Conversation}, {"session_id", m.SessionID}} {
		if len(f.v) > maxIDLen {
			return fmt.Errorf("%w: %s is longer than %d bytes", ErrBadMessage, f.name, maxIDLen)
		}
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: %s is not valid UTF-8", ErrBadMessage, f.name)
		}
	}
	return nil
}

func keyOf(m *Message) session.Key {
	return session.Key{Channel: m.Channel, Conversation: m.Conversation, User: m.User}
}

// resolve finds the key of the conversation m belongs to, and whether m
// named a session id that is unknown (or not its own): such a message starts
// a new session.
func (e *Engine) resolve(ctx context.Context, m *Message) (k session.Key, fresh bool, err error) {
	k = keyOf(m)
	if m.SessionID == "" {
		return k, false, nil
	}
	if ck, ok := e.cache.keyOf(m.SessionID); ok {
		if ck == k {
			return k, false, nil
		}
		return k, true, nil
	}
	s, err := e.deps.Store.Get(ctx, m.SessionID)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return k, true, nil
	case err != nil:
		return k, false, err
	}
	if s.Key != k || s.Client != m.Client {
		return k, true, nil
	}
	return k, false, nil
}

// current returns the conversation's latest session: cached, or read.
func (e *Engine) current(ctx context.Context, k session.Key) (*cached, error) {
	if c, ok := e.cache.get(k); ok {
		return c, nil
	}
	s, err := e.deps.Store.Latest(ctx, k)
	if errors.Is(err, session.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st, err := decodeState(s.State)
	if err != nil {
		return nil, err
	}
	return &cached{key: k, sess: s, st: st}, nil
}

// apply holds the conversation's lock while the policy runs and the turn is
// committed. A conflict (another process changed the row) reloads and runs
// the turn again, once.
func (e *Engine) apply(ctx context.Context, m Message, parse *nlu.Result, ld *loaded, lane lanes.Lane) (*Result, error) {
	k, fresh, err := e.resolve(ctx, &m)
	if err != nil {
		return nil, err
	}
	unlock, err := e.locks.lock(ctx, k)
	if err != nil {
		return nil, err
	}
	defer unlock()
	for attempt := 0; ; attempt++ {
		res, err := e.applyLocked(ctx, m, k, fresh, parse, ld, lane)
		// Another process changed or deleted the row (a CLI, retention):
		// reload and run the turn again.
		if (errors.Is(err, session.ErrConflict) || errors.Is(err, session.ErrNotFound)) && attempt == 0 {
			e.cache.drop(k)
			e.log.Info("session changed by another process; reloading", "channel", k.Channel)
			continue
		}
		return res, err
	}
}

func (e *Engine) applyLocked(ctx context.Context, m Message, k session.Key, fresh bool, parse *nlu.Result, ld *loaded, lane lanes.Lane) (*Result, error) {
	now := e.deps.Now()
	cur, err := e.current(ctx, k)
	if err != nil {
		return nil, err
	}
	// The previous session ends when it has been idle too long, or when
	// the client asked for a session id it may not continue; it stays
	// resumable for the resume window.
	var ended *session.Session
	if cur != nil && cur.sess.Status == session.Active && (fresh || now.Sub(cur.sess.UpdatedAt) > e.cfg.IdleTimeout) {
		ended = cur.sess
	}
	t := &turn{e: e, ld: ld, m: &m, parse: parse, norm: normText(m.Text), lane: lane, now: now}
	if cur == nil || cur.sess.Status != session.Active || ended != nil {
		t.sess = &session.Session{ID: session.NewID(), Key: k, Client: m.Client, Status: session.Active, CreatedAt: now}
		t.st = &state{}
		t.started = true
		e.m.sessionsStarted.Inc()
	} else {
		s := *cur.sess
		t.sess = &s
		t.st = cur.st.clone()
	}
	if err := t.run(ctx); err != nil {
		return nil, err
	}

	t.sess.State = t.st.encode()
	rec := &session.Turn{At: now, User: m.Text, Intent: parse.Intent.Name, Confidence: parse.Intent.Confidence, Lane: t.lane.String()}
	for _, r := range t.replies {
		rec.Replies = append(rec.Replies, r.Text)
	}
	res := t.result()
	err = e.deps.DB.Write(ctx, func(tx *sql.Tx) error {
		if ended != nil {
			if err := e.deps.Store.ExpireTx(tx, ended.ID); err != nil {
				return err
			}
		}
		if err := e.deps.Store.SaveTx(tx, t.sess, rec); err != nil {
			return err
		}
		if t.handoff != nil {
			if err := e.deps.Store.PutHandoffTx(tx, t.handoff); err != nil {
				return err
			}
		}
		if m.Commit != nil {
			return m.Commit(tx, res)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.cache.put(&cached{key: k, sess: t.sess, st: t.st})
	if t.handoff != nil {
		e.m.handoffs.WithLabelValues(t.handoffReason).Inc()
	}
	return res, nil
}
