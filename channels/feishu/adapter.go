package feishu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Name is the adapter's instance name and the prefix of its routes.
const Name = "feishu"

// EventsPath is the event callback route.
const EventsPath = "/channels/" + Name + "/events"

// Log attribute keys.
const (
	logErr       = "err"
	logEventID   = "event_id"
	logEventType = "event_type"
	logReason    = "reason"
	logHost      = "host"
	logDelay     = "delay"
	logSum       = "sum"
	logSeq       = "seq"
)

// Adapter is the Feishu / Lark adapter. Build it with New; it is safe for
// concurrent use once started.
type Adapter struct {
	cfg  Config
	log  *slog.Logger
	http *http.Client
	// now and backoff are replaced by tests.
	now     func() time.Time
	backoff channels.Backoff

	replay  *channels.ReplayGuard
	retries retrySet

	sinkMu sync.RWMutex
	sink   channels.Sink

	tokens tokenCache

	life    sync.Mutex
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	stMu  sync.Mutex
	state channels.State

	ws wsState
}

var (
	_ channels.Adapter    = (*Adapter)(nil)
	_ channels.Router     = (*Adapter)(nil)
	_ channels.Limited    = (*Adapter)(nil)
	_ channels.Idempotent = (*Adapter)(nil)
	_ channels.Stater     = (*Adapter)(nil)
)

// New builds an adapter from a validated configuration. It does no I/O.
func New(cfg Config, log *slog.Logger) (*Adapter, error) {
	if log == nil {
		return nil, errors.New("feishu: nil logger")
	}
	cfg.Enabled = true // New is only called for an enabled section
	v := config.NewValidator("channels." + Name)
	cfg.Validate(v)
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("feishu: %w", err)
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	a := &Adapter{
		cfg:     cfg,
		log:     log,
		http:    &http.Client{Timeout: cfg.Timeout},
		now:     time.Now,
		backoff: channels.Backoff{Min: time.Second, Max: 2 * time.Minute},
		// Timestamps within ±MaxSkew pass, so a nonce must be remembered
		// for twice that.
		replay: channels.NewReplayGuard(2*cfg.MaxSkew, 100_000),
	}
	a.tokens.sem = make(chan struct{}, 1)
	return a, nil
}

// Name implements channels.Adapter: "feishu".
func (a *Adapter) Name() string { return Name }

// Routes implements channels.Router: the event callback in webhook mode,
// none in websocket mode.
func (a *Adapter) Routes() []channels.Route {
	if a.cfg.Mode != ModeWebhook || a.cfg.AppID == "" {
		return nil
	}
	return []channels.Route{{Method: http.MethodPost, Path: EventsPath, Handler: http.HandlerFunc(a.serveEvents)}}
}

// Limits implements channels.Limited. Text may be up to 150 KB per request;
// 4000 runes keeps a message readable. Rates: 5 QPS per chat and 50 QPS per
// app for im/v1/messages (open platform rate limit docs).
func (a *Adapter) Limits() channels.Limits {
	return channels.Limits{
		MaxText: 4000,
		Unit:    channels.Runes,
		PerChat: channels.Rate{N: 5, Per: time.Second},
		Global:  channels.Rate{N: 50, Per: time.Second},
	}
}

// IdempotentSend implements channels.Idempotent: im/v1 messages deduplicate
// on uuid (our Outgoing.Key) — but only for 1 hour, so a send repeated later
// than that is delivered twice. Sends through the custom group bot are not
// deduplicated at all (see GroupBot).
func (a *Adapter) IdempotentSend() bool { return a.cfg.AppID != "" }

// State implements channels.Stater.
func (a *Adapter) State() channels.State {
	a.stMu.Lock()
	defer a.stMu.Unlock()
	return a.state
}

func (a *Adapter) setConnected(ok bool, detail string) {
	a.stMu.Lock()
	defer a.stMu.Unlock()
	a.state.Connected, a.state.Detail = ok, detail
}

func (a *Adapter) setError(err error) {
	a.stMu.Lock()
	defer a.stMu.Unlock()
	a.state.LastError, a.state.LastErrorAt = err.Error(), a.now().UTC()
}

// Start implements channels.Adapter. In webhook mode it only arms the
// callback; in websocket mode it starts the long connection loop, which
// connects in the background and reconnects with backoff (its errors show
// in State and the log). The loop lives until Stop, not until ctx ends.
func (a *Adapter) Start(ctx context.Context, sink channels.Sink) error {
	if sink == nil {
		return errors.New("feishu: start: nil sink")
	}
	a.life.Lock()
	defer a.life.Unlock()
	if a.started {
		return errors.New("feishu: start: already started")
	}
	a.started = true
	a.sinkMu.Lock()
	a.sink = sink
	a.sinkMu.Unlock()
	switch {
	case a.cfg.AppID == "":
		a.setConnected(true, "group bot only (outbound)")
	case a.cfg.Mode == ModeWebsocket:
		a.setConnected(false, "websocket: connecting")
		lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		a.cancel = cancel
		a.wg.Add(1)
		go a.runWebsocket(lctx)
	default:
		a.setConnected(true, "webhook POST "+EventsPath)
	}
	return nil
}

// Stop implements channels.Adapter: it ends the long connection and waits
// for its goroutines (or ctx). Idempotent.
func (a *Adapter) Stop(ctx context.Context) error {
	a.life.Lock()
	cancel := a.cancel
	a.cancel = nil
	a.life.Unlock()
	if cancel != nil {
		cancel()
	}
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("feishu: stop: %w", ctx.Err())
	}
	a.setConnected(false, "stopped")
	return nil
}

func (a *Adapter) currentSink() channels.Sink {
	a.sinkMu.RLock()
	defer a.sinkMu.RUnlock()
	return a.sink
}

// retrySet remembers the nonces of signed callbacks whose delivery failed,
// so that Feishu's redelivery of the very same request is not refused as a
// replay. Bounded: the oldest are forgotten past retrySetMax.
type retrySet struct {
	mu    sync.Mutex
	m     map[string]bool
	order []string
}

const retrySetMax = 4096

func (s *retrySet) add(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]bool{}
	}
	if s.m[k] {
		return
	}
	if len(s.order) >= retrySetMax {
		delete(s.m, s.order[0])
		s.order = s.order[1:]
	}
	s.m[k] = true
	s.order = append(s.order, k)
}

// take reports whether k was added, and forgets it.
func (s *retrySet) take(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.m[k] {
		return false
	}
	delete(s.m, k)
	for i, o := range s.order {
		if o == k {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	return true
}
