package slack

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
)

// Name is the adapter's name: the configuration key and every message's
// Channel.
const Name = "slack"

// EventsPath is the Events API callback (events mode).
const EventsPath = "/channels/slack/events"

// Log attribute keys.
const (
	logErr      = "err"
	logReason   = "reason"
	logEvent    = "event_type"
	logRetry    = "retry_num"
	logEnvelope = "envelope_id"
	logChannel  = "channel"
)

// Adapter is one Slack app. Safe for concurrent use.
type Adapter struct {
	cfg    Config
	log    *slog.Logger
	base   string // APIBase without the trailing slash
	client *http.Client
	replay *channels.ReplayGuard

	// Tests replace these.
	now          func() time.Time
	backoff      channels.Backoff
	pingInterval time.Duration

	mu        sync.Mutex
	sink      channels.Sink
	started   bool
	stopped   bool
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	state     channels.State
	botUserID string // configured or from auth.test
}

// Interface guards.
var (
	_ channels.Adapter = (*Adapter)(nil)
	_ channels.Router  = (*Adapter)(nil)
	_ channels.Limited = (*Adapter)(nil)
	_ channels.Stater  = (*Adapter)(nil)
)

// New returns an adapter for cfg (validated by the caller). It does no I/O.
func New(cfg Config, log *slog.Logger) (*Adapter, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	def := DefaultConfig()
	if cfg.Mode == "" {
		cfg.Mode = def.Mode
	}
	if cfg.APIBase == "" {
		cfg.APIBase = def.APIBase
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = def.MaxSkew
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = def.MaxBody
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = def.Timeout
	}
	switch cfg.Mode {
	case ModeEvents, ModeSocket:
	default:
		return nil, fmt.Errorf("slack: mode must be %q or %q, got %q", ModeEvents, ModeSocket, cfg.Mode)
	}
	if !cfg.BotToken.IsSet() {
		return nil, errors.New("slack: bot_token is required")
	}
	if cfg.Mode == ModeEvents && !cfg.SigningSecret.IsSet() {
		return nil, errors.New("slack: signing_secret is required in events mode")
	}
	if cfg.Mode == ModeSocket && !cfg.AppToken.IsSet() {
		return nil, errors.New("slack: app_token is required in socket mode")
	}
	return &Adapter{
		cfg:    cfg,
		log:    log.With(logChannel, Name),
		base:   strings.TrimRight(cfg.APIBase, "/"),
		client: &http.Client{Timeout: cfg.Timeout},
		// A signature is accepted while its timestamp is within MaxSkew of
		// now, so remembering it for twice that covers every replay.
		// Slack sends at most 30,000 events an hour per workspace: ~5,000
		// in ten minutes.
		replay:       channels.NewReplayGuard(2*cfg.MaxSkew, 20000),
		now:          time.Now,
		backoff:      channels.Backoff{Min: time.Second, Max: time.Minute},
		pingInterval: 30 * time.Second,
		botUserID:    cfg.BotUserID,
	}, nil
}

// Name implements channels.Adapter.
func (a *Adapter) Name() string { return Name }

// Start implements channels.Adapter. Without bot_user_id it asks auth.test
// who the bot is (a refused token fails Start; an unreachable API is logged
// and the callbacks' authorizations stand in). In socket mode it starts the
// connection loop and returns without waiting for it.
func (a *Adapter) Start(ctx context.Context, sink channels.Sink) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return ErrAlreadyStarted
	}
	a.started = true
	needID := a.botUserID == ""
	a.mu.Unlock()

	if needID {
		if err := a.authTest(ctx); err != nil {
			if errors.Is(err, channels.ErrPermanent) {
				a.mu.Lock()
				a.started = false
				a.mu.Unlock()
				return fmt.Errorf("slack: check bot_token: %w", err)
			}
			a.log.Warn("slack auth.test failed; the bot user id comes from the callbacks", logErr, err)
			a.setError(err)
		}
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	a.sink = sink
	if a.cfg.Mode == ModeEvents {
		a.state.Connected = true
		a.state.Detail = "events API callbacks at POST " + EventsPath
		return nil
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.state.Detail = "socket mode via " + a.base + "/apps.connections.open"
	a.wg.Add(1)
	go a.runSocket(runCtx, sink)
	return nil
}

// Stop implements channels.Adapter: it ends the socket loop and waits for
// it (or for ctx). Callbacks after Stop are answered 503.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	a.stopped = true
	a.state.Connected = false
	if a.cancel != nil {
		a.cancel()
	}
	a.mu.Unlock()
	done := make(chan struct{})
	go func() {
		a.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("slack: stop: %w", ctx.Err())
	}
}

// Routes implements channels.Router: the Events API callback in events
// mode, nothing in socket mode.
func (a *Adapter) Routes() []channels.Route {
	if a.cfg.Mode != ModeEvents {
		return nil
	}
	return []channels.Route{{Method: http.MethodPost, Path: EventsPath, Handler: http.HandlerFunc(a.serveEvents)}}
}

// Limits implements channels.Limited. Slack truncates text past 40,000
// characters and recommends at most 4,000 for display. chat.postMessage
// has its own "special" tier: about one message per second per channel
// with short bursts, and a workspace-wide cap Slack does not publish;
// 300 a minute stays under it in practice, and a 429 carries Retry-After,
// which Send returns for the hub to honour.
func (a *Adapter) Limits() channels.Limits {
	return channels.Limits{
		MaxText: 4000,
		Unit:    channels.Runes,
		PerChat: channels.Rate{N: 1, Per: time.Second},
		Global:  channels.Rate{N: 300, Per: time.Minute},
	}
}

// State implements channels.Stater.
func (a *Adapter) State() channels.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

func (a *Adapter) setError(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state.LastError = err.Error()
	a.state.LastErrorAt = a.now().UTC()
}

func (a *Adapter) setConnected(ok bool, detail string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state.Connected = ok
	if detail != "" {
		a.state.Detail = detail
	}
}

// activeSink returns the sink while the adapter runs, nil before Start and
// after Stop.
func (a *Adapter) activeSink() channels.Sink {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return nil
	}
	return a.sink
}

// botUser returns the bot's user id: configured, from auth.test, or "".
func (a *Adapter) botUser() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.botUserID
}

// authTest asks Slack who the bot token belongs to.
func (a *Adapter) authTest(ctx context.Context) error {
	var resp struct {
		apiStatus
		UserID string `json:"user_id"`
		BotID  string `json:"bot_id"`
		TeamID string `json:"team_id"`
	}
	if err := a.call(ctx, "auth.test", a.cfg.BotToken.Value(), nil, &resp); err != nil {
		return err
	}
	if resp.UserID == "" {
		return fmt.Errorf("slack auth.test: no user_id in the answer")
	}
	a.mu.Lock()
	a.botUserID = resp.UserID
	a.mu.Unlock()
	return nil
}
