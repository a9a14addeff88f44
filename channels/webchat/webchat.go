package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// Name is the adapter's name: the configuration key and the Channel of
// every message it delivers.
const Name = "webchat"

// Bounds of the reply buffer kept for visitors with no open socket.
const (
	// bufferPerVisitor replies are kept per visitor; older ones are
	// dropped first.
	bufferPerVisitor = 50
	// bufferTTL is how long a buffered reply waits for its visitor.
	bufferTTL = 10 * time.Minute
	// bufferVisitors bounds the visitors with buffered replies; a reply for
	// another visitor is dropped while it is full.
	bufferVisitors = 10_000
	// sweepEvery is how often expired buffered replies are dropped.
	sweepEvery = time.Minute
)

// Log attribute keys.
const (
	logKeyVisitor = "visitor"
	logKeyReply   = "reply"
	logKeyError   = "error"
	logKeyReason  = "reason"
)

// ErrStopped is returned by Send once the adapter is stopped.
var ErrStopped = errors.New("webchat: adapter stopped")

// Adapter is the web chat channel: a page, an embeddable widget and the
// websocket they talk over, mounted on the daemon's fiber app. Build it
// with New; safe for concurrent use.
type Adapter struct {
	cfg    Config
	log    *slog.Logger
	assets *assets
	now    func() time.Time

	// active counts open sockets (the max_connections check).
	active atomic.Int64

	mu       sync.Mutex
	state    int // stateNew, stateStarted, stateStopped
	sink     channels.Sink
	ctx      context.Context // cancelled by Stop: Deliver calls, the sweeper
	cancel   context.CancelFunc
	visitors map[string]*visitor
	conns    map[*conn]struct{} // every open socket, hello or not
	buffered int                // visitors with pending replies
	wg       sync.WaitGroup     // sockets and the sweeper

	// afterUnregister, when set (tests), runs after a socket is released.
	afterUnregister func()
}

const (
	stateNew = iota
	stateStarted
	stateStopped
)

// visitor is one browser identity: its open sockets and the replies
// waiting for one.
type visitor struct {
	conns   map[*conn]struct{}
	pending []pendingReply
}

type pendingReply struct {
	key   string
	frame []byte
	at    time.Time
}

// Interface guards.
var (
	_ channels.Adapter    = (*Adapter)(nil)
	_ channels.Idempotent = (*Adapter)(nil)
	_ channels.Stater     = (*Adapter)(nil)
)

// New builds the adapter from a validated configuration. It does no I/O.
func New(cfg Config, log *slog.Logger) (*Adapter, error) {
	if log == nil {
		return nil, errors.New("webchat: nil logger")
	}
	if strings.TrimSpace(cfg.Title) == "" {
		cfg.Title = DefaultTitle
	}
	if cfg.MaxText <= 0 {
		cfg.MaxText = DefaultMaxText
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	for _, o := range cfg.AllowedOrigins {
		if msg := checkOrigin(o); msg != "" {
			return nil, fmt.Errorf("webchat: allowed_origins %q: %s", o, msg)
		}
	}
	as, err := buildAssets(cfg.Title)
	if err != nil {
		return nil, fmt.Errorf("webchat: %w", err)
	}
	return &Adapter{
		cfg:      cfg,
		log:      log,
		assets:   as,
		now:      time.Now,
		visitors: map[string]*visitor{},
		conns:    map[*conn]struct{}{},
	}, nil
}

// Name implements channels.Adapter.
func (a *Adapter) Name() string { return Name }

// Start implements channels.Adapter: sockets are accepted from now on and
// their messages go to sink. It starts the sweeper of expired buffered
// replies.
func (a *Adapter) Start(ctx context.Context, sink channels.Sink) error {
	if sink == nil {
		return errors.New("webchat: nil sink")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch a.state {
	case stateStarted:
		return errors.New("webchat: already started")
	case stateStopped:
		return errors.New("webchat: start after stop: build a new adapter")
	}
	a.state = stateStarted
	a.sink = sink
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	a.wg.Add(1)
	go a.sweeper(a.ctx)
	return nil
}

// Stop implements channels.Adapter: it refuses new sockets, closes the
// open ones (1001 going away) and waits for their handlers and the
// sweeper, or for ctx. Idempotent; safe without Start.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	if a.state == stateStopped {
		a.mu.Unlock()
		return nil
	}
	started := a.state == stateStarted
	a.state = stateStopped
	conns := make([]*conn, 0, len(a.conns))
	for c := range a.conns {
		conns = append(conns, c)
	}
	a.mu.Unlock()
	if !started {
		return nil
	}
	a.cancel()
	for _, c := range conns {
		c.closeWith(closeGoingAway, "server stopping")
	}
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("webchat: stop: %w", ctx.Err())
	}
}

// IdempotentSend implements channels.Idempotent: every reply carries its
// Key and the widget shows a key once.
func (a *Adapter) IdempotentSend() bool { return true }

// State implements channels.Stater.
func (a *Adapter) State() channels.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return channels.State{
		Connected: a.state == stateStarted,
		Detail:    fmt.Sprintf("web chat: %d sockets, %d visitors, %d with buffered replies", len(a.conns), len(a.visitors), a.buffered),
	}
}

