package telegram

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/channels"
	"github.com/zhiyin/zhiyin/internal/config"
)

// Name is the adapter's name: its configuration key and the Channel of its
// messages.
const Name = "telegram"

// WebhookPath is where Telegram posts updates in webhook mode.
const WebhookPath = "/channels/telegram/webhook"

// allowedUpdates are the update types asked for (getUpdates, setWebhook).
var allowedUpdates = []string{"message", "edited_message", "channel_post"}

// Log attribute keys.
const (
	logErr    = "err"
	logUpdate = "update_id"
	logDelay  = "retry_in"
	logMode   = "mode"
)

// Adapter is a Telegram bot. Build it with New; safe for concurrent use.
type Adapter struct {
	cfg         Config
	log         *slog.Logger
	token       string
	base        string // base_url without a trailing slash
	secret      []byte // webhook_secret
	maxBody     int64
	pollTimeout time.Duration
	transport   *http.Transport
	client      *http.Client // Bot API calls other than getUpdates
	pollClient  *http.Client // getUpdates: the long-poll wait plus timeout

	// Tunables, fixed after New (tests shorten them).
	backoff   channels.Backoff
	slowRetry time.Duration // after 401: the token will not fix itself soon
	idleDelay time.Duration // after an empty poll the server answered at once

	mu      sync.Mutex
	me      identity
	sink    channels.Sink
	state   channels.State
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Interface guards.
var (
	_ channels.Adapter = (*Adapter)(nil)
	_ channels.Router  = (*Adapter)(nil)
	_ channels.Limited = (*Adapter)(nil)
	_ channels.Stater  = (*Adapter)(nil)
)

// New checks cfg and returns the adapter; it does no I/O.
func New(cfg Config, log *slog.Logger) (*Adapter, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	check := cfg
	check.Enabled = true // New is asked for an adapter: check it as enabled
	if err := config.Validate(&check); err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	def := DefaultConfig()
	if cfg.BaseURL == "" {
		cfg.BaseURL = def.BaseURL
	}
	if cfg.Mode == "" {
		cfg.Mode = def.Mode
	}
	if cfg.PollTimeout == 0 {
		cfg.PollTimeout = def.PollTimeout
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = def.MaxBody
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = def.Timeout
	}
	token := cfg.Token.Value()
	me := identity{Username: strings.TrimPrefix(cfg.BotUsername, "@")}
	// A bot token is "<bot user id>:<secret>".
	if id, _, ok := strings.Cut(token, ":"); ok {
		me.ID, _ = strconv.ParseInt(id, 10, 64)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	a := &Adapter{
		cfg:         cfg,
		log:         log.With("channel", Name),
		token:       token,
		base:        strings.TrimRight(cfg.BaseURL, "/"),
		secret:      []byte(cfg.WebhookSecret.Value()),
		maxBody:     int64(cfg.MaxBody),
		pollTimeout: cfg.PollTimeout.Truncate(time.Second),
		transport:   tr,
		client:      &http.Client{Transport: tr, Timeout: cfg.Timeout},
		pollClient:  &http.Client{Transport: tr, Timeout: cfg.PollTimeout + cfg.Timeout},
		backoff:     channels.Backoff{Min: time.Second, Max: time.Minute},
		slowRetry:   5 * time.Minute,
		idleDelay:   time.Second,
		me:          me,
	}
	a.state.Detail = "not started"
	return a, nil
}

// Name implements channels.Adapter.
func (a *Adapter) Name() string { return Name }

// Limits implements channels.Limited: 4096 UTF-16 units a message; about
// one message a second per chat and 30 a second overall (Telegram's bot
// FAQ). Groups allow only 20 a minute; the hub's PerChat rate cannot tell
// groups apart, so a busy group may see 429s, which Send reports as
// RetryAfter.
func (a *Adapter) Limits() channels.Limits {
	return channels.Limits{
		MaxText: 4096,
		Unit:    channels.UTF16,
		PerChat: channels.Rate{N: 1, Per: time.Second},
		Global:  channels.Rate{N: 30, Per: time.Second},
	}
}

// Routes implements channels.Router: the webhook in webhook mode, nothing
// when polling.
func (a *Adapter) Routes() []channels.Route {
	if a.cfg.Mode != ModeWebhook {
		return nil
	}
	return []channels.Route{{Method: http.MethodPost, Path: WebhookPath, Handler: http.HandlerFunc(a.serveWebhook)}}
}

// State implements channels.Stater.
func (a *Adapter) State() channels.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// Start begins receiving: in polling mode a goroutine long-polls
// getUpdates; in webhook mode one registers the webhook (set_webhook_url)
// and, in both, asks getMe for the bot's username unless configured, with
// retries. Start itself does no I/O and returns at once; ctx only carries
// values to the goroutines, which Stop ends.
func (a *Adapter) Start(ctx context.Context, sink channels.Sink) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		return ErrStarted
	}
	a.started = true
	a.sink = sink
	loop, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.wg.Add(1)
	if a.cfg.Mode == ModeWebhook {
		a.state = channels.State{Connected: true, Detail: "webhook " + WebhookPath}
		go func() {
			defer a.wg.Done()
			a.setup(loop)
		}()
	} else {
		a.state = channels.State{Detail: "long polling " + redactURL(a.base)}
		go func() {
			defer a.wg.Done()
			a.poll(loop)
		}()
	}
	a.log.Info("telegram started", logMode, a.cfg.Mode)
	return nil
}

