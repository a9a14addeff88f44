package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// CallbackPath is the HTTP robot callback route (http mode).
const CallbackPath = "/channels/dingtalk/callback"

// CustomRobotConversation is the Outgoing.Conversation that sends through
// the configured custom_robot in stream and http mode (in custom_robot mode
// every send goes there).
const CustomRobotConversation = "custom_robot"

// Log attribute keys.
const (
	logKeyErr   = "err"
	logKeyMsgID = "msg_id"
	logKeyFrame = "frame_id"
	logKeyTopic = "topic"
	logKeyDelay = "delay"
	logKeyHost  = "host"
	logKeyType  = "type"
	logKeyBase  = "oapi_base"
)

// Adapter is a DingTalk robot. Build it with New; safe for concurrent use
// once started.
type Adapter struct {
	cfg     Config
	log     *slog.Logger
	client  *http.Client
	backoff channels.Backoff
	now     func() time.Time
	apiURL  *url.URL
	oapiURL *url.URL

	// guard refuses a callback sign seen before; released holds signs
	// whose delivery failed, so that DingTalk's retry with the same
	// headers is let through once.
	guard    *channels.ReplayGuard
	relMu    sync.Mutex
	released map[string]struct{}

	// tokSem serialises access-token fetches (single flight) and guards
	// tok and tokExp.
	tokSem chan struct{}
	tok    string
	tokExp time.Time

	mu      sync.Mutex
	sink    channels.Sink
	state   channels.State
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
}

var (
	_ channels.Adapter = (*Adapter)(nil)
	_ channels.Router  = (*Adapter)(nil)
	_ channels.Limited = (*Adapter)(nil)
	_ channels.Stater  = (*Adapter)(nil)
	// The hub's optional Fetcher capability (media downloads).
	_ interface {
		Fetch(context.Context, channels.Media) (io.ReadCloser, error)
	} = (*Adapter)(nil)
)

// maxReleased bounds the signs remembered for a redelivery after a failed
// Deliver; past it the oldest is not let through again (DingTalk then
// needs a fresh timestamp).
const maxReleased = 1024

// New returns an adapter for cfg (empty fields take DefaultConfig's
// values). It does no I/O.
func New(cfg Config, log *slog.Logger) (*Adapter, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	api, err := url.Parse(cfg.APIBase)
	if err != nil || api.Host == "" {
		return nil, fmt.Errorf("dingtalk: api_base %q is not a URL", cfg.APIBase)
	}
	oapi, err := url.Parse(cfg.OAPIBase)
	if err != nil || oapi.Host == "" {
		return nil, fmt.Errorf("dingtalk: oapi_base %q is not a URL", cfg.OAPIBase)
	}
	switch cfg.Mode {
	case ModeStream, ModeHTTP, ModeCustomRobot:
	default:
		return nil, fmt.Errorf("dingtalk: unknown mode %q (stream, http or custom_robot)", cfg.Mode)
	}
	return &Adapter{
		cfg:      cfg,
		log:      log,
		client:   &http.Client{Timeout: cfg.Timeout},
		backoff:  channels.Backoff{Min: time.Second, Max: time.Minute},
		now:      time.Now,
		apiURL:   api,
		oapiURL:  oapi,
		guard:    channels.NewReplayGuard(signWindow, 1<<16),
		released: map[string]struct{}{},
		tokSem:   make(chan struct{}, 1),
	}, nil
}

// Name implements channels.Adapter.
func (a *Adapter) Name() string { return Platform }

// Start implements channels.Adapter. In stream mode it starts the
// connection loop and returns at once (the first connection is made in the
// background; State says how it went). ctx bounds nothing after Start
// returns: Stop ends the loop.
func (a *Adapter) Start(ctx context.Context, sink channels.Sink) error {
	if sink == nil {
		return errors.New("dingtalk: start: nil sink")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		return errors.New("dingtalk: already started")
	}
	a.started = true
	a.sink = sink
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	switch a.cfg.Mode {
	case ModeStream:
		a.state = channels.State{Detail: "stream mode: connecting to " + a.cfg.APIBase}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.runStream(runCtx)
		}()
	case ModeHTTP:
		a.state = channels.State{Connected: true, Detail: "robot callbacks on " + CallbackPath}
	case ModeCustomRobot:
		a.state = channels.State{Connected: true, Detail: "custom robot (outbound only)"}
	}
	return nil
}

// Stop implements channels.Adapter: it ends the stream loop and waits for
// it, or for ctx.
func (a *Adapter) Stop(ctx context.Context) error {
	a.mu.Lock()
	cancel := a.cancel
	a.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	done := make(chan struct{})
	go func() {
		a.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("dingtalk: stop: %w", ctx.Err())
	}
	a.mu.Lock()
	if a.cfg.Mode != ModeStream {
		a.state.Connected = false
	}
	a.mu.Unlock()
	return nil
}

// State implements channels.Stater.
func (a *Adapter) State() channels.State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// Routes implements channels.Router: the robot callback in http mode,
// nothing otherwise.
func (a *Adapter) Routes() []channels.Route {
	if a.cfg.Mode != ModeHTTP {
		return nil
	}
	return []channels.Route{{Method: http.MethodPost, Path: CallbackPath, Handler: http.HandlerFunc(a.serveCallback)}}
}

// Limits implements channels.Limited.
//
// Text: DingTalk documents no exact cap for robot text; 5000 characters is
// the figure its robot message docs give for text and markdown, and what
// SDKs use. Pace: a custom robot may send 20 messages a minute (more gets
// it throttled for 10 minutes: "每个机器人每分钟最多发送20条"); the app robot
// OpenAPI allows about 20 calls a second per app (the common QPS quota of
// robot APIs), and a group takes 20 a minute from one robot, which we apply
// to every chat to stay clear of group throttling.
func (a *Adapter) Limits() channels.Limits {
	l := channels.Limits{
		MaxText: 5000,
		Unit:    channels.Runes,
		PerChat: channels.Rate{N: 20, Per: time.Minute},
		Global:  channels.Rate{N: 20, Per: time.Second},
	}
	if a.cfg.Mode == ModeCustomRobot {
		l.Global = channels.Rate{N: 20, Per: time.Minute}
	}
	return l
}

func (a *Adapter) getSink() channels.Sink {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sink
}

func (a *Adapter) setConnected(up bool, detail string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state.Connected = up
	if detail != "" {
		a.state.Detail = detail
	}
}

func (a *Adapter) noteError(err error) {
	if err == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state.LastError = err.Error()
	a.state.LastErrorAt = a.now().UTC()
}