// replyFrame is the server → client "reply" frame.
type replyFrame struct {
	Type     string `json:"type"`
	ID       string `json:"id"`
	Text     string `json:"text"`
	Markdown bool   `json:"markdown"`
}

// Send implements channels.Adapter: the reply goes to every open socket of
// the visitor (out.Conversation). With none open it waits in a small
// per-visitor buffer (50 replies, 10 minutes) that the next hello
// flushes; a reply dropped from a full or expired buffer is logged. Both
// return nil: web visitors are ephemeral and the hub has recorded the
// reply. The only error is ErrStopped. Safe for concurrent use; writes to
// one socket are serialised.
func (a *Adapter) Send(ctx context.Context, out *channels.Outgoing) (channels.Receipt, error) {
	vid := out.Conversation
	if vid == "" {
		vid = out.Recipient
	}
	frame, err := json.Marshal(replyFrame{Type: "reply", ID: out.Key, Text: out.Text, Markdown: out.Markdown})
	if err != nil {
		return channels.Receipt{}, channels.Permanent(fmt.Errorf("webchat: encode reply: %w", err))
	}
	// A socket may die between the snapshot and the write; then look
	// again (a hello may have come meanwhile) before buffering.
	for range 3 {
		a.mu.Lock()
		if a.state == stateStopped {
			a.mu.Unlock()
			return channels.Receipt{}, ErrStopped
		}
		v := a.visitors[vid]
		if v == nil || len(v.conns) == 0 {
			a.bufferLocked(vid, out.Key, frame)
			a.mu.Unlock()
			return channels.Receipt{}, nil
		}
		targets := make([]*conn, 0, len(v.conns))
		for c := range v.conns {
			targets = append(targets, c)
		}
		a.mu.Unlock()
		sent := 0
		for _, c := range targets {
			if c.write(frame) == nil {
				sent++
			}
		}
		if sent > 0 {
			return channels.Receipt{}, nil
		}
		a.mu.Lock()
		for _, c := range targets {
			if v := a.visitors[vid]; v != nil {
				delete(v.conns, c) // dead: its handler finishes the cleanup
			}
		}
		a.mu.Unlock()
	}
	a.mu.Lock()
	if a.state != stateStopped {
		a.bufferLocked(vid, out.Key, frame)
	}
	a.mu.Unlock()
	return channels.Receipt{}, nil
}

// bufferLocked keeps a reply for a visitor with no open socket. a.mu held.
func (a *Adapter) bufferLocked(vid, key string, frame []byte) {
	v := a.visitors[vid]
	if v == nil || len(v.pending) == 0 {
		if a.buffered >= bufferVisitors {
			a.log.Warn("webchat: reply dropped: too many visitors with buffered replies", logKeyVisitor, vid, logKeyReply, key)
			return
		}
		if v == nil {
			v = &visitor{conns: map[*conn]struct{}{}}
			a.visitors[vid] = v
		}
		a.buffered++
	}
	if len(v.pending) >= bufferPerVisitor {
		a.log.Warn("webchat: buffered reply dropped: the visitor's buffer is full", logKeyVisitor, vid, logKeyReply, v.pending[0].key)
		v.pending = append(v.pending[:0], v.pending[1:]...)
	}
	v.pending = append(v.pending, pendingReply{key: key, frame: frame, at: a.now()})
}

// forgetLocked drops a visitor that has neither sockets nor replies.
func (a *Adapter) forgetLocked(vid string, v *visitor) {
	if len(v.conns) == 0 && len(v.pending) == 0 {
		delete(a.visitors, vid)
	}
}

// takePendingLocked removes and returns a visitor's unexpired buffered
// replies. a.mu held.
func (a *Adapter) takePendingLocked(vid string, v *visitor) [][]byte {
	if len(v.pending) == 0 {
		return nil
	}
	now := a.now()
	out := make([][]byte, 0, len(v.pending))
	for _, p := range v.pending {
		if now.Sub(p.at) > bufferTTL {
			a.log.Warn("webchat: buffered reply dropped: the visitor did not come back in time", logKeyVisitor, vid, logKeyReply, p.key)
			continue
		}
		out = append(out, p.frame)
	}
	v.pending = nil
	a.buffered--
	return out
}

// sweeper drops expired buffered replies every sweepEvery until ctx ends.
func (a *Adapter) sweeper(ctx context.Context) {
	defer a.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.sweep()
		}
	}
}

// sweep drops buffered replies older than bufferTTL.
func (a *Adapter) sweep() {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for vid, v := range a.visitors {
		if len(v.pending) == 0 {
			continue
		}
		keep := v.pending[:0]
		for _, p := range v.pending {
			if now.Sub(p.at) > bufferTTL {
				a.log.Warn("webchat: buffered reply dropped: the visitor did not come back in time", logKeyVisitor, vid, logKeyReply, p.key)
				continue
			}
			keep = append(keep, p)
		}
		clear(v.pending[len(keep):])
		v.pending = keep
		if len(keep) == 0 {
			v.pending = nil
			a.buffered--
			a.forgetLocked(vid, v)
		}
	}
}