// Stop ends the goroutines Start began and waits for them (or ctx).
// Idempotent; the adapter may be started again afterwards.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	cancel := a.cancel
	a.cancel = nil
	a.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	done := make(chan struct{})
	go func() {
		a.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("telegram stop: %w", ctx.Err())
	}
	a.transport.CloseIdleConnections()
	a.mu.Lock()
	a.sink = nil
	a.started = false
	a.state.Connected = false
	a.state.Detail = "stopped"
	a.mu.Unlock()
	return nil
}

// redactURL hides a password in a URL.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

func (a *Adapter) identity() identity {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.me
}

func (a *Adapter) setConnected(ok bool) {
	a.mu.Lock()
	a.state.Connected = ok
	a.mu.Unlock()
}

// fail records err as the state's last error.
func (a *Adapter) fail(msg string) {
	a.mu.Lock()
	a.state.LastError = msg
	a.state.LastErrorAt = time.Now().UTC()
	a.mu.Unlock()
}

// getMe learns the bot's id and username, unless bot_username is
// configured.
func (a *Adapter) getMe(ctx context.Context) error {
	if a.identity().Username != "" {
		return nil
	}
	var u user
	if err := a.call(ctx, a.client, "getMe", struct{}{}, &u); err != nil {
		return err
	}
	if u.Username == "" {
		return fmt.Errorf("telegram getMe: no username in the answer")
	}
	a.mu.Lock()
	if u.ID != 0 {
		a.me.ID = u.ID
	}
	a.me.Username = u.Username
	a.mu.Unlock()
	return nil
}

// setup, in webhook mode, registers the webhook (when set_webhook_url is
// configured) and learns the bot's username, retrying until both worked or
// ctx ends.
func (a *Adapter) setup(ctx context.Context) {
	hooked := a.cfg.SetWebhookURL == ""
	for n := 1; ctx.Err() == nil; n++ {
		err := a.getMe(ctx)
		if err == nil && !hooked {
			err = a.call(ctx, a.client, "setWebhook", map[string]any{
				"url":             a.cfg.SetWebhookURL,
				"secret_token":    string(a.secret),
				"allowed_updates": allowedUpdates,
			}, nil)
			hooked = err == nil
		}
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		d := a.retryDelay(err, n)
		a.log.Warn("telegram setup failed", logErr, err, logDelay, d)
		if !channels.Sleep(ctx, d) {
			return
		}
	}
}

// retryDelay is the wait after a failed call: the server's retry_after,
// a slow retry for a rejected token, else backoff. It records the error.
func (a *Adapter) retryDelay(err error, n int) time.Duration {
	msg := err.Error()
	d := a.backoff.Delay(n)
	switch apiCode(err) {
	case http.StatusUnauthorized:
		msg = "bot token rejected: check token (from @BotFather or your local Bot API server): " + msg
		d = a.slowRetry
	case http.StatusNotFound:
		// What the public API answers for a malformed token.
		msg = "bot token rejected, or base_url is not a Bot API server: check token and base_url: " + msg
		d = a.slowRetry
	case http.StatusConflict:
		msg = "another instance is receiving this bot's updates: stop the other poller, or call deleteWebhook " +
			"(or set mode: webhook here): " + msg
	case http.StatusTooManyRequests:
		if ra := retryAfterOf(err); ra > d {
			d = ra
		}
	}
	a.fail(msg)
	return d
}
